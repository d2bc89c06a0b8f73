//! Development certificates (`caduceus certs dev`, and tests): a CA, a
//! `localhost` server certificate and client certificates for partners,
//! made with rcgen. Never for production; nothing here is committed.
//!
//! Owns generating and writing the PEM files only.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate and its key, PEM-encoded.
#[derive(Clone, Debug)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// The private key (PKCS#8).
    pub key: String,
}

/// A development certificate authority.
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, "Caduceus development");
    d.push(DnType::CommonName, cn);
    d
}

impl DevCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Result<DevCa, rcgen::Error> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name = dn(name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        Ok(DevCa {
            issuer: CertifiedIssuer::self_signed(p, key)?,
            key_pem,
        })
    }

    /// The CA's own certificate and key.
    pub fn pem(&self) -> Pem {
        Pem {
            cert: self.issuer.pem(),
            key: self.key_pem.clone(),
        }
    }

    fn leaf(
        &self,
        cn: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        expired: bool,
    ) -> Result<Pem, rcgen::Error> {
        let mut p =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        p.distinguished_name = dn(cn);
        p.extended_key_usages = vec![usage];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// A server certificate for these DNS names / IP addresses.
    pub fn server(&self, names: &[&str]) -> Result<Pem, rcgen::Error> {
        self.leaf(
            names.first().copied().unwrap_or("localhost"),
            names,
            ExtendedKeyUsagePurpose::ServerAuth,
            false,
        )
    }

    /// A client certificate whose subject CN (and DNS SAN) is `partner`.
    pub fn client(&self, partner: &str) -> Result<Pem, rcgen::Error> {
        self.leaf(
            partner,
            &[partner],
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        )
    }

    /// An expired client certificate, for tests.
    pub fn expired_client(&self, partner: &str) -> Result<Pem, rcgen::Error> {
        self.leaf(
            partner,
            &[partner],
            ExtendedKeyUsagePurpose::ClientAuth,
            true,
        )
    }
}

/// Writes a PEM pair as `<dir>/<stem>.pem` and `<dir>/<stem>.key` (0600).
pub fn write_pair(dir: &Path, stem: &str, pem: &Pem) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let cert = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, &pem.cert)?;
    std::fs::write(&key, &pem.key)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok((cert, key))
}

/// Writes the development set: `ca`, `server` (localhost, 127.0.0.1, ::1)
/// and `client-<partner>` for each partner. Returns the files written.
pub fn write_dev_set(dir: &Path, partners: &[String]) -> Result<Vec<PathBuf>, String> {
    let ca = DevCa::new("Caduceus development CA").map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    let mut put = |stem: &str, pem: Pem| -> Result<(), String> {
        let (c, k) = write_pair(dir, stem, &pem).map_err(|e| format!("{}: {e}", dir.display()))?;
        files.push(c);
        files.push(k);
        Ok(())
    };
    put("ca", ca.pem())?;
    put(
        "server",
        ca.server(&["localhost", "127.0.0.1", "::1"])
            .map_err(|e| e.to_string())?,
    )?;
    for p in partners {
        put(
            &format!("client-{p}"),
            ca.client(p).map_err(|e| e.to_string())?,
        )?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{TlsClientConfig, TlsServerConfig, TlsVersion, client_config, server_config};

    #[test]
    fn dev_set_builds_rustls_configs() {
        let dir = tempfile::tempdir().unwrap();
        write_dev_set(dir.path(), &["partner-a".into()]).unwrap();
        let s = TlsServerConfig {
            cert: "server.pem".into(),
            key: "server.key".into(),
            client_ca: Some("ca.pem".into()),
            min_version: TlsVersion::Tls12,
        };
        server_config(&s, dir.path()).unwrap();
        let c = TlsClientConfig {
            ca: "ca.pem".into(),
            cert: Some("client-partner-a.pem".into()),
            key: Some("client-partner-a.key".into()),
            server_name: None,
            min_version: TlsVersion::Tls13,
        };
        client_config(&c, dir.path()).unwrap();
    }
}
