//! The FHIR REST intake routes, under `/fhir` on the HTTP listener.
//!
//! Owns the HTTP side of a FHIR request: content negotiation (JSON or XML,
//! `_format`, `Accept`), telling partners apart by bearer token (hashed in
//! config) and picking the channel that takes the resource type for that
//! partner, the body limit, idempotency keys, the commit, and the answer:
//! 202 Accepted with an `OperationOutcome` naming the stored message (the
//! gateway does not pretend to be the FHIR server behind it), or the error
//! status with an `OperationOutcome` saying where and why; `Prefer: return=`
//! picks the body of a 202. The decision on
//! the body itself is [`FhirPolicy`](super::intake::FhirPolicy)'s.
//!
//! | case | status | stored |
//! |---|---|---|
//! | no token / unknown token | 401 | nothing |
//! | a partner on a channel that does not list it | 403 | nothing |
//! | no channel takes the resource type | 404 | nothing |
//! | over the channel's `rate_limit` | 429 + `Retry-After` | nothing |
//! | body over the channel's `max_body_size` | 413 | nothing |
//! | Content-Type not JSON/XML | 415 | nothing |
//! | unparseable / not matching the route | 400 | `error` |
//! | not valid R4 | 422 | `error` |
//! | accepted | 202 (+ `Content-Location: /api/messages/{id}`) | `processed` |
//! | repeated (same idempotency key in the window) | the first answer | nothing new |
//! | `GET /api/messages/{id}` by the partner that sent it | 200, its state and deliveries | - |
//! | another method on a FHIR route (a read, a search, a delete) | 405 + `Allow` | nothing |
//! | a path under `/fhir` that is no interaction here | 404 | nothing |
//! | the store cannot commit | 503 | nothing |

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::config::FhirSourceConfig;
use super::intake::{FhirPolicy, Route, Syntax};
use super::listener::PeerIdentity;
use crate::connectors::http::relay::RelayHub;
use crate::pipeline::intake::Wakers;
use crate::store::{Format, MessageId, MessageState, NewMessage, Store};
use crate::telemetry::{self, ChannelMetrics};

/// One FHIR channel, as the routes see it.
pub struct FhirChannel {
    /// Its rules.
    pub policy: Arc<FhirPolicy>,
    /// Its source settings.
    pub config: FhirSourceConfig,
    /// Who may call it.
    pub partners: Vec<Partner>,
    /// Its destination workers.
    pub wakers: Wakers,
    /// Its metrics.
    pub metrics: ChannelMetrics,
    /// Its rate limit, when it has one.
    pub limiter: Option<Arc<governor::DefaultDirectRateLimiter>>,
    /// `mode: sync`: the destination whose answer is returned, and how long to wait.
    pub sync: Option<(String, std::time::Duration)>,
}

/// A partner, compiled.
#[derive(Clone, Debug)]
pub struct Partner {
    /// Its name.
    pub name: String,
    /// SHA-256 of its bearer token.
    pub token: Option<[u8; 32]>,
    /// Its certificate's CN or DNS SAN.
    pub certificate: Option<String>,
}

/// The routes' state.
#[derive(Clone)]
pub struct FhirState {
    /// Every FHIR channel, in file order.
    pub channels: Arc<Vec<FhirChannel>>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Where `mode: sync` channels wait for their destination's answer.
    pub relay: Arc<RelayHub>,
}

