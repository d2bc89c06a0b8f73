//! Rate limit per destination with `governor` (GCRA): each attempt waits
//! for a permit, so a partner never sees more than `per_second` (plus
//! `burst`) requests, retries included.
//!
//! Owns the limiter and its config. Sharing one limiter between
//! destinations that call the same partner is done by name through a
//! [`RateLimiters`] registry the stack builder holds.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::gate::{Gate, GateLayer, Gated};

/// The rate limit as a layer.
pub type RateLimitLayer = GateLayer<RateGate>;
/// A service behind a rate limit.
pub type RateLimit<S> = Gated<S, RateGate>;

/// The limiter type.
pub type Limiter = governor::DefaultDirectRateLimiter;

/// `rate_limit:` in a destination.
///
/// ```yaml
/// rate_limit:
///   per_second: 50     # sustained rate
///   burst: 10          # requests allowed at once (default 1)
///   shared: payer-x    # optional: destinations naming the same key share one limit
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second (use `per_minute` for slow partners).
    #[serde(default)]
    pub per_second: Option<NonZeroU32>,
    /// Requests per minute.
    #[serde(default)]
    pub per_minute: Option<NonZeroU32>,
    /// Requests allowed in one burst. Default 1.
    #[serde(default)]
    pub burst: Option<NonZeroU32>,
    /// A name shared by destinations that call the same partner.
    #[serde(default)]
    pub shared: Option<String>,
}

impl RateLimitConfig {
    /// The governor quota; `None` when neither rate is set.
    pub fn quota(&self) -> Option<governor::Quota> {
        let q = match (self.per_second, self.per_minute) {
            (Some(s), _) => governor::Quota::per_second(s),
            (None, Some(m)) => governor::Quota::per_minute(m),
            (None, None) => return None,
        };
        Some(q.allow_burst(self.burst.unwrap_or(NonZeroU32::MIN)))
    }
}

/// Each attempt waits for a permit from a (possibly shared) limiter.
#[derive(Clone)]
pub struct RateGate(pub Arc<Limiter>);

impl Gate for RateGate {
    type Pass = ();

    fn pass(&self) -> impl Future<Output = ()> + Send + 'static {
        let limiter = self.0.clone();
        async move { limiter.until_ready().await }
    }
}

/// Limiters shared by name across destinations.
#[derive(Default)]
pub struct RateLimiters {
    shared: Mutex<HashMap<String, Arc<Limiter>>>,
}

impl RateLimiters {
    /// The limiter for a config: a new one, or the shared one of its name.
    pub fn limiter(&self, cfg: &RateLimitConfig) -> Option<Arc<Limiter>> {
        let quota = cfg.quota()?;
        match &cfg.shared {
            None => Some(Arc::new(governor::RateLimiter::direct(quota))),
            Some(name) => {
                let mut map = self.shared.lock().ok()?;
                Some(
                    map.entry(name.clone())
                        .or_insert_with(|| Arc::new(governor::RateLimiter::direct(quota)))
                        .clone(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tower::ServiceExt;

    use super::*;
    use crate::pipeline::delivery::Receipt;
    use crate::pipeline::layers::test_support::{delivery, service_fn_delivery};

    #[tokio::test]
    async fn holds_the_rate() {
        let quota =
            governor::Quota::per_second(NonZeroU32::new(20).unwrap()).allow_burst(NonZeroU32::MIN);
        let limiter = Arc::new(governor::RateLimiter::direct(quota));
        let ok = service_fn_delivery(|_| async { Ok(Receipt::default()) });
        let svc = RateLimit::new(ok, RateGate(limiter));
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
