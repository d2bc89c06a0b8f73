//! `tls:` blocks of sources and destinations. Paths are relative to the
//! connector file that names them; keys are read from files, never inline.

use std::path::PathBuf;

use serde::Deserialize;

/// Lowest TLS version to accept.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 (default).
    #[serde(rename = "1.2")]
    #[default]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

/// TLS for a listener. With `client_ca`, clients must present a
/// certificate signed by it (mutual TLS).
///
/// ```yaml
/// tls:
///   cert: ../certs/dev/server.pem
///   key: ../certs/dev/server.key
///   client_ca: ../certs/dev/ca.pem   # mutual TLS
///   min_version: "1.2"
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Lowest version accepted. Default 1.2.
    #[serde(default)]
    pub min_version: TlsVersion,
}

/// TLS for an outbound connection. `ca` pins the partner's CA; `cert` and
/// `key` are our client identity for mutual TLS.
///
/// ```yaml
/// tls:
///   ca: ../certs/partner-ca.pem
///   cert: ../certs/dev/client-lab.pem
///   key: ../certs/dev/client-lab.key
///   server_name: lab.example.org   # default: the host of the address
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsClientConfig {
    /// PEM CA certificates the server must chain to (required: there is no
    /// implicit trust store for partner connections).
    pub ca: PathBuf,
    /// Our client certificate chain (PEM), for mutual TLS.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Our client key (PEM), with `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Name to verify on the server certificate. Default: the host part of
    /// the destination address.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Lowest version accepted. Default 1.2.
    #[serde(default)]
    pub min_version: TlsVersion,
}
