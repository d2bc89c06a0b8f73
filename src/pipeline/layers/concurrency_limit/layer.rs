use std::sync::Arc;

use tokio::sync::Semaphore;
use tower::Layer;

use super::service::ConcurrencyLimit;

/// Makes every attempt hold a permit of a (possibly shared) semaphore.
#[derive(Clone)]
pub struct ConcurrencyLimitLayer {
    semaphore: Arc<Semaphore>,
}

impl ConcurrencyLimitLayer {
    /// A layer over a semaphore.
    pub fn new(semaphore: Arc<Semaphore>) -> ConcurrencyLimitLayer {
        ConcurrencyLimitLayer { semaphore }
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> ConcurrencyLimit<S> {
        ConcurrencyLimit::new(inner, self.semaphore.clone())
    }
}
