//! Ingrid client SDK: the Perun channel protocol shared by the hub and its clients.
//!
//! The pure protocol core is the crate `ingrid-protocol`, re-exported here:
//! - [`state`]: channel ids, EIP-712 digests, signing and signature checks, exactly as the
//!   adjudicator computes them (through alloy, from the contracts' artifacts).
//! - [`validate`]: pure checks of a proposed channel update.
//! - [`chain`]: on-chain actions (deploy, deposit, register, refute, conclude, withdraw).
//! - [`client`]: a typed HTTP client of the hub; [`store`]: the client's durable states;
//!   [`wallet`]: open, pay, close and withdraw end to end.
//! - [`virtual_channel`]: the arithmetic of virtual channels in their parents, and transfers
//!   (from the core), and the record a client keeps of one.
//! - [`p2p`]: direct payments and closes between the two participants of a virtual channel.
//! - `paid_http` (feature `paid-http`): the nanoservice sale over HTTP: a paywall layer,
//!   seller routes, a paying client.
//! - [`dispute`]: on-chain disputes: force-close, conclude, and a watcher that refutes stale
//!   registrations.
//! - [`trust`]: the deployment a client trusts, and the checks of `/v1/hub` and the chain
//!   against it before a deposit.
//! - [`devnet`]: a local anvil chain for demos and tests.
//! - [`api`]: wire types of the hub's HTTP API.
//! - [`bindings`]: the generated contract bindings (from the core, with contract instances).

pub mod api;
pub mod chain;
pub mod client;
pub mod devnet;
pub mod dispute;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod p2p;
#[cfg(feature = "paid-http")]
pub mod paid_http;
pub mod store;
pub mod tls;
pub mod trust;
pub mod virtual_channel;
pub mod wallet;

pub use alloy;
pub use ingrid_protocol::{Allocation, Deployment, Params, Role, SignatureError, SignedState, State, SubAlloc};
pub use ingrid_protocol::{UpdateError, UpdateKind};
pub use ingrid_protocol::{app, bindings, login, state, validate};
