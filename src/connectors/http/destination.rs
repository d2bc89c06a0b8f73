//! The generic HTTP destination: the payload, as stored, sent to one URL.
//!
//! Owns choosing the `Content-Type` (configured, else guessed from the
//! payload: JSON, XML, HL7 v2 ER7, text) and the request's headers; the
//! exchange and what the answer means are the shared [`HttpClient`]'s.

use super::client::{HttpClient, Outgoing};
use super::config::{HttpDestinationConfig, HttpMethod};
use crate::pipeline::delivery::{Deliver, Delivery, DeliveryError, Receipt};

/// The Content-Type a payload most likely is.
pub fn guess_content_type(payload: &[u8]) -> &'static str {
    let body = payload
        .strip_prefix(&[0xEF, 0xBB, 0xBF][..])
        .unwrap_or(payload);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => "application/json",
        Some(b'<') => "application/xml",
        _ if body.starts_with(b"MSH") || body.starts_with(b"FHS") || body.starts_with(b"BHS") => {
            "x-application/hl7-v2+er7"
        }
        _ => "text/plain; charset=utf-8",
    }
}

/// The HTTP destination connector (a tower service).
#[derive(Clone)]
pub struct HttpSender {
    /// The HTTP client (public to the crate so a channel can attach a relay).
    pub(crate) client: HttpClient,
    url: String,
    put: bool,
    content_type: Option<String>,
}

impl HttpSender {
    /// Builds it (reads secret files now; opens nothing).
    pub fn new(
        cfg: &HttpDestinationConfig,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
        base_dir: &std::path::Path,
    ) -> Result<HttpSender, String> {
        let client = HttpClient::new(
            &cfg.url,
            cfg.auth.as_ref(),
            tls,
            &cfg.headers,
            cfg.timeout.get(),
            base_dir,
        )
        .map_err(|e| format!("url {e}"))?;
        Ok(HttpSender {
            client,
            url: cfg.url.clone(),
            put: cfg.method == HttpMethod::Put,
            content_type: cfg.content_type.clone(),
        })
    }
}

impl Deliver for HttpSender {
    async fn deliver(&self, d: Delivery) -> Result<Receipt, DeliveryError> {
        let ct = self
            .content_type
            .as_deref()
            .unwrap_or_else(|| guess_content_type(&d.task.payload));
        self.client
            .deliver(
                &Outgoing {
                    put: self.put,
                    url: &self.url,
                    content_type: ct,
                    accept: None,
                    headers: vec![("Idempotency-Key", d.idempotency_key.to_string())],
                    body: d.task.payload.clone(),
                },
                &d,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_content_types() {
        assert_eq!(guess_content_type(b" {\"a\":1}"), "application/json");
        assert_eq!(guess_content_type(b"<x/>"), "application/xml");
        assert_eq!(
            guess_content_type(b"\xEF\xBB\xBFMSH|^~\\&|"),
            "x-application/hl7-v2+er7"
        );
        assert_eq!(guess_content_type(b"hello"), "text/plain; charset=utf-8");
    }
}
