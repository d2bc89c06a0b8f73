use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Service, ServiceExt};

use super::Limiter;
use crate::pipeline::delivery::{Delivery, DeliveryError, DeliveryFuture, Receipt};

/// Waits for a permit before each attempt.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<Limiter>,
}

impl<S> RateLimit<S> {
    pub(super) fn new(inner: S, limiter: Arc<Limiter>) -> Self {
        RateLimit { inner, limiter }
    }
}

impl<S> Service<Delivery> for RateLimit<S>
where
    S: Service<Delivery, Response = Receipt, Error = DeliveryError> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Receipt;
    type Error = DeliveryError;
    type Future = DeliveryFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), DeliveryError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Delivery) -> DeliveryFuture {
        let inner = self.inner.clone();
        let limiter = self.limiter.clone();
        Box::pin(async move {
            limiter.until_ready().await;
            inner.oneshot(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::pipeline::layers::test_support::{delivery, service_fn_delivery};

    #[tokio::test]
    async fn holds_the_rate() {
        let quota =
            governor::Quota::per_second(NonZeroU32::new(20).unwrap()).allow_burst(NonZeroU32::MIN);
        let limiter = Arc::new(governor::RateLimiter::direct(quota));
        let ok = service_fn_delivery(|_| async { Ok(Receipt::default()) });
        let svc = RateLimit::new(ok, limiter);
        let start = Instant::now();
        for _ in 0..6 {
            svc.clone().oneshot(delivery()).await.unwrap();
        }
        // 6 requests at 20/s with a burst of 1 need at least 5 intervals of 50 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(240),
            "{:?}",
            start.elapsed()
        );
    }
}
