//! The FHIR client destination: one interaction per delivery, chosen from
//! the payload.
//!
//! Owns choosing the interaction (transaction/batch → `POST base`, message
//! → `POST base/$process-message`, a resource with an id → `PUT
//! base/Type/id`, without one → `POST base/Type`, conditional on its first
//! identifier so a redelivery does not duplicate it) and FHIR's content
//! types. The exchange, authentication, TLS and what an answer means are the
//! shared [`HttpClient`]'s.

use std::sync::Arc;

use serde_json::Value;

use super::config::FhirDestinationConfig;
use super::intake::Syntax;
use crate::connectors::http::client::{HttpClient, Outgoing};
use crate::pipeline::delivery::{Deliver, Delivery, DeliveryError, Receipt};

/// The request a payload becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// POST or PUT.
    pub method: &'static str,
    /// Relative to the base URL (`""`, `$process-message`, `Patient/1`).
    pub path: String,
    /// `If-None-Exist`, for a conditional create.
    pub if_none_exist: Option<String>,
    /// The payload's syntax.
    pub syntax: Syntax,
}

/// Chooses the interaction for a payload.
pub fn plan(payload: &[u8]) -> Result<Plan, DeliveryError> {
    let syntax = Syntax::sniff(payload);
    let v = super::intake::parse(payload, syntax).map_err(|r| {
        DeliveryError::permanent(format!(
            "the payload is not a FHIR resource: {}",
            r.reason()
        ))
    })?;
    let rt = v.get("resourceType").and_then(Value::as_str).unwrap_or("");
    let id = v.get("id").and_then(Value::as_str);
    let (method, path, if_none_exist) = match (rt, v.get("type").and_then(Value::as_str)) {
        ("Bundle", Some("transaction" | "batch")) => ("POST", String::new(), None),
        ("Bundle", Some("message")) => ("POST", "$process-message".to_string(), None),
        (_, _) if id.is_some() => ("PUT", format!("{rt}/{}", id.unwrap_or_default()), None),
        (_, _) => ("POST", rt.to_string(), fhir::search::identifier_query(&v)),
    };
    Ok(Plan {
        method,
        path,
        if_none_exist,
        syntax,
    })
}

/// The FHIR destination connector (a tower service).
#[derive(Clone)]
pub struct FhirSender {
    /// The HTTP client (public to the crate so a channel can attach a relay).
    pub(crate) client: HttpClient,
    base: Arc<str>,
}

impl FhirSender {
    /// Builds it (reads secret files now; opens nothing).
    pub fn new(
        cfg: &FhirDestinationConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
        base_dir: &std::path::Path,
    ) -> Result<FhirSender, String> {
        let client = HttpClient::new(
            &cfg.base_url,
            cfg.auth.as_ref(),
            tls,
            &cfg.headers,
            cfg.timeout.get(),
            base_dir,
        )
        .map_err(|e| format!("base_url {e}"))?;
        Ok(FhirSender {
            client,
            base: cfg.base_url.trim_end_matches('/').into(),
        })
    }
}

impl Deliver for FhirSender {
    async fn deliver(&self, d: Delivery) -> Result<Receipt, DeliveryError> {
        let plan = plan(&d.task.payload)?;
        let url = if plan.path.is_empty() {
            self.base.to_string()
        } else {
            format!("{}/{}", self.base, plan.path)
        };
        let ct = plan.syntax.mime();
        let mut headers = vec![("Idempotency-Key", d.idempotency_key.to_string())];
        if let Some(c) = &plan.if_none_exist {
            headers.push(("If-None-Exist", c.clone()));
        }
        self.client
            .deliver(
                &Outgoing {
                    put: plan.method == "PUT",
                    url: &url,
                    content_type: ct,
                    accept: Some(ct.split(';').next().unwrap_or(ct)),
                    headers,
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
    fn picks_the_interaction() {
        let p = plan(br#"{"resourceType":"Bundle","type":"transaction"}"#).unwrap();
        assert_eq!((p.method, p.path.as_str()), ("POST", ""));
        let p = plan(br#"{"resourceType":"Bundle","type":"message"}"#).unwrap();
        assert_eq!(p.path, "$process-message");
        let p = plan(br#"{"resourceType":"Patient","id":"p1"}"#).unwrap();
        assert_eq!((p.method, p.path.as_str()), ("PUT", "Patient/p1"));
        let p = plan(
            br#"{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2","value":"A 1"}]}"#,
        )
        .unwrap();
        assert_eq!((p.method, p.path.as_str()), ("POST", "Patient"));
        assert_eq!(
            p.if_none_exist.as_deref(),
            Some("identifier=urn%3Aoid%3A1.2|A%201")
        );
        let p = plan(br#"<Patient xmlns="http://hl7.org/fhir"><id value="x"/></Patient>"#).unwrap();
        assert_eq!((p.path.as_str(), p.syntax), ("Patient/x", Syntax::Xml));
        assert!(!plan(b"MSH|^~\\&|").unwrap_err().is_retryable());
    }
}
