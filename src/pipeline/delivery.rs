//! What a destination stack carries: a [`Delivery`] in, a [`Receipt`] or a
//! classified [`DeliveryError`] out.
//!
//! Owns these types and [`RetryLogic`], the one trait through which a
//! connector says what a peer's answer means (HL7 AE/AR/CE/CR, HTTP
//! 429/5xx, OperationOutcome severities). Generic layers read only the
//! [`ErrorKind`]; they never interpret a protocol.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::store::DeliveryTask;

/// One delivery attempt's request. Cheap to clone (retries clone it).
#[derive(Clone)]
pub struct Delivery {
    /// Channel name.
    pub channel: Arc<str>,
    /// Destination name.
    pub destination: Arc<str>,
    /// The stored delivery: id, payload, attempts so far.
    pub task: Arc<DeliveryTask>,
    /// Sent with every attempt, the same on redelivery after a crash, so the
    /// receiver can de-duplicate (message id + destination).
    pub idempotency_key: Arc<str>,
    /// This attempt's number, from 1, counting attempts before a restart.
    pub attempt: u32,
}

/// The payload is PHI: `Debug` shows ids only.
impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("channel", &self.channel)
            .field("destination", &self.destination)
            .field("delivery_id", &self.task.id.0)
            .field("message_id", &self.task.message_id.0)
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// What the peer confirmed (no PHI): an ACK code, a file name, a status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Shown in `caduceus messages show`.
    pub detail: Option<String>,
    /// Which attempt succeeded (set by the retry layer).
    pub attempts: u32,
}

/// How a failure should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Worth another attempt (connection refused, AE, 503).
    Retryable,
    /// Another attempt will fail the same way (AR, 400): the delivery is dead.
    Permanent,
    /// No answer in time; retryable.
    Timeout,
    /// The circuit breaker is open; retryable after it half-opens.
    CircuitOpen,
}

/// A classified delivery failure. Messages never contain payload content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// How to treat it.
    pub kind: ErrorKind,
    /// What happened, for people.
    pub message: String,
    /// The peer asked us to wait at least this long (`Retry-After`), or the
    /// breaker knows when it will half-open.
    pub retry_after: Option<Duration>,
    /// Attempts made when the delivery was given up (set by the retry layer).
    pub attempts: u32,
}

impl DeliveryError {
    /// A retryable failure.
    pub fn retryable(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            kind: ErrorKind::Retryable,
            message: message.into(),
            retry_after: None,
            attempts: 0,
        }
    }

    /// A permanent failure.
    pub fn permanent(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            kind: ErrorKind::Permanent,
            message: message.into(),
            retry_after: None,
            attempts: 0,
        }
    }

    /// True unless permanent.
    pub fn is_retryable(&self) -> bool {
        self.kind != ErrorKind::Permanent
    }

    /// True when the failure says something about the peer's health (so
    /// the circuit breaker counts it): not a content refusal, not our own
    /// open breaker.
    pub fn is_health_failure(&self) -> bool {
        matches!(self.kind, ErrorKind::Retryable | ErrorKind::Timeout)
    }
}

/// What a connector's answer means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered.
    Delivered(Receipt),
    /// Failed; see the error's kind.
    Failed(DeliveryError),
}

/// A connector's protocol knowledge: how a peer's answer maps to a verdict.
/// Each connector implements it once (vector's `RetryLogic`).
pub trait RetryLogic: Send + Sync {
    /// The peer's answer as the connector reads it.
    type Answer;
    /// Classifies an answer.
    fn classify(&self, answer: &Self::Answer) -> Verdict;
}

/// Connectors that make writes durable in groups implement this: the
/// worker calls [`Barrier::sync`] after a batch and records the batch's
/// deliveries as `sent` only when it succeeds. (The file writer writes each
/// delivery to a temporary file, then one sync makes the whole batch
/// durable before the files are renamed into place.)
#[async_trait::async_trait]
pub trait Barrier: Send + Sync {
    /// Makes everything delivered since the last call durable and visible.
    async fn sync(&self) -> Result<(), DeliveryError>;
}

/// A connector that delivers with one async call per delivery (MLLP, FHIR,
/// HTTP); [`Sender`] makes it the tower service a stack wraps.
pub trait Deliver: Clone + Send + Sync + 'static {
    /// Delivers once.
    fn deliver(&self, d: Delivery) -> impl Future<Output = Result<Receipt, DeliveryError>> + Send;
}

/// A [`Deliver`] connector as a tower service (always ready: the worker
/// sends one delivery at a time).
#[derive(Clone)]
pub struct Sender<C>(pub C);

impl<C: Deliver> tower::Service<Delivery> for Sender<C> {
    type Response = Receipt;
    type Error = DeliveryError;
    type Future = DeliveryFuture;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), DeliveryError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, d: Delivery) -> DeliveryFuture {
        let c = self.0.clone();
        Box::pin(async move { c.deliver(d).await })
    }
}

/// The future every stack service returns.
pub type DeliveryFuture = Pin<Box<dyn Future<Output = Result<Receipt, DeliveryError>> + Send>>;

/// A whole destination stack, boxed.
pub type DeliveryService = tower::util::BoxCloneSyncService<Delivery, Receipt, DeliveryError>;
