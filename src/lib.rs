//! Caduceus: a healthcare integration gateway.
//!
//! The engine: sources receive HL7v2 (over MLLP or as files), the store
//! commits every message before it is acknowledged, channels filter and
//! route it, and one durable queue, worker and tower stack per destination
//! delivers it. `DESIGN.md` is the map; each module's doc says what it owns.

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod connectors;
pub mod mapping;
pub mod pipeline;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
