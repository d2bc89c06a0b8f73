//! Server certificates that reload when their files change, without a
//! restart.
//!
//! Owns the current `rustls::ServerConfig` of one listener and the watcher
//! that polls its files (certificate, key, client CA: sizes and
//! modification times) and rebuilds the config once they have been still
//! for one poll (a certificate and its key are usually replaced one after
//! the other). A change that does not load (a key that does not match, a
//! half-written file) is logged and the last good config keeps serving;
//! connections already open keep the config they started with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use super::{Stamp, TlsServerConfig, resolve, server_config, stamp};

/// A listener's TLS config, swapped whole on a good reload.
pub struct ReloadingServerConfig {
    current: RwLock<Arc<ServerConfig>>,
    cfg: TlsServerConfig,
    base: PathBuf,
    alpn: Vec<Vec<u8>>,
    /// Who uses it, for logs.
    name: String,
}

impl ReloadingServerConfig {
    /// Loads the config now (errors are `check` errors); `alpn` is set on
    /// every config built (e.g. `http/1.1`).
    pub fn load(
        cfg: &TlsServerConfig,
        base: &Path,
        alpn: Vec<Vec<u8>>,
        name: &str,
    ) -> Result<Arc<ReloadingServerConfig>, super::TlsError> {
        let first = Self::build(cfg, base, &alpn)?;
        Ok(Arc::new(ReloadingServerConfig {
            current: RwLock::new(first),
            cfg: cfg.clone(),
            base: base.to_path_buf(),
            alpn,
            name: name.to_string(),
        }))
    }

    fn build(
        cfg: &TlsServerConfig,
        base: &Path,
        alpn: &[Vec<u8>],
    ) -> Result<Arc<ServerConfig>, super::TlsError> {
        let c = server_config(cfg, base)?;
        if alpn.is_empty() {
            return Ok(c);
        }
        let mut c = (*c).clone();
        c.alpn_protocols = alpn.to_vec();
        Ok(Arc::new(c))
    }

    /// The config for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut v = vec![
            resolve(&self.base, &self.cfg.cert),
            resolve(&self.base, &self.cfg.key),
        ];
        if let Some(ca) = &self.cfg.client_ca {
            v.push(resolve(&self.base, ca));
        }
        v
    }

    /// Polls the files every `every` until `stop`.
    pub async fn watch(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        let files = self.files();
        let mut seen = stamp(&files);
        let mut pending: Option<Stamp> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
            let now = stamp(&files);
            if now == seen {
                pending = None;
                continue;
            }
            if pending.as_ref() != Some(&now) {
                pending = Some(now);
                continue;
            }
            pending = None;
            seen = now;
            match Self::build(&self.cfg, &self.base, &self.alpn) {
                Ok(c) => {
                    match self.current.write() {
                        Ok(mut g) => *g = c,
                        Err(p) => *p.into_inner() = c,
                    }
                    tracing::info!(listener = %self.name, "TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::error!(listener = %self.name, error = %e, "TLS files changed but do not load; the previous certificate keeps serving");
                }
            }
        }
    }
}
