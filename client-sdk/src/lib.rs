//! Ingrid client SDK: the Perun channel protocol shared by the hub and its clients.
//!
//! - [`state`]: channel ids, EIP-712 digests, signing and signature checks, exactly as the
//!   adjudicator computes them (through alloy, from the contracts' artifacts).
//! - [`validate`]: pure checks of a proposed channel update.
//! - [`chain`]: on-chain actions (deploy, deposit, register, refute, conclude, withdraw).
//! - [`devnet`]: a local anvil chain for demos and tests.
//! - [`bindings`]: the generated contract bindings.

pub mod bindings;
pub mod chain;
pub mod devnet;
pub mod state;
pub mod validate;

pub use alloy;
pub use bindings::Channel::{Allocation, Params, SignedState, State, SubAlloc};
pub use state::{Deployment, SignatureError};
pub use validate::{UpdateError, UpdateKind};
