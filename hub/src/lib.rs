//! Ingrid: a payment hub for Perun virtual payment channels.
//!
//! - [`demo`]: the seed's worked example run through the contracts on a local chain.

pub mod demo;
