//! FHIR R4 REST: the intake (source) on the HTTP listener.
//!
//! - `config`: the `source: {type: fhir}` block.
//! - `intake`: the decision on a body (parse, route checks, validation).
//! - `source`: the `/fhir` routes (partners, negotiation, idempotency, answers).
//! - `destination`: the FHIR client (interactions, auth, answers classified).
//! - `listener`: a channel's own HTTP(S) listener and client-certificate identities.
//!
//! `mode: sync` and SMART Backend Services auth come next (issue 4).

pub mod config;
pub mod destination;
pub mod intake;
pub mod listener;
pub mod source;
