//! One worker per destination: takes its queued deliveries in order, sends
//! each through the destination's stack, records the outcome.
//!
//! Owns the queue loop. Order is kept per destination: a delivery that is
//! retrying holds the ones behind it (a receiver expecting A01 before A08
//! gets them in that order). Successful outcomes are recorded in one store
//! write per batch; a crash before that write means those deliveries are
//! sent again with the same idempotency key (at least once). A failing
//! destination only ever blocks its own worker.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::pipeline::delivery::{Barrier, Delivery, DeliveryError, DeliveryService};
use crate::pipeline::layers::retry::RetryObserver;
use crate::store::{AttemptUpdate, DeliveryId, Store, idempotency_key};
use crate::telemetry::DestinationMetrics;

/// How many deliveries a worker takes from the store at once.
pub const BATCH: u32 = 64;

/// How long an idle worker waits after being woken, so that deliveries
/// arriving together are taken (and recorded) together.
pub const GATHER: Duration = Duration::from_millis(5);

/// Records failed attempts in the store before each retry.
pub struct StoreObserver {
    /// The store.
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl RetryObserver for StoreObserver {
    async fn retrying(&self, d: &Delivery, e: &DeliveryError, wait: Duration) {
        let next = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or_default())
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let update = AttemptUpdate::Retrying {
            attempts: d.attempt,
            error: e.message.clone(),
            next_attempt_at: next,
        };
        if let Err(err) = self.store.record_attempts(vec![(d.task.id, update)]).await {
            tracing::warn!(error = %err, "could not record a failed attempt");
        }
    }
}

/// A destination's worker.
pub struct Worker {
    /// Channel name.
    pub channel: Arc<str>,
    /// Destination name.
    pub destination: Arc<str>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The destination's stack.
    pub stack: DeliveryService,
    /// Woken when deliveries are queued.
    pub notify: Arc<Notify>,
    /// Metric handles.
    pub metrics: DestinationMetrics,
    /// Called before a batch is recorded as sent, for connectors that make
    /// writes durable in groups.
    pub barrier: Option<Arc<dyn Barrier>>,
}

impl Worker {
    /// Runs until `shutdown`; an attempt in progress is abandoned (it stays
    /// queued and is sent again at the next start).
    pub async fn run(self, shutdown: CancellationToken) {
        let (ch, dest) = (self.channel.clone(), self.destination.clone());
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let tasks = match self.store.pending_deliveries(&ch, &dest, BATCH).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(channel = %ch, destination = %dest, error = %e, "cannot read the queue");
                    if sleep_or_stop(Duration::from_secs(1), &shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            if tasks.is_empty() {
                tokio::select! {
                    _ = self.notify.notified() => {
                        // Let a burst gather so its outcomes share one store
                        // write (and one sync for file destinations).
                        tokio::time::sleep(GATHER).await;
                    }
                    // Also look now and then: another process (the CLI) may queue work.
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.cancelled() => return,
                }
                continue;
            }
            let mut done: Vec<(DeliveryId, AttemptUpdate)> = Vec::with_capacity(tasks.len());
            for task in tasks {
                if let Some(at) = task.next_attempt_at {
                    let wait = at.duration_since(jiff::Timestamp::now()).as_secs_f64();
                    if wait > 0.0 && sleep_or_stop(Duration::from_secs_f64(wait), &shutdown).await {
                        self.flush(&mut done).await;
                        return;
                    }
                }
                let created = task.created_at;
                let id = task.id;
                let delivery = Delivery {
                    channel: ch.clone(),
                    destination: dest.clone(),
                    idempotency_key: idempotency_key(task.message_id, &dest, task.generation)
                        .into(),
                    attempt: task.attempts + 1,
                    task: Arc::new(task),
                };
                let result = tokio::select! {
                    r = self.stack.clone().oneshot(delivery) => r,
                    _ = shutdown.cancelled() => {
                        self.flush(&mut done).await;
                        return;
                    }
                };
                let age = jiff::Timestamp::now()
                    .duration_since(created)
                    .as_secs_f64()
                    .max(0.0);
                match result {
                    Ok(receipt) => {
                        self.metrics.finished(true, age);
                        done.push((
                            id,
                            AttemptUpdate::Sent {
                                attempts: receipt.attempts.max(1),
                                detail: receipt.detail,
                            },
                        ));
                    }
                    Err(e) => {
                        self.metrics.finished(false, age);
                        tracing::warn!(channel = %ch, destination = %dest, delivery_id = id.0, error = %e, "delivery is dead");
                        done.push((
                            id,
                            AttemptUpdate::Dead {
                                attempts: e.attempts.max(1),
                                error: e.message,
                            },
                        ));
                    }
                }
            }
            self.flush(&mut done).await;
        }
    }

    /// Makes the batch durable at the peer (the connector's barrier), then
    /// records outcomes; on a store error, retries (the outcome must not be
    /// lost). When the barrier fails, the batch's `sent` outcomes are dropped:
    /// those deliveries stay queued and are sent again.
    async fn flush(&self, done: &mut Vec<(DeliveryId, AttemptUpdate)>) {
        if done.is_empty() {
            return;
        }
        let mut updates = std::mem::take(done);
        if let Some(b) = &self.barrier
            && updates
                .iter()
                .any(|(_, u)| matches!(u, AttemptUpdate::Sent { .. }))
            && let Err(e) = b.sync().await
        {
            tracing::warn!(channel = %self.channel, destination = %self.destination, error = %e, "batch not durable; its deliveries will be sent again");
            updates.retain(|(_, u)| !matches!(u, AttemptUpdate::Sent { .. }));
            tokio::time::sleep(Duration::from_millis(500)).await;
            if updates.is_empty() {
                return;
            }
        }
        for attempt in 0..10u32 {
            match self.store.record_attempts(updates.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(channel = %self.channel, destination = %self.destination, error = %e, "cannot record delivery outcomes; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt + 1))).await;
                }
            }
        }
        tracing::error!(channel = %self.channel, destination = %self.destination, "delivery outcomes not recorded; these deliveries will be sent again");
    }
}

/// Sleeps; true when shutdown came first.
async fn sleep_or_stop(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.cancelled() => true,
    }
}
