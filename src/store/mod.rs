//! The durable store: messages, their deliveries and every state change.
//!
//! Owns the [`Store`] trait, the records it keeps and the [`Persisted`]
//! proof. A source may acknowledge a message only while holding a
//! `Persisted`, and only the store can mint one: it is returned by
//! [`Store::commit`] after the transaction holding the message has reached
//! the disk. Backends live in submodules (`sqlite` now; PostgreSQL later)
//! and keep their own assumptions (rowids, `synchronous`, savepoints)
//! inside. This module does not own routing decisions or retry policy.
//!
//! What is stored, and for how long: the raw bytes of every message as
//! received, its type, control id and sender (MSH-3/MSH-4), each delivery's
//! payload when a mapping changed it, and a row per state change with its
//! reason. Nothing is deleted automatically yet; retention is an operator
//! decision (see README, "Data and PHI").

pub mod sqlite;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jiff::Timestamp;
use serde::Serialize;

/// A message's id: a positive integer, shown as a string in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A delivery's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(pub i64);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Proof that a message is durably stored. Only the store creates it, so
/// holding one is the only way to send a positive acknowledgment.
#[derive(Debug)]
pub struct Persisted {
    id: MessageId,
    duplicate_of: Option<MessageId>,
    _seal: Seal,
}

#[derive(Debug)]
struct Seal;

impl Persisted {
    fn new(id: MessageId, duplicate_of: Option<MessageId>) -> Persisted {
        Persisted {
            id,
            duplicate_of,
            _seal: Seal,
        }
    }

    /// The stored message's id.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// Set when duplicate suppression found an earlier copy; this copy was
    /// stored as `filtered` and routed nowhere.
    pub fn duplicate_of(&self) -> Option<MessageId> {
        self.duplicate_of
    }
}

/// Message states (DESIGN.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    /// Stored; the channel's steps have not run yet.
    Received,
    /// Routed to its destinations.
    Processed,
    /// No filter wanted it; stored and acknowledged.
    Filtered,
    /// Parsing, validation, a rule or a mapping failed; the reason is kept.
    Error,
}

impl MessageState {
    /// As stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Received => "received",
            MessageState::Processed => "processed",
            MessageState::Filtered => "filtered",
            MessageState::Error => "error",
        }
    }

    /// Reads a stored or typed state.
    pub fn parse(s: &str) -> Option<MessageState> {
        Some(match s {
            "received" => MessageState::Received,
            "processed" => MessageState::Processed,
            "filtered" => MessageState::Filtered,
            "error" => MessageState::Error,
            _ => return None,
        })
    }
}

/// Delivery states (DESIGN.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its destination's worker.
    Queued,
    /// At least one attempt failed; more will follow.
    Retrying,
    /// The peer confirmed it.
    Sent,
    /// Given up: a permanent refusal, or retries exhausted.
    Dead,
}

impl DeliveryState {
    /// As stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Sent => "sent",
            DeliveryState::Dead => "dead",
        }
    }

    /// Reads a stored state.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "queued" => DeliveryState::Queued,
            "retrying" => DeliveryState::Retrying,
            "sent" => DeliveryState::Sent,
            "dead" => DeliveryState::Dead,
            _ => return None,
        })
    }
}

/// Message formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// HL7 v2.x.
    Hl7v2,
    /// FHIR R4 JSON or XML.
    Fhir,
    /// ASC X12.
    X12,
}

impl Format {
    /// As stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Hl7v2 => "hl7v2",
            Format::Fhir => "fhir",
            Format::X12 => "x12",
        }
    }

    /// Reads a stored format.
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "hl7v2" => Format::Hl7v2,
            "fhir" => Format::Fhir,
            "x12" => Format::X12,
            _ => return None,
        })
    }
}

/// A message to commit.
#[derive(Clone)]
pub struct NewMessage {
    /// Channel name.
    pub channel: String,
    /// When it arrived.
    pub received_at: Timestamp,
    /// Its format.
    pub format: Format,
    /// e.g. `ADT^A01`, when known.
    pub message_type: Option<String>,
    /// MSH-10 (or the format's equivalent), when known.
    pub control_id: Option<String>,
    /// Who sent it (MSH-3^MSH-4, or a partner name).
    pub sender: Option<String>,
    /// The transport peer (address, certificate identity).
    pub peer: Option<String>,
    /// The bytes exactly as received.
    pub raw: Bytes,
    /// The state to store it in.
    pub state: MessageState,
    /// Why it is in `error` or `filtered`.
    pub error: Option<String>,
    /// Deliveries to queue in the same transaction (for `processed`).
    pub deliveries: Vec<NewDelivery>,
    /// Duplicate suppression: when set, an earlier message of the same
    /// channel, sender and control id within this window makes this one a
    /// `filtered` duplicate with no deliveries.
    pub dedup_window: Option<Duration>,
    /// With `dedup_window`: a repeat is not stored at all; the commit
    /// answers with the first message's id (FHIR idempotent requests).
    pub idempotent: bool,
}

