//! The FHIR intake decision: from a request's body to what is stored and
//! what the client is told.
//!
//! Owns reading the body (JSON or XML, by content type), checking it
//! against the route (the resource type in the URL, the id of a PUT, a
//! message Bundle for `$process-message`), validating it against R4, and
//! naming it (type, idempotency key). Pure: no store, no I/O, so `check`
//! and the processor (reprocess) use the same rules as the HTTP handler.
//!
//! | outcome | stored as | status |
//! |---|---|---|
//! | not JSON/XML, or not a resource | `error` | 400 |
//! | resource type or id does not match the route | `error` | 400 |
//! | parseable but not valid R4 | `error` | 422 |
//! | a type the channel does not accept | nothing | 404 (routing) |
//! | accepted | `processed`, one delivery per destination | 202 |

use std::sync::Arc;

use fhir::tree::Json;
use serde_json::Value;

use crate::store::{NewDelivery, RouteOutcome};

/// A body's syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// `application/fhir+json`
    Json,
    /// `application/fhir+xml`
    Xml,
}

impl Syntax {
    /// From a Content-Type (parameters ignored); `None` when unsupported.
    pub fn from_content_type(ct: &str) -> Option<Syntax> {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/fhir+json" | "application/json" | "application/json+fhir" => {
                Some(Syntax::Json)
            }
            "application/fhir+xml" | "application/xml" | "text/xml" | "application/xml+fhir" => {
                Some(Syntax::Xml)
            }
            _ => None,
        }
    }

    /// From `_format` (`json`, `xml`, or a mime type).
    pub fn from_format(f: &str) -> Option<Syntax> {
        match f.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Syntax::Json),
            "xml" => Some(Syntax::Xml),
            other => Syntax::from_content_type(other),
        }
    }

    /// By the first byte that is not white space (stored messages carry no
    /// content type).
    pub fn sniff(body: &[u8]) -> Syntax {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => Syntax::Xml,
            _ => Syntax::Json,
        }
    }

    /// The Content-Type to answer with.
    pub fn mime(self) -> &'static str {
        match self {
            Syntax::Json => "application/fhir+json; charset=utf-8",
            Syntax::Xml => "application/fhir+xml; charset=utf-8",
        }
    }
}

/// What the request asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /fhir/{type}`
    Create(String),
    /// `PUT /fhir/{type}/{id}`
    Update(String, String),
    /// `POST /fhir`: a transaction or batch Bundle (or a message, or a collection).
    Bundle,
    /// `POST /fhir/$process-message`
    ProcessMessage,
}

impl Route {
    /// The resource type the route carries.
    pub fn resource_type(&self) -> &str {
        match self {
            Route::Create(t) | Route::Update(t, _) => t,
            Route::Bundle | Route::ProcessMessage => "Bundle",
        }
    }
}

/// Why a body is refused.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// 400 or 422.
    pub status: u16,
    /// The issues (location + message).
    pub issues: Vec<fhir::validate::Issue>,
}

impl Refusal {
    fn one(status: u16, code: &'static str, location: &str, message: String) -> Refusal {
        Refusal {
            status,
            issues: vec![fhir::validate::Issue {
                severity: fhir::validate::Severity::Error,
                code,
                location: location.to_string(),
                message,
            }],
        }
    }

    /// One line for the message's state reason.
    pub fn reason(&self) -> String {
        let list: Vec<String> = self.issues.iter().take(5).map(|i| i.to_string()).collect();
        let more = self.issues.len().saturating_sub(5);
        let tail = if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        };
        format!("{} {}{tail}", self.status, list.join("; "))
    }
}

/// An accepted body.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// `Patient`, or `Bundle:transaction`.
    pub message_type: String,
    /// The body's own idempotency key, when it has one: MessageHeader.id of
    /// a message, else Bundle.id.
    pub key: Option<String>,
}

/// A FHIR channel's rules, compiled.
#[derive(Debug)]
pub struct FhirPolicy {
    /// Channel name.
    pub channel: Arc<str>,
    /// Accepted resource types; empty: all.
    pub resources: Vec<String>,
    /// Destination names, in order.
    pub destinations: Vec<String>,
}

