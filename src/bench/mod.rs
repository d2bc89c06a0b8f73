//! `caduceus bench mllp`: the MLLP load tool, and the bare baseline server
//! it measures against in the same run; `map` holds `caduceus bench map`.
//!
//! Owns generating load (C connections, W messages in flight on each, every
//! message with a unique MSH-10, every ACK checked: MSA-1 must be AA/CA and
//! MSA-2 the MSH-10 sent) and reporting rate and latency percentiles.

pub mod baseline;
pub mod fhir;
pub mod map;

/// Prints the mean time of one call of `f`, measured for about a second
/// after a short warm-up: the loop the `*_costs` examples split a path with.
pub fn print_cost(name: &str, f: &mut dyn FnMut()) {
    let (rate, _) = map::rate(Duration::from_secs(1), || {
        f();
        0
    });
    println!("{name}: {:.1} µs", 1e6 / rate);
}

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use serde::Serialize;

use crate::connectors::mllp::client::Client;
use crate::connectors::mllp::destination::for_wire;

/// A message with a slot for MSH-10.
#[derive(Clone, Debug)]
pub struct Template {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

impl Template {
    /// From a message file (BOM dropped, CR segment ends).
    pub fn new(message: &[u8]) -> Result<Template, String> {
        let wire = for_wire(message).into_owned();
        let msg = hl7v2::Message::parse(&wire).map_err(|e| e.to_string())?;
        let f = msg.header().field(10).ok_or("the message has no MSH-10")?;
        let start = f.raw().as_ptr() as usize - wire.as_ptr() as usize;
        let end = start + f.raw().len();
        Ok(Template {
            prefix: wire[..start].to_vec(),
            suffix: wire[end..].to_vec(),
        })
    }

    /// The message with this control id.
    pub fn render(&self, control: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(control.as_bytes());
        out.extend_from_slice(&self.suffix);
    }

    /// Size of a rendered message, roughly.
    pub fn len(&self) -> usize {
        self.prefix.len() + self.suffix.len() + 16
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What to send.
#[derive(Clone)]
pub struct LoadSpec {
    /// HOST:PORT.
    pub to: String,
    /// Connections.
    pub conns: usize,
    /// Messages in flight per connection.
    pub window: usize,
    /// Messages in all.
    pub messages: u64,
    /// The message.
    pub template: Arc<Template>,
    /// Prefix of control ids, unique per run.
    pub run_id: String,
    /// TLS.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

/// What a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// Messages acknowledged.
    pub messages: u64,
    /// ACKs that were not AA/CA or did not echo the MSH-10 sent.
    pub errors: u64,
    /// Wall time.
    pub seconds: f64,
    /// Messages per second.
    pub rate: f64,
    /// Median send-to-ACK latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
}

/// Runs the load and reports.
pub async fn run_load(spec: &LoadSpec) -> Result<LoadReport, String> {
    let conns = spec.conns.max(1);
    let per = spec.messages / conns as u64;
    let extra = spec.messages % conns as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let n = per + u64::from((c as u64) < extra);
        let spec = spec.clone();
        tasks.push(tokio::spawn(
            async move { one_connection(&spec, c, n).await },
        ));
    }
    let mut lat = Vec::with_capacity(spec.messages as usize);
    let mut errors = 0;
    let mut done = 0;
    for t in tasks {
        let (l, e) = t.await.map_err(|e| e.to_string())??;
        done += l.len() as u64;
        errors += e;
        lat.extend(l);
    }
    let seconds = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        f64::from(lat[i]) / 1000.0
    };
    Ok(LoadReport {
        messages: done,
        errors,
        seconds,
        rate: done as f64 / seconds.max(1e-9),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}

async fn one_connection(spec: &LoadSpec, conn: usize, n: u64) -> Result<(Vec<u32>, u64), String> {
    let mut client = Client::connect(&spec.to, Duration::from_secs(10), spec.tls.clone(), 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    let window = spec.window.max(1);
    let mut pending: VecDeque<(String, Instant)> = VecDeque::with_capacity(window);
    let mut lat = Vec::with_capacity(n as usize);
    let mut errors = 0;
    let mut sent = 0u64;
    let mut buf = Vec::with_capacity(spec.template.len());
    while sent < n || !pending.is_empty() {
        let mut wrote = false;
        while pending.len() < window && sent < n {
            let control = format!("{}-{conn}-{sent}", spec.run_id);
            spec.template.render(&control, &mut buf);
            client.write(&buf).await.map_err(|e| e.to_string())?;
            pending.push_back((control, Instant::now()));
            sent += 1;
            wrote = true;
        }
        if wrote {
            client.flush().await.map_err(|e| e.to_string())?;
        }
        let reply = tokio::time::timeout(Duration::from_secs(60), client.read())
            .await
            .map_err(|_| "no ACK within 60 s".to_string())?
            .map_err(|e| e.to_string())?;
        let Some((control, t0)) = pending.pop_front() else {
            return Err("an ACK arrived for nothing sent".into());
        };
        lat.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
        match hl7v2::read_ack(&reply) {
            Ok(a) if a.code.is_accept() && a.control_id == control => {}
            _ => errors += 1,
        }
    }
    client.close().await;
    Ok((lat, errors))
}
