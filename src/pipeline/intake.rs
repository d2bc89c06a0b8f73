//! HL7v2 intake: from raw bytes to a stored message and its acknowledgment.
//!
//! Owns the decision every HL7 source shares (MLLP, directory, later HTTP):
//! parse, validate, check the channel's accepted versions and processing
//! ids, apply reject rules and filters, route, commit, and build the ACK
//! from what was committed. The order is the contract:
//!
//! | outcome | stored as | ACK |
//! |---|---|---|
//! | cannot be parsed (not HL7, broken MSH) | `error` | AR (MSH-10 recovered when possible) |
//! | parsed, structurally invalid | `error` | AE with ERR |
//! | unsupported version / processing id | `error` | AR with ERR 203 / 202 |
//! | a reject rule holds | `error` | AR with ERR 207 and the rule's reason |
//! | no filter wants it | `filtered` | AA |
//! | duplicate (when enabled) | `filtered` | AA |
//! | accepted | `processed` with its deliveries (or `received` when the channel has steps) | AA |
//! | the store cannot commit | nothing | AE 207: send it again |
//!
//! Enhanced mode turns AA/AE/AR into CA/CE/CR and may suppress the ACK
//! (MSH-15). A positive ACK is built only from a [`Persisted`] proof.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hl7v2::ack::{AckHeader, build_ack_with_code, build_nack_for_unparseable};
use hl7v2::{AckCode, AckError, AckMode, Disposition, ErrorCode, Location, Message, ParseError};
use jiff::Timestamp;
use tokio::sync::Notify;

use crate::pipeline::filter::Rule;
use crate::store::{
    Format, MessageId, MessageState, NewDelivery, NewMessage, Persisted, RouteOutcome, Store,
    StoreError, wildcard_match,
};
use crate::telemetry::{self, ChannelMetrics};

/// A channel's HL7 rules, compiled; pure (no store, no I/O), so `check`
/// can build it.
#[derive(Debug)]
pub struct Hl7Policy {
    /// Channel name.
    pub channel: Arc<str>,
    /// MSH-12 patterns accepted.
    pub versions: Vec<String>,
    /// MSH-11.1 values accepted; empty means all.
    pub processing_ids: Vec<String>,
    /// All must hold.
    pub filters: Vec<Rule>,
    /// Any refuses.
    pub reject: Vec<Rule>,
    /// Duplicate window.
    pub dedup: Option<Duration>,
    /// Destination names, in order.
    pub destinations: Vec<String>,
    /// The channel's time zone (ACK timestamps).
    pub timezone: jiff::tz::TimeZone,
    /// The channel has steps: an accepted message is stored `received`
    /// and the processor runs them after the ACK.
    pub has_steps: bool,
}

/// What the policy decided for one message, before the commit.
#[derive(Debug)]
pub struct Assessment {
    /// State to store.
    pub state: MessageState,
    /// Reason for `error`/`filtered`.
    pub error: Option<String>,
    /// The acknowledgment to send once stored.
    pub disposition: Disposition,
    /// Deliveries to queue with it.
    pub deliveries: Vec<NewDelivery>,
    /// `ADT^A01`
    pub message_type: Option<String>,
    /// MSH-10.
    pub control_id: Option<String>,
    /// MSH-3.1^MSH-4.1.
    pub sender: Option<String>,
}

fn reject(code: ErrorCode, location: Option<Location>, message: String) -> Disposition {
    Disposition::Reject(AckError {
        code,
        location,
        message,
    })
}

fn msh(field: u16) -> Option<Location> {
    Some(Location {
        segment: "MSH".into(),
        sequence: 1,
        field: Some(field),
        ..Location::default()
    })
}

fn nonempty(s: std::borrow::Cow<'_, str>) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        None
    } else {
        Some(t.to_string())
    }
}

