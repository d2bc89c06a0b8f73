//! The file writer destination.
//!
//! Owns naming and writing: the name comes from a template compiled at
//! load (unknown placeholders are config errors), every placeholder value
//! is reduced to safe file-name characters, and the bytes go to a hidden
//! temporary file in the same folder. At the worker's barrier (after each
//! batch) the batch is flushed to disk with one sync, the files are renamed
//! into place and the folder is fsynced; only then are the deliveries
//! recorded as `sent`. A reader never sees half a file, a reported `sent`
//! survives a power cut, and a batch costs two flushes instead of two per
//! file. The default name is the idempotency key: a redelivery after a
//! crash overwrites the same file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::config::FileDestinationConfig;
use super::{safe_name_part, sync_dir};
use crate::pipeline::delivery::{Barrier, Delivery, DeliveryError, DeliveryFuture, Receipt};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Key,
    MessageId,
    Channel,
    Destination,
    ControlId,
    Type,
    Ext,
}

/// A compiled file-name template.
#[derive(Clone, Debug)]
pub struct Template(Vec<Part>);

impl Template {
    /// Compiles `{key}.{ext}`-style templates.
    pub fn compile(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("filename {s:?}: '{{' without '}}'"))?;
            let name = &rest[open + 1..open + close];
            parts.push(match name {
                "key" => Part::Key,
                "message_id" => Part::MessageId,
                "channel" => Part::Channel,
                "destination" => Part::Destination,
                "control_id" => Part::ControlId,
                "type" => Part::Type,
                "ext" => Part::Ext,
                other => {
                    return Err(format!(
                        "filename {s:?}: unknown placeholder {{{other}}} (known: key, message_id, channel, destination, control_id, type, ext)"
                    ));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        if parts.iter().all(|p| matches!(p, Part::Text(_))) {
            return Err(format!(
                "filename {s:?} has no placeholder: every message would overwrite the same file; use e.g. {{key}}.{{ext}}"
            ));
        }
        if s.contains('/') || s.contains('\\') {
            return Err(format!(
                "filename {s:?}: a file name cannot contain a path separator"
            ));
        }
        Ok(Template(parts))
    }

    /// Renders the name for a delivery.
    pub fn render(&self, d: &Delivery) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Key => out.push_str(&safe_name_part(&d.idempotency_key)),
                Part::MessageId => out.push_str(&d.task.message_id.to_string()),
                Part::Channel => out.push_str(&safe_name_part(&d.channel)),
                Part::Destination => out.push_str(&safe_name_part(&d.destination)),
                Part::ControlId => out.push_str(&safe_name_part(
                    d.task.control_id.as_deref().unwrap_or("none"),
                )),
                Part::Type => out.push_str(&safe_name_part(
                    d.task.message_type.as_deref().unwrap_or("unknown"),
                )),
                Part::Ext => out.push_str(extension(&d.task.payload)),
            }
        }
        out
    }
}

/// A file extension from the payload's first bytes.
pub fn extension(payload: &[u8]) -> &'static str {
    let body = payload
        .strip_prefix(&[0xEF, 0xBB, 0xBF][..])
        .unwrap_or(payload);
    let first = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &body[i..])
        .unwrap_or(body);
    if first.starts_with(b"MSH") || first.starts_with(b"FHS") || first.starts_with(b"BHS") {
        "hl7"
    } else if first.starts_with(b"{") || first.starts_with(b"[") {
        "json"
    } else if first.starts_with(b"<") {
        "xml"
    } else if first.starts_with(b"ISA") {
        "x12"
    } else {
        "dat"
    }
}

/// The file writer connector (a tower service, and a [`Barrier`]).
#[derive(Clone)]
pub struct FileWriter {
    dir: Arc<PathBuf>,
    template: Arc<Template>,
    fsync: bool,
    /// Names written to their temporary files since the last barrier.
    pending: Arc<Mutex<Vec<String>>>,
}

impl FileWriter {
    /// Builds the writer; `dir` is already resolved. Creates nothing yet.
    pub fn new(cfg: &FileDestinationConfig, dir: PathBuf) -> Result<FileWriter, String> {
        Ok(FileWriter {
            dir: Arc::new(dir),
            template: Arc::new(Template::compile(&cfg.filename)?),
            fsync: cfg.fsync,
            pending: Arc::new(Mutex::new(Vec::new())),
        })
    }
}

