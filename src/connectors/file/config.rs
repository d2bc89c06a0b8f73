//! Configuration of the directory poller (source) and file writer
//! (destination). Relative directories are relative to the data directory.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::channel::destination_config;
use crate::config::units::{ByteSize, HumanDuration};

fn default_pattern() -> String {
    "*.hl7".into()
}
fn default_poll() -> HumanDuration {
    HumanDuration::secs(1)
}
fn default_max_file() -> ByteSize {
    ByteSize::mib(100)
}
fn default_filename() -> String {
    "{key}.{ext}".into()
}
fn yes() -> bool {
    true
}

/// `source: {type: directory}`: pick up files dropped in a folder.
///
/// A file is taken once its size has stayed the same for one poll
/// interval; every message in it (one, several, or an FHS/BHS batch) is
/// committed in one transaction, and only then is the file moved to
/// `processed_dir`. A crash before the move means the file is read again
/// (at least once, never lost).
///
/// ```yaml
/// source:
///   type: directory
///   path: inbox            # relative to the data directory
///   pattern: "*.hl7"
///   poll_interval: 1s
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySourceConfig {
    /// Folder to watch.
    pub path: PathBuf,
    /// File names to take (`*` and `?` wildcards). Default `*.hl7`.
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// How often to look. Default 1s.
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
    /// Where taken files go. Default `<path>/processed`.
    #[serde(default)]
    pub processed_dir: Option<PathBuf>,
    /// Larger files are moved to `<path>/rejected` with a note. Default 100MiB.
    #[serde(default = "default_max_file")]
    pub max_file_size: ByteSize,
}

destination_config! {
    /// `destinations: [{type: file}]`: write each message to a file.
    ///
    /// Written to a temporary file, fsynced, then renamed: a reader never
    /// sees half a file. The default name is the idempotency key, so a
    /// redelivery after a crash overwrites the same file.
    ///
    /// ```yaml
    /// - name: archive
    ///   type: file
    ///   directory: out            # relative to the data directory
    ///   filename: "{key}.{ext}"   # {key} {message_id} {channel} {destination} {control_id} {type} {ext}
    /// ```
    pub struct FileDestinationConfig {
        /// Folder to write to (created when missing).
        pub directory: PathBuf,
        /// File name template. Default `{key}.{ext}`.
        #[serde(default = "default_filename")]
        pub filename: String,
        /// fsync each file and the folder before reporting it sent. Default true.
        #[serde(default = "yes")]
        pub fsync: bool,
    }
}
