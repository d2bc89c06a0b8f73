//! Loading and checking `config/caduceus.yaml` and `connectors/*.yaml`.
//!
//! Owns reading the files, resolving relative paths and listen addresses
//! (with `--listen`/`--data-dir` overrides), and the errors, which always
//! name the file and, when the YAML parser knows it, the line and column:
//! `connectors/adt.yaml:12:5: unknown field `prot`, expected one of ...`.
//! It does not build anything: compiling filters and connectors is the
//! pipeline's job (and `check` runs that too, without side effects).

pub mod channel;
pub mod server;
pub mod tagged;
pub mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use channel::{ChannelConfig, DestinationConfig, SourceConfig};
pub use server::ServerConfig;

/// One problem in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error about a whole file.
    pub fn file(file: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// An error at a YAML location.
    pub fn at(
        file: &Path,
        loc: &serde_saphyr::Location,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line: Some(loc.line()),
            column: Some(loc.column()),
            message: message.into(),
        }
    }

    /// From a YAML parse error.
    pub fn from_yaml(file: &Path, e: &serde_saphyr::Error) -> ConfigError {
        let loc = e.location();
        ConfigError {
            file: file.to_path_buf(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: clean_yaml_message(&e.without_snippet().to_string()),
        }
    }
}

/// Strips the parser's own "line N column M:" and " at line N, column M"
/// decorations; the location is printed once, in `file:line:col` form.
fn clean_yaml_message(s: &str) -> String {
    let mut m = s
        .trim()
        .strip_prefix("error: ")
        .unwrap_or(s.trim())
        .to_string();
    if m.starts_with("line ")
        && let Some(i) = m.find(": ")
    {
        m = m[i + 2..].to_string();
    }
    if let Some(i) = m.rfind(" at line ") {
        m.truncate(i);
    }
    m
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = display_path(&self.file);
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{file}:{l}:{c}: {}", self.message),
            (Some(l), None) => write!(f, "{file}:{l}: {}", self.message),
            _ => write!(f, "{file}: {}", self.message),
        }
    }
}

/// Removes `.` and `..` components without touching the file system.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Paths are shown relative to the working directory when they are under it.
pub fn display_path(p: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let shown = cwd
        .as_deref()
        .and_then(|c| p.strip_prefix(c).ok())
        .unwrap_or(p);
    shown.display().to_string()
}

/// Every problem found, in file order.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Command-line overrides.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--listen NAME=ADDR`, NAME a listener or channel name.
    pub listen: Vec<(String, String)>,
}

/// A channel file, read.
#[derive(Clone, Debug)]
pub struct LoadedChannel {
    /// Its file.
    pub file: PathBuf,
    /// Its contents.
    pub config: ChannelConfig,
    /// For MLLP sources: the key of its listener in [`Loaded::listeners`].
    pub listener: Option<String>,
    /// Its time zone (the channel's, else the server's).
    pub timezone: jiff::tz::TimeZone,
}

impl LoadedChannel {
    /// The folder relative paths in this file (TLS files) start from.
    pub fn base_dir(&self) -> PathBuf {
        self.file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

/// Everything the config names.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The server file.
    pub file: PathBuf,
    /// Its contents.
    pub server: ServerConfig,
    /// Resolved data directory.
    pub data_dir: PathBuf,
    /// Resolved channel folder.
    pub connectors_dir: PathBuf,
    /// Resolved mapping folder.
    pub mappings_dir: PathBuf,
    /// Listen addresses by name (server listeners and channels' own).
    pub listeners: BTreeMap<String, String>,
    /// Enabled channels, in file name order.
    pub channels: Vec<LoadedChannel>,
    /// The server's time zone.
    pub timezone: jiff::tz::TimeZone,
}

impl Loaded {
    /// Resolves a data path (file destinations, pollers) against the data directory.
    pub fn data_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.data_dir.join(p)
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A `host:port` listen address (port 0 picks a free port).
fn valid_address(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}

fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name).map_err(|e| {
        format!(
            "unknown time zone {name:?} ({e}); use an IANA name such as UTC or America/New_York"
        )
    })
}

