//! HTTP as a transport: the client every HTTP-speaking destination shares
//! (TLS, authentication, what answers mean) and the generic HTTP
//! destination.
//!
//! - `config`: `auth:` blocks and the `type: http` destination.
//! - `client`: the shared client and [`client::HttpRetryLogic`].
//! - `destination`: the generic HTTP destination.
//! - `jwt`: signed client assertions for SMART Backend Services.
//! - `relay`: a destination's answer handed back to a waiting client (`mode: sync`).

pub mod client;
pub mod config;
pub mod destination;
pub mod jwt;
pub mod relay;
