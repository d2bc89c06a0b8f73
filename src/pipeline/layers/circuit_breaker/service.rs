use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Service, ServiceExt};

use super::Breaker;
use crate::pipeline::delivery::{Delivery, DeliveryError, DeliveryFuture, ErrorKind, Receipt};

/// Fails attempts at once while the breaker is open.
#[derive(Clone)]
pub struct CircuitBreaker<S> {
    inner: S,
    breaker: Arc<Breaker>,
}

impl<S> CircuitBreaker<S> {
    pub(super) fn new(inner: S, breaker: Arc<Breaker>) -> Self {
        CircuitBreaker { inner, breaker }
    }
}

/// Tells the breaker when an admitted attempt is dropped unfinished.
struct Pending(Option<Arc<Breaker>>);

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            b.abandon();
        }
    }
}

impl<S> Service<Delivery> for CircuitBreaker<S>
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
        let breaker = self.breaker.clone();
        Box::pin(async move {
            if let Err(wait) = breaker.admit() {
                return Err(DeliveryError {
                    kind: ErrorKind::CircuitOpen,
                    message: format!(
                        "circuit breaker open after repeated failures; next probe in {}",
                        humantime::format_duration(std::time::Duration::from_millis(
                            wait.as_millis() as u64
                        ))
                    ),
                    retry_after: Some(wait),
                    attempts: 0,
                });
            }
            let mut pending = Pending(Some(breaker.clone()));
            let result = inner.oneshot(req).await;
            pending.0 = None;
            breaker.record(match &result {
                Ok(_) => true,
                Err(e) => !e.is_health_failure(),
            });
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::config::units::HumanDuration;
    use crate::pipeline::layers::circuit_breaker::{CircuitBreakerConfig, Phase};
    use crate::pipeline::layers::test_support::{delivery, service_fn_delivery};

    #[tokio::test]
    async fn opens_half_opens_and_closes() {
        let calls = Arc::new(AtomicU32::new(0));
        let up = Arc::new(AtomicBool::new(false));
        let (c, u) = (calls.clone(), up.clone());
        let peer = service_fn_delivery(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            let up = u.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(Receipt::default())
                } else {
                    Err(DeliveryError::retryable("connection refused"))
                }
            }
        });
        let cfg = CircuitBreakerConfig {
            failures: 3,
            cool_down: HumanDuration::millis(100),
            error_rate: None,
        };
        let breaker = Arc::new(Breaker::new(
            &cfg,
            "c".into(),
            "d".into(),
            metrics::Gauge::noop(),
        ));
        let svc = CircuitBreaker::new(peer, breaker.clone());
        for _ in 0..3 {
            assert_eq!(
                svc.clone().oneshot(delivery()).await.unwrap_err().kind,
                ErrorKind::Retryable
            );
        }
        assert!(matches!(breaker.phase(), Phase::Open { .. }));
        // Open: fails fast without calling the peer.
        let e = svc.clone().oneshot(delivery()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::CircuitOpen);
        assert!(e.retry_after.is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // After the cool-down one probe goes; it fails and the breaker reopens.
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(
            svc.clone().oneshot(delivery()).await.unwrap_err().kind,
            ErrorKind::Retryable
        );
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(matches!(breaker.phase(), Phase::Open { .. }));
        // The peer recovers: the next probe closes it.
        up.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(120)).await;
        svc.clone().oneshot(delivery()).await.unwrap();
        assert_eq!(breaker.phase(), Phase::Closed { failures: 0 });
    }

    #[tokio::test]
    async fn content_refusals_do_not_open_it() {
        let peer =
            service_fn_delivery(|_| async { Err(DeliveryError::permanent("AR: unknown patient")) });
        let cfg = CircuitBreakerConfig {
            failures: 2,
            cool_down: HumanDuration::secs(30),
            error_rate: None,
        };
        let breaker = Arc::new(Breaker::new(
            &cfg,
            "c".into(),
            "d".into(),
            metrics::Gauge::noop(),
        ));
        let svc = CircuitBreaker::new(peer, breaker.clone());
        for _ in 0..5 {
            assert_eq!(
                svc.clone().oneshot(delivery()).await.unwrap_err().kind,
                ErrorKind::Permanent
            );
        }
        assert_eq!(breaker.phase(), Phase::Closed { failures: 0 });
    }

    #[tokio::test]
    async fn an_error_rate_opens_it_without_consecutive_failures() {
        let n = Arc::new(AtomicU32::new(0));
        let peer = {
            let n = n.clone();
            service_fn_delivery(move |_| {
                let k = n.fetch_add(1, Ordering::SeqCst);
                async move {
                    if k.is_multiple_of(2) {
                        Ok(Receipt::default())
                    } else {
                        Err(DeliveryError::retryable("502 from the peer"))
                    }
                }
            })
        };
        let cfg = CircuitBreakerConfig {
            failures: 0,
            cool_down: HumanDuration::secs(30),
            error_rate: Some(super::super::ErrorRateConfig {
                threshold: 0.5,
                window: HumanDuration::secs(10),
                min_attempts: 4,
            }),
        };
        let breaker = Arc::new(Breaker::new(
            &cfg,
            "c".into(),
            "d".into(),
            metrics::Gauge::noop(),
        ));
        let svc = CircuitBreaker::new(peer, breaker.clone());
        for _ in 0..3 {
            let _ = svc.clone().oneshot(delivery()).await;
        }
        assert!(
            matches!(breaker.phase(), Phase::Closed { .. }),
            "3 attempts: below min_attempts"
        );
        let _ = svc.clone().oneshot(delivery()).await;
        assert!(
            matches!(breaker.phase(), Phase::Open { .. }),
            "2 of 4 failed: 50%"
        );
        assert_eq!(
            svc.clone().oneshot(delivery()).await.unwrap_err().kind,
            ErrorKind::CircuitOpen
        );
    }
}
