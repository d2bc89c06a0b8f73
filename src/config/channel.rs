//! A channel file, `connectors/<channel>.yaml`: its source, acceptance
//! rules, filters, reject rules and destinations.
//!
//! Owns the typed shape of channel files; the doc comments are the
//! reference. Compiling conditions and building connectors belong to
//! `pipeline` and `connectors`.
//!
//! ```yaml
//! name: adt-in
//! description: ADT and results from the hospital's HIS
//! source:
//!   type: mllp
//!   listen: mllp
//! accept:
//!   versions: ["2.3*", "2.4*", "2.5*"]
//!   processing_ids: [P]
//! duplicates:
//!   window: 10m
//! filters:                       # all must hold, else the message is `filtered` (ACK AA)
//!   - type: ["ADT^A0*", "ORU^R01"]
//! reject:                        # any that holds refuses the message (ACK AR)
//!   - field: MSH-11
//!     equals: T
//!     reason: test messages are not accepted here
//! steps:                         # after the ACK: map to a FHIR Bundle
//!   - map: hl7v2-fhir-r4
//! destinations:
//!   - name: archive
//!     type: file
//!     directory: out
//! ```

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use crate::config::tagged::{TaggedEnum, deserialize_tagged};
use crate::config::units::HumanDuration;
use crate::connectors::fhir::config::{FhirDestinationConfig, FhirSourceConfig};
use crate::connectors::file::config::{DirectorySourceConfig, FileDestinationConfig};
use crate::connectors::http::config::HttpDestinationConfig;
use crate::connectors::mllp::config::{MllpDestinationConfig, MllpSourceConfig};
use crate::pipeline::layers::StackSettings;

/// Declares a destination's config struct with the keys every destination
/// accepts (`name`, `retry`, `rate_limit`, `concurrency_limit`, `timeout`,
/// `circuit_breaker`).
macro_rules! destination_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Name, unique within the channel (letters, digits, `-`, `_`).
            pub name: String,
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// Retry policy; see `pipeline::layers::retry::RetryPolicy`.
            #[serde(default)]
            pub retry: $crate::pipeline::layers::retry::RetryPolicy,
            /// Rate limit; none by default.
            #[serde(default)]
            pub rate_limit: Option<$crate::pipeline::layers::rate_limit::RateLimitConfig>,
            /// Attempts in flight at once (shared by name); none by default.
            #[serde(default)]
            pub concurrency_limit:
                Option<$crate::pipeline::layers::concurrency_limit::ConcurrencyLimitConfig>,
            /// Per-attempt timeout. Default 30s.
            #[serde(default = "crate::config::channel::default_attempt_timeout")]
            pub timeout: $crate::config::units::HumanDuration,
            /// Circuit breaker; see `pipeline::layers::circuit_breaker`.
            #[serde(default)]
            pub circuit_breaker: $crate::pipeline::layers::circuit_breaker::CircuitBreakerConfig,
        }

        impl $name {
            /// The resilience settings of this destination.
            pub fn stack_settings(&self) -> $crate::pipeline::layers::StackSettings {
                $crate::pipeline::layers::StackSettings {
                    retry: self.retry.clone(),
                    rate_limit: self.rate_limit.clone(),
                    concurrency_limit: self.concurrency_limit.clone(),
                    timeout: self.timeout,
                    circuit_breaker: self.circuit_breaker.clone(),
                }
            }
        }
    };
}
pub(crate) use destination_config;

/// Default per-attempt timeout.
pub fn default_attempt_timeout() -> HumanDuration {
    HumanDuration::secs(30)
}

fn yes() -> bool {
    true
}

