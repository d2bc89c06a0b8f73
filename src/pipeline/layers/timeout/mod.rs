//! Per-attempt timeout: an attempt that has not finished in time fails with
//! [`ErrorKind::Timeout`](crate::pipeline::delivery::ErrorKind::Timeout),
//! which is retryable and counts against the circuit breaker.
//!
//! Owns only the deadline; what "finished" means is the connector's (for
//! MLLP: the ACK arrived).

mod layer;
mod service;

pub use layer::TimeoutLayer;
pub use service::Timeout;
