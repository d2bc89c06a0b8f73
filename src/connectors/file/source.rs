//! The directory poller source.
//!
//! Owns finding files that are complete (same size and modification time on
//! two polls in a row), reading them, splitting them into messages (one,
//! several, or an FHS/BHS batch), handing them to the intake as one
//! transaction, and moving the file to `processed/` only after the commit.
//! A file larger than `max_file_size` is moved to `rejected/` with a
//! `.reason` note beside it; it is never half-read. A file that is not HL7
//! at all is stored as one `error` message (nothing is lost) and moved on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::config::DirectorySourceConfig;
use super::sync_dir;
use crate::pipeline::intake::Hl7Intake;
use crate::store::wildcard_match;

/// A running poller.
pub struct DirectoryPoller {
    /// Folder watched (resolved).
    pub dir: PathBuf,
    /// Where taken files go (resolved).
    pub processed: PathBuf,
    /// Its config.
    pub config: DirectorySourceConfig,
    /// Where messages go.
    pub intake: Arc<Hl7Intake>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
}

impl DirectoryPoller {
    /// Polls until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
        let channel = self.intake.channel().to_string();
        loop {
            match self.scan(&mut seen).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(%channel, dir = %self.dir.display(), error = %e, "cannot read the input folder")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval.get()) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn scan(&self, seen: &mut HashMap<PathBuf, Seen>) -> std::io::Result<()> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !wildcard_match(&self.config.pattern, &name) {
                continue;
            }
            let meta = e.metadata()?;
            if !meta.is_file() {
                continue;
            }
            names.push((
                e.path(),
                Seen {
                    len: meta.len(),
                    modified: meta.modified().ok(),
                },
            ));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let present: Vec<PathBuf> = names.iter().map(|(p, _)| p.clone()).collect();
        seen.retain(|p, _| present.contains(p));
        for (path, now) in names {
            let settled = seen.get(&path) == Some(&now);
            seen.insert(path.clone(), now);
            if !settled {
                continue;
            }
            if self.take(&path, now.len).await {
                seen.remove(&path);
            }
        }
        Ok(())
    }

    /// Reads, commits and moves one file; true when it is gone from the inbox.
    async fn take(&self, path: &Path, len: u64) -> bool {
        let channel = self.intake.channel();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if len > self.config.max_file_size.0 {
            let reason = format!(
                "file of {len} bytes is larger than max_file_size ({})",
                self.config.max_file_size
            );
            tracing::warn!(channel, file = %name, "{reason}");
            let rejected = self.dir.join("rejected");
            return move_file(path, &rejected, &name)
                .and_then(|to| std::fs::write(to.with_extension("reason"), &reason))
                .is_ok();
        }
        let data = match std::fs::read(path) {
            Ok(d) => Bytes::from(d),
            Err(e) => {
                tracing::warn!(channel, file = %name, error = %e, "cannot read file; will try again");
                return false;
            }
        };
        let messages: Vec<Bytes> = match hl7v2::batch::split(&data) {
            Ok(s) if !s.messages.is_empty() => {
                if !s.counts_match() {
                    tracing::warn!(channel, file = %name, found = s.messages.len(), "batch trailer count does not match the messages found");
                }
                s.messages.iter().map(|r| data.slice(r.clone())).collect()
            }
            // Not HL7 (or only envelope segments): keep the whole file as one
            // message, which the intake stores as an error.
            _ => vec![data.clone()],
        };
        let count = messages.len();
        match self
            .intake
            .receive_all(messages, Some(format!("file:{name}")))
            .await
        {
            Ok(ids) => {
                tracing::info!(channel, file = %name, messages = count, first_id = ids.first().map(|i| i.0.0).unwrap_or(0), "file committed");
                match move_file(path, &self.processed, &name) {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::error!(channel, file = %name, error = %e, "committed but cannot move the file to processed/; it will be read again");
                        false
                    }
                }
            }
            Err(e) => {
                tracing::error!(channel, file = %name, error = %e, "file not stored; will try again");
                false
            }
        }
    }
}

/// Moves a file into a folder (creating it), never overwriting: a name
/// already there gets a numeric suffix. Returns the new path.
fn move_file(from: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut to = dir.join(name);
    let mut n = 1;
    while to.exists() {
        to = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(from, &to)?;
    sync_dir(dir)?;
    if let Some(parent) = from.parent() {
        sync_dir(parent)?;
    }
    Ok(to)
}
