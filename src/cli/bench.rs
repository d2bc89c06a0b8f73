//! `caduceus bench mllp`: load a running server (and, with `--baseline`, a
//! bare group-commit server started in the same run) and report both.
//! `caduceus bench map`: mapping speed and compile time on one core, each
//! with its baseline from the same run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::runtime;
use crate::bench::{LoadReport, LoadSpec, Template, baseline, run_load};

/// `bench` subcommands.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Send N copies of a message (unique MSH-10 each) over C connections with W in flight.
    Mllp(BenchMllpArgs),
    /// Map messages to FHIR Bundles on one core (and compile mappings/), with a baseline.
    Map(BenchMapArgs),
    /// POST a FHIR Bundle over C keep-alive connections to a FHIR intake (and a 202-only baseline).
    Fhir(BenchFhirArgs),
}

/// `bench fhir` options.
#[derive(Args, Debug)]
pub struct BenchFhirArgs {
    /// HOST:PORT of the FHIR intake (the HTTP listener, or a channel's own).
    #[arg(long)]
    pub to: String,
    /// Request path.
    #[arg(long, default_value = "/fhir")]
    pub path: String,
    /// Bearer token.
    #[arg(long)]
    pub token: Option<String>,
    /// Connections (one request in flight each).
    #[arg(long, default_value_t = 32)]
    pub conns: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 20_000)]
    pub requests: u64,
    /// The body.
    #[arg(long, default_value = "fixtures/bench/patient_encounter_bundle.json")]
    pub file: PathBuf,
    /// Also measure the bare 202 baseline, in this run.
    #[arg(long)]
    pub baseline: bool,
    /// HTTPS: CA to trust.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// HTTPS: our client certificate.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// HTTPS: our client key.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Name to verify on the server certificate.
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn run_fhir(a: &BenchFhirArgs) -> anyhow::Result<ExitCode> {
    use crate::bench::fhir::{FhirLoad, FhirReport, baseline, run};
    let body = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let tls = match &a.tls_ca {
        None => None,
        Some(ca) => {
            let cfg = crate::tls::TlsClientConfig {
                ca: ca.clone(),
                cert: a.tls_cert.clone(),
                key: a.tls_key.clone(),
                server_name: Some(a.server_name.clone()),
                min_version: Default::default(),
            };
            let mut c = (*crate::tls::client_config(&cfg, std::path::Path::new("."))?).clone();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = crate::tls::server_name(&cfg, &a.to).map_err(anyhow::Error::msg)?;
            Some((Arc::new(c), name))
        }
    };
    let load = FhirLoad {
        to: a.to.clone(),
        path: a.path.clone(),
        token: a.token.clone(),
        conns: a.conns,
        requests: a.requests,
        body: Arc::new(body),
        tls,
    };
    let line = |name: &str, r: &FhirReport| {
        format!(
            "{name:<9} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   {} accepted in {:.2} s   errors {}",
            r.rate, r.p50_ms, r.p99_ms, r.ok, r.seconds, r.errors
        )
    };
    let rt = runtime()?;
    rt.block_on(async {
        let measure = |store: Option<crate::bench::baseline::RawStore>| {
            let load = load.clone();
            async move {
                let (addr, server) = baseline(store).await?;
                let mut b = load;
                b.to = addr.to_string();
                b.tls = None;
                let r = run(b).await;
                server.abort();
                Ok::<_, std::io::Error>(r)
            }
        };
        let (base, stored) = if a.baseline {
            let dir =
                std::env::temp_dir().join(format!("caduceus-baseline-{}", std::process::id()));
            let store = crate::bench::baseline::RawStore::open(&dir).map_err(anyhow::Error::msg)?;
            let bare = measure(None).await?;
            let stored = measure(Some(store)).await?;
            let _ = std::fs::remove_dir_all(&dir);
            (Some(bare), Some(stored))
        } else {
            (None, None)
        };
        let target = run(load).await;
        if a.json {
            println!(
                "{}",
                serde_json::json!({"to": a.to, "conns": a.conns, "requests": a.requests,
                    "caduceus": target, "baseline": base, "baseline_stored": stored,
                    "ratio": base.as_ref().map(|b| target.rate / b.rate),
                    "ratio_stored": stored.as_ref().map(|b| target.rate / b.rate)})
            );
        } else {
            println!(
                "bench fhir: {}{} conns={} requests={} ({} bytes each)",
                a.to,
                a.path,
                a.conns,
                a.requests,
                load_len(&a.file)
            );
            println!("{}", line("caduceus", &target));
            if let (Some(b), Some(st)) = (&base, &stored) {
                println!("{}", line("baseline", b));
                println!("{}", line("stored", st));
                println!(
                    "ratio     {:.2} (to the 202-only baseline), {:.2} (to the stored one: 202 after the same group commit to SQLite)",
                    target.rate / b.rate,
                    target.rate / st.rate
                );
            }
        }
        Ok(if target.errors == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

fn load_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// `bench map` options.
#[derive(Args, Debug)]
pub struct BenchMapArgs {
    /// Messages to map (default: the ADT and ORU bench fixtures).
    #[arg(default_values = ["fixtures/bench/adt_a01_1812b.hl7", "fixtures/bench/oru_r01_20obx.hl7"])]
    pub files: Vec<PathBuf>,
    /// The mapping to run.
    #[arg(long, default_value = "hl7v2-fhir-r4")]
    pub mapping: String,
    /// The mappings folder.
    #[arg(long, default_value = "mappings")]
    pub mappings: PathBuf,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn run_map(a: &BenchMapArgs) -> anyhow::Result<ExitCode> {
    use crate::bench::map::{measure_compile, measure_message};
    let compile = measure_compile(&a.mappings, 7).map_err(anyhow::Error::msg)?;
    let registry = crate::mapping::Registry::load(&a.mappings).map_err(|e| {
        anyhow::anyhow!(
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let mut figures = Vec::new();
    for f in &a.files {
        figures.push(
            measure_message(&registry, &a.mapping, f, a.seconds).map_err(anyhow::Error::msg)?,
        );
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"compile": compile, "messages": figures})
        );
    } else {
        println!(
            "bench map: {} on one core, {} s per figure",
            a.mapping, a.seconds
        );
        for m in &figures {
            println!(
                "{}  ({} bytes, {} resources)\n  mapped    {:>9.0} msg/s  ({:.1} µs each: parse + map + validate + JSON)\n  baseline  {:>9.0} msg/s  (parse + serde_json of the same Bundle)\n  ratio     {:.2}",
                m.file,
                m.bytes,
                m.resources,
                m.rate,
                m.micros,
                m.baseline_rate,
                m.rate / m.baseline_rate
            );
        }
        println!(
            "compile {}  ({} mappings)\n  median {:.1} ms, fastest {:.1} ms; baseline (read every file) {:.1} ms",
            a.mappings.display(),
            compile.mappings,
            compile.median_ms,
            compile.min_ms,
            compile.read_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `bench mllp` options.
#[derive(Args, Debug)]
pub struct BenchMllpArgs {
    /// HOST:PORT of the server to load.
    #[arg(long)]
    pub to: String,
    /// Connections.
    #[arg(long, default_value_t = 8)]
    pub conns: usize,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Messages in all.
    #[arg(long, default_value_t = 50_000)]
    pub messages: u64,
    /// The message to send.
    #[arg(long, default_value = "fixtures/bench/adt_a01_1812b.hl7")]
    pub file: PathBuf,
    /// Also measure the bare baseline server, in this run.
    #[arg(long)]
    pub baseline: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn line(name: &str, r: &LoadReport) -> String {
    format!(
        "{name:<9} {:>9.0} msg/s   p50 {:>7.2} ms   p99 {:>7.2} ms   {} messages in {:.2} s   errors {}",
        r.rate, r.p50_ms, r.p99_ms, r.messages, r.seconds, r.errors
    )
}

/// Runs a `bench` subcommand.
pub fn run(cmd: &BenchCommand) -> anyhow::Result<ExitCode> {
    let a = match cmd {
        BenchCommand::Mllp(a) => a,
        BenchCommand::Map(a) => return run_map(a),
        BenchCommand::Fhir(a) => return run_fhir(a),
    };
    let raw = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let template = Arc::new(
        Template::new(&raw)
            .map_err(anyhow::Error::msg)
            .context("the bench message")?,
    );
    let run_id = format!("B{}", jiff::Timestamp::now().as_millisecond());
    let rt = runtime()?;
    rt.block_on(async {
        let mut spec = LoadSpec {
            to: a.to.clone(),
            conns: a.conns,
            window: a.window,
            messages: a.messages,
            template,
            run_id: run_id.clone(),
            tls: None,
        };
        let base = if a.baseline {
            let dir =
                std::env::temp_dir().join(format!("caduceus-baseline-{}", std::process::id()));
            let server = baseline::start(&dir).await.map_err(anyhow::Error::msg)?;
            let mut b = spec.clone();
            b.to = server.addr.to_string();
            b.run_id = format!("{run_id}b");
            let r = run_load(&b).await.map_err(anyhow::Error::msg)?;
            drop(server);
            let _ = std::fs::remove_dir_all(&dir);
            Some(r)
        } else {
            None
        };
        spec.run_id = format!("{run_id}t");
        let target = run_load(&spec)
            .await
            .map_err(anyhow::Error::msg)
            .context("loading the target")?;
        if a.json {
            let v = serde_json::json!({
                "to": a.to, "conns": a.conns, "window": a.window, "messages": a.messages,
                "caduceus": target, "baseline": base,
                "ratio": base.as_ref().map(|b| target.rate / b.rate),
            });
            println!("{v}");
        } else {
            println!(
                "bench mllp: {} conns={} window={} messages={} ({} bytes each)",
                a.to,
                a.conns,
                a.window,
                a.messages,
                raw.len()
            );
            println!("{}", line("caduceus", &target));
            if let Some(b) = &base {
                println!("{}", line("baseline", b));
                println!("ratio     {:.2}", target.rate / b.rate);
            }
        }
        Ok(if target.errors == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