/// Messages hold PHI: `Debug` shows the shape only.
impl fmt::Debug for NewMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMessage")
            .field("channel", &self.channel)
            .field("format", &self.format)
            .field("type", &self.message_type)
            .field("bytes", &self.raw.len())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A delivery to queue.
#[derive(Clone)]
pub struct NewDelivery {
    /// Destination name within the channel.
    pub destination: String,
    /// What to send, when it differs from the message's raw bytes.
    pub payload: Option<Bytes>,
}

impl fmt::Debug for NewDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewDelivery")
            .field("destination", &self.destination)
            .field("payload_bytes", &self.payload.as_ref().map(|p| p.len()))
            .finish()
    }
}

/// What the channel pipeline decided for a `received` message.
#[derive(Clone, Debug)]
pub enum RouteOutcome {
    /// Queue these deliveries; the message becomes `processed`.
    Processed {
        /// The deliveries.
        deliveries: Vec<NewDelivery>,
        /// The mapping version applied, when one was.
        mapping_version: Option<String>,
    },
    /// No filter wanted it.
    Filtered {
        /// Why.
        reason: String,
    },
    /// A step failed.
    Error {
        /// What, where and why.
        reason: String,
    },
}

/// A delivery ready for its worker.
#[derive(Clone)]
pub struct DeliveryTask {
    /// The delivery.
    pub id: DeliveryId,
    /// Its message.
    pub message_id: MessageId,
    /// Reprocessing adds a generation; the first is 1.
    pub generation: i64,
    /// The bytes to send.
    pub payload: Bytes,
    /// The message's type, e.g. `ADT^A01`.
    pub message_type: Option<String>,
    /// The message's control id.
    pub control_id: Option<String>,
    /// Attempts already made.
    pub attempts: u32,
    /// When the delivery was queued.
    pub created_at: Timestamp,
    /// When the next attempt is due, after a failed one.
    pub next_attempt_at: Option<Timestamp>,
}

impl fmt::Debug for DeliveryTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryTask")
            .field("id", &self.id)
            .field("message_id", &self.message_id)
            .field("attempts", &self.attempts)
            .field("bytes", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// The result of one delivery attempt, to record.
#[derive(Clone, Debug)]
pub enum AttemptUpdate {
    /// The peer confirmed; `detail` is what it said (no PHI).
    Sent {
        /// Attempts made in all.
        attempts: u32,
        /// e.g. `AA`, a file name, an HTTP status.
        detail: Option<String>,
    },
    /// A retryable failure; the next attempt is due at `next_attempt_at`.
    Retrying {
        /// Attempts made in all.
        attempts: u32,
        /// Why it failed.
        error: String,
        /// When the next attempt is due.
        next_attempt_at: Timestamp,
    },
    /// Given up.
    Dead {
        /// Attempts made in all.
        attempts: u32,
        /// Why.
        error: String,
    },
}

/// A message as listed.
#[derive(Clone, Debug, Serialize)]
pub struct MessageSummary {
    /// Id, as a string.
    #[serde(serialize_with = "id_as_string")]
    pub id: MessageId,
    /// Channel name.
    pub channel: String,
    /// RFC 3339 UTC.
    pub received_at: String,
    /// Format.
    pub format: Format,
    /// e.g. `ADT^A01`.
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    /// MSH-10 or equivalent.
    pub control_id: Option<String>,
    /// State.
    pub state: MessageState,
    /// Why it is in `error`/`filtered`.
    pub error: Option<String>,
}

fn id_as_string<S: serde::Serializer>(id: &MessageId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// A delivery as shown.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryView {
    /// Id.
    pub id: i64,
    /// Destination name.
    pub destination: String,
    /// Generation (1, then one more per reprocess).
    pub generation: i64,
    /// State.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (RFC 3339), while retrying.
    pub next_attempt_at: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// What the peer answered when it was sent.
    pub response: Option<String>,
    /// Idempotency key sent with every attempt.
    pub idempotency_key: String,
}

/// A recorded state change.
#[derive(Clone, Debug, Serialize)]
pub struct EventView {
    /// RFC 3339 UTC.
    pub at: String,
    /// The delivery it concerns, if any.
    pub delivery_id: Option<i64>,
    /// The new state.
    pub state: String,
    /// Why.
    pub reason: Option<String>,
}

/// A message with everything known about it.
#[derive(Clone, Debug)]
pub struct MessageDetail {
    /// The summary fields.
    pub summary: MessageSummary,
    /// Sender (MSH-3^MSH-4).
    pub sender: Option<String>,
    /// Transport peer.
    pub peer: Option<String>,
    /// Mapping version, when one applied.
    pub mapping_version: Option<String>,
    /// The raw bytes.
    pub raw: Bytes,
    /// Deliveries.
    pub deliveries: Vec<DeliveryView>,
    /// State changes, oldest first.
    pub events: Vec<EventView>,
}

impl MessageDetail {
    /// One JSON object: the summary, sender, peer, mapping version, size,
    /// deliveries and history; the content itself is left out (PHI stays
    /// behind `messages show --raw`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.summary).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("sender".into(), self.sender.clone().into());
            o.insert("peer".into(), self.peer.clone().into());
            o.insert(
                "mapping_version".into(),
                self.mapping_version.clone().into(),
            );
            o.insert("size".into(), self.raw.len().into());
            o.insert(
                "deliveries".into(),
                serde_json::to_value(&self.deliveries).unwrap_or_default(),
            );
            o.insert(
                "history".into(),
                serde_json::to_value(&self.events).unwrap_or_default(),
            );
        }
        v
    }
}

