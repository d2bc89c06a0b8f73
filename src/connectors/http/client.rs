//! The HTTP client every HTTP-speaking destination shares (FHIR, generic
//! HTTP): one reqwest client per destination over the connector's own
//! rustls config (pinned CA, client certificate; never a system trust
//! store), its headers, its authentication (a static bearer token; OAuth2
//! client credentials with a secret, or with a signed JWT assertion for
//! SMART Backend Services; tokens cached until shortly before expiry and
//! fetched again once on a 401), and [`HttpRetryLogic`], what an HTTP
//! answer means for a delivery. It does not decide what to send (see each
//! destination).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::config::AuthConfig;
use super::jwt::JwtSigner;
use super::relay::{RelayHub, Relayed};
use crate::pipeline::delivery::{DeliveryError, ErrorKind, Receipt, RetryLogic, Verdict};

/// An HTTP answer, as the retry logic reads it.
#[derive(Clone, Debug)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// `Retry-After`, when given.
    pub retry_after: Option<Duration>,
    /// `Location`, when given.
    pub location: Option<String>,
    /// A summary of the body's OperationOutcome (or transaction-response), no PHI.
    pub summary: Option<String>,
    /// Entries of a batch-response the server refused (non-2xx), under a 2xx.
    pub failed_entries: usize,
    /// Content-Type, when given.
    pub content_type: Option<String>,
    /// The body (kept only for relaying; never logged).
    pub body: Bytes,
}

/// How HTTP answers map to delivery outcomes.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpRetryLogic;

impl RetryLogic for HttpRetryLogic {
    type Answer = HttpAnswer;

    fn classify(&self, a: &HttpAnswer) -> Verdict {
        let said = a
            .summary
            .as_deref()
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        match a.status {
            200..=299 => {
                if a.failed_entries > 0 {
                    // Delivered (the server took the batch), but not every
                    // entry: say so where engineers look, not only in the detail.
                    tracing::warn!(
                        status = a.status,
                        "the server refused some entries of a batch{said}"
                    );
                }
                Verdict::Delivered(Receipt {
                    detail: Some(format!(
                        "{}{}{said}",
                        a.status,
                        a.location
                            .as_deref()
                            .map(|l| format!(" {l}"))
                            .unwrap_or_default()
                    )),
                    attempts: 0,
                })
            }
            429 | 503 => Verdict::Failed(DeliveryError {
                retry_after: a.retry_after,
                ..DeliveryError::retryable(format!("server answered {}{said}", a.status))
            }),
            500..=599 | 408 => Verdict::Failed(DeliveryError::retryable(format!(
                "server answered {}{said}",
                a.status
            ))),
            _ => Verdict::Failed(DeliveryError::permanent(format!(
                "server refused it: {}{said}",
                a.status
            ))),
        }
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let t = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let d = t.duration_since(jiff::Timestamp::now());
    Some(Duration::from_secs(d.as_secs().max(0) as u64))
}

/// What an answer's body says, in one line: an OperationOutcome's issues,
/// or a transaction-response's entry statuses. Diagnostics are the
/// server's words; resource content is never copied.
pub fn summarize(body: &[u8]) -> Option<String> {
    summary(&parse_answer(body)?)
}

/// The answer's body as FHIR (JSON, else XML), when it is.
fn parse_answer(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok().or_else(|| {
        std::str::from_utf8(body)
            .ok()
            .and_then(|t| fhir::xml::from_xml(t).ok())
    })
}

fn summary(v: &Value) -> Option<String> {
    match v.get("resourceType").and_then(Value::as_str)? {
        "OperationOutcome" => {
            let parts: Vec<String> = v
                .get("issue")?
                .as_array()?
                .iter()
                .take(5)
                .map(|i| {
                    let sev = i.get("severity").and_then(Value::as_str).unwrap_or("?");
                    let text = i
                        .get("diagnostics")
                        .and_then(Value::as_str)
                        .or_else(|| i.pointer("/details/text").and_then(Value::as_str))
                        .or_else(|| i.get("code").and_then(Value::as_str))
                        .unwrap_or("");
                    let at = i
                        .pointer("/expression/0")
                        .and_then(Value::as_str)
                        .map(|e| format!(" at {e}"))
                        .unwrap_or_default();
                    format!("{sev}: {text}{at}")
                })
                .collect();
            Some(parts.join("; "))
        }
        "Bundle" => {
            // A batch-response can hold refused entries under a 200: count
            // them first, then each status with how many times it came.
            let statuses = entry_statuses(v);
            if statuses.is_empty() {
                return None;
            }
            let mut counts: Vec<(&str, usize)> = Vec::new();
            for status in &statuses {
                match counts.iter_mut().find(|(s, _)| s == status) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((status, 1)),
                }
            }
            let failed = statuses.iter().filter(|s| !is_success(s)).count();
            let list: Vec<String> = counts
                .iter()
                .map(|(s, n)| {
                    if *n == 1 {
                        s.to_string()
                    } else {
                        format!("{n} × {s}")
                    }
                })
                .collect();
            let head = if failed > 0 {
                format!("{failed} of {} entries FAILED; ", statuses.len())
            } else {
                String::new()
            };
            Some(format!(
                "{head}{} entries: {}",
                statuses.len(),
                list.join(", ")
            ))
        }
        _ => None,
    }
}

