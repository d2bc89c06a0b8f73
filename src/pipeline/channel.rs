//! A channel, compiled: its policy, its source and its destinations'
//! connectors, built from config without opening anything.
//!
//! Owns turning a [`LoadedChannel`] into a [`ChannelPlan`] (filters
//! compiled, TLS files read and checked, file templates compiled), with
//! every problem reported as a `file:line` error. `check` stops here;
//! `serve` goes on to bind, build stacks and spawn (see `server`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::channel::{DestinationConfig, SourceConfig};
use crate::config::{ConfigError, Loaded, LoadedChannel};
use crate::connectors::fhir::config::{FhirSourceConfig, IntakeMode};
use crate::connectors::fhir::destination::FhirSender;
use crate::connectors::fhir::intake::FhirPolicy;
use crate::connectors::fhir::source::Partner;
use crate::connectors::file::config::DirectorySourceConfig;
use crate::connectors::file::destination::FileWriter;
use crate::connectors::http::destination::HttpSender;
use crate::connectors::mllp::config::MllpSourceConfig;
use crate::connectors::mllp::destination::MllpSender;
use crate::mapping::Registry;
use crate::pipeline::delivery::{Barrier, DeliveryService, Sender};
use crate::pipeline::filter::Rule;
use crate::pipeline::intake::Hl7Policy;
use crate::pipeline::layers::{StackContext, StackSettings, build_stack};
use crate::pipeline::steps::{self, MapStep};
use crate::tls;
use crate::tls::reload::ReloadingServerConfig;

/// A compiled source.
pub enum SourcePlan {
    /// An MLLP listener.
    Mllp {
        /// Key of its address in `Loaded::listeners`.
        listener: String,
        /// Settings.
        config: MllpSourceConfig,
        /// TLS, when configured.
        tls: Option<Arc<ReloadingServerConfig>>,
    },
    /// FHIR REST intake under `/fhir` on the HTTP listener.
    Fhir {
        /// Its rules.
        policy: Arc<FhirPolicy>,
        /// Settings.
        config: FhirSourceConfig,
        /// Who may call it.
        partners: Vec<Partner>,
        /// Its own listener (key in `Loaded::listeners`), else the `http` one.
        listener: Option<String>,
        /// HTTPS on its own listener.
        tls: Option<Arc<ReloadingServerConfig>>,
        /// `mode: sync`: the destination whose answer is returned.
        relay: Option<String>,
    },
    /// A directory poller.
    Directory {
        /// The folder (resolved).
        dir: PathBuf,
        /// Where taken files go (resolved).
        processed: PathBuf,
        /// Settings.
        config: DirectorySourceConfig,
    },
}

/// A compiled destination connector.
#[derive(Clone)]
pub enum Connector {
    /// MLLP sender.
    Mllp(MllpSender),
    /// File writer.
    File(FileWriter),
    /// FHIR client.
    Fhir(FhirSender),
    /// HTTP client.
    Http(HttpSender),
}

/// A compiled destination.
pub struct DestinationPlan {
    /// Name.
    pub name: Arc<str>,
    /// Resilience settings.
    pub settings: StackSettings,
    /// The connector.
    pub connector: Connector,
}

impl DestinationPlan {
    /// Hands this destination's final answers to `hub` (`mode: sync`).
    pub fn relay_to(&mut self, hub: Arc<crate::connectors::http::relay::RelayHub>) {
        match &mut self.connector {
            Connector::Fhir(s) => s.client.relay_to(hub),
            Connector::Http(s) => s.client.relay_to(hub),
            Connector::Mllp(_) | Connector::File(_) => {}
        }
    }

    /// The connector's durability barrier, when it writes in groups.
    pub fn barrier(&self) -> Option<Arc<dyn Barrier>> {
        match &self.connector {
            Connector::File(f) => Some(Arc::new(f.clone())),
            Connector::Mllp(_) | Connector::Fhir(_) | Connector::Http(_) => None,
        }
    }

    /// Builds the destination's tower stack around its connector.
    pub fn stack(&self, ctx: StackContext<'_>) -> DeliveryService {
        match &self.connector {
            Connector::Mllp(c) => build_stack(Sender(c.clone()), &self.settings, ctx),
            Connector::File(c) => build_stack(c.clone(), &self.settings, ctx),
            Connector::Fhir(c) => build_stack(Sender(c.clone()), &self.settings, ctx),
            Connector::Http(c) => build_stack(Sender(c.clone()), &self.settings, ctx),
        }
    }
}

/// A compiled channel.
pub struct ChannelPlan {
    /// Name.
    pub name: Arc<str>,
    /// Its file.
    pub file: PathBuf,
    /// HL7 rules.
    pub policy: Arc<Hl7Policy>,
    /// Source.
    pub source: SourcePlan,
    /// Destinations, in file order.
    pub destinations: Vec<DestinationPlan>,
    /// Steps run after the ACK (checked against the mappings).
    pub steps: Vec<MapStep>,
    /// The channel's time zone.
    pub timezone: jiff::tz::TimeZone,
}