/// The `/fhir` routes.
pub fn routes(state: FhirState) -> Router {
    Router::new()
        .route(
            "/fhir/metadata",
            get(metadata).fallback(|p: Params, h: HeaderMap| not_allowed("GET", p, h)),
        )
        .route(
            "/fhir",
            post(bundle).fallback(|p: Params, h: HeaderMap| not_allowed("POST", p, h)),
        )
        .route(
            "/fhir/{rtype}",
            post(create).fallback(|p: Params, h: HeaderMap| not_allowed("POST", p, h)),
        )
        .route(
            "/fhir/{rtype}/{id}",
            put(update).fallback(|p: Params, h: HeaderMap| not_allowed("PUT", p, h)),
        )
        .route("/api/messages/{id}", get(message_status))
        // Unknown paths: an OperationOutcome under /fhir, a plain 404 elsewhere.
        .fallback(not_found)
        // Each channel applies its own limit while reading (413 with an OperationOutcome).
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// A method the gateway does not take on a FHIR route: 405 with an
/// OperationOutcome. Reads, searches and deletes belong to the FHIR server
/// behind the gateway.
async fn not_allowed(allow: &'static str, params: Params, headers: HeaderMap) -> Response {
    let mut r = fail(
        StatusCode::METHOD_NOT_ALLOWED,
        answer_syntax(&params, &headers),
        "not-supported",
        "this gateway takes POST (create, Bundles, $process-message) and PUT (update); \
         reads, searches and deletes go to the FHIR server behind it",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// A path under `/fhir` that is no FHIR interaction here: 404 with an
/// OperationOutcome (other unknown paths: a plain 404).
async fn not_found(uri: axum::http::Uri, params: Params, headers: HeaderMap) -> Response {
    if !uri.path().starts_with("/fhir") {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    fail(
        StatusCode::NOT_FOUND,
        answer_syntax(&params, &headers),
        "not-found",
        "no such FHIR interaction here: POST /fhir, POST /fhir/{type}, PUT /fhir/{type}/{id}, \
         POST /fhir/$process-message, GET /fhir/metadata",
    )
}

/// SHA-256 of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Reads a configured `token_sha256` (64 hex digits).
pub fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Compares without an early exit (tokens are secrets).
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type Params = Query<std::collections::HashMap<String, String>>;

/// The syntax to answer in: `_format`, then `Accept`, then the request's own.
fn answer_syntax(params: &Params, headers: &HeaderMap) -> Syntax {
    if let Some(s) = params.get("_format").and_then(|f| Syntax::from_format(f)) {
        return s;
    }
    let from = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .and_then(|v| v.split(',').find_map(Syntax::from_content_type))
    };
    from(header::ACCEPT)
        .or_else(|| from(header::CONTENT_TYPE))
        .unwrap_or(Syntax::Json)
}

fn render(value: &Value, syntax: Syntax) -> String {
    match syntax {
        Syntax::Json => fhir::json::to_string(value),
        Syntax::Xml => fhir::xml::to_xml(value).unwrap_or_default(),
    }
}

/// An OperationOutcome response.
fn outcome(status: StatusCode, syntax: Syntax, issues: Vec<Value>) -> Response {
    let body = json!({"resourceType": "OperationOutcome", "issue": issues});
    (
        status,
        [(header::CONTENT_TYPE, syntax.mime())],
        render(&body, syntax),
    )
        .into_response()
}

fn issue(severity: &str, code: &str, diagnostics: impl Into<String>) -> Value {
    json!({"severity": severity, "code": code, "diagnostics": diagnostics.into()})
}

fn fail(
    status: StatusCode,
    syntax: Syntax,
    code: &str,
    diagnostics: impl Into<String>,
) -> Response {
    outcome(status, syntax, vec![issue("error", code, diagnostics)])
}

type Peer = Option<Extension<PeerIdentity>>;

/// A URL segment that is not UTF-8 once percent-decoded: 400 with an
/// OperationOutcome (axum's own rejection is plain text).
fn bad_path(e: &PathRejection, params: &Params, headers: &HeaderMap) -> Response {
    fail(
        StatusCode::BAD_REQUEST,
        answer_syntax(params, headers),
        "invalid",
        format!("the URL cannot be read: {}", e.body_text()),
    )
}

async fn create(
    State(s): State<FhirState>,
    path: Result<Path<String>, PathRejection>,
    peer: Peer,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rtype = match path {
        Ok(Path(r)) => r,
        Err(e) => return bad_path(&e, &params, &headers),
    };
    let route = if rtype == "$process-message" {
        Route::ProcessMessage
    } else {
        Route::Create(rtype)
    };
    receive(s, route, peer, params, headers, body).await
}

async fn update(
    State(s): State<FhirState>,
    path: Result<Path<(String, String)>, PathRejection>,
    peer: Peer,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (rtype, id) = match path {
        Ok(Path(p)) => p,
        Err(e) => return bad_path(&e, &params, &headers),
    };
    receive(s, Route::Update(rtype, id), peer, params, headers, body).await
}

async fn bundle(
    State(s): State<FhirState>,
    peer: Peer,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(s, Route::Bundle, peer, params, headers, body).await
}

/// Who is calling: `Ok(None)` anonymous, `Ok(Some(name))` a partner, `Err`
/// credentials no partner has. A bearer token wins over a certificate.
fn partner<'c>(
    channels: &'c [FhirChannel],
    headers: &HeaderMap,
    peer: Option<&PeerIdentity>,
) -> Result<Option<&'c str>, ()> {
    let all = || channels.iter().flat_map(|c| c.partners.iter());
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        let Some(id) = peer else { return Ok(None) };
        return all()
            .find(|p| p.certificate.as_deref().is_some_and(|n| id.is(n)))
            .map(|p| Some(p.name.as_str()))
            .ok_or(());
    };
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or(())?
        .trim();
    let h = token_hash(token);
    all()
        .find(|p| p.token.as_ref().is_some_and(|t| same(t, &h)))
        .map(|p| Some(p.name.as_str()))
        .ok_or(())
}

