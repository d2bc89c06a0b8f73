use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Service, ServiceExt};

use crate::pipeline::delivery::{Delivery, DeliveryError, DeliveryFuture, ErrorKind, Receipt};

/// Fails an attempt that takes longer than its limit.
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    limit: Duration,
}

impl<S> Timeout<S> {
    pub(super) fn new(inner: S, limit: Duration) -> Self {
        Timeout { inner, limit }
    }
}

impl<S> Service<Delivery> for Timeout<S>
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
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, inner.oneshot(req)).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError {
                    kind: ErrorKind::Timeout,
                    message: format!("no answer within {}", humantime::format_duration(limit)),
                    retry_after: None,
                    attempts: 0,
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::layers::test_support::{delivery, service_fn_delivery};

    #[tokio::test(start_paused = true)]
    async fn slow_attempts_time_out() {
        let slow = service_fn_delivery(|_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Receipt::default())
        });
        let svc = Timeout::new(slow, Duration::from_secs(5));
        let err = svc.oneshot(delivery()).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Timeout);
        assert!(err.message.contains("5s"));
    }
}
