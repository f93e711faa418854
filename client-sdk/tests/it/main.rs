//! Integration tests of the client SDK against Ingrid's contracts on a real anvil chain.

mod apps;
mod contracts;
mod retry;
mod tls;
mod trust;
