use std::task::{Context, Poll};

use tower::{Service, ServiceExt};
use tracing::Instrument;

use crate::pipeline::delivery::{Delivery, DeliveryError, DeliveryFuture, Receipt};

/// Runs each delivery inside a `delivery` span.
#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Trace<S> {
    pub(super) fn new(inner: S) -> Self {
        Trace { inner }
    }
}

impl<S> Service<Delivery> for Trace<S>
where
    S: Service<Delivery, Response = Receipt, Error = DeliveryError> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Receipt;
    type Error = DeliveryError;
    type Future = DeliveryFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), DeliveryError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Delivery) -> DeliveryFuture {
        let span = tracing::info_span!(
            "delivery",
            channel = %req.channel,
            destination = %req.destination,
            delivery_id = req.task.id.0,
            message_id = req.task.message_id.0,
            first_attempt = req.attempt,
        );
        let inner = self.inner.clone();
        Box::pin(
            async move {
                let result = inner.oneshot(req).await;
                match &result {
                    Ok(r) => {
                        tracing::debug!(detail = r.detail.as_deref().unwrap_or(""), "delivered")
                    }
                    Err(e) => tracing::warn!(error = %e, "delivery failed"),
                }
                result
            }
            .instrument(span),
        )
    }
}
