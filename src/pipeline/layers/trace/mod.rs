//! Tracing for deliveries: one span per delivery with channel, destination,
//! delivery and message ids and the attempt number. Never the payload.
//!
//! Owns the span only; metrics of outcomes are recorded by the worker,
//! which knows the final outcome.

mod layer;
mod service;

pub use layer::TraceLayer;
pub use service::Trace;
