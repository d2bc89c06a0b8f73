//! A middleware that makes each attempt pass a gate before it goes on, and
//! keeps what passing gave until the attempt ends: the shape the rate limit
//! (wait for a permit) and the concurrency limit (hold a permit for the
//! attempt) share.
//!
//! Owns that shape ([`Gated`], [`GateLayer`]); each limit owns its own
//! [`Gate`] and config in its folder.

use std::future::Future;
use std::task::{Context, Poll};

use tower::{Layer, Service, ServiceExt};

use crate::pipeline::delivery::{Delivery, DeliveryError, DeliveryFuture, Receipt};

/// Something an attempt waits at.
pub trait Gate: Clone + Send + Sync + 'static {
    /// What passing gives; dropped when the attempt ends.
    type Pass: Send + 'static;
    /// Waits until an attempt may go.
    fn pass(&self) -> impl Future<Output = Self::Pass> + Send + 'static;
}

/// Puts a gate in front of a service.
#[derive(Clone)]
pub struct GateLayer<G> {
    gate: G,
}

impl<G> GateLayer<G> {
    /// A layer over a gate.
    pub fn new(gate: G) -> GateLayer<G> {
        GateLayer { gate }
    }
}

impl<S, G: Clone> Layer<S> for GateLayer<G> {
    type Service = Gated<S, G>;

    fn layer(&self, inner: S) -> Gated<S, G> {
        Gated::new(inner, self.gate.clone())
    }
}

/// A service behind a gate.
#[derive(Clone)]
pub struct Gated<S, G> {
    inner: S,
    gate: G,
}

impl<S, G> Gated<S, G> {
    /// `inner` behind `gate`.
    pub fn new(inner: S, gate: G) -> Self {
        Gated { inner, gate }
    }
}

impl<S, G> Service<Delivery> for Gated<S, G>
where
    S: Service<Delivery, Response = Receipt, Error = DeliveryError> + Clone + Send + 'static,
    S::Future: Send,
    G: Gate,
{
    type Response = Receipt;
    type Error = DeliveryError;
    type Future = DeliveryFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), DeliveryError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Delivery) -> DeliveryFuture {
        let inner = self.inner.clone();
        let gate = self.gate.clone();
        Box::pin(async move {
            let _pass = gate.pass().await;
            inner.oneshot(req).await
        })
    }
}