/// A channel file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Channel name, unique (letters, digits, `-`, `_`). Appears in metrics
    /// and `caduceus messages list`.
    pub name: String,
    /// What the channel is for.
    #[serde(default)]
    pub description: Option<String>,
    /// `false` keeps the file but runs nothing. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// IANA time zone for timestamps without an offset. Default: the
    /// server's `timezone`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Where messages come from.
    pub source: SourceConfig,
    /// Which HL7 versions and processing ids are accepted (others get AR).
    #[serde(default)]
    pub accept: AcceptConfig,
    /// Duplicate suppression; off unless set.
    #[serde(default)]
    pub duplicates: Option<DuplicatesConfig>,
    /// Conditions that must all hold; otherwise the message is stored as
    /// `filtered` and acknowledged AA.
    #[serde(default)]
    pub filters: Vec<Spanned<Condition>>,
    /// Conditions any of which refuses the message: stored as `error`,
    /// acknowledged AR with the rule's `reason`.
    #[serde(default)]
    pub reject: Vec<Spanned<Condition>>,
    /// What runs on an accepted message after it is acknowledged, before
    /// the destinations get it (DESIGN.md §1). Today: one `map` step.
    #[serde(default)]
    pub steps: Vec<Spanned<StepConfig>>,
    /// Where accepted messages go; each has its own queue and stack.
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
}

/// One entry of `steps:`.
///
/// ```yaml
/// steps:
///   - map: hl7v2-fhir-r4        # a mapping name from mappings/
///     bundle: transaction       # or message; default: the mapping's own
///     pretty: true              # indented JSON; default false
///     strict: true              # a value no conversion reads fails the message; default false
/// ```
///
/// The message is stored and acknowledged first; the step's output is what
/// every destination of the channel receives. A mapping error puts the
/// message in `error` (see `caduceus messages show`); fix the mapping and
/// `caduceus messages reprocess` it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// The mapping to run.
    pub map: String,
    /// Override the entry mapping's Bundle type: `transaction` or `message`.
    #[serde(default)]
    pub bundle: Option<String>,
    /// Write indented JSON.
    #[serde(default)]
    pub pretty: bool,
    /// A message value no conversion can read (a date that is no date) puts
    /// the message in `error`, rather than being kept in an
    /// `hl7v2-unreadable-value` extension on the resource it was for. For
    /// feeds whose Bundles update records in place (a PUT without the value
    /// would erase the one the server holds).
    #[serde(default)]
    pub strict: bool,
}

fn default_versions() -> Vec<String> {
    vec!["2.*".into()]
}

/// `accept:` in a channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptConfig {
    /// MSH-12 patterns (`*`, `?`). Default `["2.*"]`: every v2 version.
    #[serde(default = "default_versions")]
    pub versions: Vec<String>,
    /// MSH-11.1 values accepted (P, T, D). Default: all.
    #[serde(default)]
    pub processing_ids: Vec<String>,
}

impl Default for AcceptConfig {
    fn default() -> Self {
        AcceptConfig {
            versions: default_versions(),
            processing_ids: Vec::new(),
        }
    }
}

/// `duplicates:` in a channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicatesConfig {
    /// A message with the same sender (MSH-3^MSH-4) and control id (MSH-10)
    /// as one received within this window is acknowledged AA and stored as
    /// `filtered`, not processed again.
    pub window: HumanDuration,
}

/// One string or a list of them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `type: ADT^A01`
    One(String),
    /// `type: [ADT^A01, ADT^A04]`
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values.
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A condition on a message: by type, or by a field path.
///
/// ```yaml
/// - type: ["ADT^A0*", "ORU^R01"]        # message type (MSH-9.1^MSH-9.2), * and ? wildcards
/// - field: PID-3.1                      # an HL7 path...
///   present: true                       # ...is valued
/// - field: MSH-11
///   in: [P, T]                          # ...is one of
/// - field: PV1-2
///   equals: I                           # ...equals
/// - field: MSH-4
///   matches: "GHH*"                     # ...matches a wildcard
///   not: true                           # negate any of the above
///   reason: only GHH facilities         # shown in the message's state reason
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Message type patterns.
    #[serde(rename = "type", default)]
    pub message_type: Option<OneOrMany>,
    /// An HL7 path (`PID-3.1`, `OBX[*]-5`: any selected value may match).
    #[serde(default)]
    pub field: Option<String>,
    /// The field's text equals this.
    #[serde(default)]
    pub equals: Option<String>,
    /// The field's text is one of these.
    #[serde(rename = "in", default)]
    pub one_of: Option<Vec<String>>,
    /// The field is valued (`true`) or empty/absent (`false`).
    #[serde(default)]
    pub present: Option<bool>,
    /// The field's text matches this wildcard pattern.
    #[serde(default)]
    pub matches: Option<String>,
    /// Negate the condition.
    #[serde(default)]
    pub not: bool,
    /// Why, in people's words (shown as the state reason).
    #[serde(default)]
    pub reason: Option<String>,
}

