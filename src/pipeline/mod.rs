//! Channels: source → intake (parse, validate, filter, route) → store →
//! one durable queue and worker per destination → the destination's tower
//! stack.
//!
//! - `channel`: compiling a channel file into a plan (what `check` runs).
//! - `intake`: the HL7 decision and acknowledgment every source shares.
//! - `filter`: compiled `filters:`/`reject:` conditions.
//! - `processor`: running steps for `received` messages (after the ACK, or
//!   when an operator reprocesses one).
//! - `steps`: a channel's `steps:` (the `map` step), checked and run.
//! - `worker`: a destination's queue loop.
//! - `delivery`: what stacks carry, and the `RetryLogic` trait.
//! - `layers`: one tower middleware per folder, and `build_stack`.

pub mod channel;
pub mod delivery;
pub mod filter;
pub mod intake;
pub mod layers;
pub mod processor;
pub mod steps;
pub mod worker;
