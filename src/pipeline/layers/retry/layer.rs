use std::sync::Arc;

use tower::Layer;

use super::service::Retry;
use super::{RetryObserver, RetryPolicy};

/// Retries retryable failures with backoff.
#[derive(Clone)]
pub struct RetryLayer {
    policy: Arc<RetryPolicy>,
    observer: Arc<dyn RetryObserver>,
    retries: metrics::Counter,
}

impl RetryLayer {
    /// A layer with a policy and an observer that records attempts.
    /// `retries` counts failed attempts that will be retried.
    pub fn new(
        policy: RetryPolicy,
        observer: Arc<dyn RetryObserver>,
        retries: metrics::Counter,
    ) -> RetryLayer {
        RetryLayer {
            policy: Arc::new(policy),
            observer,
            retries,
        }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry::new(
            inner,
            self.policy.clone(),
            self.observer.clone(),
            self.retries.clone(),
        )
    }
}
