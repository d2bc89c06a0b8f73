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

/// `source: {type: fhir}`: FHIR R4 REST intake.
///
/// ```yaml
/// source:
///   type: fhir
///   listen: http                 # the server's HTTP listener (routes under /fhir),
///                                # or an address of the channel's own: 0.0.0.0:8443
///   tls:                         # with an own address: HTTPS, mutual with client_ca
///     cert: ../certs/dev/server.pem
///     key: ../certs/dev/server.key
///     client_ca: ../certs/dev/ca.pem
///   resources: [Patient, Encounter, Bundle]   # accepted types; default: every resource type
///   partners:                    # who may call this channel, by bearer token
///     - name: ehr-a
///       token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
///   max_body_size: 10MiB         # larger: 413, nothing stored
///   idempotency_window: 24h      # a repeated request (same Idempotency-Key, Bundle.id,
///                                # MessageHeader.id or If-None-Exist) gets the first answer
///   rate_limit: { per_second: 50, burst: 20 }   # over it: 429 with Retry-After
///   mode: async                  # or sync: return the `relay` destination's answer
///   relay: payer                 # sync: which destination (default: the first fhir/http one)
///   sync_timeout: 30s            # sync: then 504, the delivery goes on
/// ```
///
/// Tokens are stored as their SHA-256 (hex): `printf %s "$TOKEN" | sha256sum`.
/// On a channel's own TLS listener a partner may instead be known by its
/// client certificate (`certificate:` matches the subject CN or a DNS SAN).
/// A request with no credentials, or ones no partner has, gets 401; a
/// partner calling a channel that does not list it gets 403.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirSourceConfig {
    /// `http` (the server's HTTP listener), or an address of the channel's
    /// own (`0.0.0.0:8443`); `--listen CHANNEL=ADDR` overrides it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// HTTPS on the channel's own listener; with `client_ca`, clients must
    /// present a certificate from that CA.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsServerConfig>,
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
    /// Requests over this rate get 429 with `Retry-After` (nothing stored).
    /// Default: no limit.
    #[serde(default)]
    pub rate_limit: Option<crate::pipeline::layers::rate_limit::RateLimitConfig>,
    /// `async` (default): answer 202 once stored. `sync`: wait for the
    /// `relay` destination's answer and return it (status, body,
    /// Location); after `sync_timeout`, 504 with an OperationOutcome naming
    /// the stored message, whose delivery goes on.
    #[serde(default)]
    pub mode: IntakeMode,
    /// The destination whose answer `mode: sync` returns. Default: the
    /// channel's first `fhir` or `http` destination.
    #[serde(default)]
    pub relay: Option<String>,
    /// How long `mode: sync` waits. Default 30s.
    #[serde(default = "default_sync_timeout")]
    pub sync_timeout: HumanDuration,
}

fn default_sync_timeout() -> HumanDuration {
    HumanDuration::secs(30)
}

/// How a FHIR intake answers.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IntakeMode {
    /// 202 Accepted once stored.
    #[default]
    Async,
    /// The destination's own answer.
    Sync,
}

/// One partner of a FHIR channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// Its name (recorded as the message's sender).
    pub name: String,
    /// SHA-256 of its bearer token, 64 hex digits.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Its client certificate's subject CN or a DNS SAN (own TLS listener only).
    #[serde(default)]
    pub certificate: Option<String>,
}

crate::config::channel::destination_config! {
    /// `destinations: [{type: fhir}]`: deliver to a FHIR R4 server.
    ///
    /// What is sent depends on the payload: a transaction or batch Bundle
    /// is POSTed to the base URL; a message Bundle to `$process-message`;
    /// a resource with an id is PUT to `{type}/{id}` (an update: sending it
    /// again is harmless); one without an id is POSTed to `{type}` with
    /// `If-None-Exist: identifier=...` when it has an identifier
    /// (conditional create), so a redelivery does not duplicate it. Every
    /// request carries `Idempotency-Key`.
    ///
    /// 2xx → sent (the status, Location and OperationOutcome warnings are
    /// kept); 429/503 → retried after `Retry-After`; other 5xx, timeouts,
    /// connection errors → retried with backoff; 401 → the token is fetched
    /// again once; other 4xx → dead, with the server's OperationOutcome in
    /// `caduceus messages show`.
    ///
    /// ```yaml
    /// - name: hapi
    ///   type: fhir
    ///   base_url: https://fhir.example.org/r4
    ///   auth:                        # optional
    ///     oauth2:                    # client credentials
    ///       token_url: https://auth.example.org/token
    ///       client_id: caduceus
    ///       client_secret_file: ../secrets/hapi-client-secret
    ///       scope: system/*.write
    ///   tls: { ca: ../certs/partner-ca.pem, cert: ..., key: ... }   # pinned CA, client certificate
    ///   headers: { X-Tenant: north }
    /// ```
    pub struct FhirDestinationConfig {
        /// The server's base URL (`https://host/fhir/r4`).
        pub base_url: String,
        /// How to authenticate. Default: none.
        #[serde(default)]
        pub auth: Option<crate::connectors::http::config::AuthConfig>,
        /// TLS for `https` (a CA to pin, a client certificate). Without it
        /// an `https` base URL is refused at `check`: partner connections
        /// have no implicit trust store.
        #[serde(default)]
        pub tls: Option<crate::tls::TlsClientConfig>,
        /// Extra request headers.
        #[serde(default)]
        pub headers: std::collections::BTreeMap<String, String>,
    }
}
