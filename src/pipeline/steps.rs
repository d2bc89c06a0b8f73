//! A channel's steps, compiled: what runs on an accepted message after its
//! ACK and before its deliveries (DESIGN.md §1).
//!
//! Owns checking `steps:` against the loaded mappings (an unknown mapping
//! is a `file:line:col` error at `check`) and running them on one message:
//! today one `map` step, whose output (a FHIR Bundle as JSON) is the
//! payload every destination of the channel receives. It does not own the
//! loop over `received` messages (see `processor`) nor the mapping
//! language (see `mapping`).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use serde_saphyr::Spanned;

use crate::config::ConfigError;
use crate::config::channel::StepConfig;
use crate::mapping::live::LiveRegistry;
use crate::mapping::{BundleType, Registry, RunOptions};

/// One `map` step.
#[derive(Clone, Debug)]
pub struct MapStep {
    /// The mapping's name.
    pub mapping: String,
    /// Bundle type override.
    pub bundle: Option<BundleType>,
    /// Indented JSON.
    pub pretty: bool,
    /// Fail on a value no conversion reads ([`RunOptions::strict`]).
    pub strict: bool,
}

/// What a step run gives back.
#[derive(Debug)]
pub struct Mapped {
    /// The payload for the destinations.
    pub payload: Bytes,
    /// The mappings' version (recorded with the message).
    pub version: String,
    /// Values no conversion could read, kept in the payload as extensions.
    pub kept: Vec<crate::mapping::Kept>,
}

/// A channel's steps, bound to the live mappings.
#[derive(Debug)]
pub struct Steps {
    /// The steps, in order.
    pub steps: Vec<MapStep>,
    /// The mappings (reloaded when `mappings/` changes).
    pub mappings: Arc<LiveRegistry>,
    /// The channel's time zone.
    pub timezone: jiff::tz::TimeZone,
}

/// Checks a channel's `steps:` against the registry.
pub fn compile(
    steps: &[Spanned<StepConfig>],
    file: &Path,
    registry: Option<&Registry>,
) -> Result<Vec<MapStep>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    if steps.len() > 1 {
        errors.push(ConfigError::at(
            file,
            &steps[1].referenced,
            "steps: one `map` step per channel (a mapping reads HL7 v2; chaining comes later)",
        ));
    }
    for s in steps {
        let at = |m: String| ConfigError::at(file, &s.referenced, m);
        let bundle = match s.value.bundle.as_deref() {
            None => None,
            Some("transaction") => Some(BundleType::Transaction),
            Some("message") => Some(BundleType::Message),
            Some(other) => {
                errors.push(at(format!(
                    "bundle: expected transaction or message, found {other:?}"
                )));
                continue;
            }
        };
        match registry {
            Some(r) if !r.mappings.contains_key(&s.value.map) => {
                let hint = crate::mapping::compile::suggest(
                    &s.value.map,
                    r.mappings.keys().map(String::as_str),
                );
                errors.push(at(format!(
                    "map: no mapping {:?} in {}{hint}",
                    s.value.map,
                    crate::config::display_path(&r.dir)
                )));
                continue;
            }
            Some(_) => {}
            // The mappings did not load: their own errors say why.
            None => continue,
        }
        out.push(MapStep {
            mapping: s.value.map.clone(),
            bundle,
            pretty: s.value.pretty,
            strict: s.value.strict,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

impl Steps {
    /// Runs the steps on a stored message. The error is what the message's
    /// state reason shows: `mapping-file:line:col: PID-7 (segment 3): why`.
    pub fn run(&self, raw: &[u8]) -> Result<Mapped, String> {
        let registry = self.mappings.current();
        let mut payload: Option<Bytes> = None;
        let mut kept = Vec::new();
        for step in &self.steps {
            let opts = RunOptions {
                bundle_type: step.bundle,
                timezone: self.timezone.clone(),
                validate: true,
                report_unread: false,
                exhaustive: false,
                strict: step.strict,
            };
            let input = payload.as_deref().unwrap_or(raw);
            let out = registry
                .run_json(&step.mapping, input, &opts, step.pretty)
                .map_err(|e| format!("map {}: {e}", step.mapping))?;
            payload = Some(Bytes::from(out.json));
            kept.extend(out.kept);
        }
        let payload = payload.unwrap_or_else(|| Bytes::copy_from_slice(raw));
        Ok(Mapped {
            payload,
            version: registry.version.clone(),
            kept,
        })
    }
}
