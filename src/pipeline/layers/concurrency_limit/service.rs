use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

use crate::pipeline::delivery::{Delivery, DeliveryError, DeliveryFuture, Receipt};

/// Holds a permit for the length of each attempt.
#[derive(Clone)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    semaphore: Arc<Semaphore>,
}

impl<S> ConcurrencyLimit<S> {
    pub(super) fn new(inner: S, semaphore: Arc<Semaphore>) -> Self {
        ConcurrencyLimit { inner, semaphore }
    }
}

impl<S> Service<Delivery> for ConcurrencyLimit<S>
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
        let semaphore = self.semaphore.clone();
        Box::pin(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = semaphore.acquire_owned().await;
            inner.oneshot(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::pipeline::layers::concurrency_limit::{ConcurrencyLimitConfig, ConcurrencyLimits};
    use crate::pipeline::layers::test_support::{delivery, service_fn_delivery};

    /// Two "destinations" sharing a limit of 2, six attempts at once: never
    /// more than 2 inside the connector, and all six complete.
    #[tokio::test]
    async fn shared_by_name_caps_attempts_in_flight() {
        let limits = ConcurrencyLimits::default();
        let cfg = ConcurrencyLimitConfig {
            max: std::num::NonZeroU32::new(2).unwrap(),
            shared: Some("payer".into()),
        };
        let (a, b) = (limits.semaphore(&cfg), limits.semaphore(&cfg));
        assert!(Arc::ptr_eq(&a, &b));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let connector = {
            let (inside, most) = (inside.clone(), most.clone());
            service_fn_delivery(move |_| {
                let (inside, most) = (inside.clone(), most.clone());
                async move {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    Ok(Receipt::default())
                }
            })
        };
        let one = ConcurrencyLimit::new(connector.clone(), a);
        let two = ConcurrencyLimit::new(connector, b);
        let mut calls = Vec::new();
        for i in 0..6 {
            let svc = if i % 2 == 0 { one.clone() } else { two.clone() };
            calls.push(tokio::spawn(svc.oneshot(delivery())));
        }
        for c in calls {
            assert!(c.await.unwrap().is_ok());
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        // Unshared configs get their own semaphore.
        let own = ConcurrencyLimitConfig {
            shared: None,
            ..cfg
        };
        assert!(!Arc::ptr_eq(
            &limits.semaphore(&own),
            &limits.semaphore(&own)
        ));
    }
}