/// `Bundle.entry[*].response.status` of a (batch- or transaction-) response.
fn entry_statuses(v: &Value) -> Vec<&str> {
    v.get("entry")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e.pointer("/response/status").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn is_success(status: &str) -> bool {
    status.trim_start().starts_with('2')
}

/// How many entries of a batch-response the server refused.
fn failed_entries(v: &Value) -> usize {
    if v.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return 0;
    }
    entry_statuses(v).iter().filter(|s| !is_success(s)).count()
}

/// Percent-encodes a query or form value (RFC 3986's unreserved characters
/// stay as they are).
pub fn encode(s: &str) -> String {
    fhir::search::percent_encode(s, b"-._~")
}

struct Token {
    value: String,
    good_until: Instant,
}

/// How a token is asked for.
enum Grant {
    /// client_id + client_secret.
    Secret { client_id: String, secret: String },
    /// A signed JWT client assertion (SMART Backend Services).
    Assertion {
        client_id: String,
        signer: Box<JwtSigner>,
    },
}

enum Auth {
    None,
    Bearer(String),
    Token {
        grant: Grant,
        token_url: String,
        scope: Option<String>,
        refresh_before: Duration,
        /// Held across the token request on purpose: concurrent deliveries
        /// wait for one fetch instead of each asking for a token.
        token: tokio::sync::Mutex<Option<Token>>,
    },
}

/// One request.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// POST or PUT.
    pub put: bool,
    /// Absolute URL.
    pub url: &'a str,
    /// Content-Type.
    pub content_type: &'a str,
    /// Accept, when wanted.
    pub accept: Option<&'a str>,
    /// More headers (Idempotency-Key, If-None-Exist).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Bytes,
}

/// A destination's HTTP client.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
    /// Where final answers go when the channel answers its callers
    /// synchronously (`mode: sync`).
    relay: Option<Arc<RelayHub>>,
}

struct Inner {
    client: reqwest::Client,
    headers: HeaderMap,
    auth: Auth,
    timeout: Duration,
}

impl HttpClient {
    /// Builds the client for `url`. Reads secret files now, so `check`
    /// reports a missing one; opens no connection.
    pub fn new(
        url: &str,
        auth: Option<&AuthConfig>,
        tls: Option<Arc<rustls::ClientConfig>>,
        extra_headers: &std::collections::BTreeMap<String, String>,
        timeout: Duration,
        base_dir: &std::path::Path,
    ) -> Result<HttpClient, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        match (parsed.scheme(), &tls) {
            ("http", _) | ("https", Some(_)) => {}
            ("https", None) => {
                return Err(format!(
                    "{url:?} is https: give `tls: {{ca: ...}}` (partner connections have no implicit trust store)"
                ));
            }
            (s, _) => return Err(format!("{url:?}: scheme {s:?} is not http or https")),
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("caduceus/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(t) = tls {
            let mut c = (*t).clone();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            builder = builder.tls_backend_preconfigured(c);
        }
        let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        let mut headers = HeaderMap::new();
        for (k, v) in extra_headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("headers: {k:?} is not a header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("headers: the value of {k:?} is not a header value"))?;
            headers.insert(name, value);
        }
        let read = |p: &std::path::Path| {
            let path = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base_dir.join(p)
            };
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let auth = match auth {
            None => Auth::None,
            Some(a) => match (&a.bearer_token_file, &a.oauth2, &a.smart) {
                (Some(f), None, None) => Auth::Bearer(read(f)?),
                (None, Some(o), None) => Auth::Token {
                    grant: Grant::Secret {
                        client_id: o.client_id.clone(),
                        secret: read(&o.client_secret_file)?,
                    },
                    token_url: o.token_url.clone(),
                    scope: o.scope.clone(),
                    refresh_before: o.refresh_before.get(),
                    token: tokio::sync::Mutex::new(None),
                },
                (None, None, Some(s)) => {
                    let path = if s.private_key.is_absolute() {
                        s.private_key.clone()
                    } else {
                        base_dir.join(&s.private_key)
                    };
                    Auth::Token {
                        grant: Grant::Assertion {
                            client_id: s.client_id.clone(),
                            signer: Box::new(
                                JwtSigner::from_pem_file(&path, s.kid.clone())
                                    .map_err(|e| format!("auth.smart: {e}"))?,
                            ),
                        },
                        token_url: s.token_url.clone(),
                        scope: s.scope.clone(),
                        refresh_before: s.refresh_before.get(),
                        token: tokio::sync::Mutex::new(None),
                    }
                }
                (None, None, None) => Auth::None,
                _ => {
                    return Err("auth: one of bearer_token_file, oauth2 or smart".into());
                }
            },
        };
        Ok(HttpClient {
            relay: None,
            inner: Arc::new(Inner {
                client,
                headers,
                auth,
                timeout,
            }),
        })
    }

