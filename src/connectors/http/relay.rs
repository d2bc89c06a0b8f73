//! Relaying a destination's answer back to a waiting HTTP client
//! (`mode: sync` FHIR channels).
//!
//! Owns the meeting point between the intake route that committed a
//! message and is waiting, and the destination worker that delivers it:
//! keyed by (message id, destination). The destination publishes its final
//! answer (2xx, or a refusal that will not be retried); an answer published
//! before anyone waits is kept for a minute, so the order in which the two
//! sides arrive does not matter. Only (channel, destination) pairs declared
//! as relays publish anything.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

/// What the destination answered.
#[derive(Clone, Debug)]
pub struct Relayed {
    /// Status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// Body.
    pub body: Bytes,
}

type Key = (i64, String);

/// The meeting point.
#[derive(Default)]
pub struct RelayHub {
    relays: Mutex<HashSet<(String, String)>>,
    waiting: Mutex<HashMap<Key, oneshot::Sender<Relayed>>>,
    unclaimed: Mutex<HashMap<Key, (Instant, Relayed)>>,
}

const KEEP: Duration = Duration::from_secs(60);

impl RelayHub {
    /// Declares that `destination`'s answers on `channel` are relayed.
    pub fn declare(&self, channel: &str, destination: &str) {
        if let Ok(mut r) = self.relays.lock() {
            r.insert((channel.to_string(), destination.to_string()));
        }
    }

    /// True when answers of this pair are relayed.
    pub fn relays(&self, channel: &str, destination: &str) -> bool {
        self.relays
            .lock()
            .map(|r| r.contains(&(channel.to_string(), destination.to_string())))
            .unwrap_or(false)
    }

    /// The destination's final answer for a message.
    pub fn publish(&self, channel: &str, destination: &str, message: i64, answer: Relayed) {
        if !self.relays(channel, destination) {
            return;
        }
        let key = (message, destination.to_string());
        let waiter = self.waiting.lock().ok().and_then(|mut w| w.remove(&key));
        match waiter {
            Some(tx) => {
                let _ = tx.send(answer);
            }
            None => {
                if let Ok(mut u) = self.unclaimed.lock() {
                    let now = Instant::now();
                    u.retain(|_, (t, _)| now.duration_since(*t) < KEEP);
                    u.insert(key, (now, answer));
                }
            }
        }
    }

    /// Waits up to `timeout` for the answer to `message` from `destination`.
    pub async fn wait(
        &self,
        destination: &str,
        message: i64,
        timeout: Duration,
    ) -> Option<Relayed> {
        let key = (message, destination.to_string());
        let rx = {
            if let Some((_, a)) = self.unclaimed.lock().ok().and_then(|mut u| u.remove(&key)) {
                return Some(a);
            }
            let (tx, rx) = oneshot::channel();
            let Ok(mut w) = self.waiting.lock() else {
                return None;
            };
            w.insert(key.clone(), tx);
            rx
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(a)) => Some(a),
            _ => {
                if let Ok(mut w) = self.waiting.lock() {
                    w.remove(&key);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Relayed {
        Relayed {
            status,
            content_type: None,
            location: None,
            body: Bytes::from_static(b"{}"),
        }
    }

    #[tokio::test]
    async fn either_side_may_come_first() {
        let hub = std::sync::Arc::new(RelayHub::default());
        hub.declare("c", "d");
        // Published first, claimed later.
        hub.publish("c", "d", 1, answer(201));
        assert_eq!(
            hub.wait("d", 1, Duration::from_millis(10))
                .await
                .map(|a| a.status),
            Some(201)
        );
        // Waiting first.
        let h = hub.clone();
        let w = tokio::spawn(async move { h.wait("d", 2, Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        hub.publish("c", "d", 2, answer(200));
        assert_eq!(w.await.unwrap().map(|a| a.status), Some(200));
        // Nobody relays this pair; nothing is kept.
        hub.publish("c", "other", 3, answer(200));
        assert!(
            hub.wait("other", 3, Duration::from_millis(10))
                .await
                .is_none()
        );
    }
}
