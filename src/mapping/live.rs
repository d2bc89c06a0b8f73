//! The running server's mappings, reloaded when `mappings/` changes.
//!
//! Owns the current [`Registry`] behind a lock that readers hold only long
//! enough to clone an `Arc`, and the watcher that polls the folder's file
//! list, sizes and modification times (no file contents, no inotify: the
//! same code works on every file system, including bind mounts). A change
//! is loaded once the folder has been still for one poll, so an editor's
//! save-in-steps is read whole. A change that does not compile, or that
//! removes a mapping a channel uses, is logged (`file:line:col: message`
//! per problem) and the last good set keeps running.
//!
//! It does not own compiling (see `compile`) or deciding what runs (the
//! channel's steps hold names, resolved per message).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::Registry;
use crate::config::ConfigError;
use crate::telemetry;

/// What identifies the folder's contents without reading them.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    fn walk(dir: &Path, out: &mut Fingerprint) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                // Test cases are not part of what runs.
                if p.file_name().is_some_and(|n| n == "tests") {
                    continue;
                }
                walk(&p, out);
            } else {
                out.push((p, md.len(), md.modified().ok()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// The mappings a server runs, swapped whole on a good reload.
#[derive(Debug)]
pub struct LiveRegistry {
    current: RwLock<Arc<Registry>>,
    dir: PathBuf,
    /// Mapping names the channels use: a reload must keep them.
    required: Vec<String>,
}

impl LiveRegistry {
    /// Starts from a loaded registry.
    pub fn new(registry: Registry, required: Vec<String>) -> Arc<LiveRegistry> {
        Arc::new(LiveRegistry {
            dir: registry.dir.clone(),
            current: RwLock::new(Arc::new(registry)),
            required,
        })
    }

    /// The registry to use now.
    pub fn current(&self) -> Arc<Registry> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the folder again. `Ok(true)` when the new set replaced the old
    /// one, `Ok(false)` when nothing changed (same digest); on `Err` the
    /// old set stays.
    pub fn reload(&self) -> Result<bool, Vec<ConfigError>> {
        let next = Registry::load(&self.dir)?;
        let missing: Vec<ConfigError> = self
            .required
            .iter()
            .filter(|n| !next.mappings.contains_key(*n))
            .map(|n| {
                ConfigError::file(
                    &self.dir,
                    format!("mapping {n:?} is used by a channel but no longer exists"),
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        if next.version == self.current().version {
            return Ok(false);
        }
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        Ok(true)
    }

    /// Polls the folder every `every` until `stop`, reloading after a
    /// change once the folder is still.
    pub async fn watch(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        let dir = self.dir.clone();
        let mut seen = fingerprint(&dir);
        let mut pending: Option<Fingerprint> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
            let d = dir.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&d)).await else {
                continue;
            };
            if now == seen {
                pending = None;
                continue;
            }
            // Changed: wait until two polls agree, then load.
            if pending.as_ref() != Some(&now) {
                pending = Some(now);
                continue;
            }
            pending = None;
            seen = now;
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.reload()).await {
                Ok(Ok(true)) => {
                    telemetry::mapping_reload(true);
                    let r = self.current();
                    tracing::info!(version = %r.version, mappings = r.mappings.len(), "mappings reloaded");
                }
                Ok(Ok(false)) => {}
                Ok(Err(errors)) => {
                    telemetry::mapping_reload(false);
                    for e in &errors {
                        tracing::error!(problem = %e, "mapping change not loaded");
                    }
                    tracing::error!(
                        version = %self.current().version,
                        problems = errors.len(),
                        "mappings/ has errors; the last good mappings keep running"
                    );
                }
                Err(e) => tracing::error!(error = %e, "mapping reload failed"),
            }
        }
    }
}
