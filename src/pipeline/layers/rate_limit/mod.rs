//! Rate limit per destination with `governor` (GCRA): each attempt waits
//! for a permit, so a partner never sees more than `per_second` (plus
//! `burst`) requests, retries included.
//!
//! Owns the limiter and its config. Sharing one limiter between
//! destinations that call the same partner is done by name through a
//! [`RateLimiters`] registry the stack builder holds.

mod layer;
mod service;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

pub use layer::RateLimitLayer;
pub use service::RateLimit;

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
