use std::sync::Arc;

use tower::Layer;

use super::Breaker;
use super::service::CircuitBreaker;

/// Puts a destination's breaker in front of its attempts.
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    breaker: Arc<Breaker>,
}

impl CircuitBreakerLayer {
    /// A layer over a breaker.
    pub fn new(breaker: Arc<Breaker>) -> CircuitBreakerLayer {
        CircuitBreakerLayer { breaker }
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> CircuitBreaker<S> {
        CircuitBreaker::new(inner, self.breaker.clone())
    }
}
