//! Runs a channel's pipeline for messages stored as `received`: those a
//! channel with steps accepted, and those an operator asked to reprocess.
//!
//! Owns that loop only; the decision itself is the channel's
//! [`Hl7Policy`](crate::pipeline::intake::Hl7Policy), the same one the
//! intake applies.

use std::sync::Arc;
use std::time::Duration;

use hl7v2::Message;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::pipeline::intake::{Hl7Policy, Wakers};
use crate::store::{MessageState, RouteOutcome, Store};

/// Processes `received` messages of one channel until `shutdown`.
pub async fn run(
    policy: Arc<Hl7Policy>,
    store: Arc<dyn Store>,
    wakers: Wakers,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let channel = policy.channel.clone();
    loop {
        let batch = match store.received(&channel, 64).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%channel, error = %e, "cannot read received messages");
                Vec::new()
            }
        };
        let mut routed = false;
        let full = batch.len() == 64;
        for (id, raw) in batch {
            let parsed = Message::parse(&raw);
            let a = policy.assess(&parsed, &raw);
            let outcome = match a.state {
                MessageState::Processed | MessageState::Received => RouteOutcome::Processed {
                    deliveries: a.deliveries,
                    mapping_version: None,
                },
                MessageState::Filtered => RouteOutcome::Filtered {
                    reason: a.error.unwrap_or_else(|| "filtered".into()),
                },
                MessageState::Error => RouteOutcome::Error {
                    reason: a.error.unwrap_or_else(|| "error".into()),
                },
            };
            routed |= matches!(outcome, RouteOutcome::Processed { .. });
            if let Err(e) = store.route(id, outcome).await {
                tracing::warn!(%channel, message_id = id.0, error = %e, "cannot record routing");
            }
        }
        if routed {
            wakers.wake();
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