/// Filters for listing and counting.
#[derive(Clone, Debug, Default)]
pub struct MessageQuery {
    /// Only this channel.
    pub channel: Option<String>,
    /// Only this state.
    pub state: Option<MessageState>,
    /// Message type pattern (`ADT^A0*`).
    pub message_type: Option<String>,
    /// Exact control id.
    pub control_id: Option<String>,
    /// Received at or after.
    pub since: Option<Timestamp>,
    /// At most this many, newest first; `None` for all.
    pub limit: Option<u64>,
}

/// Queue depth of one destination.
#[derive(Clone, Debug)]
pub struct QueueDepth {
    /// Channel.
    pub channel: String,
    /// Destination.
    pub destination: String,
    /// Deliveries queued or retrying.
    pub depth: u64,
}

/// Store failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed (disk full, I/O error, corruption).
    #[error("store error: {0}")]
    Backend(String),
    /// The store is shutting down or its writer stopped.
    #[error("store is closed")]
    Closed,
    /// The data directory is locked by another `serve`.
    #[error("{0}")]
    Locked(String),
    /// No such record.
    #[error("no message with id {0}")]
    NotFound(MessageId),
}

/// The idempotency key every attempt of a delivery carries: the same on
/// redelivery after a crash, different for an explicit reprocess.
pub fn idempotency_key(message: MessageId, destination: &str, generation: i64) -> String {
    if generation <= 1 {
        format!("{message}-{destination}")
    } else {
        format!("{message}-{destination}-r{generation}")
    }
}

/// The durable store behind every source, worker and command.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits messages (with their deliveries) in one durable transaction,
    /// together with whatever else is committing at the same moment.
    async fn commit(&self, messages: Vec<NewMessage>) -> Result<Vec<Persisted>, StoreError>;

    /// Messages in `received` state for a channel, oldest first.
    async fn received(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<(MessageId, Bytes)>, StoreError>;

    /// Records the pipeline's decision for a `received` message.
    async fn route(&self, id: MessageId, outcome: RouteOutcome) -> Result<(), StoreError>;

    /// The oldest undelivered deliveries of a destination, in order.
    async fn pending_deliveries(
        &self,
        channel: &str,
        destination: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryTask>, StoreError>;

    /// Records attempt outcomes (many at once).
    async fn record_attempts(
        &self,
        updates: Vec<(DeliveryId, AttemptUpdate)>,
    ) -> Result<(), StoreError>;

    /// Lists messages, newest first.
    async fn list(&self, query: &MessageQuery) -> Result<Vec<MessageSummary>, StoreError>;

    /// Counts messages.
    async fn count(&self, query: &MessageQuery) -> Result<u64, StoreError>;

    /// One message with its deliveries and history.
    async fn get(&self, id: MessageId) -> Result<Option<MessageDetail>, StoreError>;

    /// Puts a message back to `received` so its channel runs it again;
    /// its next deliveries get a new generation.
    async fn reprocess(&self, id: MessageId, reason: &str) -> Result<(), StoreError>;

    /// Deliveries queued or retrying, per destination.
    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError>;

    /// True when the store can commit (for `/readyz`).
    async fn healthy(&self) -> bool;
}

/// Formats a timestamp as RFC 3339 UTC with seconds precision and `Z`.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Matches a message type against a pattern with `*` and `?` wildcards.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("ADT^A0*", "ADT^A01"));
        assert!(wildcard_match("ADT^A0*", "ADT^A0"));
        assert!(!wildcard_match("ADT^A0*", "ADT^A11"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("OR?^R01", "ORU^R01"));
        assert!(wildcard_match("*^R01", "ORU^R01"));
        assert!(!wildcard_match("ORU", "ORU^R01"));
    }

    #[test]
    fn keys() {
        assert_eq!(idempotency_key(MessageId(7), "lab", 1), "7-lab");
        assert_eq!(idempotency_key(MessageId(7), "lab", 2), "7-lab-r2");
    }
}
