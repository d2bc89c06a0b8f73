//! `caduceus bench fhir`: load a FHIR intake over keep-alive HTTP/1.1 (C
//! connections, one request in flight each), and the same-run baselines: a
//! bare server that reads the body and answers 202 without validating or
//! storing anything (the issue's), and one that answers 202 once the body
//! is group-committed to SQLite as the engine's store commits it (what
//! durability alone costs, as the MLLP benchmark's baseline does).
//!
//! Owns the load (a minimal HTTP/1.1 client on tokio: write a request,
//! read the status line, headers and a Content-Length body; every answer
//! must be 202, anything else counts as an error) and the baseline server.
//! Plain or TLS (with the connector's own rustls config).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What to send where.
#[derive(Clone)]
pub struct FhirLoad {
    /// host:port.
    pub to: String,
    /// Request path (`/fhir`).
    pub path: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// Connections.
    pub conns: usize,
    /// Requests in all.
    pub requests: u64,
    /// The body.
    pub body: Arc<Vec<u8>>,
    /// TLS (client config and server name), if any.
    pub tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

/// The result of a load.
#[derive(Clone, Debug, Serialize)]
pub struct FhirReport {
    /// Requests per second.
    pub rate: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Requests answered 202.
    pub ok: u64,
    /// Other answers or failures.
    pub errors: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

async fn one<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufReader<S>,
    head: &[u8],
    body: &[u8],
) -> std::io::Result<u16> {
    s.get_mut().write_all(head).await?;
    s.get_mut().write_all(body).await?;
    let mut line = String::new();
    s.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        if s.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut sink = vec![0u8; len];
    s.read_exact(&mut sink).await?;
    Ok(status)
}

async fn worker(load: Arc<FhirLoad>, count: u64) -> (Vec<Duration>, u64) {
    let mut lat = Vec::with_capacity(count as usize);
    let mut errors = 0;
    let auth = load
        .token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/fhir+json\r\nPrefer: return=minimal\r\n{auth}Content-Length: {}\r\n\r\n",
        load.path,
        load.body.len()
    )
    .into_bytes();
    let Ok(tcp) = TcpStream::connect(&load.to).await else {
        return (lat, count);
    };
    let _ = tcp.set_nodelay(true);
    match &load.tls {
        None => {
            let mut s = BufReader::new(tcp);
            for done in 0..count {
                let t = Instant::now();
                match one(&mut s, &head, &load.body).await {
                    Ok(202) => lat.push(t.elapsed()),
                    Ok(_) => errors += 1,
                    Err(_) => return (lat, errors + (count - done)),
                }
            }
        }
        Some((cfg, name)) => {
            let Ok(tls) = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(name.clone(), tcp)
                .await
            else {
                return (lat, count);
            };
            let mut s = BufReader::new(tls);
            for done in 0..count {
                let t = Instant::now();
                match one(&mut s, &head, &load.body).await {
                    Ok(202) => lat.push(t.elapsed()),
                    Ok(_) => errors += 1,
                    Err(_) => return (lat, errors + (count - done)),
                }
            }
        }
    }
    (lat, errors)
}

/// Runs a load.
pub async fn run(load: FhirLoad) -> FhirReport {
    let load = Arc::new(load);
    let conns = load.conns.max(1) as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..conns {
        let share = load.requests / conns + u64::from(i < load.requests % conns);
        tasks.push(tokio::spawn(worker(load.clone(), share)));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            lat.extend(l);
            errors += e;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0)
    };
    FhirReport {
        rate: lat.len() as f64 / seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        ok: lat.len() as u64,
        errors,
        seconds,
    }
}

/// The baseline: reads each request's body and answers 202 with a small
/// OperationOutcome, over keep-alive HTTP/1.1 (hyper, as the gateway);
/// with `store`, only once the body is durable there.
pub async fn baseline(
    store: Option<crate::bench::baseline::RawStore>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/{*rest}",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let ok = match &store {
                    Some(s) => s.commit(body).await,
                    None => {
                        std::hint::black_box(body.len());
                        true
                    }
                };
                (
                    if ok {
                        axum::http::StatusCode::ACCEPTED
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    },
                    [(axum::http::header::CONTENT_TYPE, "application/fhir+json")],
                    r#"{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}"#,
                )
            }
        }),
    );
    let h = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, h))
}
