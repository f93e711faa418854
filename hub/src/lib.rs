//! Ingrid: a payment hub for Perun virtual payment channels.
//!
//! - [`core`]: the hub's pure decisions (what to accept, sign and deposit); [`policy`]: the
//!   operator's limits and fees for virtual channels; [`topup`]: collateral top-ups;
//!   [`proposals`]: proposals that expire unaccepted.
//! - [`api`]: the HTTP API by resource, with [`admin`] (the operator's API and `ingrid admin`,
//!   re-exported here); [`error`]: its error type; [`openapi`]: its OpenAPI document.
//! - [`db`]: Postgres, the source of truth; [`metrics`]: the Prometheus metrics on `/metrics`.
//! - [`chain`]: the event watcher, the hub's answers to registrations on chain ([`disputes`],
//!   re-exported here) and the outbox of the hub's transactions; [`leader`]: one replica runs
//!   them.
//! - [`server`]: starting and stopping a hub process; [`config`]: its configuration;
//!   [`sessions`]: the cache of sessions.
//! - [`dev`]: the embedded local stack (`ingrid dev`); [`demo`]: the seed's example on chain;
//!   [`sale`]: the seed's nanoservice sale through a real hub (the README demo).

pub mod api;
pub mod auth;
pub mod chain;
pub mod config;
pub mod core;
pub mod db;
pub mod demo;
pub mod dev;
pub mod error;
pub mod fair_game;
pub mod leader;
pub mod metrics;
pub mod on_delivery;
pub mod openapi;
pub mod policy;
pub mod proposals;
pub mod sale;
pub mod server;
pub mod sessions;
pub mod topup;

pub use api::admin;
pub use chain::disputes;