impl Hl7Policy {
    /// Decides what to do with a message (parsed or not).
    pub fn assess(&self, parsed: &Result<Message<'_>, ParseError>, raw: &[u8]) -> Assessment {
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                let rec = hl7v2::ack::recover_header(raw);
                let reason = format!("not a readable HL7 v2 message: {e}");
                return Assessment {
                    state: MessageState::Error,
                    error: Some(reason.clone()),
                    disposition: reject(ErrorCode::DataType, msh(1), reason),
                    deliveries: Vec::new(),
                    message_type: None,
                    control_id: rec.as_ref().and_then(|r| r.control_id.clone()),
                    sender: rec.map(|r| format!("{}^{}", r.apps[0], r.apps[1])),
                };
            }
        };
        let mt = msg.message_type();
        let message_type = if mt.code.is_empty() {
            None
        } else {
            Some(mt.to_string())
        };
        let control_id = nonempty(msg.control_id());
        let sender = {
            let h = msg.header();
            let part = |n| {
                h.field(n)
                    .map(|f| f.text().into_owned())
                    .unwrap_or_default()
            };
            Some(format!("{}^{}", part(3), part(4)))
        };
        let base = |state, error: Option<String>, disposition, deliveries| Assessment {
            state,
            error,
            disposition,
            deliveries,
            message_type: message_type.clone(),
            control_id: control_id.clone(),
            sender: sender.clone(),
        };
        let issues = msg.validate();
        if let Some(first) = issues.first() {
            let all: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
            return base(
                MessageState::Error,
                Some(format!("invalid HL7: {}", all.join("; "))),
                Disposition::Error(first.clone().into()),
                Vec::new(),
            );
        }
        let version = msg.version();
        if !self.versions.iter().any(|p| wildcard_match(p, &version)) {
            let m = format!(
                "version {version:?} (MSH-12) is not accepted by channel {} (accepts {})",
                self.channel,
                self.versions.join(", ")
            );
            return base(
                MessageState::Error,
                Some(m.clone()),
                reject(ErrorCode::UnsupportedVersionId, msh(12), m),
                Vec::new(),
            );
        }
        let pid = msg.processing_id();
        if !self.processing_ids.is_empty() && !self.processing_ids.iter().any(|p| p == pid.as_ref())
        {
            let m = format!(
                "processing id {pid:?} (MSH-11) is not accepted by channel {} (accepts {})",
                self.channel,
                self.processing_ids.join(", ")
            );
            return base(
                MessageState::Error,
                Some(m.clone()),
                reject(ErrorCode::UnsupportedProcessingId, msh(11), m),
                Vec::new(),
            );
        }
        if let Some(rule) = self.reject.iter().find(|r| r.holds(msg)) {
            let m = format!("rejected by rule: {}", rule.describe());
            return base(
                MessageState::Error,
                Some(m.clone()),
                reject(ErrorCode::InternalError, None, m),
                Vec::new(),
            );
        }
        match self.route(msg) {
            RouteOutcome::Filtered { reason } => base(
                MessageState::Filtered,
                Some(reason),
                Disposition::Accept,
                Vec::new(),
            ),
            RouteOutcome::Processed { .. } if self.has_steps => base(
                MessageState::Received,
                None,
                Disposition::Accept,
                Vec::new(),
            ),
            RouteOutcome::Processed { deliveries, .. } => base(
                MessageState::Processed,
                None,
                Disposition::Accept,
                deliveries,
            ),
            RouteOutcome::Error { reason } => base(
                MessageState::Error,
                Some(reason.clone()),
                reject(ErrorCode::InternalError, None, reason),
                Vec::new(),
            ),
        }
    }

    /// Filters and routing for an accepted message (also used when a
    /// `received` message is processed again).
    pub fn route(&self, msg: &Message<'_>) -> RouteOutcome {
        if let Some(rule) = self.filters.iter().find(|r| !r.holds(msg)) {
            return RouteOutcome::Filtered {
                reason: format!("filtered: {}", rule.describe()),
            };
        }
        RouteOutcome::Processed {
            deliveries: self.deliveries(None),
            mapping_version: None,
        }
    }

    /// One delivery per destination, carrying `payload` (`None`: the
    /// message as received).
    pub fn deliveries(&self, payload: Option<bytes::Bytes>) -> Vec<NewDelivery> {
        self.destinations
            .iter()
            .map(|d| NewDelivery {
                destination: d.clone(),
                payload: payload.clone(),
            })
            .collect()
    }
}

