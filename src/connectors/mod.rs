//! Transports. One folder per transport, each the same shape: `mod.rs`
//! (what it is), `config.rs` (typed config; its doc comments are its
//! documentation), `source.rs` and/or `destination.rs`.

pub mod fhir;
pub mod file;
pub mod http;
pub mod mllp;
