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

mod layer;
mod service;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::Semaphore;

pub use layer::ConcurrencyLimitLayer;
pub use service::ConcurrencyLimit;

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
