//! Concurrency limit: at most `max` attempts in flight at once to a
//! partner. A destination's worker sends one delivery at a time (to keep
//! its order), so the limit matters when destinations share it by name:
//! several channels (or several destinations of one channel) that call the
//! same partner, which takes only so many connections at once, name the
//! same `shared` key and together never have more than `max` attempts open.
//!
//! Owns the semaphore, its config and the registry that shares it by name.
//! It does not own the order of the stack (see `layers::build_stack`): the
//! permit is held for one attempt (inside the rate limit, around the
//! timeout), never across a retry's back-off sleep.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::gate::{Gate, GateLayer, Gated};

/// The concurrency limit as a layer.
pub type ConcurrencyLimitLayer = GateLayer<SemaphoreGate>;
/// A service behind a concurrency limit.
pub type ConcurrencyLimit<S> = Gated<S, SemaphoreGate>;

/// Each attempt holds a permit of a (possibly shared) semaphore.
#[derive(Clone)]
pub struct SemaphoreGate(pub Arc<Semaphore>);

impl Gate for SemaphoreGate {
    /// `None` only if the semaphore were closed; it never is.
    type Pass = Option<OwnedSemaphorePermit>;

    fn pass(&self) -> impl Future<Output = Self::Pass> + Send + 'static {
        let semaphore = self.0.clone();
        async move { semaphore.acquire_owned().await.ok() }
    }
}

/// `concurrency_limit:` in a destination.
///
/// ```yaml
/// concurrency_limit:
///   max: 4             # attempts in flight at once
///   shared: payer-x    # destinations naming the same key share the 4
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyLimitConfig {
    /// Attempts in flight at once.
    pub max: NonZeroU32,
    /// A name shared by destinations that call the same partner.
    #[serde(default)]
    pub shared: Option<String>,
}

/// Semaphores shared by name across destinations.
#[derive(Default)]
pub struct ConcurrencyLimits {
    shared: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl ConcurrencyLimits {
    /// The semaphore for a config: a new one, or the shared one of its name
    /// (the first destination to name it sets its size).
    pub fn semaphore(&self, cfg: &ConcurrencyLimitConfig) -> Arc<Semaphore> {
        let permits = cfg.max.get() as usize;
        match &cfg.shared {
            None => Arc::new(Semaphore::new(permits)),
            Some(name) => {
                let mut map = self
                    .shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                map.entry(name.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(permits)))
                    .clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tower::ServiceExt;

    use super::*;
    use crate::pipeline::delivery::Receipt;
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
        let one = ConcurrencyLimit::new(connector.clone(), SemaphoreGate(a));
        let two = ConcurrencyLimit::new(connector, SemaphoreGate(b));
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