/// Reads the server file, then every channel file. Collects every error
/// it can before giving up.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Loaded, ConfigErrors> {
    let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let text = std::fs::read_to_string(&file).map_err(|e| {
        ConfigErrors(vec![ConfigError::file(
            &file,
            format!("cannot read the server config: {e}"),
        )])
    })?;
    let server: ServerConfig = serde_saphyr::from_str(&text)
        .map_err(|e| ConfigErrors(vec![ConfigError::from_yaml(&file, &e)]))?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let rel = |p: &Path| {
        if p.is_absolute() {
            normalize(p)
        } else {
            normalize(&base.join(p))
        }
    };
    let data_dir = match &overrides.data_dir {
        Some(d) => normalize(&std::path::absolute(d).unwrap_or_else(|_| d.clone())),
        None => rel(&server.data_dir),
    };
    let connectors_dir = rel(&server.connectors_dir);
    let mappings_dir = rel(&server.mappings_dir);
    let mut errors = Vec::new();
    let timezone = time_zone(&server.timezone).unwrap_or_else(|m| {
        errors.push(ConfigError::file(&file, format!("timezone: {m}")));
        jiff::tz::TimeZone::UTC
    });
    let mut listeners = BTreeMap::new();
    for (name, addr) in &server.listeners {
        if !valid_name(name) {
            errors.push(ConfigError::file(
                &file,
                format!("listeners: invalid name {name:?} (letters, digits, -, _)"),
            ));
        }
        if !valid_address(addr) {
            errors.push(ConfigError::file(
                &file,
                format!("listeners.{name}: {addr:?} is not host:port"),
            ));
        }
        listeners.insert(name.clone(), addr.clone());
    }
    if !listeners.contains_key("http") {
        listeners.insert("http".into(), "127.0.0.1:8080".into());
    }

    let mut channels = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&connectors_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(e) => {
            errors.push(ConfigError::file(
                &connectors_dir,
                format!("cannot read the connectors folder: {e}"),
            ));
            Vec::new()
        }
    };
    files.sort();
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ConfigError::file(&f, format!("cannot read: {e}")));
                continue;
            }
        };
        match serde_saphyr::from_str::<ChannelConfig>(&text) {
            Ok(c) => {
                if c.enabled {
                    let tz = match &c.timezone {
                        Some(name) => time_zone(name).unwrap_or_else(|m| {
                            errors.push(ConfigError::file(&f, format!("timezone: {m}")));
                            timezone.clone()
                        }),
                        None => timezone.clone(),
                    };
                    channels.push(LoadedChannel {
                        file: f,
                        config: c,
                        listener: None,
                        timezone: tz,
                    });
                }
            }
            Err(e) => errors.push(ConfigError::from_yaml(&f, &e)),
        }
    }

    // Names, destinations, listeners.
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut bound: BTreeMap<String, String> = BTreeMap::new();
    for ch in &mut channels {
        let name = ch.config.name.clone();
        if !valid_name(&name) {
            errors.push(ConfigError::file(
                &ch.file,
                format!(
                    "name: {name:?} is not a valid channel name (letters, digits, -, _; at most 64)"
                ),
            ));
        }
        if let Some(other) = seen.insert(name.clone(), ch.file.clone()) {
            errors.push(ConfigError::file(
                &ch.file,
                format!(
                    "channel name {name:?} is also used by {}",
                    display_path(&other)
                ),
            ));
        }
        let mut dests = BTreeMap::new();
        for d in &ch.config.destinations {
            if !valid_name(d.name()) {
                errors.push(ConfigError::file(
                    &ch.file,
                    format!(
                        "destination name {:?} is not valid (letters, digits, -, _)",
                        d.name()
                    ),
                ));
            }
            if dests.insert(d.name().to_string(), ()).is_some() {
                errors.push(ConfigError::file(
                    &ch.file,
                    format!(
                        "destination name {:?} is used twice in this channel",
                        d.name()
                    ),
                ));
            }
        }
        if let SourceConfig::Fhir(f) = &ch.config.source
            && f.listen != "http"
        {
            if !valid_address(&f.listen) {
                errors.push(ConfigError::file(
                    &ch.file,
                    format!(
                        "source.listen: {:?} is neither `http` nor host:port",
                        f.listen
                    ),
                ));
            } else if listeners.contains_key(&name) {
                errors.push(ConfigError::file(
                    &ch.file,
                    format!("channel {name:?} has its own address but a server listener has the same name"),
                ));
            } else {
                listeners.insert(name.clone(), f.listen.clone());
                ch.listener = Some(name.clone());
            }
        }
        if let SourceConfig::Mllp(m) = &ch.config.source {
            let key = if valid_address(&m.listen) {
                if listeners.contains_key(&name) {
                    errors.push(ConfigError::file(
                        &ch.file,
                        format!("channel {name:?} has its own address but a server listener has the same name"),
                    ));
                }
                listeners.insert(name.clone(), m.listen.clone());
                name.clone()
            } else if m.listen == "http" || !listeners.contains_key(&m.listen) {
                let known: Vec<&String> = listeners.keys().filter(|k| *k != "http").collect();
                errors.push(ConfigError::file(
                    &ch.file,
                    format!(
                        "source.listen: {:?} is neither host:port nor an MLLP listener in {} (known: {})",
                        m.listen,
                        display_path(&file),
                        if known.is_empty() { "none".to_string() } else { known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ") }
                    ),
                ));
                continue;
            } else {
                m.listen.clone()
            };
            if let Some(other) = bound.insert(key.clone(), name.clone()) {
                errors.push(ConfigError::file(
                    &ch.file,
                    format!("listener {key:?} is already used by channel {other:?}; an MLLP listener serves one channel"),
                ));
            }
            ch.listener = Some(key);
        }
    }

    for (name, addr) in &overrides.listen {
        if !valid_address(addr) {
            errors.push(ConfigError::file(
                &file,
                format!("--listen {name}={addr}: not host:port"),
            ));
        } else if let Some(slot) = listeners.get_mut(name) {
            *slot = addr.clone();
        } else {
            errors.push(ConfigError::file(
                &file,
                format!(
                    "--listen {name}={addr}: no listener or channel named {name:?} (known: {})",
                    listeners.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Loaded {
        file,
        server,
        data_dir,
        connectors_dir,
        mappings_dir,
        listeners,
        channels,
        timezone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(server: &str, channels: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::create_dir_all(dir.path().join("connectors")).unwrap();
        let cfg = dir.path().join("config/caduceus.yaml");
        std::fs::write(&cfg, server).unwrap();
        for (name, body) in channels {
            std::fs::write(dir.path().join("connectors").join(name), body).unwrap();
        }
        (dir, cfg)
    }

    const SERVER: &str = "listeners:\n  http: 127.0.0.1:8080\n  mllp: 127.0.0.1:2575\n";
    const CHANNEL: &str = "name: adt\nsource:\n  type: mllp\n  listen: mllp\ndestinations:\n  - name: out\n    type: file\n    directory: out\n";

    fn errors(server: &str, channels: &[(&str, &str)], o: &Overrides) -> Vec<String> {
        let (_d, cfg) = setup(server, channels);
        match load(&cfg, o) {
            Ok(_) => vec![],
            Err(e) => {
                e.0.iter()
                    .map(|e| {
                        format!(
                            "{}:{}:{}: {}",
                            e.file.file_name().unwrap().to_string_lossy(),
                            e.line.unwrap_or(0),
                            e.column.unwrap_or(0),
                            e.message
                        )
                    })
                    .collect()
            }
        }
    }

    #[test]
    fn loads_and_resolves() {
        let (d, cfg) = setup(SERVER, &[("adt.yaml", CHANNEL)]);
        let o = Overrides {
            data_dir: None,
            listen: vec![("mllp".into(), "127.0.0.1:0".into())],
        };
        let l = load(&cfg, &o).unwrap();
        assert_eq!(l.channels.len(), 1);
        assert_eq!(l.channels[0].listener.as_deref(), Some("mllp"));
        assert_eq!(l.listeners["mllp"], "127.0.0.1:0");
        assert_eq!(l.data_dir, d.path().join("data"));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let o = Overrides::default();
        let e = errors(
            SERVER,
            &[(
                "adt.yaml",
                "name: adt\nsource:\n  type: mllp\n  listen: mllp\n  max_mesage_size: 1\n",
            )],
            &o,
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("adt.yaml:5:3: unknown field `max_mesage_size`"),
            "{e:?}"
        );

        let e = errors(
            SERVER,
            &[(
                "adt.yaml",
                "name: adt\nsource:\n  type: mllp\n  listen: mllp\ndestinations:\n  - name: x\n    type: file\n    directory: out\n    timeout: soon\n",
            )],
            &o,
        );
        assert!(e[0].starts_with("adt.yaml:9:14: invalid duration"), "{e:?}");

        let e = errors(
            SERVER,
            &[("a.yaml", "name: adt\nsource:\n  type: smtp\n")],
            &o,
        );
        assert!(e[0].contains("unknown variant `smtp`"), "{e:?}");

        let e = errors(SERVER, &[("a.yaml", CHANNEL), ("b.yaml", CHANNEL)], &o);
        assert!(e.iter().any(|m| m.contains("also used by")), "{e:?}");
        assert!(
            e.iter().any(|m| m.contains("already used by channel")),
            "{e:?}"
        );

        let e = errors(
            SERVER,
            &[("a.yaml", &CHANNEL.replace("listen: mllp", "listen: hl7"))],
            &o,
        );
        assert!(
            e[0].contains("neither host:port nor an MLLP listener"),
            "{e:?}"
        );

        let e = errors("timezone: Mars/Olympus\n", &[], &o);
        assert!(e[0].contains("unknown time zone"), "{e:?}");

        let bad = Overrides {
            data_dir: None,
            listen: vec![("nope".into(), "127.0.0.1:0".into())],
        };
        let e = errors(SERVER, &[], &bad);
        assert!(
            e[0].contains("no listener or channel named \"nope\""),
            "{e:?}"
        );
    }

    #[test]
    fn cleans_parser_decorations() {
        assert_eq!(
            clean_yaml_message("error: line 4 column 5: unknown field `x`"),
            "unknown field `x`"
        );
        assert_eq!(
            clean_yaml_message("unknown field `x` at line 2, column 1"),
            "unknown field `x`"
        );
    }
}
