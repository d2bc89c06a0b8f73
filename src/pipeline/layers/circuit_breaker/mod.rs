//! Circuit breaker per destination: after `failures` consecutive failed
//! attempts, or when the share of failed attempts over a sliding window
//! reaches `error_rate.threshold`, it opens and fails attempts at once (with the time left as
//! `retry_after`), half-opens after `cool_down` to let one probe through,
//! and closes when a probe succeeds. Every transition is logged and set on
//! the `caduceus_circuit_state` gauge (0 closed, 1 open, 2 half-open).
//!
//! Owns the breaker state and its config. Only failures that say something
//! about the peer's health count (connection errors, timeouts, AE/5xx); a
//! content refusal (AR, 4xx) proves the peer is up.

mod layer;
mod service;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::units::HumanDuration;

pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreaker;

/// `circuit_breaker:` in a destination.
///
/// ```yaml
/// circuit_breaker:
///   failures: 5        # consecutive failed attempts that open it (0: this rule off)
///   cool_down: 30s     # how long it stays open before one probe
///   error_rate:        # optional: open when this share of attempts fails...
///     threshold: 0.5
///     window: 60s      # ...over this sliding window...
///     min_attempts: 20 # ...once it holds at least this many attempts
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakerConfig {
    /// Consecutive failed attempts that open the breaker; 0 turns this rule
    /// off. Default 5.
    pub failures: u32,
    /// Time open before a probe is let through. Default 30s.
    pub cool_down: HumanDuration,
    /// Open on an error rate over a window, too. Default: off.
    pub error_rate: Option<ErrorRateConfig>,
}

/// `error_rate:` of a circuit breaker.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ErrorRateConfig {
    /// Share of failed attempts (0 to 1) that opens the breaker.
    pub threshold: f64,
    /// The sliding window. Default 60s.
    #[serde(default = "default_window")]
    pub window: HumanDuration,
    /// Attempts the window must hold before the rate counts. Default 20.
    #[serde(default = "default_min_attempts")]
    pub min_attempts: u32,
}

fn default_window() -> HumanDuration {
    HumanDuration::secs(60)
}

fn default_min_attempts() -> u32 {
    20
}

impl CircuitBreakerConfig {
    /// True when any rule can open it.
    pub fn enabled(&self) -> bool {
        self.failures > 0 || self.error_rate.is_some()
    }
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failures: 5,
            cool_down: HumanDuration::secs(30),
            error_rate: None,
        }
    }
}

/// The breaker's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Attempts pass; consecutive failures are counted.
    Closed {
        /// Failures in a row so far.
        failures: u32,
    },
    /// Attempts fail at once until `until`.
    Open {
        /// When a probe may go.
        until: Instant,
    },
    /// One probe is allowed.
    HalfOpen {
        /// A probe is in flight.
        probing: bool,
    },
}

impl Phase {
    fn gauge(self) -> f64 {
        match self {
            Phase::Closed { .. } => 0.0,
            Phase::Open { .. } => 1.0,
            Phase::HalfOpen { .. } => 2.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Closed { .. } => "closed",
            Phase::Open { .. } => "open",
            Phase::HalfOpen { .. } => "half-open",
        }
    }
}

/// Shared state of one destination's breaker.
pub struct Breaker {
    phase: Mutex<Phase>,
    /// Recent outcomes while closed (time, healthy), for the error rate.
    recent: Mutex<std::collections::VecDeque<(Instant, bool)>>,
    error_rate: Option<ErrorRateConfig>,
    threshold: u32,
    cool_down: Duration,
    channel: Arc<str>,
    destination: Arc<str>,
    gauge: metrics::Gauge,
}

impl Breaker {
    /// A closed breaker; `gauge` is its `caduceus_circuit_state`.
    pub fn new(
        cfg: &CircuitBreakerConfig,
        channel: Arc<str>,
        destination: Arc<str>,
        gauge: metrics::Gauge,
    ) -> Breaker {
        gauge.set(0.0);
        Breaker {
            phase: Mutex::new(Phase::Closed { failures: 0 }),
            recent: Mutex::new(std::collections::VecDeque::new()),
            error_rate: cfg.error_rate.clone(),
            threshold: if cfg.failures == 0 {
                u32::MAX
            } else {
                cfg.failures
            },
            cool_down: cfg.cool_down.get(),
            channel,
            destination,
            gauge,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
            .lock()
            .map(|p| *p)
            .unwrap_or(Phase::Closed { failures: 0 })
    }

    fn set(&self, phase: &mut Phase, next: Phase) {
        let (from, to) = (phase.name(), next.name());
        *phase = next;
        if from != to {
            tracing::warn!(channel = %self.channel, destination = %self.destination, %from, %to, "circuit breaker changed state");
            self.gauge.set(next.gauge());
        }
    }

    /// May an attempt go now? `Err(wait)` when open.
    pub(crate) fn admit(&self) -> Result<(), Duration> {
        let Ok(mut phase) = self.phase.lock() else {
            return Ok(());
        };
        match *phase {
            Phase::Closed { .. } => Ok(()),
            Phase::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    self.set(&mut phase, Phase::HalfOpen { probing: true });
                    Ok(())
                } else {
                    Err(until - now)
                }
            }
            Phase::HalfOpen { probing: true } => Err(self.cool_down.min(Duration::from_secs(1))),
            Phase::HalfOpen { probing: false } => {
                *phase = Phase::HalfOpen { probing: true };
                Ok(())
            }
        }
    }

    /// Records an admitted attempt's outcome: `healthy` unless the failure
    /// says the peer is unwell.
    pub(crate) fn record(&self, healthy: bool) {
        let Ok(mut phase) = self.phase.lock() else {
            return;
        };
        let too_many = matches!(*phase, Phase::Closed { .. }) && self.rate_exceeded(healthy);
        let next = match (*phase, healthy) {
            _ if too_many => Phase::Open {
                until: Instant::now() + self.cool_down,
            },
            (Phase::Closed { failures: 0 }, true) => return,
            (_, true) => Phase::Closed { failures: 0 },
            (Phase::Closed { failures }, false) if failures.saturating_add(1) < self.threshold => {
                Phase::Closed {
                    failures: failures + 1,
                }
            }
            (_, false) => Phase::Open {
                until: Instant::now() + self.cool_down,
            },
        };
        if !matches!(next, Phase::Closed { .. })
            && let Ok(mut r) = self.recent.lock()
        {
            r.clear();
        }
        self.set(&mut phase, next);
    }

    /// Adds an outcome to the window; true when the error rate says open.
    fn rate_exceeded(&self, healthy: bool) -> bool {
        let Some(cfg) = &self.error_rate else {
            return false;
        };
        let Ok(mut r) = self.recent.lock() else {
            return false;
        };
        let now = Instant::now();
        r.push_back((now, healthy));
        let window = cfg.window.get();
        while r
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > window)
        {
            r.pop_front();
        }
        let n = r.len();
        let failed = r.iter().filter(|(_, ok)| !ok).count();
        n >= cfg.min_attempts.max(1) as usize && failed as f64 >= cfg.threshold * n as f64
    }

    /// An admitted attempt was abandoned (shutdown): let the next one probe.
    pub(crate) fn abandon(&self) {
        if let Ok(mut phase) = self.phase.lock()
            && *phase == (Phase::HalfOpen { probing: true })
        {
            *phase = Phase::HalfOpen { probing: false };
        }
    }
}
