//! Files: a directory poller (source) and a file writer (destination).
//!
//! - `source`: picks up settled files, commits every message in them in one
//!   transaction, then moves the file to `processed/`.
//! - `destination`: writes each delivery to a temporary file, fsyncs it and
//!   renames it into place.
//! - `config`: both blocks' settings.

pub mod config;
pub mod destination;
pub mod source;

/// Keeps a file name part to letters, digits, `.`, `-` and `_`.
pub fn safe_name_part(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "_".into()
    } else {
        trimmed.chars().take(100).collect()
    }
}

/// fsyncs a directory so a rename in it is durable.
pub fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