async fn receive(
    s: FhirState,
    route: Route,
    peer: Peer,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = peer.map(|Extension(p)| p);
    let answer = answer_syntax(&params, &headers);
    let rtype = route.resource_type().to_string();
    if !fhir::schema::Schema::r4().is_resource(&rtype) {
        return fail(
            StatusCode::NOT_FOUND,
            answer,
            "not-supported",
            format!("{rtype:?} is not a FHIR R4 resource type"),
        );
    }
    // Who, and which channel.
    let who = match partner(&s.channels, &headers, peer.as_ref()) {
        Ok(w) => w,
        Err(()) => {
            let mut r = fail(
                StatusCode::UNAUTHORIZED,
                answer,
                "login",
                "these credentials are not known here",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    };
    let takers: Vec<&FhirChannel> = s
        .channels
        .iter()
        .filter(|c| c.policy.accepts(&rtype))
        .collect();
    if takers.is_empty() {
        return fail(
            StatusCode::NOT_FOUND,
            answer,
            "not-supported",
            format!("no channel here takes {rtype}"),
        );
    }
    let allowed = takers.iter().find(|c| match who {
        Some(name) => c.partners.iter().any(|p| p.name == name),
        None => c.config.allow_anonymous,
    });
    let Some(ch) = allowed else {
        if who.is_none() {
            let mut r = fail(
                StatusCode::UNAUTHORIZED,
                answer,
                "login",
                "this endpoint needs a bearer token",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
        return fail(
            StatusCode::FORBIDDEN,
            answer,
            "forbidden",
            format!("this partner may not send {rtype} here"),
        );
    };
    if let Some(l) = &ch.limiter
        && let Err(not_until) = l.check()
    {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut r = fail(
            StatusCode::TOO_MANY_REQUESTS,
            answer,
            "throttled",
            format!("over this channel's rate limit; send it again in {secs}s"),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    // The body.
    let syntax = match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) => match Syntax::from_content_type(ct) {
            Some(s) => s,
            None => {
                return fail(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    answer,
                    "not-supported",
                    format!(
                        "Content-Type {ct:?}: send application/fhir+json or application/fhir+xml"
                    ),
                );
            }
        },
        None => Syntax::Json,
    };
    let limit = ch.config.max_body_size.as_usize();
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                answer,
                "too-costly",
                format!(
                    "the body is larger than this channel accepts ({})",
                    ch.config.max_body_size
                ),
            );
        }
    };
    ch.metrics.received();
    let assessed = ch.policy.assess(&bytes, syntax, &route);
    let header_key = headers
        .get("idempotency-key")
        .or_else(|| headers.get("if-none-exist"))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let (state, error, deliveries, message_type, key) = match &assessed {
        Ok(a) => (
            MessageState::Processed,
            None,
            ch.policy.deliveries(),
            Some(a.message_type.clone()),
            header_key.or_else(|| a.key.clone()),
        ),
        Err(r) => (
            MessageState::Error,
            Some(r.reason()),
            Vec::new(),
            Some(rtype.clone()),
            header_key,
        ),
    };
    let routed = !deliveries.is_empty();
    let received = bytes.clone();
    let msg = NewMessage {
        channel: ch.policy.channel.to_string(),
        received_at: Timestamp::now(),
        format: Format::Fhir,
        message_type,
        control_id: key.clone(),
        sender: who.map(String::from),
        peer: peer
            .as_ref()
            .and_then(|p| p.common_name.clone())
            .map(|cn| format!("certificate CN={cn}")),
        raw: bytes,
        state,
        error,
        deliveries,
        dedup_window: key.as_ref().map(|_| ch.config.idempotency_window.get()),
        idempotent: true,
    };
    let stored = match s.store.commit(vec![msg]).await {
        Ok(mut p) if !p.is_empty() => p.swap_remove(0),
        Ok(_) | Err(_) => {
            telemetry::store_error();
            tracing::error!(channel = %ch.policy.channel, "FHIR request not stored; answering 503");
            return fail(
                StatusCode::SERVICE_UNAVAILABLE,
                answer,
                "transient",
                "the request could not be stored; send it again",
            );
        }
    };
    let id = stored.id();
    match assessed {
        Ok(_) => {
            if routed && stored.duplicate_of().is_none() {
                ch.wakers.wake();
            }
            if let Some((dest, timeout)) = &ch.sync
                && stored.duplicate_of().is_none()
            {
                return match s.relay.wait(dest, id.0, *timeout).await {
                    Some(a) => relayed(a),
                    None => {
                        let mut r = outcome(
                            StatusCode::GATEWAY_TIMEOUT,
                            answer,
                            vec![issue(
                                "error",
                                "timeout",
                                format!(
                                    "no answer from {dest} within {}; the request is stored as message {id} and its delivery goes on",
                                    humantime::format_duration(*timeout)
                                ),
                            )],
                        );
                        if let Ok(v) = HeaderValue::from_str(&format!("/api/messages/{id}")) {
                            r.headers_mut().insert(header::CONTENT_LOCATION, v);
                        }
                        r
                    }
                };
            }
            let location = format!("/api/messages/{id}");
            let mut r = match prefer_return(&headers) {
                Some("minimal") => StatusCode::ACCEPTED.into_response(),
                Some("representation") => representation(&received, syntax, answer),
                _ => {
                    let what = if stored.duplicate_of().is_some() {
                        format!(
                            "already accepted as message {id} (same idempotency key); not stored again"
                        )
                    } else {
                        format!("accepted and stored as message {id}; it is delivered from here")
                    };
                    outcome(
                        StatusCode::ACCEPTED,
                        answer,
                        vec![issue("information", "informational", what)],
                    )
                }
            };
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::CONTENT_LOCATION, v);
            }
            r
        }
        Err(refusal) => {
            let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut issues: Vec<Value> = refusal
                .issues
                .iter()
                .take(100)
                .map(|i| {
                    let mut v = issue(i.severity.as_str(), i.code, i.message.clone());
                    if !i.location.is_empty() {
                        v["expression"] = json!([i.location]);
                    }
                    v
                })
                .collect();
            issues.push(issue(
                "information",
                "informational",
                format!("stored as message {id} (state error)"),
            ));
            outcome(status, answer, issues)
        }
    }
}

