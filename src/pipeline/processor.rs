//! Runs a channel's pipeline for messages stored as `received`: those a
//! channel with steps accepted (after their ACK), and those an operator
//! asked to reprocess.
//!
//! Owns that loop only: read a batch, decide each message again with the
//! channel's [`Decide`] (the decision its intake made: HL7's
//! [`Hl7Policy`](crate::pipeline::intake::Hl7Policy) or FHIR's
//! `FhirPolicy`), run the channel's [`Steps`] on those
//! accepted, and record each outcome with its deliveries in one store call.
//! A step that fails puts the message in `error` with the step's reason
//! (mapping file, line, column and HL7 path); nothing is queued for it.
//! Mapping is CPU work, so a batch runs on the blocking pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hl7v2::Message;
use tokio_util::sync::CancellationToken;

use crate::pipeline::intake::{Hl7Policy, Wakers};
use crate::pipeline::steps::Steps;
use crate::store::{MessageId, MessageState, RouteOutcome, Store};
use crate::telemetry::MapMetrics;

const BATCH: u32 = 64;

/// A channel's decision on a stored message, by its source's format.
pub trait Decide: Send + Sync + 'static {
    /// The channel.
    fn channel(&self) -> Arc<str>;
    /// What to do with the message now.
    fn decide(&self, steps: Option<&Steps>, metrics: &MapMetrics, raw: &[u8]) -> RouteOutcome;
}

impl Decide for Hl7Policy {
    fn channel(&self) -> Arc<str> {
        self.channel.clone()
    }
    fn decide(&self, steps: Option<&Steps>, metrics: &MapMetrics, raw: &[u8]) -> RouteOutcome {
        decide(self, steps, metrics, raw)
    }
}

impl Decide for crate::connectors::fhir::intake::FhirPolicy {
    fn channel(&self) -> Arc<str> {
        self.channel.clone()
    }
    fn decide(&self, _steps: Option<&Steps>, _metrics: &MapMetrics, raw: &[u8]) -> RouteOutcome {
        self.reassess(raw)
    }
}

/// Decides one HL7 message: filters again, then the steps.
fn decide(
    policy: &Hl7Policy,
    steps: Option<&Steps>,
    metrics: &MapMetrics,
    raw: &[u8],
) -> RouteOutcome {
    let parsed = Message::parse(raw);
    let a = policy.assess(&parsed, raw);
    match a.state {
        MessageState::Processed | MessageState::Received => match steps {
            Some(steps) => {
                let started = Instant::now();
                let r = steps.run(raw);
                metrics.mapped(r.is_ok(), started.elapsed().as_secs_f64());
                match r {
                    Ok(m) => {
                        // Where and which rule only: the values are PHI.
                        for k in &m.kept {
                            tracing::warn!(
                                at = %k.at,
                                rule = %k.rule,
                                "a value no conversion reads was kept in an hl7v2-unreadable-value extension"
                            );
                        }
                        RouteOutcome::Processed {
                            deliveries: policy.deliveries(Some(m.payload)),
                            mapping_version: Some(m.version),
                        }
                    }
                    Err(reason) => RouteOutcome::Error { reason },
                }
            }
            None => RouteOutcome::Processed {
                deliveries: policy.deliveries(None),
                mapping_version: None,
            },
        },
        MessageState::Filtered => RouteOutcome::Filtered {
            reason: a.error.unwrap_or_else(|| "filtered".into()),
        },
        MessageState::Error => RouteOutcome::Error {
            reason: a.error.unwrap_or_else(|| "error".into()),
        },
    }
}

