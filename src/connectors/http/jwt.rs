//! Signed JWT client assertions for SMART Backend Services (RFC 7523): the
//! key, the algorithm (ES384 for an EC P-384 key, RS384 for RSA), and a
//! fresh assertion per token request.
//!
//! Owns reading the PKCS#8 PEM key once (at load, so `check` reports a bad
//! one) and signing with aws-lc-rs (already linked for rustls); the claims
//! are the ones SMART requires: `iss` = `sub` = the client id, `aud` = the
//! token URL, `exp` at most five minutes ahead, a random `jti`.

use std::path::Path;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

enum Key {
    Es384(EcdsaKeyPair),
    Rs384(RsaKeyPair),
}

/// A client's signing key.
pub struct JwtSigner {
    key: Key,
    kid: Option<String>,
    rng: SystemRandom,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("alg", &self.alg())
            .field("kid", &self.kid)
            .finish()
    }
}

/// base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        if chunk.len() > 1 {
            out.push(T[(n >> 6) as usize & 63] as char);
        }
        if chunk.len() > 2 {
            out.push(T[n as usize & 63] as char);
        }
    }
    out
}

impl JwtSigner {
    /// Reads a PKCS#8 PEM key (EC P-384 or RSA).
    pub fn from_pem_file(path: &Path, kid: Option<String>) -> Result<JwtSigner, String> {
        let der = PrivateKeyDer::from_pem_file(path)
            .map_err(|e| format!("cannot read the private key {}: {e}", path.display()))?;
        let PrivateKeyDer::Pkcs8(p8) = der else {
            return Err(format!(
                "{}: the key must be PKCS#8 (BEGIN PRIVATE KEY)",
                path.display()
            ));
        };
        let bytes = p8.secret_pkcs8_der();
        let key = if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, bytes)
        {
            Key::Es384(k)
        } else if let Ok(k) = RsaKeyPair::from_pkcs8(bytes) {
            Key::Rs384(k)
        } else {
            return Err(format!(
                "{}: not an EC P-384 or RSA key (SMART Backend Services signs with ES384 or RS384)",
                path.display()
            ));
        };
        Ok(JwtSigner {
            key,
            kid,
            rng: SystemRandom::new(),
        })
    }

    /// `ES384` or `RS384`.
    pub fn alg(&self) -> &'static str {
        match self.key {
            Key::Es384(_) => "ES384",
            Key::Rs384(_) => "RS384",
        }
    }

    /// The public key (for tests and JWKS): uncompressed EC point or RSA DER.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            Key::Es384(k) => k.public_key().as_ref().to_vec(),
            Key::Rs384(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// A client assertion for `client_id` at `token_url`, valid for 5 minutes.
    pub fn assertion(&self, client_id: &str, token_url: &str) -> Result<String, String> {
        let now = jiff::Timestamp::now().as_second();
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| "no randomness for the jti".to_string())?;
        let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
        let mut header = serde_json::json!({"alg": self.alg(), "typ": "JWT"});
        if let Some(k) = &self.kid {
            header["kid"] = k.clone().into();
        }
        let claims = serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": token_url,
            "exp": now + 300, "iat": now, "jti": jti,
        });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = match &self.key {
            Key::Es384(k) => k
                .sign(&self.rng, input.as_bytes())
                .map_err(|_| "ES384 signing failed".to_string())?
                .as_ref()
                .to_vec(),
            Key::Rs384(k) => {
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA384,
                    &self.rng,
                    input.as_bytes(),
                    &mut out,
                )
                .map_err(|_| "RS384 signing failed".to_string())?;
                out
            }
        };
        Ok(format!("{input}.{}", b64url(&sig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_an_es384_assertion_that_verifies() {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, kp.serialize_pem()).unwrap();
        let s = JwtSigner::from_pem_file(&path, Some("k1".into())).unwrap();
        assert_eq!(s.alg(), "ES384");
        let jwt = s.assertion("me", "https://auth/token").unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let sig = b64url_decode(parts[2]);
        let key =
            signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, s.public_key());
        key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
        assert_eq!(claims["iss"], "me");
        assert_eq!(claims["aud"], "https://auth/token");
        let header: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
        assert_eq!(header["kid"], "k1");
    }

    fn b64url_decode(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        let mut out = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes() {
            acc = (acc << 6) | u32::from(val(c));
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}
