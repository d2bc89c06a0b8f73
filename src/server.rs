//! `caduceus serve`: start everything the config names, stop cleanly.
//!
//! Owns the process lifecycle: refuse to start when `check` would fail;
//! take the data directory's lock (one `serve` per data directory); open
//! the store; bind every listener and write the addresses bound to
//! `<data_dir>/ports.json` (port 0 picks a free port, so tests run side by
//! side); spawn each channel's workers, processor and source, and the
//! mappings watcher (reload on change, keep the last good set); serve HTTP.
//! On SIGTERM or Ctrl-C: `/readyz` turns 503, sources stop accepting and
//! finish what they hold, workers stop (queued work stays queued), exit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiState, router};
use crate::config::{ConfigError, Loaded};
use crate::connectors::fhir::listener as fhir_listener;
use crate::connectors::fhir::source::{FhirChannel, FhirState, routes as fhir_routes};
use crate::connectors::file::source::DirectoryPoller;
use crate::connectors::http::relay::RelayHub;
use crate::connectors::mllp::source::MllpListener;
use crate::mapping::Registry;
use crate::mapping::live::LiveRegistry;
use crate::pipeline::channel::{ChannelPlan, SourcePlan, compile_all};
use crate::pipeline::intake::{Hl7Intake, Wakers};
use crate::pipeline::layers::SharedLimits;
use crate::pipeline::layers::StackContext;
use crate::pipeline::processor;
use crate::pipeline::steps::Steps;
use crate::pipeline::worker::{StoreObserver, Worker};
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use crate::telemetry::{self, ChannelMetrics, DestinationMetrics};

/// Why `serve` stopped or did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config does not check.
    #[error("the configuration has errors:\n{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Config(Vec<ConfigError>),
    /// The data directory is unusable or locked.
    #[error("{0}")]
    DataDir(String),
    /// The store cannot be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A listener cannot be bound.
    #[error("cannot listen on {name} ({address}): {error}")]
    Bind {
        /// Listener name.
        name: String,
        /// Address.
        address: String,
        /// Why.
        error: std::io::Error,
    },
    /// Other I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How often listeners' certificate files are checked for changes.
const TLS_POLL: Duration = Duration::from_secs(1);

/// The store file inside a data directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("caduceus.db")
}