impl ChannelPlan {
    /// Compiles a channel. Reads TLS files; opens no socket, creates no file.
    /// `mappings` is `None` when `mappings/` does not load (its own errors
    /// are reported; steps are then checked no further).
    pub fn compile(
        loaded: &Loaded,
        ch: &LoadedChannel,
        mappings: Option<&Registry>,
    ) -> Result<ChannelPlan, Vec<ConfigError>> {
        let file = &ch.file;
        let cfg = &ch.config;
        let base = ch.base_dir();
        let mut errors = Vec::new();
        let mut compile_rules =
            |list: &[serde_saphyr::Spanned<crate::config::channel::Condition>]| {
                list.iter()
                    .filter_map(|c| Rule::compile(c, file).map_err(|e| errors.push(e)).ok())
                    .collect::<Vec<_>>()
            };
        let filters = compile_rules(&cfg.filters);
        let reject = compile_rules(&cfg.reject);
        let steps = steps::compile(&cfg.steps, file, mappings).unwrap_or_else(|e| {
            errors.extend(e);
            Vec::new()
        });
        if cfg.destinations.is_empty() {
            tracing::debug!(channel = %cfg.name, "channel has no destinations: messages are stored only");
        }
        let source = match &cfg.source {
            SourceConfig::Mllp(m) => {
                let tls = match &m.tls {
                    Some(t) => match ReloadingServerConfig::load(t, &base, Vec::new(), &cfg.name) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            errors.push(ConfigError::file(file, format!("source.tls: {e}")));
                            None
                        }
                    },
                    None => None,
                };
                SourcePlan::Mllp {
                    listener: ch.listener.clone().unwrap_or_default(),
                    config: m.clone(),
                    tls,
                }
            }
            SourceConfig::Fhir(f) => {
                if !cfg.steps.is_empty() {
                    errors.push(ConfigError::file(
                        file,
                        "steps: a FHIR channel takes no steps yet (the map step reads HL7 v2)",
                    ));
                }
                let own = f.listen != "http";
                let mut partners = Vec::new();
                for p in &f.partners {
                    let token = match &p.token_sha256 {
                        None => None,
                        Some(t) => match crate::connectors::fhir::source::parse_hash(t) {
                            Some(h) => Some(h),
                            None => {
                                errors.push(ConfigError::file(
                                    file,
                                    format!(
                                        "source.partners: {:?}: token_sha256 must be 64 hex digits (printf %s \"$TOKEN\" | sha256sum)",
                                        p.name
                                    ),
                                ));
                                continue;
                            }
                        },
                    };
                    if token.is_none() && p.certificate.is_none() {
                        errors.push(ConfigError::file(
                            file,
                            format!(
                                "source.partners: {:?}: give token_sha256 or certificate",
                                p.name
                            ),
                        ));
                    }
                    if p.certificate.is_some()
                        && !(own && f.tls.as_ref().is_some_and(|t| t.client_ca.is_some()))
                    {
                        errors.push(ConfigError::file(
                            file,
                            format!(
                                "source.partners: {:?}: a certificate partner needs the channel's own listener with tls.client_ca",
                                p.name
                            ),
                        ));
                    }
                    partners.push(Partner {
                        name: p.name.clone(),
                        token,
                        certificate: p.certificate.clone(),
                    });
                }
                let tls = match (&f.tls, own) {
                    (Some(_), false) => {
                        errors.push(ConfigError::file(
                            file,
                            "source.tls: TLS is for a channel's own listener (listen: an address); the `http` listener is plain",
                        ));
                        None
                    }
                    (Some(t), true) => match ReloadingServerConfig::load(
                        t,
                        &base,
                        vec![b"http/1.1".to_vec()],
                        &cfg.name,
                    ) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            errors.push(ConfigError::file(file, format!("source.tls: {e}")));
                            None
                        }
                    },
                    (None, _) => None,
                };
                if f.partners.is_empty() && !f.allow_anonymous {
                    errors.push(ConfigError::file(
                        file,
                        "source.partners: list who may call this channel (or set allow_anonymous: true for development)",
                    ));
                }
                let schema = fhir::schema::Schema::r4();
                for r in &f.resources {
                    if !schema.is_resource(r) {
                        errors.push(ConfigError::file(
                            file,
                            format!("source.resources: {r:?} is not a FHIR R4 resource type"),
                        ));
                    }
                }
                let sync_relay = match f.mode {
                    IntakeMode::Async => None,
                    IntakeMode::Sync => {
                        let answering = |d: &DestinationConfig| {
                            matches!(d, DestinationConfig::Fhir(_) | DestinationConfig::Http(_))
                        };
                        let found = match &f.relay {
                            Some(name) => cfg.destinations.iter().find(|d| d.name() == name),
                            None => cfg.destinations.iter().find(|d| answering(d)),
                        };
                        match found {
                            Some(d) if answering(d) => Some(d.name().to_string()),
                            Some(d) => {
                                errors.push(ConfigError::file(
                                    file,
                                    format!("source.relay: {:?} is not a fhir or http destination: it has no answer to relay", d.name()),
                                ));
                                None
                            }
                            None => {
                                errors.push(ConfigError::file(
                                    file,
                                    "source.mode: sync needs a fhir or http destination whose answer it returns (source.relay)",
                                ));
                                None
                            }
                        }
                    }
                };
                SourcePlan::Fhir {
                    policy: Arc::new(FhirPolicy {
                        channel: cfg.name.as_str().into(),
                        resources: f.resources.clone(),
                        destinations: cfg
                            .destinations
                            .iter()
                            .map(|d| d.name().to_string())
                            .collect(),
                    }),
                    config: f.clone(),
                    partners,
                    listener: own.then(|| ch.listener.clone().unwrap_or_default()),
                    tls,
                    relay: sync_relay,
                }
            }
            SourceConfig::Directory(d) => {
                let dir = loaded.data_path(&d.path);
                let processed = match &d.processed_dir {
                    Some(p) => loaded.data_path(p),
                    None => dir.join("processed"),
                };
                SourcePlan::Directory {
                    dir,
                    processed,
                    config: d.clone(),
                }
            }
        };
        let mut destinations = Vec::new();
        for d in &cfg.destinations {
            let at =
                |m: String| ConfigError::file(file, format!("destination {:?}: {m}", d.name()));
            let connector = match d {
                DestinationConfig::Mllp(m) => {
                    let tls = match &m.tls {
                        Some(t) => match (
                            tls::client_config(t, &base),
                            tls::server_name(t, &m.address),
                        ) {
                            (Ok(c), Ok(n)) => Some((c, n)),
                            (Err(e), _) => {
                                errors.push(at(format!("tls: {e}")));
                                continue;
                            }
                            (_, Err(e)) => {
                                errors.push(at(format!("tls: {e}")));
                                continue;
                            }
                        },
                        None => None,
                    };
                    if !m.address.contains(':') {
                        errors.push(at(format!("address {:?} is not host:port", m.address)));
                        continue;
                    }
                    Connector::Mllp(MllpSender::new(m.clone(), tls))
                }
                DestinationConfig::Fhir(f) => {
                    match client_tls(&f.tls, &base).and_then(|t| FhirSender::new(f, t, &base)) {
                        Ok(s) => Connector::Fhir(s),
                        Err(e) => {
                            errors.push(at(e));
                            continue;
                        }
                    }
                }
                DestinationConfig::Http(h) => {
                    match client_tls(&h.tls, &base).and_then(|t| HttpSender::new(h, t, &base)) {
                        Ok(s) => Connector::Http(s),
                        Err(e) => {
                            errors.push(at(e));
                            continue;
                        }
                    }
                }
                DestinationConfig::File(f) => {
                    match FileWriter::new(f, loaded.data_path(&f.directory)) {
                        Ok(w) => Connector::File(w),
                        Err(e) => {
                            errors.push(at(e));
                            continue;
                        }
                    }
                }
            };
            destinations.push(DestinationPlan {
                name: d.name().into(),
                settings: d.stack_settings(),
                connector,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let name: Arc<str> = cfg.name.as_str().into();
        Ok(ChannelPlan {
            policy: Arc::new(Hl7Policy {
                channel: name.clone(),
                versions: cfg.accept.versions.clone(),
                processing_ids: cfg.accept.processing_ids.clone(),
                filters,
                reject,
                dedup: cfg.duplicates.as_ref().map(|d| d.window.get()),
                destinations: cfg
                    .destinations
                    .iter()
                    .map(|d| d.name().to_string())
                    .collect(),
                timezone: ch.timezone.clone(),
                has_steps: !cfg.steps.is_empty(),
            }),
            name,
            file: file.clone(),
            source,
            destinations,
            steps,
            timezone: ch.timezone.clone(),
        })
    }
}

/// An outbound TLS config, when one is configured.
fn client_tls(
    cfg: &Option<tls::TlsClientConfig>,
    base: &std::path::Path,
) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    cfg.as_ref()
        .map(|t| tls::client_config(t, base).map_err(|e| format!("tls: {e}")))
        .transpose()
}

/// Compiles every channel; all errors, in file order.
pub fn compile_all(
    loaded: &Loaded,
    mappings: Option<&Registry>,
) -> Result<Vec<ChannelPlan>, Vec<ConfigError>> {
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for ch in &loaded.channels {
        match ChannelPlan::compile(loaded, ch, mappings) {
            Ok(p) => plans.push(p),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}
