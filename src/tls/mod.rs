//! rustls configurations for listeners and outbound connections, per
//! connector, from PEM files.
//!
//! Owns reading certificates and keys and building `ServerConfig` /
//! `ClientConfig` (aws-lc-rs provider, TLS 1.2+). Mutual TLS: a listener
//! with `client_ca` requires and verifies client certificates; a
//! destination with `cert`/`key` presents one. It does not own which
//! partner a certificate belongs to (the intake does); reloading on change
//! is `reload` (listeners) and `client_reload` (destinations).

pub mod client_reload;
pub mod config;
pub mod dev;
pub mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use config::{TlsClientConfig, TlsServerConfig, TlsVersion};

/// A certificate or key file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct TlsError {
    /// The file, or the connector file for settings errors.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

pub(crate) fn err(path: &Path, message: impl Into<String>) -> TlsError {
    TlsError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

pub(crate) fn versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    match min {
        TlsVersion::Tls12 => rustls::ALL_VERSIONS,
        TlsVersion::Tls13 => TLS13_ONLY,
    }
}

/// Reads a PEM certificate chain (leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data =
        std::fs::read(path).map_err(|e| err(path, format!("cannot read certificate file: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err(path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// Reads a PEM private key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = std::fs::read(path).map_err(|e| err(path, format!("cannot read key file: {e}")))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| {
        err(
            path,
            format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        )
    })
}

pub(crate) fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in load_certs(path)? {
        store
            .add(cert)
            .map_err(|e| err(path, format!("CA certificate rejected: {e}")))?;
    }
    Ok(store)
}

/// Resolves a path relative to the connector file's folder.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Builds a listener's TLS config; `base` is the connector file's folder.
pub fn server_config(cfg: &TlsServerConfig, base: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_path = resolve(base, &cfg.cert);
    let key_path = resolve(base, &cfg.key);
    let certs = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(cfg.min_version))
        .map_err(|e| err(&cert_path, e.to_string()))?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let ca_path = resolve(base, ca);
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&ca_path)?), provider())
                    .build()
                    .map_err(|e| err(&ca_path, format!("cannot build the client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| {
        err(
            &key_path,
            format!("certificate and key do not go together: {e}"),
        )
    })?;
    Ok(Arc::new(config))
}

/// What a watcher compares to see that files changed: each file's size and
/// modification time (`None` while it is missing).
pub(crate) type Stamp = Vec<Option<(u64, std::time::SystemTime)>>;

/// The [`Stamp`] of `files` now.
pub(crate) fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        })
        .collect()
}

/// Builds an outbound TLS config; `base` is the connector file's folder.
/// Its pinned CA and client certificate follow their files
/// ([`client_reload`]).
pub fn client_config(cfg: &TlsClientConfig, base: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    client_reload::ClientFiles::config(cfg, base)
}

/// The name to verify on a server's certificate.
pub fn server_name(cfg: &TlsClientConfig, address: &str) -> Result<ServerName<'static>, String> {
    let host = match &cfg.server_name {
        Some(n) => n.clone(),
        None => match address.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
            None => address.to_string(),
        },
    };
    ServerName::try_from(host.clone()).map_err(|e| format!("invalid TLS server name {host:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_broken_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TlsServerConfig {
            cert: "nope.pem".into(),
            key: "nope.key".into(),
            client_ca: None,
            min_version: TlsVersion::Tls12,
        };
        let e = server_config(&cfg, dir.path()).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        std::fs::write(dir.path().join("bad.pem"), "hello").unwrap();
        let e = load_certs(&dir.path().join("bad.pem")).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    }

    #[test]
    fn server_names() {
        let cfg = TlsClientConfig {
            ca: "ca.pem".into(),
            cert: None,
            key: None,
            server_name: None,
            min_version: TlsVersion::Tls12,
        };
        assert!(server_name(&cfg, "localhost:2575").is_ok());
        assert!(server_name(&cfg, "127.0.0.1:2575").is_ok());
    }
}
