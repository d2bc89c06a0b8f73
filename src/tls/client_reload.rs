//! Outbound TLS whose files reload when they change, without a restart: the
//! pinned CA a destination verifies its partner with, and the client
//! certificate and key it presents.
//!
//! Owns the current verifier and client identity of one destination. The
//! `ClientConfig` built once at start-up asks this module on every
//! handshake (a custom `ServerCertVerifier` and `ResolvesClientCert`), so
//! HTTP clients and MLLP senders that hold that config pick up new files
//! without being rebuilt. The files are looked at (metadata only) at most
//! once a second, on a handshake; a change is loaded once the files have
//! been still for a second (a certificate and its key are usually replaced
//! one after the other); that one load reads the PEM files right there,
//! synchronously (a few kilobytes, once per change). A change that does not load is logged and the
//! last good files keep being used. It does not own listener certificates
//! (`tls::reload`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::{
    Stamp, TlsClientConfig, TlsError, err, load_certs, load_key, provider, resolve, roots, stamp,
    versions,
};

/// How often, at most, the files are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What the files hold, loaded.
struct Loaded {
    verifier: Arc<WebPkiServerVerifier>,
    identity: Option<Arc<CertifiedKey>>,
}

struct Watch {
    seen: Stamp,
    looked: Instant,
    /// A stamp that failed to load (logged once).
    failed: Option<Stamp>,
}

/// One destination's outbound TLS files.
pub struct ClientFiles {
    files: Vec<PathBuf>,
    current: RwLock<Arc<Loaded>>,
    watch: Mutex<Watch>,
}

impl std::fmt::Debug for ClientFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFiles")
            .field("files", &self.files)
            .finish()
    }
}

impl ClientFiles {
    /// Loads the files now (errors name the file) and builds the config that
    /// follows them.
    pub fn config(cfg: &TlsClientConfig, base: &Path) -> Result<Arc<ClientConfig>, TlsError> {
        let mut files = vec![resolve(base, &cfg.ca)];
        match (&cfg.cert, &cfg.key) {
            (Some(c), Some(k)) => {
                files.push(resolve(base, c));
                files.push(resolve(base, k));
            }
            (None, None) => {}
            _ => {
                return Err(err(
                    &files[0],
                    "tls: `cert` and `key` go together; give both or neither",
                ));
            }
        }
        let loaded = load(&files)?;
        let me = Arc::new(ClientFiles {
            files: files.clone(),
            current: RwLock::new(Arc::new(loaded)),
            watch: Mutex::new(Watch {
                seen: stamp(&files),
                looked: Instant::now(),
                failed: None,
            }),
        });
        let dynamic = Arc::new(Dynamic(me));
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions(cfg.min_version))
            .map_err(|e| err(&files[0], e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(dynamic.clone());
        let config = if files.len() > 1 {
            builder.with_client_cert_resolver(dynamic)
        } else {
            builder.with_no_client_auth()
        };
        Ok(Arc::new(config))
    }

    /// The loaded files, reloaded first when they changed and are still.
    fn current(&self) -> Arc<Loaded> {
        self.look();
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn look(&self) {
        let Ok(mut w) = self.watch.try_lock() else {
            return; // another handshake is looking
        };
        if w.looked.elapsed() < LOOK_EVERY {
            return;
        }
        w.looked = Instant::now();
        let now = stamp(&self.files);
        if now == w.seen || w.failed.as_ref() == Some(&now) {
            return;
        }
        // Still for a second: a certificate and its key written one after the other.
        let recent = now.iter().flatten().any(|(_, m)| {
            SystemTime::now()
                .duration_since(*m)
                .is_ok_and(|age| age < LOOK_EVERY)
        });
        if recent {
            return;
        }
        match load(&self.files) {
            Ok(l) => {
                match self.current.write() {
                    Ok(mut g) => *g = Arc::new(l),
                    Err(p) => *p.into_inner() = Arc::new(l),
                }
                w.seen = now;
                w.failed = None;
                tracing::info!(ca = %self.files[0].display(), "outbound TLS files reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "outbound TLS files changed but do not load; the previous ones are kept");
                w.failed = Some(now);
            }
        }
    }
}

/// `files`: the CA, then the certificate and key when there are.
fn load(files: &[PathBuf]) -> Result<Loaded, TlsError> {
    let ca = &files[0];
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
        .build()
        .map_err(|e| err(ca, format!("cannot use this CA: {e}")))?;
    let identity = match files {
        [_, cert, key] => {
            let ck = CertifiedKey::from_der(load_certs(cert)?, load_key(key)?, &provider())
                .map_err(|e| {
                    err(
                        key,
                        format!("client certificate and key do not go together: {e}"),
                    )
                })?;
            Some(Arc::new(ck))
        }
        _ => None,
    };
    Ok(Loaded { verifier, identity })
}

/// What rustls calls on each handshake.
#[derive(Debug)]
struct Dynamic(Arc<ClientFiles>);

impl ServerCertVerifier for Dynamic {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.current().verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .current()
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .current()
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.current().verifier.supported_verify_schemes()
    }
}

impl ResolvesClientCert for Dynamic {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0.current().identity.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}