fn tmp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::File::create(dir.join(tmp_name(name)))?;
    f.write_all(bytes)
}

/// Flushes written data to disk: one `syncfs` for the folder's filesystem
/// on Linux (one flush for a whole batch), an fsync per file elsewhere.
fn sync_files(dir: &Path, names: &[String]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let _ = names;
        let d = std::fs::File::open(dir)?;
        // SAFETY: syncfs only reads the descriptor, which `d` keeps open.
        let rc = unsafe { libc::syncfs(d.as_raw_fd()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        for n in names {
            std::fs::File::open(dir.join(tmp_name(n)))?.sync_all()?;
        }
        Ok(())
    }
}

fn publish(dir: &Path, names: &[String], fsync: bool) -> std::io::Result<()> {
    if fsync {
        sync_files(dir, names)?;
    }
    for n in names {
        std::fs::rename(dir.join(tmp_name(n)), dir.join(n))?;
    }
    if fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Barrier for FileWriter {
    async fn sync(&self) -> Result<(), DeliveryError> {
        let mut names = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Err(DeliveryError::retryable("file writer state is poisoned")),
        };
        if names.is_empty() {
            return Ok(());
        }
        names.sort();
        names.dedup();
        let (dir, fsync) = (self.dir.clone(), self.fsync);
        tokio::task::spawn_blocking(move || publish(&dir, &names, fsync))
            .await
            .map_err(|e| DeliveryError::retryable(format!("file sync task failed: {e}")))?
            .map_err(|e| {
                DeliveryError::retryable(format!(
                    "cannot make files durable in {}: {e}",
                    self.dir.display()
                ))
            })
    }
}

impl tower::Service<Delivery> for FileWriter {
    type Response = Receipt;
    type Error = DeliveryError;
    type Future = DeliveryFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), DeliveryError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, d: Delivery) -> DeliveryFuture {
        let name = self.template.render(&d);
        let dir = self.dir.clone();
        let pending = self.pending.clone();
        Box::pin(async move {
            let payload = d.task.payload.clone();
            let n = name.clone();
            let r = tokio::task::spawn_blocking(move || write_tmp(&dir, &n, &payload))
                .await
                .map_err(|e| DeliveryError::retryable(format!("file write task failed: {e}")))?;
            match r {
                Ok(()) => {
                    if let Ok(mut p) = pending.lock() {
                        p.push(name.clone());
                    }
                    Ok(Receipt {
                        detail: Some(name),
                        attempts: 0,
                    })
                }
                // Disk full, permissions, a missing mount: all may clear up.
                Err(e) => Err(DeliveryError::retryable(format!(
                    "cannot write {name}: {e}"
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::layers::test_support::delivery;
    use tower::ServiceExt;

    #[test]
    fn templates() {
        let t = Template::compile("{channel}-{control_id}.{ext}").unwrap();
        let d = delivery();
        assert_eq!(t.render(&d), "c-none.hl7");
        assert!(
            Template::compile("{nope}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(
            Template::compile("fixed.txt")
                .unwrap_err()
                .contains("no placeholder")
        );
        assert!(Template::compile("a/{key}").is_err());
        assert!(Template::compile("{key").is_err());
    }

    #[test]
    fn names_are_safe() {
        assert_eq!(safe_name_part("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name_part("ADT^A01"), "ADT_A01");
        assert_eq!(extension(b"\xEF\xBB\xBFMSH|"), "hl7");
        assert_eq!(extension(b" {\"a\":1}"), "json");
    }

    #[tokio::test]
    async fn writes_atomically_and_overwrites_on_redelivery() {
        let dir = tempfile::tempdir().unwrap();
        let cfg: FileDestinationConfig =
            serde_saphyr::from_str("name: f\ndirectory: out\n").unwrap();
        let w = FileWriter::new(&cfg, dir.path().join("out")).unwrap();
        let r = w.clone().oneshot(delivery()).await.unwrap();
        assert_eq!(r.detail.as_deref(), Some("1-d.hl7"));
        // Not visible before the barrier.
        assert!(!dir.path().join("out/1-d.hl7").exists());
        w.sync().await.unwrap();
        w.clone().oneshot(delivery()).await.unwrap();
        w.sync().await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, vec![std::ffi::OsString::from("1-d.hl7")]);
        assert_eq!(
            std::fs::read(dir.path().join("out/1-d.hl7")).unwrap(),
            b"MSH|^~\\&|\r"
        );
    }
}