impl FhirPolicy {
    /// True when the channel takes this resource type.
    pub fn accepts(&self, resource_type: &str) -> bool {
        self.resources.is_empty() || self.resources.iter().any(|r| r == resource_type)
    }

    /// Parses and checks a body for a route.
    pub fn assess(&self, body: &[u8], syntax: Syntax, route: &Route) -> Result<Accepted, Refusal> {
        let value = parse_tree(body, syntax)?;
        let rt = value
            .get("resourceType")
            .and_then(Json::as_str)
            .unwrap_or("");
        let want = route.resource_type();
        if rt != want {
            return Err(Refusal::one(
                400,
                "invalid",
                "resourceType",
                format!("the body is a {rt}, but the request is for a {want}"),
            ));
        }
        if let Route::Update(_, id) = route {
            match value.get("id").and_then(Json::as_str) {
                Some(body_id) if body_id == id => {}
                Some(body_id) => {
                    return Err(Refusal::one(
                        400,
                        "invalid",
                        &format!("{rt}.id"),
                        format!("the body's id {body_id:?} is not the id in the URL ({id:?})"),
                    ));
                }
                None => {
                    return Err(Refusal::one(
                        400,
                        "required",
                        &format!("{rt}.id"),
                        "an update needs the resource's id in the body".into(),
                    ));
                }
            }
        }
        let bundle_type = value.get("type").and_then(Json::as_str).unwrap_or("");
        if *route == Route::ProcessMessage && bundle_type != "message" {
            return Err(Refusal::one(
                400,
                "invalid",
                "Bundle.type",
                format!("$process-message takes a message Bundle, not a {bundle_type:?} one"),
            ));
        }
        let issues = fhir::validate::validate_tree(&value);
        if fhir::validate::has_errors(&issues) {
            return Err(Refusal {
                status: 422,
                issues: issues
                    .into_iter()
                    .filter(|i| i.severity <= fhir::validate::Severity::Error)
                    .collect(),
            });
        }
        let message_type = if rt == "Bundle" {
            format!("Bundle:{bundle_type}")
        } else {
            rt.to_string()
        };
        let header_id = (bundle_type == "message")
            .then(|| {
                value
                    .pointer(&["entry", "0", "resource", "id"])
                    .and_then(Json::as_str)
            })
            .flatten();
        let key = header_id
            .or_else(|| {
                (rt == "Bundle")
                    .then(|| value.get("id").and_then(Json::as_str))
                    .flatten()
            })
            .map(String::from);
        Ok(Accepted { message_type, key })
    }

    /// One delivery per destination (the body as received).
    pub fn deliveries(&self) -> Vec<NewDelivery> {
        self.destinations
            .iter()
            .map(|d| NewDelivery {
                destination: d.clone(),
                payload: None,
            })
            .collect()
    }

    /// The decision again, for a stored message (reprocess).
    pub fn reassess(&self, body: &[u8]) -> RouteOutcome {
        let syntax = Syntax::sniff(body);
        let route = match parse_tree(body, syntax) {
            Ok(v) => match v.get("resourceType").and_then(Json::as_str) {
                Some("Bundle") => Route::Bundle,
                Some(t) => Route::Create(t.to_string()),
                None => Route::Bundle,
            },
            Err(r) => return RouteOutcome::Error { reason: r.reason() },
        };
        match self.assess(body, syntax, &route) {
            Ok(a) if !self.accepts(route.resource_type()) => RouteOutcome::Filtered {
                reason: format!("this channel does not take {}", a.message_type),
            },
            Ok(_) => RouteOutcome::Processed {
                deliveries: self.deliveries(),
                mapping_version: None,
            },
            Err(r) => RouteOutcome::Error { reason: r.reason() },
        }
    }
}

/// Reads a body as a FHIR resource (a `serde_json::Value`, for code off the
/// request path: the CLI, destinations, conversions between syntaxes).
pub fn parse(body: &[u8], syntax: Syntax) -> Result<Value, Refusal> {
    parse_tree(body, syntax).map(|t| t.to_value())
}

