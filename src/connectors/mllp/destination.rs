//! The MLLP sender: keeps a connection per destination, sends a message,
//! waits for its ACK and classifies it.
//!
//! Owns the exchange and [`MllpRetryLogic`], the meaning of HL7 answers:
//! AA/CA → sent; AE/CE → retry (or dead, per `on_error`); AR/CR → dead (or
//! retry, per `on_reject`); an ACK whose MSA-2 is not the MSH-10 we sent,
//! a closed connection, garbage or silence → retry. The connection is taken
//! out for the exchange and put back only after a clean answer, so an
//! attempt abandoned on timeout can never leave a late ACK to be read as
//! the next message's. Messages are sent as stored except that a UTF-8 BOM
//! is dropped and LF/CRLF segment ends become CR, as MLLP peers expect;
//! MSH-10 is unchanged, so a receiver can de-duplicate a redelivery.

use std::borrow::Cow;
use std::sync::Arc;

use hl7v2::{AckCode, ReceivedAck};
use rustls::pki_types::ServerName;

use super::client::{Client, ClientError};
use super::config::{MllpDestinationConfig, NackPolicy};
use crate::pipeline::delivery::{Deliver, Delivery, DeliveryError, Receipt, RetryLogic, Verdict};

/// How HL7 acknowledgments map to delivery outcomes.
#[derive(Clone, Copy, Debug)]
pub struct MllpRetryLogic {
    /// AE/CE.
    pub on_error: NackPolicy,
    /// AR/CR.
    pub on_reject: NackPolicy,
}

impl RetryLogic for MllpRetryLogic {
    type Answer = ReceivedAck;

    fn classify(&self, ack: &ReceivedAck) -> Verdict {
        let text = if ack.text.is_empty() {
            String::new()
        } else {
            format!(": {}", ack.text)
        };
        let failed = |policy: NackPolicy| {
            let message = format!("peer answered {}{text}", ack.code);
            Verdict::Failed(match policy {
                NackPolicy::Retry => DeliveryError::retryable(message),
                NackPolicy::Dead => DeliveryError::permanent(message),
            })
        };
        match ack.code {
            AckCode::AA | AckCode::CA => Verdict::Delivered(Receipt {
                detail: Some(ack.code.as_str().to_string()),
                attempts: 0,
            }),
            AckCode::AE | AckCode::CE => failed(self.on_error),
            AckCode::AR | AckCode::CR => failed(self.on_reject),
        }
    }
}

struct Inner {
    address: String,
    config: MllpDestinationConfig,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    logic: MllpRetryLogic,
    conn: tokio::sync::Mutex<Option<Client>>,
}

/// The MLLP destination connector (a tower service).
#[derive(Clone)]
pub struct MllpSender {
    inner: Arc<Inner>,
}

impl MllpSender {
    /// Builds the sender; connects lazily on the first delivery.
    pub fn new(
        config: MllpDestinationConfig,
        tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    ) -> MllpSender {
        MllpSender {
            inner: Arc::new(Inner {
                address: config.address.clone(),
                logic: MllpRetryLogic {
                    on_error: config.on_error,
                    on_reject: config.on_reject,
                },
                tls,
                config,
                conn: tokio::sync::Mutex::new(None),
            }),
        }
    }
}

/// The message as it goes on the wire: no BOM, CR segment ends.
pub fn for_wire(payload: &[u8]) -> Cow<'_, [u8]> {
    normalize_segment_ends(
        payload
            .strip_prefix(&[0xEF, 0xBB, 0xBF][..])
            .unwrap_or(payload),
    )
}

/// LF and CRLF segment ends become CR, as MLLP peers expect.
pub fn normalize_segment_ends(body: &[u8]) -> Cow<'_, [u8]> {
    if !body.contains(&b'\n') {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.push(b'\r');
                i += 2;
            }
            b'\n' => {
                out.push(b'\r');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

impl Inner {
    async fn connect(&self) -> Result<Client, DeliveryError> {
        let max = self
            .config
            .max_ack_size
            .map(|s| s.as_usize())
            .unwrap_or(1 << 20);
        Client::connect(
            &self.address,
            self.config.connect_timeout.get(),
            self.tls.clone(),
            max,
        )
        .await
        .map_err(|e| DeliveryError::retryable(e.to_string()))
    }

    async fn exchange(&self, conn: &mut Client, payload: &[u8]) -> Result<Vec<u8>, DeliveryError> {
        conn.send(payload).await.map_err(|e| match e {
            ClientError::Closed => DeliveryError::retryable(format!(
                "{} closed the connection before acknowledging",
                self.address
            )),
            e => DeliveryError::retryable(format!("exchange with {} failed: {e}", self.address)),
        })
    }

    async fn deliver(&self, d: Delivery) -> Result<Receipt, DeliveryError> {
        let wire = for_wire(&d.task.payload);
        let sent_control = hl7v2::Message::parse(&wire)
            .map(|m| m.control_id().into_owned())
            .unwrap_or_default();
        let mut slot = self.conn.lock().await;
        let (mut conn, reused) = match slot.take() {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let reply = match self.exchange(&mut conn, &wire).await {
            Ok(r) => r,
            Err(_) if reused => {
                // A kept connection may have been closed by the peer while
                // idle: one fresh connection before calling it a failure.
                conn = self.connect().await?;
                self.exchange(&mut conn, &wire).await?
            }
            Err(e) => return Err(e),
        };
        let ack = hl7v2::read_ack(&reply).map_err(|e| {
            DeliveryError::retryable(format!(
                "{} answered with something that is not an ACK: {e}",
                self.address
            ))
        })?;
        if self.config.check_control_id && ack.control_id != sent_control {
            return Err(DeliveryError::retryable(format!(
                "{} acknowledged control id {:?}, but {:?} was sent",
                self.address, ack.control_id, sent_control
            )));
        }
        *slot = Some(conn);
        match self.logic.classify(&ack) {
            Verdict::Delivered(r) => Ok(r),
            Verdict::Failed(e) => Err(e),
        }
    }
}

impl Deliver for MllpSender {
    async fn deliver(&self, d: Delivery) -> Result<Receipt, DeliveryError> {
        self.inner.deliver(d).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        assert_eq!(
            for_wire(b"\xEF\xBB\xBFMSH|a\nPID|1\r\nPV1|2\n").as_ref(),
            b"MSH|a\rPID|1\rPV1|2\r"
        );
        assert!(matches!(for_wire(b"MSH|a\rPID|1\r"), Cow::Borrowed(_)));
    }

    #[test]
    fn classifies_acks() {
        let logic = MllpRetryLogic {
            on_error: NackPolicy::Retry,
            on_reject: NackPolicy::Dead,
        };
        let ack = |code| ReceivedAck {
            code,
            control_id: "1".into(),
            text: "why".into(),
        };
        assert!(matches!(
            logic.classify(&ack(AckCode::AA)),
            Verdict::Delivered(_)
        ));
        assert!(matches!(
            logic.classify(&ack(AckCode::CA)),
            Verdict::Delivered(_)
        ));
        match logic.classify(&ack(AckCode::AE)) {
            Verdict::Failed(e) => assert!(e.is_retryable() && e.message.contains("AE: why")),
            v => panic!("{v:?}"),
        }
        match logic.classify(&ack(AckCode::CR)) {
            Verdict::Failed(e) => assert!(!e.is_retryable()),
            v => panic!("{v:?}"),
        }
    }
}
