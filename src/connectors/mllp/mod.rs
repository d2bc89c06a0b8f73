//! MLLP (Minimal Lower Layer Protocol), the TCP framing HL7v2 travels in.
//!
//! - `client`: one client connection (used by the sender and the CLI).
//! - `codec`: framing, with a size limit and bounded memory.
//! - `source`: the listener (TCP or TLS/mTLS), pipelined, ACK after commit.
//! - `destination`: the sender, which keeps its connection and checks ACKs.
//! - `config`: both blocks' settings.

pub mod client;
pub mod codec;
pub mod config;
pub mod destination;
pub mod source;
