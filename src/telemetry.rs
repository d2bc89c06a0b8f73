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
    /// Messages a channel's `map` step ran on, by channel and outcome (ok, error).
    pub const MAPPED: &str = "caduceus_mapped_total";
    /// Time one `map` step took, by channel.
    pub const MAP_SECONDS: &str = "caduceus_map_seconds";
    /// Reloads of `mappings/` after a change, by result (ok, error: the last good set stays).
    pub const MAPPING_RELOADS: &str = "caduceus_mapping_reloads_total";
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0,
                ])
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
    describe_counter!(
        names::DELIVERIES,
        "Deliveries finished, by channel, destination and outcome"
    );
    describe_gauge!(
        names::QUEUE_DEPTH,
        "Deliveries queued or retrying, by channel and destination"
    );
    describe_histogram!(
        names::DELIVERY_SECONDS,
        metrics::Unit::Seconds,
        "Time from queueing to final outcome"
    );
    describe_counter!(
        names::RETRIES,
        "Failed delivery attempts that will be retried"
    );
    describe_gauge!(
        names::CIRCUIT_STATE,
        "Circuit breaker state: 0 closed, 1 open, 2 half-open"
    );
    describe_counter!(names::DUPLICATES, "Messages suppressed as duplicates");
    describe_counter!(names::STORE_ERRORS, "Store commit failures");
    describe_counter!(
        names::MAPPED,
        "Messages a map step ran on, by channel and outcome"
    );
    describe_histogram!(
        names::MAP_SECONDS,
        metrics::Unit::Seconds,
        "Time one map step took"
    );
    describe_counter!(
        names::MAPPING_RELOADS,
        "Reloads of mappings/ after a change, by result"
    );
}

/// A channel's `map` step metric handles.
#[derive(Clone)]
pub struct MapMetrics {
    ok: metrics::Counter,
    error: metrics::Counter,
    seconds: metrics::Histogram,
}

impl MapMetrics {
    /// Registers a channel's map metrics.
    pub fn new(channel: &str) -> MapMetrics {
        let c = channel.to_string();
        MapMetrics {
            ok: metrics::counter!(names::MAPPED, "channel" => c.clone(), "outcome" => "ok"),
            error: metrics::counter!(names::MAPPED, "channel" => c.clone(), "outcome" => "error"),
            seconds: metrics::histogram!(names::MAP_SECONDS, "channel" => c),
        }
    }

    /// One message mapped (or not), taking `seconds`.
    pub fn mapped(&self, ok: bool, seconds: f64) {
        if ok { &self.ok } else { &self.error }.increment(1);
        self.seconds.record(seconds);
    }
}

/// `mappings/` was reloaded (`ok`) or a change did not compile.
pub fn mapping_reload(ok: bool) {
    metrics::counter!(names::MAPPING_RELOADS, "result" => if ok { "ok" } else { "error" })
        .increment(1);
}

/// A channel's metric handles, registered once (no label allocation per message).
#[derive(Clone)]
pub struct ChannelMetrics {
    received: metrics::Counter,
    acks: [metrics::Counter; 6],
    duplicates: metrics::Counter,
}

impl ChannelMetrics {
    /// Registers a channel's metrics.
    pub fn new(channel: &str) -> ChannelMetrics {
        let ch = channel.to_string();
        let ack = |code: &'static str| metrics::counter!(names::ACKS, "channel" => ch.clone(), "code" => code);
        ChannelMetrics {
            received: metrics::counter!(names::MESSAGES_RECEIVED, "channel" => ch.clone()),
            acks: [
                ack("AA"),
                ack("AE"),
                ack("AR"),
                ack("CA"),
                ack("CE"),
                ack("CR"),
            ],
            duplicates: metrics::counter!(names::DUPLICATES, "channel" => ch.clone()),
        }
    }

    /// A message arrived.
    pub fn received(&self) {
        self.received.increment(1);
    }

    /// An acknowledgment was sent.
    pub fn ack(&self, code: hl7v2::AckCode) {
        use hl7v2::AckCode::*;
        let i = match code {
            AA => 0,
            AE => 1,
            AR => 2,
            CA => 3,
            CE => 4,
            CR => 5,
        };
        self.acks[i].increment(1);
    }

    /// A duplicate was suppressed.
    pub fn duplicate(&self) {
        self.duplicates.increment(1);
    }
}

/// A destination's metric handles.
#[derive(Clone)]
pub struct DestinationMetrics {
    sent: metrics::Counter,
    dead: metrics::Counter,
    seconds: metrics::Histogram,
    /// Failed attempts that will be retried.
    pub retries: metrics::Counter,
    /// Deliveries queued or retrying.
    pub queue_depth: metrics::Gauge,
    /// Circuit breaker state.
    pub circuit: metrics::Gauge,
}

impl DestinationMetrics {
    /// Registers a destination's metrics.
    pub fn new(channel: &str, destination: &str) -> DestinationMetrics {
        let (c, d) = (channel.to_string(), destination.to_string());
        DestinationMetrics {
            sent: metrics::counter!(names::DELIVERIES, "channel" => c.clone(), "destination" => d.clone(), "outcome" => "sent"),
            dead: metrics::counter!(names::DELIVERIES, "channel" => c.clone(), "destination" => d.clone(), "outcome" => "dead"),
            seconds: metrics::histogram!(names::DELIVERY_SECONDS, "channel" => c.clone(), "destination" => d.clone()),
            retries: metrics::counter!(names::RETRIES, "channel" => c.clone(), "destination" => d.clone()),
            queue_depth: metrics::gauge!(names::QUEUE_DEPTH, "channel" => c.clone(), "destination" => d.clone()),
            circuit: metrics::gauge!(names::CIRCUIT_STATE, "channel" => c, "destination" => d),
        }
    }

    /// A delivery finished: `sent` or dead, `seconds` after it was queued.
    pub fn finished(&self, sent: bool, seconds: f64) {
        if sent { &self.sent } else { &self.dead }.increment(1);
        self.seconds.record(seconds);
    }
}

/// The store failed to commit.
pub fn store_error() {
    metrics::counter!(names::STORE_ERRORS).increment(1);
}

/// Sets up logging to stderr. `RUST_LOG` overrides `level`.
pub fn init_tracing(level: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
