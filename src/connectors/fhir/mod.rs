//! FHIR R4 REST: the intake (source) on the HTTP listener.
//!
//! - `config`: the `source: {type: fhir}` block.
//! - `intake`: the decision on a body (parse, route checks, validation).
//! - `source`: the `/fhir` routes (partners, negotiation, idempotency, answers).
//!
//! The FHIR destination (client), OAuth2 and a channel's own TLS listener
//! come next (issue 4); they are not here yet.

pub mod config;
pub mod intake;
pub mod source;
