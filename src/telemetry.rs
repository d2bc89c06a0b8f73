//! Metrics and logs, typed: every metric name is a constant here and every
//! recording goes through a function here, so names and labels cannot drift
//! and no label can carry PHI (labels are channel, destination, ACK code
//! and outcome; never identifiers or content).
//!
//! Owns the Prometheus recorder and the tracing subscriber set-up. It does
//! not own the `/metrics` route (see `api`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Metric names (all `caduceus_` prefixed), as listed in the README.
pub mod names {
    /// Messages received, by channel (counted once stored or refused).
    pub const MESSAGES_RECEIVED: &str = "caduceus_messages_received_total";
    /// Acknowledgments sent, by channel and code (AA, AE, AR, CA, CE, CR).
    pub const ACKS: &str = "caduceus_acks_total";
    /// Deliveries finished, by channel, destination and outcome (sent, dead).
    pub const DELIVERIES: &str = "caduceus_deliveries_total";
    /// Deliveries waiting (queued or retrying), by channel and destination.
    pub const QUEUE_DEPTH: &str = "caduceus_queue_depth";
    /// Time from queueing to the final outcome of a delivery.
    pub const DELIVERY_SECONDS: &str = "caduceus_delivery_seconds";
    /// Failed attempts that will be retried, by channel and destination.
    pub const RETRIES: &str = "caduceus_retries_total";
    /// Circuit breaker state by channel and destination: 0 closed, 1 open, 2 half-open.
    pub const CIRCUIT_STATE: &str = "caduceus_circuit_state";
    /// Messages suppressed as duplicates, by channel.
    pub const DUPLICATES: &str = "caduceus_duplicates_total";
    /// Store commit failures (the sources answered with a negative ACK).
    pub const STORE_ERRORS: &str = "caduceus_store_errors_total";
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Only fails when a recorder is already set (tests): keep going.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(names::MESSAGES_RECEIVED, "Messages received, by channel");
    describe_counter!(names::ACKS, "Acknowledgments sent, by channel and code");
    describe_counter!(names::DELIVERIES, "Deliveries finished, by channel, destination and outcome");
    describe_gauge!(names::QUEUE_DEPTH, "Deliveries queued or retrying, by channel and destination");
    describe_histogram!(names::DELIVERY_SECONDS, metrics::Unit::Seconds, "Time from queueing to final outcome");
    describe_counter!(names::RETRIES, "Failed delivery attempts that will be retried");
    describe_gauge!(names::CIRCUIT_STATE, "Circuit breaker state: 0 closed, 1 open, 2 half-open");
    describe_counter!(names::DUPLICATES, "Messages suppressed as duplicates");
    describe_counter!(names::STORE_ERRORS, "Store commit failures");
}

/// A message arrived on a channel.
pub fn message_received(channel: &str) {
    metrics::counter!(names::MESSAGES_RECEIVED, "channel" => channel.to_string()).increment(1);
}

/// An acknowledgment was sent.
pub fn ack(channel: &str, code: &'static str) {
    metrics::counter!(names::ACKS, "channel" => channel.to_string(), "code" => code).increment(1);
}

/// A duplicate was suppressed.
pub fn duplicate(channel: &str) {
    metrics::counter!(names::DUPLICATES, "channel" => channel.to_string()).increment(1);
}

/// The store failed to commit.
pub fn store_error() {
    metrics::counter!(names::STORE_ERRORS).increment(1);
}

/// A delivery finished.
pub fn delivery(channel: &str, destination: &str, outcome: &'static str, seconds: f64) {
    metrics::counter!(names::DELIVERIES, "channel" => channel.to_string(), "destination" => destination.to_string(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(names::DELIVERY_SECONDS, "channel" => channel.to_string(), "destination" => destination.to_string())
        .record(seconds);
}

/// A failed attempt will be retried.
pub fn retry(channel: &str, destination: &str) {
    metrics::counter!(names::RETRIES, "channel" => channel.to_string(), "destination" => destination.to_string())
        .increment(1);
}

/// A destination's queue depth.
pub fn queue_depth(channel: &str, destination: &str, depth: u64) {
    metrics::gauge!(names::QUEUE_DEPTH, "channel" => channel.to_string(), "destination" => destination.to_string())
        .set(depth as f64);
}

/// A circuit breaker's state.
pub fn circuit_state(channel: &str, destination: &str, state: f64) {
    metrics::gauge!(names::CIRCUIT_STATE, "channel" => channel.to_string(), "destination" => destination.to_string())
        .set(state);
}

/// Sets up logging to stderr. `RUST_LOG` overrides `level`.
pub fn init_tracing(level: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
