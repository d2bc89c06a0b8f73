//! The HTTP surface: `/healthz`, `/readyz`, `/metrics` (the FHIR, HL7 and
//! X12 intake routes and the admin API join it in later issues).
//!
//! Owns the router and its state. `/healthz` says the process is alive;
//! `/readyz` says it is accepting work and its store can commit (503 while
//! shutting down or when the store fails); `/metrics` is the Prometheus
//! text format.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::store::Store;

/// Shared state of the routes.
#[derive(Clone)]
pub struct ApiState {
    /// False before start-up completes and after shutdown begins.
    pub ready: Arc<AtomicBool>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The metrics recorder.
    pub metrics: PrometheusHandle,
}

/// The router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<ApiState>) -> impl IntoResponse {
    if !s.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: starting or shutting down\n",
        );
    }
    if !s.store.healthy().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store cannot be reached\n",
        );
    }
    (StatusCode::OK, "ready\n")
}

async fn metrics(State(s): State<ApiState>) -> impl IntoResponse {
    s.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}
