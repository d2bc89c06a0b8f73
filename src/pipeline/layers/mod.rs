//! One tower middleware per folder, and [`build_stack`], the one function
//! that composes a destination's stack. The rate and concurrency limits are
//! both a [`gate::Gate`] in front of the connector (one service shape).
//!
//! Owns the order of the layers and the settings every destination shares
//! ([`StackSettings`]). It does not own what a peer's answer means: each
//! connector classifies its own answers (see `pipeline::delivery::RetryLogic`).

pub mod circuit_breaker;
pub mod concurrency_limit;
pub mod gate;
pub mod rate_limit;
pub mod retry;
pub mod timeout;
pub mod trace;

use std::sync::Arc;

use tower::Layer;
use tower::util::BoxCloneSyncService;

use crate::config::units::HumanDuration;
use crate::pipeline::delivery::{Delivery, DeliveryError, DeliveryService, Receipt};
use crate::telemetry::DestinationMetrics;

use circuit_breaker::{Breaker, CircuitBreakerConfig, CircuitBreakerLayer};
use concurrency_limit::{
    ConcurrencyLimitConfig, ConcurrencyLimitLayer, ConcurrencyLimits, SemaphoreGate,
};
use rate_limit::{RateGate, RateLimitConfig, RateLimitLayer, RateLimiters};
use retry::{RetryLayer, RetryObserver, RetryPolicy};
use timeout::TimeoutLayer;
use trace::TraceLayer;

/// The resilience settings of one destination (the keys every destination
/// block accepts besides its own).
#[derive(Clone, Debug)]
pub struct StackSettings {
    /// `retry:`
    pub retry: RetryPolicy,
    /// `rate_limit:`
    pub rate_limit: Option<RateLimitConfig>,
    /// `concurrency_limit:`
    pub concurrency_limit: Option<ConcurrencyLimitConfig>,
    /// `timeout:` per attempt.
    pub timeout: HumanDuration,
    /// `circuit_breaker:`
    pub circuit_breaker: CircuitBreakerConfig,
}

/// The limits destinations share by name (`shared:` in `rate_limit` and
/// `concurrency_limit`), one registry per server.
#[derive(Default)]
pub struct SharedLimits {
    /// Rate limiters.
    pub rate: RateLimiters,
    /// Concurrency semaphores.
    pub concurrency: ConcurrencyLimits,
}

/// What the stack needs from the engine besides its settings.
pub struct StackContext<'a> {
    /// Channel name.
    pub channel: Arc<str>,
    /// Destination name.
    pub destination: Arc<str>,
    /// Limits shared by name.
    pub shared: &'a SharedLimits,
    /// Records failed attempts before each retry.
    pub observer: Arc<dyn RetryObserver>,
    /// The destination's metric handles.
    pub metrics: DestinationMetrics,
}

/// Builds a destination's stack around its connector. Outermost first:
///
/// ```text
/// ┌ trace ──────────── one span per delivery (ids, never the payload)
/// │┌ retry ─────────── backoff + full jitter, each failure recorded in the store
/// ││┌ circuit breaker  fails fast while the peer is known to be down
/// │││┌ rate limit ──── governor; every attempt, retries included, waits for a permit
/// ││││┌ concurrency ── a permit per attempt (shared by name: N in flight to a partner)
/// │││││┌ timeout ───── per attempt
/// ││││││  connector ── mllp / file / http …: sends, classifies the answer
/// ```
///
/// The order differs from the first design note (trace → timeout → breaker
/// → rate limit → retry → connector) on purpose: with retry innermost,
/// retried attempts would bypass the rate limit a partner is promised, and
/// the breaker would see one result per delivery after all its retries
/// instead of each failed attempt, so it would never open while a delivery
/// is retrying against a dead peer. The timeout bounds each attempt, not
/// the sum of a delivery's retries (which may span days by design).
pub fn build_stack<C>(
    connector: C,
    settings: &StackSettings,
    ctx: StackContext<'_>,
) -> DeliveryService
where
    C: tower::Service<Delivery, Response = Receipt, Error = DeliveryError>
        + Clone
        + Send
        + Sync
        + 'static,
    C::Future: Send + 'static,
{
    let mut svc: DeliveryService =
        BoxCloneSyncService::new(TimeoutLayer::new(settings.timeout.get()).layer(connector));
    if let Some(c) = &settings.concurrency_limit {
        let semaphore = ctx.shared.concurrency.semaphore(c);
        svc = BoxCloneSyncService::new(
            ConcurrencyLimitLayer::new(SemaphoreGate(semaphore)).layer(svc),
        );
    }
    if let Some(limiter) = settings
        .rate_limit
        .as_ref()
        .and_then(|r| ctx.shared.rate.limiter(r))
    {
        svc = BoxCloneSyncService::new(RateLimitLayer::new(RateGate(limiter)).layer(svc));
    }
    if settings.circuit_breaker.enabled() {
        let breaker = Arc::new(Breaker::new(
            &settings.circuit_breaker,
            ctx.channel.clone(),
            ctx.destination.clone(),
            ctx.metrics.circuit.clone(),
        ));
        svc = BoxCloneSyncService::new(CircuitBreakerLayer::new(breaker).layer(svc));
    }
    svc = BoxCloneSyncService::new(
        RetryLayer::new(
            settings.retry.clone(),
            ctx.observer,
            ctx.metrics.retries.clone(),
        )
        .layer(svc),
    );
    BoxCloneSyncService::new(TraceLayer.layer(svc))
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::future::Future;
    use std::sync::Arc;

    use bytes::Bytes;

    use crate::pipeline::delivery::{Delivery, DeliveryError, Receipt};
    use crate::store::{DeliveryId, DeliveryTask, MessageId};

    pub fn delivery() -> Delivery {
        Delivery {
            channel: "c".into(),
            destination: "d".into(),
            task: Arc::new(DeliveryTask {
                id: DeliveryId(1),
                message_id: MessageId(1),
                generation: 1,
                payload: Bytes::from_static(b"MSH|^~\\&|\r"),
                message_type: None,
                control_id: None,
                attempts: 0,
                created_at: jiff::Timestamp::now(),
                next_attempt_at: None,
            }),
            idempotency_key: "1-d".into(),
            attempt: 1,
        }
    }

    pub fn service_fn_delivery<F, Fut>(f: F) -> tower::util::ServiceFn<F>
    where
        F: FnMut(Delivery) -> Fut + Clone,
        Fut: Future<Output = Result<Receipt, DeliveryError>>,
    {
        tower::service_fn(f)
    }
}
