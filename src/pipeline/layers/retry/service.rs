use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Service, ServiceExt};

use super::{RetryObserver, RetryPolicy};
use crate::pipeline::delivery::{Delivery, DeliveryError, DeliveryFuture, ErrorKind, Receipt};

/// Runs attempts until one succeeds, one fails for good, or the policy is
/// exhausted.
#[derive(Clone)]
pub struct Retry<S> {
    inner: S,
    policy: Arc<RetryPolicy>,
    observer: Arc<dyn RetryObserver>,
    retries: metrics::Counter,
}

impl<S> Retry<S> {
    pub(super) fn new(
        inner: S,
        policy: Arc<RetryPolicy>,
        observer: Arc<dyn RetryObserver>,
        retries: metrics::Counter,
    ) -> Self {
        Retry {
            inner,
            policy,
            observer,
            retries,
        }
    }
}

fn age(d: &Delivery) -> Duration {
    let secs = jiff::Timestamp::now()
        .duration_since(d.task.created_at)
        .as_secs_f64();
    Duration::from_secs_f64(secs.max(0.0))
}

impl<S> Service<Delivery> for Retry<S>
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

    fn call(&mut self, mut req: Delivery) -> DeliveryFuture {
        let inner = self.inner.clone();
        let policy = self.policy.clone();
        let observer = self.observer.clone();
        let retries = self.retries.clone();
        Box::pin(async move {
            loop {
                let err = match inner.clone().oneshot(req.clone()).await {
                    Ok(mut receipt) => {
                        receipt.attempts = req.attempt;
                        return Ok(receipt);
                    }
                    Err(mut e) if !e.is_retryable() => {
                        e.attempts = req.attempt;
                        return Err(e);
                    }
                    Err(e) => e,
                };
                if err.kind == ErrorKind::CircuitOpen {
                    // The peer was not tried; wait for the breaker, count nothing.
                    tokio::time::sleep(err.retry_after.unwrap_or(Duration::from_secs(1))).await;
                    continue;
                }
                if policy.exhausted(req.attempt, age(&req)) {
                    let mut dead = DeliveryError::permanent(format!(
                        "gave up after {} attempt(s): {}",
                        req.attempt, err.message
                    ));
                    dead.attempts = req.attempt;
                    return Err(dead);
                }
                let wait = policy
                    .delay(req.attempt)
                    .max(err.retry_after.unwrap_or_default());
                retries.increment(1);
                observer.retrying(&req, &err, wait).await;
                tokio::time::sleep(wait).await;
                req.attempt += 1;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::config::units::HumanDuration;
    use crate::pipeline::layers::test_support::{delivery, service_fn_delivery};

    #[derive(Default)]
    struct Seen(Mutex<Vec<(u32, String)>>);

    #[async_trait]
    impl RetryObserver for Seen {
        async fn retrying(&self, d: &Delivery, e: &DeliveryError, _wait: Duration) {
            self.0.lock().unwrap().push((d.attempt, e.message.clone()));
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            initial: HumanDuration::millis(1),
            max_delay: HumanDuration::millis(5),
            ..RetryPolicy::default()
        }
    }

    #[tokio::test]
    async fn retries_until_success_and_records_each_failure() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let flaky = service_fn_delivery(move |_| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(DeliveryError::retryable(format!("refused {n}")))
                } else {
                    Ok(Receipt {
                        detail: Some("AA".into()),
                        attempts: 0,
                    })
                }
            }
        });
        let seen = Arc::new(Seen::default());
        let svc = Retry::new(
            flaky,
            Arc::new(fast()),
            seen.clone(),
            metrics::Counter::noop(),
        );
        let r = svc.oneshot(delivery()).await.unwrap();
        assert_eq!(r.detail.as_deref(), Some("AA"));
        assert_eq!(r.attempts, 4);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[tokio::test]
    async fn permanent_failures_and_exhaustion_end_it() {
        let bad = service_fn_delivery(|_| async { Err(DeliveryError::permanent("AR")) });
        let svc = Retry::new(
            bad,
            Arc::new(fast()),
            Arc::new(Seen::default()),
            metrics::Counter::noop(),
        );
        assert_eq!(svc.oneshot(delivery()).await.unwrap_err().message, "AR");

        let down = service_fn_delivery(|_| async { Err(DeliveryError::retryable("refused")) });
        let policy = RetryPolicy {
            max_attempts: 3,
            ..fast()
        };
        let svc = Retry::new(
            down,
            Arc::new(policy),
            Arc::new(Seen::default()),
            metrics::Counter::noop(),
        );
        let e = svc.oneshot(delivery()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(
            e.message.starts_with("gave up after 3 attempt(s)"),
            "{}",
            e.message
        );
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let busy = service_fn_delivery(move |_| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(DeliveryError {
                        kind: ErrorKind::Retryable,
                        message: "429".into(),
                        retry_after: Some(Duration::from_secs(30)),
                        attempts: 0,
                    })
                } else {
                    Ok(Receipt::default())
                }
            }
        });
        let svc = Retry::new(
            busy,
            Arc::new(fast()),
            Arc::new(Seen::default()),
            metrics::Counter::noop(),
        );
        let start = tokio::time::Instant::now();
        svc.oneshot(delivery()).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(30));
    }
}
