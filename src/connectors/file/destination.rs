//! The file writer destination.
//!
//! Owns naming and writing: the name comes from a template compiled at
//! load (unknown placeholders are config errors), every placeholder value
//! is reduced to safe file-name characters, and the bytes go to a hidden
//! temporary file in the same folder, are fsynced, renamed into place and
//! the folder fsynced, so a reader never sees half a file and a reported
//! `sent` survives a power cut. The default name is the idempotency key:
//! a redelivery after a crash overwrites the same file.

use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::config::FileDestinationConfig;
use super::{safe_name_part, sync_dir};
use crate::pipeline::delivery::{Delivery, DeliveryError, DeliveryFuture, Receipt};

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
            return Err(format!("filename {s:?}: a file name cannot contain a path separator"));
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
                Part::ControlId => out.push_str(&safe_name_part(d.task.control_id.as_deref().unwrap_or("none"))),
                Part::Type => out.push_str(&safe_name_part(d.task.message_type.as_deref().unwrap_or("unknown"))),
                Part::Ext => out.push_str(extension(&d.task.payload)),
            }
        }
        out
    }
}

/// A file extension from the payload's first bytes.
pub fn extension(payload: &[u8]) -> &'static str {
    let body = payload.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(payload);
    let first = body.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &body[i..]).unwrap_or(body);
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

/// The file writer connector (a tower service).
#[derive(Clone)]
pub struct FileWriter {
    dir: Arc<PathBuf>,
    template: Arc<Template>,
    fsync: bool,
}

impl FileWriter {
    /// Builds the writer; `dir` is already resolved. Creates nothing yet.
    pub fn new(cfg: &FileDestinationConfig, dir: PathBuf) -> Result<FileWriter, String> {
        Ok(FileWriter {
            dir: Arc::new(dir),
            template: Arc::new(Template::compile(&cfg.filename)?),
            fsync: cfg.fsync,
        })
    }
}

fn write_file(dir: &std::path::Path, name: &str, bytes: &[u8], fsync: bool) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", fastrand::u64(..)));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, dir.join(name))?;
        if fsync {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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
        let fsync = self.fsync;
        Box::pin(async move {
            let payload = d.task.payload.clone();
            let n = name.clone();
            let r = tokio::task::spawn_blocking(move || write_file(&dir, &n, &payload, fsync))
                .await
                .map_err(|e| DeliveryError::retryable(format!("file write task failed: {e}")))?;
            match r {
                Ok(()) => Ok(Receipt {
                    detail: Some(name),
                    attempts: 0,
                }),
                // Disk full, permissions, a missing mount: all may clear up.
                Err(e) => Err(DeliveryError::retryable(format!("cannot write {name}: {e}"))),
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
        assert!(Template::compile("{nope}").unwrap_err().contains("unknown placeholder"));
        assert!(Template::compile("fixed.txt").unwrap_err().contains("no placeholder"));
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
        let cfg: FileDestinationConfig = serde_saphyr::from_str("name: f\ndirectory: out\n").unwrap();
        let w = FileWriter::new(&cfg, dir.path().join("out")).unwrap();
        let r = w.clone().oneshot(delivery()).await.unwrap();
        assert_eq!(r.detail.as_deref(), Some("1-d.hl7"));
        w.oneshot(delivery()).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, vec![std::ffi::OsString::from("1-d.hl7")]);
        assert_eq!(std::fs::read(dir.path().join("out/1-d.hl7")).unwrap(), b"MSH|^~\\&|\r");
    }
}
