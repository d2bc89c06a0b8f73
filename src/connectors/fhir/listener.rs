//! A FHIR channel's own listener: HTTP or HTTPS (mutual with `client_ca`),
//! serving the `/fhir` routes for that channel only.
//!
//! Owns the accept loop (a bounded TLS handshake time, one task per
//! connection, HTTP/1.1 keep-alive) and reading the client certificate's
//! identity (its DNS subject alternative names and subject CN), which the
//! routes see as a [`PeerIdentity`] request extension and match against the
//! channel's `certificate:` partners. The certificate itself was verified
//! by rustls against the channel's `client_ca`; nothing here trusts
//! anything rustls did not.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::tls::reload::ReloadingServerConfig;

/// Who the client certificate says the caller is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject CN, when there is one.
    pub common_name: Option<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
}

impl PeerIdentity {
    /// True when `name` is the CN or one of the DNS names.
    pub fn is(&self, name: &str) -> bool {
        self.common_name.as_deref() == Some(name) || self.dns_names.iter().any(|n| n == name)
    }

    /// From a verified end-entity certificate (DER).
    pub fn from_der(der: &rustls::pki_types::CertificateDer<'_>) -> PeerIdentity {
        let Ok(cert) = webpki::EndEntityCert::try_from(der) else {
            return PeerIdentity::default();
        };
        PeerIdentity {
            common_name: common_name(cert.subject()),
            dns_names: cert.valid_dns_names().map(String::from).collect(),
        }
    }
}

/// The CN (OID 2.5.4.3) of a DER-encoded Name: the value after the OID's
/// encoding `06 03 55 04 03`, a UTF8String, PrintableString or IA5String.
/// (A full X.509 parser is not needed for one attribute, and the bytes
/// come from a certificate rustls has already verified.)
fn common_name(subject: &[u8]) -> Option<String> {
    const OID: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x03];
    let at = subject.windows(OID.len()).position(|w| w == OID)? + OID.len();
    let tag = *subject.get(at)?;
    if !matches!(tag, 0x0c | 0x13 | 0x16) {
        return None;
    }
    let (len, start) = match *subject.get(at + 1)? {
        n if n < 0x80 => (usize::from(n), at + 2),
        0x81 => (usize::from(*subject.get(at + 2)?), at + 3),
        _ => return None,
    };
    let bytes = subject.get(start..start + len)?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// Serves `router` on `listener` until `stop`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ReloadingServerConfig>>,
    router: Router,
    stop: CancellationToken,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "FHIR listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        // The certificate as of now (it reloads when its files change).
        let acceptor = tls.as_ref().map(|t| TlsAcceptor::from(t.current()));
        let router = router.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            match acceptor {
                None => {
                    let svc = TowerToHyperService::new(router.map_request(
                        |r: axum::http::Request<hyper::body::Incoming>| {
                            r.map(axum::body::Body::new)
                        },
                    ));
                    connection(TokioIo::new(tcp), svc, stop).await;
                }
                Some(a) => {
                    let tls = match tokio::time::timeout(Duration::from_secs(10), a.accept(tcp))
                        .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "FHIR listener: TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "FHIR listener: TLS handshake timed out");
                            return;
                        }
                    };
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(PeerIdentity::from_der);
                    let svc = TowerToHyperService::new(router.map_request(
                        move |r: axum::http::Request<hyper::body::Incoming>| {
                            let mut r = r.map(axum::body::Body::new);
                            if let Some(id) = &identity {
                                r.extensions_mut().insert(id.clone());
                            }
                            r
                        },
                    ));
                    connection(TokioIo::new(tls), svc, stop).await;
                }
            }
        });
    }
}

async fn connection<I, S>(io: I, svc: S, stop: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<
            axum::http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "FHIR connection ended with an error");
            }
        }
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_identity_of_a_dev_client_certificate() {
        let ca = crate::tls::dev::DevCa::new("test CA").unwrap();
        let pem = ca.client("partner-a").unwrap();
        let bytes = pem_der(&pem.cert);
        let der = rustls::pki_types::CertificateDer::from_slice(&bytes);
        let id = PeerIdentity::from_der(&der);
        assert_eq!(id.common_name.as_deref(), Some("partner-a"));
        assert!(id.is("partner-a") && !id.is("partner-b"));
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }
}
