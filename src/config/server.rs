//! `config/caduceus.yaml`: the server itself.
//!
//! Owns the typed shape of the server file; the doc comments are the
//! reference.
//!
//! ```yaml
//! data_dir: ../data             # store, lock, ports.json, file outputs (relative to this file)
//! connectors_dir: ../connectors
//! mappings_dir: ../mappings
//! timezone: UTC                 # for HL7 timestamps without an offset
//! listeners:
//!   http: 127.0.0.1:8080        # /healthz /readyz /metrics (and the APIs)
//!   mllp: 127.0.0.1:2575        # used by channels with `listen: mllp`
//! log:
//!   level: info
//!   format: text                # or json
//! shutdown_grace: 10s
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::units::HumanDuration;

fn d(s: &str) -> PathBuf {
    PathBuf::from(s)
}

/// The server file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Data directory, relative to this file. Default `../data`.
    #[serde(default = "default_data")]
    pub data_dir: PathBuf,
    /// Channel files, relative to this file. Default `../connectors`.
    #[serde(default = "default_connectors")]
    pub connectors_dir: PathBuf,
    /// Mapping files, relative to this file. Default `../mappings`.
    #[serde(default = "default_mappings")]
    pub mappings_dir: PathBuf,
    /// IANA time zone for timestamps without an offset. Default `UTC`.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Named listen addresses. `http` is required (it has a default);
    /// MLLP channels refer to the others by name.
    #[serde(default = "default_listeners")]
    pub listeners: BTreeMap<String, String>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// How long `serve` waits for in-flight work on SIGTERM. Default 10s.
    #[serde(default = "default_grace")]
    pub shutdown_grace: HumanDuration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: default_data(),
            connectors_dir: default_connectors(),
            mappings_dir: default_mappings(),
            timezone: default_tz(),
            listeners: default_listeners(),
            log: LogConfig::default(),
            shutdown_grace: default_grace(),
        }
    }
}

fn default_data() -> PathBuf {
    d("../data")
}
fn default_connectors() -> PathBuf {
    d("../connectors")
}
fn default_mappings() -> PathBuf {
    d("../mappings")
}
fn default_tz() -> String {
    "UTC".into()
}
fn default_grace() -> HumanDuration {
    HumanDuration::secs(10)
}
fn default_listeners() -> BTreeMap<String, String> {
    BTreeMap::from([("http".to_string(), "127.0.0.1:8080".to_string())])
}

/// `log:`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info` (default), `debug`, `trace`, or a
    /// `tracing` filter. `RUST_LOG` overrides it. Message content is never
    /// logged at `info` or above.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
            format: LogFormat::Text,
        }
    }
}

fn default_level() -> String {
    "info".into()
}

/// Log line format.
#[derive(Clone, Copy, Debug, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}
