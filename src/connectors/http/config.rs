//! Configuration of HTTP clients (authentication) and the generic HTTP
//! destination. The doc comments here are the reference documentation of
//! these blocks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::units::HumanDuration;

fn default_token_margin() -> HumanDuration {
    HumanDuration::secs(60)
}

/// `auth:` of an HTTP or FHIR destination (one of).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// A static bearer token, read from this file (never inline).
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// OAuth2 client credentials.
    #[serde(default)]
    pub oauth2: Option<OAuth2Config>,
    /// SMART Backend Services (a signed JWT instead of a secret).
    #[serde(default)]
    pub smart: Option<SmartConfig>,
}

/// SMART Backend Services: OAuth2 client credentials with a JWT client
/// assertion signed by our key (ES384 for EC P-384, RS384 for RSA).
///
/// ```yaml
/// auth:
///   smart:
///     token_url: https://ehr.example.org/auth/token
///     client_id: caduceus
///     private_key: ../secrets/smart-key.pem   # PKCS#8 PEM
///     kid: caduceus-2026                      # the key id in our JWKS
///     scope: system/*.write
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmartConfig {
    /// The token endpoint.
    pub token_url: String,
    /// Client id (the JWT's iss and sub).
    pub client_id: String,
    /// PKCS#8 PEM private key file.
    pub private_key: PathBuf,
    /// Key id (JWT header `kid`).
    #[serde(default)]
    pub kid: Option<String>,
    /// Scope to ask for.
    #[serde(default)]
    pub scope: Option<String>,
    /// Fetch a new token this long before the current one expires. Default 60s.
    #[serde(default = "default_token_margin")]
    pub refresh_before: HumanDuration,
}

/// OAuth2 client credentials grant.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The token endpoint.
    pub token_url: String,
    /// Client id.
    pub client_id: String,
    /// File holding the client secret (never inline).
    pub client_secret_file: PathBuf,
    /// Scope to ask for.
    #[serde(default)]
    pub scope: Option<String>,
    /// Fetch a new token this long before the current one expires. Default 60s.
    #[serde(default = "default_token_margin")]
    pub refresh_before: HumanDuration,
}

/// The HTTP method of an HTTP destination.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// POST (default).
    #[default]
    Post,
    /// PUT.
    Put,
}

crate::config::channel::destination_config! {
    /// `destinations: [{type: http}]`: send each message's payload to a URL.
    ///
    /// The body is the payload as stored (an HL7 message, or the Bundle a
    /// map step made); `Content-Type` is `content_type` or guessed from the
    /// payload (JSON, XML, HL7 v2 ER7, else text). Answers mean what they
    /// mean for the FHIR destination: 2xx sent, 429/503 retried after
    /// `Retry-After`, other 5xx and network errors retried, other 4xx dead.
    ///
    /// ```yaml
    /// - name: billing
    ///   type: http
    ///   url: https://billing.example.org/inbound
    ///   method: POST
    ///   tls: { ca: ../certs/billing-ca.pem }
    ///   auth: { bearer_token_file: ../secrets/billing-token }
    ///   headers: { X-Source: caduceus }
    /// ```
    pub struct HttpDestinationConfig {
        /// Where to send it.
        pub url: String,
        /// POST or PUT. Default POST.
        #[serde(default)]
        pub method: HttpMethod,
        /// Content-Type; default: guessed from the payload.
        #[serde(default)]
        pub content_type: Option<String>,
        /// How to authenticate. Default: none.
        #[serde(default)]
        pub auth: Option<AuthConfig>,
        /// TLS for `https` (required for it: no implicit trust store).
        #[serde(default)]
        pub tls: Option<crate::tls::TlsClientConfig>,
        /// Extra request headers.
        #[serde(default)]
        pub headers: BTreeMap<String, String>,
    }
}
