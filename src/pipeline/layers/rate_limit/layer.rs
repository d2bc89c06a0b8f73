use std::sync::Arc;

use tower::Layer;

use super::Limiter;
use super::service::RateLimit;

/// Makes every attempt wait for a permit from a limiter.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<Limiter>,
}

impl RateLimitLayer {
    /// A layer over a (possibly shared) limiter.
    pub fn new(limiter: Arc<Limiter>) -> RateLimitLayer {
        RateLimitLayer { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit::new(inner, self.limiter.clone())
    }
}