/// Creates the data directory (0700) and takes its lock. The returned file
/// holds the lock for as long as it lives.
pub fn lock_data_dir(dir: &Path) -> Result<std::fs::File, ServeError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        ServeError::DataDir(format!(
            "cannot create the data directory {}: {e}",
            dir.display()
        ))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let path = dir.join("caduceus.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ServeError::DataDir(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServeError::DataDir(format!(
            "another `caduceus serve` is using {} (lock {}); stop it or use another --data-dir",
            dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(ServeError::DataDir(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

async fn bind(name: &str, address: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|error| ServeError::Bind {
            name: name.to_string(),
            address: address.to_string(),
            error,
        })
}

fn write_ports(dir: &Path, bound: &BTreeMap<String, SocketAddr>) -> std::io::Result<()> {
    let map: BTreeMap<&String, String> = bound.iter().map(|(k, v)| (k, v.to_string())).collect();
    let json = serde_json::to_vec_pretty(&map).map_err(std::io::Error::other)?;
    let tmp = dir.join(".ports.json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, dir.join("ports.json"))
}

/// Runs the gateway until SIGTERM/SIGINT.
pub async fn serve(loaded: Loaded) -> Result<(), ServeError> {
    let registry = Registry::load(&loaded.mappings_dir);
    let plans = match (compile_all(&loaded, registry.as_ref().ok()), registry) {
        (Ok(p), Ok(r)) => (p, r),
        (c, r) => {
            let mut errors = r.err().unwrap_or_default();
            errors.extend(c.err().unwrap_or_default());
            return Err(ServeError::Config(errors));
        }
    };
    let (plans, registry) = plans;
    let required: Vec<String> = plans
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| s.mapping.clone()))
        .collect();
    let mappings = LiveRegistry::new(registry, required);
    let _lock = lock_data_dir(&loaded.data_dir)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&store_path(&loaded.data_dir))?);
    let metrics = telemetry::install();
    let ready = Arc::new(AtomicBool::new(false));

    // Bind everything first, so a port in use stops start-up before any work.
    let mut bound = BTreeMap::new();
    let http_addr = loaded
        .listeners
        .get("http")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let http = bind("http", &http_addr).await?;
    bound.insert("http".to_string(), http.local_addr()?);
    // Channels' own listeners (MLLP, and FHIR channels with an address), by channel.
    let mut own_listeners = BTreeMap::new();
    for plan in &plans {
        let key = match &plan.source {
            SourcePlan::Mllp { listener, .. } => Some(listener),
            SourcePlan::Fhir {
                listener: Some(l), ..
            } => Some(l),
            _ => None,
        };
        if let Some(listener) = key {
            let addr = loaded.listeners.get(listener).cloned().unwrap_or_default();
            let l = bind(listener, &addr).await?;
            bound.insert(listener.clone(), l.local_addr()?);
            own_listeners.insert(plan.name.to_string(), l);
        }
    }

    let sources_stop = CancellationToken::new();
    let workers_stop = CancellationToken::new();
    let mut sources = JoinSet::new();
    let mut workers = JoinSet::new();
    let limiters = SharedLimits::default();
    let mut known_queues = Vec::new();
    let mut fhir_channels = Vec::new();
    let relay_hub = Arc::new(RelayHub::default());
    workers.spawn(
        mappings
            .clone()
            .watch(Duration::from_secs(1), workers_stop.clone()),
    );
    for plan in plans {
        start_channel(
            plan,
            &mappings,
            &store,
            &limiters,
            &mut own_listeners,
            &mut sources,
            &mut workers,
            &sources_stop,
            &workers_stop,
            &mut known_queues,
            &mut fhir_channels,
            &relay_hub,
        );
    }
    workers.spawn(queue_depths(
        store.clone(),
        known_queues,
        workers_stop.clone(),
    ));

    let app = router(ApiState {
        ready: ready.clone(),
        store: store.clone(),
        metrics,
    })
    .merge(fhir_routes(FhirState {
        channels: Arc::new(fhir_channels),
        store: store.clone(),
        relay: relay_hub.clone(),
    }));
    let http_stop = CancellationToken::new();
    let hs = http_stop.clone();
    let http_task = tokio::spawn(async move {
        let _ = axum::serve(http, app)
            .with_graceful_shutdown(async move { hs.cancelled().await })
            .await;
    });
    write_ports(&loaded.data_dir, &bound)?;
    ready.store(true, Ordering::SeqCst);
    let summary: Vec<String> = bound.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::info!(data_dir = %loaded.data_dir.display(), listeners = %summary.join(" "), "caduceus is serving");

    wait_for_signal().await;
    tracing::info!("shutting down: no new connections; finishing in-flight messages");
    ready.store(false, Ordering::SeqCst);
    sources_stop.cancel();
    let grace = loaded.server.shutdown_grace.get();
    if tokio::time::timeout(grace, async {
        while sources.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            "sources did not finish within {}; stopping them",
            humantime::format_duration(grace)
        );
        sources.abort_all();
    }
    workers_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    workers.abort_all();
    http_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), http_task).await;
    tracing::info!("stopped");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn start_channel(
    plan: ChannelPlan,
    mappings: &Arc<LiveRegistry>,
    store: &Arc<dyn Store>,
    limiters: &SharedLimits,
    own_listeners: &mut BTreeMap<String, TcpListener>,
    sources: &mut JoinSet<()>,
    workers: &mut JoinSet<()>,
    sources_stop: &CancellationToken,
    workers_stop: &CancellationToken,
    known_queues: &mut Vec<(String, String, DestinationMetrics)>,
    fhir_channels: &mut Vec<FhirChannel>,
    relay_hub: &Arc<RelayHub>,
) {
    let mut plan = plan;
    if let SourcePlan::Fhir {
        relay: Some(dest), ..
    } = &plan.source
    {
        relay_hub.declare(&plan.name, dest);
        for d in plan.destinations.iter_mut() {
            if d.name.as_ref() == dest.as_str() {
                d.relay_to(relay_hub.clone());
            }
        }
    }
    let observer = Arc::new(StoreObserver {
        store: store.clone(),
    });
    let mut notifies = Vec::new();
    for d in &plan.destinations {
        let notify = Arc::new(Notify::new());
        notifies.push(notify.clone());
        let metrics = DestinationMetrics::new(&plan.name, &d.name);
        known_queues.push((plan.name.to_string(), d.name.to_string(), metrics.clone()));
        let stack = d.stack(StackContext {
            channel: plan.name.clone(),
            destination: d.name.clone(),
            shared: limiters,
            observer: observer.clone(),
            metrics: metrics.clone(),
        });
        let worker = Worker {
            channel: plan.name.clone(),
            destination: d.name.clone(),
            store: store.clone(),
            stack,
            notify,
            metrics,
            barrier: d.barrier(),
        };
        workers.spawn(worker.run(workers_stop.clone()));
    }
    let wakers = Wakers {
        destinations: Arc::new(notifies),
        processor: Arc::new(Notify::new()),
    };
    let steps = (!plan.steps.is_empty()).then(|| {
        Arc::new(Steps {
            steps: plan.steps.clone(),
            mappings: mappings.clone(),
            timezone: plan.timezone.clone(),
        })
    });
    let decider: Arc<dyn processor::Decide> = match &plan.source {
        SourcePlan::Fhir { policy, .. } => policy.clone(),
        _ => plan.policy.clone(),
    };
    workers.spawn(processor::run(
        decider,
        steps,
        store.clone(),
        wakers.clone(),
        workers_stop.clone(),
    ));
    let intake = Arc::new(Hl7Intake::new(
        plan.policy.clone(),
        store.clone(),
        wakers.clone(),
    ));
    match plan.source {
        SourcePlan::Fhir {
            policy,
            config,
            partners,
            listener,
            tls,
            relay,
        } => {
            let channel = FhirChannel {
                sync: relay.map(|d| (d, config.sync_timeout.get())),
                metrics: ChannelMetrics::new(&policy.channel),
                limiter: config
                    .rate_limit
                    .as_ref()
                    .and_then(|r| r.quota())
                    .map(|q| Arc::new(governor::RateLimiter::direct(q))),
                policy,
                config,
                partners,
                wakers,
            };
            match listener.and_then(|_| own_listeners.remove(plan.name.as_ref())) {
                // Its own listener: only its routes.
                Some(tcp) => {
                    if let Some(t) = &tls {
                        workers.spawn(t.clone().watch(TLS_POLL, workers_stop.clone()));
                    }
                    let routes = fhir_routes(FhirState {
                        channels: Arc::new(vec![channel]),
                        store: store.clone(),
                        relay: relay_hub.clone(),
                    });
                    sources.spawn(fhir_listener::serve(tcp, tls, routes, sources_stop.clone()));
                }
                None => fhir_channels.push(channel),
            }
        }
        SourcePlan::Mllp { config, tls, .. } => {
            if let Some(t) = &tls {
                workers.spawn(t.clone().watch(TLS_POLL, workers_stop.clone()));
            }
            if let Some(listener) = own_listeners.remove(plan.name.as_ref()) {
                let l = MllpListener {
                    listener,
                    config,
                    tls,
                    intake,
                };
                sources.spawn(l.run(sources_stop.clone()));
            }
        }
        SourcePlan::Directory {
            dir,
            processed,
            config,
        } => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::error!(channel = %plan.name, dir = %dir.display(), error = %e, "cannot create the input folder");
            }
            let p = DirectoryPoller {
                dir,
                processed,
                config,
                intake,
            };
            sources.spawn(p.run(sources_stop.clone()));
        }
    }
}

async fn queue_depths(
    store: Arc<dyn Store>,
    known: Vec<(String, String, DestinationMetrics)>,
    stop: CancellationToken,
) {
    loop {
        if let Ok(depths) = store.queue_depths().await {
            for (c, d, m) in &known {
                let n = depths
                    .iter()
                    .find(|q| &q.channel == c && &q.destination == d)
                    .map(|q| q.depth)
                    .unwrap_or(0);
                m.queue_depth.set(n as f64);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
