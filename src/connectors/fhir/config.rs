//! Configuration of the FHIR source (intake). The doc comments here are the
//! reference documentation of this block.

use serde::Deserialize;

use crate::config::units::{ByteSize, HumanDuration};

fn default_max_body() -> ByteSize {
    ByteSize::mib(10)
}
fn default_idempotency() -> HumanDuration {
    HumanDuration::secs(24 * 3600)
}
fn default_listen() -> String {
    "http".into()
}

/// `source: {type: fhir}`: FHIR R4 REST intake on the HTTP listener.
///
/// ```yaml
/// source:
///   type: fhir
///   listen: http                 # the server's HTTP listener (routes under /fhir)
///   resources: [Patient, Encounter, Bundle]   # accepted types; default: every resource type
///   partners:                    # who may call this channel, by bearer token
///     - name: ehr-a
///       token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
///   max_body_size: 10MiB         # larger: 413, nothing stored
///   idempotency_window: 24h      # a repeated request (same Idempotency-Key, Bundle.id,
///                                # MessageHeader.id or If-None-Exist) gets the first answer
/// ```
///
/// Tokens are stored as their SHA-256 (hex): `printf %s "$TOKEN" | sha256sum`.
/// A request with no token, or one no partner has, gets 401; a partner
/// calling a channel that does not list it gets 403.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirSourceConfig {
    /// The listener: `http` (the only one for now).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Resource types this channel accepts (`Bundle` for `POST /fhir` and
    /// `$process-message`). Empty: every resource type.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Partners allowed to call it.
    #[serde(default)]
    pub partners: Vec<PartnerConfig>,
    /// Accept requests with no token (development only). Default false.
    #[serde(default)]
    pub allow_anonymous: bool,
    /// Largest body accepted. Default 10MiB.
    #[serde(default = "default_max_body")]
    pub max_body_size: ByteSize,
    /// How long a repeated request is answered with the first one's answer.
    /// Default 24h.
    #[serde(default = "default_idempotency")]
    pub idempotency_window: HumanDuration,
}

/// One partner of a FHIR channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// Its name (recorded as the message's sender).
    pub name: String,
    /// SHA-256 of its bearer token, 64 hex digits.
    pub token_sha256: String,
}