/// `source:` of a channel.
#[derive(Clone, Debug)]
pub enum SourceConfig {
    /// `type: mllp`
    Mllp(MllpSourceConfig),
    /// `type: directory`
    Directory(DirectorySourceConfig),
    /// `type: fhir`
    Fhir(FhirSourceConfig),
}

impl TaggedEnum for SourceConfig {
    const TAGS: &'static [&'static str] = &["mllp", "directory", "fhir"];
    const WHAT: &'static str = "source";
    fn deserialize_variant<'de, D: Deserializer<'de>>(
        tag: &str,
        rest: D,
    ) -> Result<Self, D::Error> {
        match tag {
            "mllp" => MllpSourceConfig::deserialize(rest).map(SourceConfig::Mllp),
            "directory" => DirectorySourceConfig::deserialize(rest).map(SourceConfig::Directory),
            "fhir" => FhirSourceConfig::deserialize(rest).map(SourceConfig::Fhir),
            _ => Err(D::Error::unknown_variant(tag, Self::TAGS)),
        }
    }
}

impl<'de> Deserialize<'de> for SourceConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_tagged(d)
    }
}

/// One entry of `destinations:`.
#[derive(Clone, Debug)]
pub enum DestinationConfig {
    /// `type: mllp`
    Mllp(MllpDestinationConfig),
    /// `type: file`
    File(FileDestinationConfig),
    /// `type: fhir`
    Fhir(FhirDestinationConfig),
    /// `type: http`
    Http(HttpDestinationConfig),
}

impl DestinationConfig {
    /// The destination's name.
    pub fn name(&self) -> &str {
        match self {
            DestinationConfig::Mllp(c) => &c.name,
            DestinationConfig::File(c) => &c.name,
            DestinationConfig::Fhir(c) => &c.name,
            DestinationConfig::Http(c) => &c.name,
        }
    }

    /// Its resilience settings.
    pub fn stack_settings(&self) -> StackSettings {
        match self {
            DestinationConfig::Mllp(c) => c.stack_settings(),
            DestinationConfig::File(c) => c.stack_settings(),
            DestinationConfig::Fhir(c) => c.stack_settings(),
            DestinationConfig::Http(c) => c.stack_settings(),
        }
    }
}

impl TaggedEnum for DestinationConfig {
    const TAGS: &'static [&'static str] = &["mllp", "file", "fhir", "http"];
    const WHAT: &'static str = "destination";
    fn deserialize_variant<'de, D: Deserializer<'de>>(
        tag: &str,
        rest: D,
    ) -> Result<Self, D::Error> {
        match tag {
            "mllp" => MllpDestinationConfig::deserialize(rest).map(DestinationConfig::Mllp),
            "file" => FileDestinationConfig::deserialize(rest).map(DestinationConfig::File),
            "fhir" => FhirDestinationConfig::deserialize(rest).map(DestinationConfig::Fhir),
            "http" => HttpDestinationConfig::deserialize(rest).map(DestinationConfig::Http),
            _ => Err(D::Error::unknown_variant(tag, Self::TAGS)),
        }
    }
}

impl<'de> Deserialize<'de> for DestinationConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_tagged(d)
    }
}