/// Reads a body as a FHIR resource tree; JSON strings borrow from `body`.
pub fn parse_tree(body: &[u8], syntax: Syntax) -> Result<Json<'_>, Refusal> {
    let value = match syntax {
        Syntax::Json => Json::parse(body).map_err(|e| {
            // serde's message says "at line L column C"; a FHIRPath
            // `expression` cannot point into text that is not FHIR yet.
            Refusal::one(
                400,
                "structure",
                "",
                format!("not valid JSON: {}", e.message),
            )
        })?,
        Syntax::Xml => {
            let text = std::str::from_utf8(body)
                .map_err(|e| Refusal::one(400, "structure", "", format!("not UTF-8 text: {e}")))?;
            let v = fhir::xml::from_xml(text)
                .map_err(|e| Refusal::one(400, "structure", "", format!("not FHIR XML: {e}")))?;
            Json::from_value(&v).into_owned()
        }
    };
    if value.get("resourceType").and_then(Json::as_str).is_none() {
        return Err(Refusal::one(
            400,
            "structure",
            "",
            "not a FHIR resource: a JSON object with a resourceType".into(),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FhirPolicy {
        FhirPolicy {
            channel: "t".into(),
            resources: vec!["Patient".into(), "Bundle".into()],
            destinations: vec!["out".into()],
        }
    }

    #[test]
    fn accepts_a_valid_patient_and_names_it() {
        let a = policy()
            .assess(
                br#"{"resourceType":"Patient","gender":"female"}"#,
                Syntax::Json,
                &Route::Create("Patient".into()),
            )
            .unwrap();
        assert_eq!(a.message_type, "Patient");
        assert_eq!(a.key, None);
    }

    #[test]
    fn refuses_with_the_right_status() {
        let p = policy();
        let r = p
            .assess(b"{nope", Syntax::Json, &Route::Create("Patient".into()))
            .unwrap_err();
        assert_eq!(r.status, 400);
        let r = p
            .assess(
                br#"{"resourceType":"Patient","gender":"f"}"#,
                Syntax::Json,
                &Route::Create("Patient".into()),
            )
            .unwrap_err();
        assert_eq!(r.status, 422);
        assert_eq!(r.issues[0].location, "Patient.gender");
        let r = p
            .assess(
                br#"{"resourceType":"Observation"}"#,
                Syntax::Json,
                &Route::Create("Patient".into()),
            )
            .unwrap_err();
        assert_eq!(r.status, 400);
        let r = p
            .assess(
                br#"{"resourceType":"Patient","id":"a"}"#,
                Syntax::Json,
                &Route::Update("Patient".into(), "b".into()),
            )
            .unwrap_err();
        assert_eq!(r.status, 400);
        let r = p
            .assess(
                br#"{"resourceType":"Bundle","type":"batch","entry":[]}"#,
                Syntax::Json,
                &Route::ProcessMessage,
            )
            .unwrap_err();
        assert_eq!(r.status, 400);
    }

    #[test]
    fn reads_xml() {
        let xml = br#"<Patient xmlns="http://hl7.org/fhir"><gender value="male"/></Patient>"#;
        let a = policy()
            .assess(xml, Syntax::Xml, &Route::Create("Patient".into()))
            .unwrap();
        assert_eq!(a.message_type, "Patient");
        assert_eq!(Syntax::sniff(b"  <Patient/>"), Syntax::Xml);
    }

    #[test]
    fn a_message_bundle_is_keyed_by_its_header() {
        let body = br#"{"resourceType":"Bundle","id":"b1","type":"message","timestamp":"2024-01-01T00:00:00Z",
            "entry":[{"fullUrl":"urn:uuid:8f4c9c36-5f4d-4a3e-9a53-3f1d2c4b5a6e","resource":{"resourceType":"MessageHeader","id":"mh-1",
            "eventCoding":{"code":"x"},"source":{"endpoint":"http://a"}}}]}"#;
        let a = policy()
            .assess(body, Syntax::Json, &Route::ProcessMessage)
            .unwrap();
        assert_eq!(a.key.as_deref(), Some("mh-1"));
        assert_eq!(a.message_type, "Bundle:message");
    }
}