/// The `return=` preference of a `Prefer` header (`minimal`,
/// `representation`, `OperationOutcome`), when there is one.
fn prefer_return(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|p| p.trim().strip_prefix("return="))
        .map(|v| v.trim().trim_matches('"'))
}

/// `Prefer: return=representation` on an accepted request: the resource or
/// Bundle as accepted (what is delivered from here), in the answer's syntax.
/// The server behind has not seen it yet, so this is the gateway's copy, not
/// that server's; `mode: sync` relays that server's own answer instead.
fn representation(body: &Bytes, syntax: Syntax, answer: Syntax) -> Response {
    let converted = (syntax != answer)
        .then(|| super::intake::parse(body, syntax).ok())
        .flatten();
    let (content, mime) = match converted {
        Some(v) => (Bytes::from(render(&v, answer)), answer.mime()),
        None => (body.clone(), syntax.mime()),
    };
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, mime)],
        content,
    )
        .into_response()
}

/// `GET /api/messages/{id}`: where a partner's request stands (the 202's
/// `Content-Location`): state, deliveries with their attempts and the
/// destination's answer, history; never the content. A partner sees only
/// the messages it sent on its own channels; any other id is 404, so the
/// answer does not tell whether another partner's message exists. The admin
/// API's role-based keys (DESIGN.md §3) are a later issue.
async fn message_status(
    State(s): State<FhirState>,
    path: Result<Path<String>, PathRejection>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    // Ids are numbers: a path that does not even decode is no message.
    let id = path.map(|Path(id)| id).unwrap_or_default();
    let peer = peer.map(|Extension(p)| p);
    let Ok(Some(who)) = partner(&s.channels, &headers, peer.as_ref()) else {
        let mut r = fail(
            StatusCode::UNAUTHORIZED,
            Syntax::Json,
            "login",
            "a partner's bearer token or client certificate is needed to read a message's status",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    let not_found = || {
        fail(
            StatusCode::NOT_FOUND,
            Syntax::Json,
            "not-found",
            format!("no message {id:?} from this partner"),
        )
    };
    let Ok(n) = id.parse::<i64>() else {
        return not_found();
    };
    match s.store.get(MessageId(n)).await {
        Ok(Some(d))
            if d.sender.as_deref() == Some(who)
                && s.channels.iter().any(|c| {
                    *c.policy.channel == *d.summary.channel
                        && c.partners.iter().any(|p| p.name == who)
                }) =>
        {
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::to_string_pretty(&d.to_json()).unwrap_or_default(),
            )
                .into_response()
        }
        Ok(_) => not_found(),
        Err(_) => fail(
            StatusCode::SERVICE_UNAVAILABLE,
            Syntax::Json,
            "transient",
            "the store cannot be read; try again",
        ),
    }
}

/// The destination's answer, as the client's.
fn relayed(a: crate::connectors::http::relay::Relayed) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut r = (status, a.body).into_response();
    if let Some(ct) = a.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    if let Some(l) = a.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert(header::LOCATION, l);
    }
    r
}