/// Wakes a channel's destination workers and its processor.
#[derive(Clone, Debug, Default)]
pub struct Wakers {
    /// One per destination worker.
    pub destinations: Arc<Vec<Arc<Notify>>>,
    /// The processor (steps for `received` messages).
    pub processor: Arc<Notify>,
}

impl Wakers {
    /// Wakes every destination worker.
    pub fn wake(&self) {
        for n in self.destinations.iter() {
            n.notify_one();
        }
    }

    /// Wakes the processor.
    pub fn wake_processor(&self) {
        self.processor.notify_one();
    }
}

/// What the source sends back.
#[derive(Debug)]
pub struct Reply {
    /// The ACK bytes, unless the mode asks for none.
    pub ack: Option<Vec<u8>>,
    /// The ACK code sent, if any.
    pub code: Option<AckCode>,
    /// The stored message, if it was stored.
    pub id: Option<MessageId>,
}

/// A channel's HL7 intake, bound to the store.
pub struct Hl7Intake {
    policy: Arc<Hl7Policy>,
    store: Arc<dyn Store>,
    wakers: Wakers,
    metrics: ChannelMetrics,
    /// MSH-7 of ACKs, formatted once per second.
    clock: std::sync::Mutex<(i64, Arc<str>)>,
}

impl Hl7Intake {
    /// Binds a policy to the store and the channel's workers.
    pub fn new(policy: Arc<Hl7Policy>, store: Arc<dyn Store>, wakers: Wakers) -> Hl7Intake {
        let metrics = ChannelMetrics::new(&policy.channel);
        Hl7Intake {
            policy,
            store,
            wakers,
            metrics,
            clock: std::sync::Mutex::new((i64::MIN, Arc::from(""))),
        }
    }

    /// `YYYYMMDDHHMMSS+ZZZZ` in the channel's time zone, cached per second.
    fn ack_timestamp(&self) -> Arc<str> {
        let now = Timestamp::now();
        let second = now.as_second();
        if let Ok(c) = self.clock.lock()
            && c.0 == second
        {
            return c.1.clone();
        }
        let text: Arc<str> = now
            .to_zoned(self.policy.timezone.clone())
            .strftime("%Y%m%d%H%M%S%z")
            .to_string()
            .into();
        if let Ok(mut c) = self.clock.lock() {
            *c = (second, text.clone());
        }
        text
    }

    /// The channel name.
    pub fn channel(&self) -> &str {
        &self.policy.channel
    }

    fn new_message(&self, a: &Assessment, raw: Bytes, peer: Option<String>) -> NewMessage {
        NewMessage {
            channel: self.policy.channel.to_string(),
            received_at: Timestamp::now(),
            format: Format::Hl7v2,
            message_type: a.message_type.clone(),
            control_id: a.control_id.clone(),
            sender: a.sender.clone(),
            peer,
            raw,
            state: a.state,
            error: a.error.clone(),
            deliveries: a.deliveries.clone(),
            dedup_window: self.policy.dedup,
            idempotent: false,
        }
    }

    /// Receives one message: assess, commit, acknowledge.
    pub async fn receive(&self, raw: Bytes, peer: Option<String>) -> Reply {
        self.metrics.received();
        let parsed = Message::parse(&raw);
        let a = self.policy.assess(&parsed, &raw);
        let committed = self
            .store
            .commit(vec![self.new_message(&a, raw.clone(), peer)])
            .await;
        let stored = match &committed {
            Ok(p) => match p.first() {
                Some(p) => Ok(p),
                None => Err(StoreError::Backend("the store returned no id".into())),
            },
            Err(e) => Err(e.clone()),
        };
        if let Ok(p) = &stored {
            if p.duplicate_of().is_some() {
                self.metrics.duplicate();
            } else if !a.deliveries.is_empty() {
                self.wakers.wake();
            } else if a.state == MessageState::Received {
                self.wakers.wake_processor();
            }
        } else if let Err(e) = &stored {
            telemetry::store_error();
            tracing::error!(channel = %self.policy.channel, error = %e, "message not stored; answering with a negative ACK");
        }
        let (ack, code) =
            self.acknowledge(&raw, &parsed, stored.as_ref().map(|p| *p), &a.disposition);
        if let Some(c) = code {
            self.metrics.ack(c);
        }
        Reply {
            ack,
            code,
            id: stored.ok().map(|p| p.id()),
        }
    }