    /// Sends a request; on a 401 with OAuth2, once more with a fresh token.
    pub async fn send(&self, out: &Outgoing<'_>) -> Result<HttpAnswer, DeliveryError> {
        let mut answer = self.inner.attempt(out, false).await?;
        if answer.status == 401 && matches!(self.inner.auth, Auth::Token { .. }) {
            // The token may have been revoked or expired early: one fresh one.
            answer = self.inner.attempt(out, true).await?;
        }
        Ok(answer)
    }

    /// Hands final answers to `hub` from now on (`mode: sync` channels).
    pub fn relay_to(&mut self, hub: Arc<RelayHub>) {
        self.relay = Some(hub);
    }

    /// Sends and classifies; a final answer (delivered, or refused for
    /// good) is handed to the relay, when there is one, for `d`'s caller.
    pub async fn deliver(
        &self,
        out: &Outgoing<'_>,
        d: &crate::pipeline::delivery::Delivery,
    ) -> Result<Receipt, DeliveryError> {
        let answer = self.send(out).await?;
        let verdict = HttpRetryLogic.classify(&answer);
        if let Some(hub) = &self.relay {
            let last = match &verdict {
                Verdict::Delivered(_) => true,
                Verdict::Failed(e) => !e.is_retryable(),
            };
            if last {
                hub.publish(
                    &d.channel,
                    &d.destination,
                    d.task.message_id.0,
                    Relayed {
                        status: answer.status,
                        content_type: answer.content_type.clone(),
                        location: answer.location.clone(),
                        body: answer.body.clone(),
                    },
                );
            }
        }
        match verdict {
            Verdict::Delivered(r) => Ok(r),
            Verdict::Failed(e) => Err(e),
        }
    }
}