async fn metadata(State(s): State<FhirState>, params: Params, headers: HeaderMap) -> Response {
    let answer = answer_syntax(&params, &headers);
    let schema = fhir::schema::Schema::r4();
    let mut types: Vec<String> = Vec::new();
    let mut all = false;
    for c in s.channels.iter() {
        if c.policy.resources.is_empty() {
            all = true;
        }
        types.extend(c.policy.resources.iter().cloned());
    }
    if all {
        types = schema
            .defs()
            .filter(|d| {
                schema.is_resource(d.name) && d.name != "Resource" && d.name != "DomainResource"
            })
            .map(|d| d.name.to_string())
            .collect();
    }
    types.sort();
    types.dedup();
    let takes_bundle = types.iter().any(|t| t == "Bundle");
    let resources: Vec<Value> = types
        .iter()
        .filter(|t| *t != "Bundle")
        .map(|t| json!({"type": t, "interaction": [{"code": "create"}, {"code": "update"}]}))
        .collect();
    let mut rest = json!({"mode": "server", "documentation": "Caduceus accepts, stores and forwards (202 Accepted); it does not serve reads."});
    if !resources.is_empty() {
        rest["resource"] = Value::Array(resources);
    }
    if takes_bundle {
        rest["interaction"] = json!([{"code": "transaction"}, {"code": "batch"}]);
        rest["operation"] = json!([{"name": "process-message", "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"}]);
    }
    let cs = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
        "kind": "instance",
        "software": {"name": "Caduceus", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Caduceus FHIR intake"},
        "fhirVersion": "4.0.1",
        "format": ["json", "xml"],
        "rest": [rest]
    });
    let mut cs = cs;
    fhir::json::canonicalize(&mut cs);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, answer.mime())],
        render(&cs, answer),
    )
        .into_response()
}
