//! Retry with exponential backoff and full jitter, attempts persisted.
//!
//! Owns the retry loop and its policy: after a retryable failure the
//! attempt is recorded (so `caduceus messages show` and a restart see it),
//! then the next waits a random time in `[0, min(max_delay, initial ×
//! multiplier^(n-1))]` ("full jitter"), or longer when the peer or the
//! circuit breaker named a `retry_after`. A permanent failure, or running
//! out of `max_attempts`/`max_age`, ends the delivery as dead. Attempts
//! refused by an open circuit breaker never reached the peer and are not
//! counted. Which failures are retryable is decided by each connector's
//! `RetryLogic`, not here.
//!
//! Why not backon's or tower's retry: both fit a request/response loop, but
//! this one must record every failed attempt in the store before sleeping
//! and resume the count after a restart; the loop is thirty lines, the
//! backoff formula one.

mod layer;
mod service;

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::config::units::HumanDuration;
use crate::pipeline::delivery::{Delivery, DeliveryError};

pub use layer::RetryLayer;
pub use service::Retry;

/// `retry:` in a destination. By default a delivery is retried until it
/// succeeds or is refused for good: nothing is dropped because a partner
/// was down for a weekend.
///
/// ```yaml
/// retry:
///   initial: 1s        # first delay ceiling
///   max_delay: 5m      # delay cap
///   multiplier: 2
///   max_attempts: 0    # 0 = no limit
///   max_age: 72h       # optional: give up on deliveries older than this
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Ceiling of the first delay. Default 1s.
    pub initial: HumanDuration,
    /// Largest delay. Default 5m.
    pub max_delay: HumanDuration,
    /// Growth per attempt. Default 2.
    pub multiplier: f64,
    /// Attempts before the delivery is dead; 0 means no limit. Default 0.
    pub max_attempts: u32,
    /// Age after which a failing delivery is dead. Default: none.
    pub max_age: Option<HumanDuration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: HumanDuration::secs(1),
            max_delay: HumanDuration::secs(300),
            multiplier: 2.0,
            max_attempts: 0,
            max_age: None,
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the delay after `attempt` failed attempts (from 1).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let base = self.initial.get().as_secs_f64();
        let exp = self
            .multiplier
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(64) as i32);
        let cap = self.max_delay.get().as_secs_f64();
        Duration::from_secs_f64((base * exp).min(cap).max(0.0))
    }

    /// A full-jitter delay after `attempt` failed attempts.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(fastrand::f64())
    }

    /// Whether a delivery with this many attempts and this age is out of
    /// retries.
    pub fn exhausted(&self, attempts: u32, age: Duration) -> bool {
        (self.max_attempts > 0 && attempts >= self.max_attempts)
            || self.max_age.is_some_and(|m| age >= m.get())
    }
}

/// Told about every failed attempt that will be retried, before the wait.
#[async_trait]
pub trait RetryObserver: Send + Sync {
    /// `delivery.attempt` attempts have been made; the next is due in `wait`.
    async fn retrying(&self, delivery: &Delivery, error: &DeliveryError, wait: Duration);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_secs(1));
        assert_eq!(p.ceiling(3), Duration::from_secs(4));
        assert_eq!(p.ceiling(30), Duration::from_secs(300));
        for n in 1..20 {
            assert!(p.delay(n) <= p.ceiling(n));
        }
        assert!(!p.exhausted(1000, Duration::from_secs(1_000_000)));
        let limited = RetryPolicy {
            max_attempts: 3,
            max_age: Some(HumanDuration::secs(60)),
            ..RetryPolicy::default()
        };
        assert!(limited.exhausted(3, Duration::ZERO));
        assert!(limited.exhausted(1, Duration::from_secs(61)));
        assert!(!limited.exhausted(2, Duration::from_secs(59)));
    }
}