impl Inner {
    /// The Authorization value, fetching a token when needed (`fresh`: not the cached one).
    async fn authorization(&self, fresh: bool) -> Result<Option<String>, DeliveryError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Bearer(t) => Ok(Some(format!("Bearer {t}"))),
            Auth::Token {
                grant,
                token_url,
                scope,
                refresh_before,
                token,
            } => {
                let mut slot = token.lock().await;
                if !fresh
                    && let Some(t) = slot.as_ref()
                    && Instant::now() < t.good_until
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let mut form = match grant {
                    Grant::Secret { client_id, secret } => format!(
                        "grant_type=client_credentials&client_id={}&client_secret={}",
                        encode(client_id),
                        encode(secret)
                    ),
                    Grant::Assertion { client_id, signer } => {
                        let jwt = signer
                            .assertion(client_id, token_url)
                            .map_err(DeliveryError::retryable)?;
                        format!(
                            "grant_type=client_credentials&client_assertion_type={}&client_assertion={}",
                            encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                            encode(&jwt)
                        )
                    }
                };
                if let Some(s) = scope {
                    form.push_str(&format!("&scope={}", encode(s)));
                }
                let r = self
                    .client
                    .post(token_url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("Accept", "application/json")
                    .body(form)
                    .timeout(self.timeout)
                    .send()
                    .await
                    .map_err(|e| {
                        DeliveryError::retryable(format!("token endpoint: {}", without_url(&e)))
                    })?;
                let status = r.status();
                let body = r.bytes().await.unwrap_or_default();
                if !status.is_success() {
                    let msg = format!("token endpoint answered {}", status.as_u16());
                    return Err(
                        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                            DeliveryError::retryable(msg)
                        } else {
                            DeliveryError::permanent(format!(
                                "{msg}: check the client id and its secret or key"
                            ))
                        },
                    );
                }
                let v: Value = serde_json::from_slice(&body).map_err(|_| {
                    DeliveryError::retryable("token endpoint: the answer is not JSON")
                })?;
                let Some(access) = v.get("access_token").and_then(Value::as_str) else {
                    return Err(DeliveryError::retryable(
                        "token endpoint: no access_token in the answer",
                    ));
                };
                let lifetime = v.get("expires_in").and_then(Value::as_u64).unwrap_or(300);
                let good_for = Duration::from_secs(lifetime).saturating_sub(*refresh_before);
                *slot = Some(Token {
                    value: access.to_string(),
                    good_until: Instant::now() + good_for,
                });
                Ok(Some(format!("Bearer {access}")))
            }
        }
    }

    async fn attempt(
        &self,
        out: &Outgoing<'_>,
        fresh_token: bool,
    ) -> Result<HttpAnswer, DeliveryError> {
        let url = out.url;
        let mut req = if out.put {
            self.client.put(url)
        } else {
            self.client.post(url)
        }
        .headers(self.headers.clone())
        .header("Content-Type", out.content_type)
        .timeout(self.timeout)
        .body(out.body.clone());
        if let Some(a) = out.accept {
            req = req.header("Accept", a);
        }
        for (k, v) in &out.headers {
            req = req.header(*k, v);
        }
        if let Some(a) = self.authorization(fresh_token).await? {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.map_err(|e| {
            if e.is_timeout() {
                DeliveryError {
                    kind: ErrorKind::Timeout,
                    ..DeliveryError::retryable(format!("{}: no answer in time", path_of(url)))
                }
            } else {
                DeliveryError::retryable(format!("{}: {}", path_of(url), without_url(&e)))
            }
        })?;
        let status = r.status().as_u16();
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let retry_after = header("retry-after").and_then(|v| parse_retry_after(&v));
        let location = header("location").or_else(|| header("content-location"));
        let content_type = header("content-type");
        let body = r.bytes().await.unwrap_or_default();
        let parsed = parse_answer(&body);
        Ok(HttpAnswer {
            status,
            retry_after,
            location,
            summary: parsed.as_ref().and_then(summary),
            failed_entries: parsed.as_ref().map_or(0, failed_entries),
            content_type,
            body,
        })
    }
}

/// A URL without its query (it may carry identifiers).
fn path_of(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// A reqwest error without the URL's query (it may carry identifiers).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), u.path());
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_answers() {
        let a = |status, retry_after| HttpAnswer {
            status,
            retry_after,
            location: None,
            summary: None,
            failed_entries: 0,
            content_type: None,
            body: Bytes::new(),
        };
        let l = HttpRetryLogic;
        assert!(matches!(l.classify(&a(201, None)), Verdict::Delivered(_)));
        match l.classify(&a(429, Some(Duration::from_secs(3)))) {
            Verdict::Failed(e) => {
                assert!(e.is_retryable() && e.retry_after == Some(Duration::from_secs(3)))
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(l.classify(&a(500, None)), Verdict::Failed(e) if e.is_retryable()));
        assert!(matches!(l.classify(&a(400, None)), Verdict::Failed(e) if !e.is_retryable()));
        assert!(matches!(l.classify(&a(404, None)), Verdict::Failed(e) if !e.is_retryable()));
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn summarizes_outcomes_and_transaction_responses() {
        let oo = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"bad date","expression":["Patient.birthDate"]}]}"#;
        assert_eq!(
            summarize(oo).unwrap(),
            "error: bad date at Patient.birthDate"
        );
        let tr = br#"{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created"}},{"response":{"status":"200 OK"}}]}"#;
        assert_eq!(summarize(tr).unwrap(), "2 entries: 201 Created, 200 OK");
        let batch = br#"{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"201 Created"}},{"response":{"status":"201 Created"}},{"response":{"status":"400 Bad Request"}}]}"#;
        assert_eq!(
            summarize(batch).unwrap(),
            "1 of 3 entries FAILED; 3 entries: 2 × 201 Created, 400 Bad Request"
        );
        assert_eq!(summarize(b"<html>oops</html>"), None);
        let parsed = |b: &[u8]| parse_answer(b).unwrap();
        assert_eq!(failed_entries(&parsed(batch)), 1);
        assert_eq!(failed_entries(&parsed(tr)), 0);
    }
}
