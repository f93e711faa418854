//! Integration tests of the hub crate against a real anvil chain.

mod demo;