/// Processes `received` messages of one channel until `shutdown`.
pub async fn run(
    policy: Arc<dyn Decide>,
    steps: Option<Arc<Steps>>,
    store: Arc<dyn Store>,
    wakers: Wakers,
    shutdown: CancellationToken,
) {
    let channel = policy.channel();
    let metrics = MapMetrics::new(&channel);
    loop {
        let batch = match store.received(&channel, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%channel, error = %e, "cannot read received messages");
                Vec::new()
            }
        };
        let full = batch.len() == BATCH as usize;
        let outcomes = if batch.is_empty() {
            Vec::new()
        } else {
            let (p, s, m) = (policy.clone(), steps.clone(), metrics.clone());
            let work = move || -> Vec<(MessageId, RouteOutcome)> {
                batch
                    .into_iter()
                    .map(|(id, raw): (MessageId, Bytes)| (id, p.decide(s.as_deref(), &m, &raw)))
                    .collect()
            };
            match tokio::task::spawn_blocking(work).await {
                Ok(o) => o,
                Err(e) => {
                    // A panic in a step: leave the batch `received`, say so, and back off.
                    tracing::error!(%channel, error = %e, "a step failed unexpectedly; the batch stays received");
                    Vec::new()
                }
            }
        };
        let mut routed = false;
        let mut failed = false;
        for (id, outcome) in outcomes {
            let processed = matches!(outcome, RouteOutcome::Processed { .. });
            match store.route(id, outcome).await {
                Ok(()) => routed |= processed,
                Err(e) => {
                    failed = true;
                    tracing::warn!(%channel, message_id = id.0, error = %e, "cannot record the outcome; will try again");
                }
            }
        }
        if routed {
            wakers.wake();
        }
        if full && !failed {
            continue;
        }
        tokio::select! {
            _ = wakers.processor.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::steps::MapStep;

    fn policy(has_steps: bool) -> Hl7Policy {
        Hl7Policy {
            channel: "t".into(),
            versions: vec!["2.*".into()],
            processing_ids: Vec::new(),
            filters: Vec::new(),
            reject: Vec::new(),
            dedup: None,
            destinations: vec!["out".into()],
            timezone: jiff::tz::TimeZone::UTC,
            has_steps,
        }
    }

    fn steps() -> Steps {
        steps_with(false)
    }

    fn steps_with(strict: bool) -> Steps {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let reg = crate::mapping::Registry::load(&dir).expect("shipped mappings load");
        Steps {
            steps: vec![MapStep {
                mapping: "hl7v2-fhir-r4".into(),
                bundle: None,
                pretty: false,
                strict,
            }],
            mappings: crate::mapping::live::LiveRegistry::new(reg, vec!["hl7v2-fhir-r4".into()]),
            timezone: jiff::tz::TimeZone::UTC,
        }
    }

    #[test]
    fn a_mapped_message_carries_the_bundle_to_every_destination() {
        let raw = b"MSH|^~\\&|A|B|C|D|20240101120000||ADT^A01|42|P|2.5\rPID|1||123^^^H^MR||Doe^Jane||19700101|F\rPV1|1|I\r";
        let m = MapMetrics::new("t");
        match decide(&policy(true), Some(&steps()), &m, raw) {
            RouteOutcome::Processed {
                deliveries,
                mapping_version,
            } => {
                assert_eq!(deliveries.len(), 1);
                let body = deliveries[0].payload.clone().expect("a payload");
                let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                assert_eq!(v["resourceType"], "Bundle");
                assert!(mapping_version.is_some_and(|v| v.len() == 16));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_mapping_error_names_the_mapping_file_and_the_field() {
        // A birth date that is not a date, in a strict step.
        let raw = b"MSH|^~\\&|A|B|C|D|20240101120000||ADT^A01|42|P|2.5\rPID|1||123^^^H^MR||Doe^Jane||19701399|F\rPV1|1|I\r";
        let m = MapMetrics::new("t");
        match decide(&policy(true), Some(&steps_with(true)), &m, raw) {
            RouteOutcome::Error { reason } => {
                assert!(reason.starts_with("map hl7v2-fhir-r4: "), "{reason}");
                assert!(reason.contains("PID_Patient.yaml:"), "{reason}");
                assert!(reason.contains("PID-7"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Not strict: delivered, the value kept on the Patient.
        match decide(&policy(true), Some(&steps()), &m, raw) {
            RouteOutcome::Processed { deliveries, .. } => {
                let body = deliveries[0].payload.clone().expect("a payload");
                let text = String::from_utf8_lossy(&body);
                assert!(text.contains("hl7v2-unreadable-value"), "{text}");
                assert!(text.contains("19701399"), "{text}");
                assert!(!text.contains("birthDate"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_steps_deliveries_carry_the_message_itself() {
        let raw = b"MSH|^~\\&|A|B|C|D|20240101120000||ADT^A01|42|P|2.5\r";
        let m = MapMetrics::new("t");
        match decide(&policy(false), None, &m, raw) {
            RouteOutcome::Processed {
                deliveries,
                mapping_version,
            } => {
                assert!(deliveries[0].payload.is_none());
                assert!(mapping_version.is_none());
            }
            other => panic!("{other:?}"),
        }
    }
}