    /// Receives several messages (one file) in one transaction: all are
    /// stored or none. Returns each one's id and state.
    pub async fn receive_all(
        &self,
        raws: Vec<Bytes>,
        peer: Option<String>,
    ) -> Result<Vec<(MessageId, MessageState)>, StoreError> {
        let mut batch = Vec::with_capacity(raws.len());
        let mut states = Vec::with_capacity(raws.len());
        let mut routed = false;
        let mut received = false;
        for raw in raws {
            self.metrics.received();
            let parsed = Message::parse(&raw);
            let a = self.policy.assess(&parsed, &raw);
            routed |= !a.deliveries.is_empty();
            received |= a.state == MessageState::Received;
            states.push(a.state);
            batch.push(self.new_message(&a, raw.clone(), peer.clone()));
        }
        let proofs = self.store.commit(batch).await?;
        if routed {
            self.wakers.wake();
        }
        if received {
            self.wakers.wake_processor();
        }
        Ok(proofs
            .iter()
            .zip(states)
            .map(|(p, s)| {
                (
                    p.id(),
                    if p.duplicate_of().is_some() {
                        MessageState::Filtered
                    } else {
                        s
                    },
                )
            })
            .collect())
    }

    /// Answers a frame too large to accept. Nothing is stored (the bytes
    /// were discarded as they arrived); the ACK is an AR built from the
    /// frame's first bytes, so MSA-2 still echoes MSH-10.
    pub fn refuse_oversized(&self, head: &[u8], len: usize, limit: usize) -> Reply {
        self.metrics.received();
        let err = AckError {
            code: ErrorCode::ValueTooLong,
            location: None,
            message: format!(
                "message of {len} bytes is larger than this channel accepts ({limit} bytes)"
            ),
        };
        let control = format!("NACK{}", Timestamp::now().as_microsecond());
        let ts = self.ack_timestamp();
        let header = AckHeader {
            control_id: &control,
            timestamp: &ts,
        };
        let ack = match Message::parse(head) {
            Ok(m) => build_ack_with_code(&m, AckCode::AR, &Disposition::Reject(err), &header),
            Err(_) => build_nack_for_unparseable(head, AckCode::AR, &err, &header),
        };
        self.metrics.ack(AckCode::AR);
        Reply {
            ack: Some(ack),
            code: Some(AckCode::AR),
            id: None,
        }
    }

    /// Builds the acknowledgment. Only `Ok(&Persisted)` can yield a
    /// positive code: without the proof the answer is AE (or CE).
    fn acknowledge(
        &self,
        raw: &[u8],
        parsed: &Result<Message<'_>, ParseError>,
        stored: Result<&Persisted, &StoreError>,
        planned: &Disposition,
    ) -> (Option<Vec<u8>>, Option<AckCode>) {
        let not_stored;
        let (disposition, control) = match stored {
            Ok(p) => (planned, format!("ACK{}", p.id())),
            Err(_) => {
                not_stored = Disposition::Error(AckError {
                    code: ErrorCode::InternalError,
                    location: None,
                    message: "the message could not be stored; send it again".into(),
                });
                (
                    &not_stored,
                    format!("NACK{}", Timestamp::now().as_microsecond()),
                )
            }
        };
        let ts = self.ack_timestamp();
        let header = AckHeader {
            control_id: &control,
            timestamp: &ts,
        };
        match parsed {
            Ok(m) => match AckMode::of(m).code_for(disposition) {
                Some(code) => (
                    Some(build_ack_with_code(m, code, disposition, &header)),
                    Some(code),
                ),
                None => (None, None),
            },
            Err(_) => {
                let (code, err) = match disposition {
                    Disposition::Reject(e) => (AckCode::AR, e.clone()),
                    Disposition::Error(e) => (AckCode::AE, e.clone()),
                    Disposition::Accept => (
                        AckCode::AR,
                        AckError {
                            code: ErrorCode::DataType,
                            location: None,
                            message: "not a readable HL7 v2 message".into(),
                        },
                    ),
                };
                (
                    Some(build_nack_for_unparseable(raw, code, &err, &header)),
                    Some(code),
                )
            }
        }
    }
}
