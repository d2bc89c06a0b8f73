//! Configuration of the MLLP source (listener) and destination (sender).
//! The doc comments here are the reference documentation of these blocks.

use serde::Deserialize;

use crate::config::channel::destination_config;
use crate::config::units::{ByteSize, HumanDuration};
use crate::tls::{TlsClientConfig, TlsServerConfig};

fn default_max_size() -> ByteSize {
    ByteSize::mib(10)
}
fn default_idle() -> HumanDuration {
    HumanDuration::secs(600)
}
fn default_read() -> HumanDuration {
    HumanDuration::secs(60)
}
fn default_in_flight() -> usize {
    64
}
fn default_connections() -> usize {
    256
}

/// `source: {type: mllp}`: an MLLP listener.
///
/// ```yaml
/// source:
///   type: mllp
///   listen: mllp               # a listener from config/caduceus.yaml, or an address
///   max_message_size: 10MiB
///   idle_timeout: 10m
///   read_timeout: 60s
///   tls: { cert: ..., key: ..., client_ca: ... }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MllpSourceConfig {
    /// A listener name from `config/caduceus.yaml` (e.g. `mllp`), or an
    /// address of the channel's own (`0.0.0.0:6661`). `--listen NAME=ADDR`
    /// overrides either (NAME is the listener or the channel name).
    pub listen: String,
    /// Largest frame accepted; a larger one is refused (AR) and discarded
    /// without being held in memory. Default 10MiB.
    #[serde(default = "default_max_size")]
    pub max_message_size: ByteSize,
    /// A connection with nothing in flight and no bytes for this long is
    /// closed. Default 10m.
    #[serde(default = "default_idle")]
    pub idle_timeout: HumanDuration,
    /// A frame that has started must end within this. Default 60s.
    #[serde(default = "default_read")]
    pub read_timeout: HumanDuration,
    /// Frames of one connection processed at once (pipelining); ACKs are
    /// still sent in order. Default 64.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Connections at once; more wait for a free slot. Default 256.
    #[serde(default = "default_connections")]
    pub max_connections: usize,
    /// TLS, and mutual TLS with `client_ca`.
    #[serde(default)]
    pub tls: Option<TlsServerConfig>,
}

/// What to do with a negative acknowledgment.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NackPolicy {
    /// Try again per the retry policy.
    Retry,
    /// Give up: the delivery is dead.
    Dead,
}

fn retry() -> NackPolicy {
    NackPolicy::Retry
}
fn dead() -> NackPolicy {
    NackPolicy::Dead
}
fn default_connect() -> HumanDuration {
    HumanDuration::secs(10)
}
fn yes() -> bool {
    true
}

destination_config! {
    /// `destinations: [{type: mllp}]`: send over MLLP and wait for the ACK.
    ///
    /// ```yaml
    /// - name: lab
    ///   type: mllp
    ///   address: lab.example.org:6661
    ///   on_error: retry     # AE/CE
    ///   on_reject: dead     # AR/CR
    ///   timeout: 30s        # per attempt, ACK included
    ///   tls: { ca: ..., cert: ..., key: ... }
    /// ```
    pub struct MllpDestinationConfig {
        /// `host:port` of the receiver.
        pub address: String,
        /// Time to establish the connection (and TLS). Default 10s.
        #[serde(default = "default_connect")]
        pub connect_timeout: HumanDuration,
        /// On AE/CE: `retry` (default) or `dead`.
        #[serde(default = "retry")]
        pub on_error: NackPolicy,
        /// On AR/CR: `dead` (default) or `retry`.
        #[serde(default = "dead")]
        pub on_reject: NackPolicy,
        /// Refuse an ACK whose MSA-2 is not the MSH-10 sent. Default true.
        #[serde(default = "yes")]
        pub check_control_id: bool,
        /// Largest ACK accepted. Default 1MiB.
        #[serde(default)]
        pub max_ack_size: Option<ByteSize>,
        /// TLS, with a pinned CA and optionally our client certificate.
        #[serde(default)]
        pub tls: Option<TlsClientConfig>,
    }
}
