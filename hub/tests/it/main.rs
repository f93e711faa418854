//! Integration tests of the hub against a real Postgres and a real anvil chain.

mod apps;
mod bad_input;
mod basic_channels;
mod demo;
mod dev_stack;
mod disputes;
mod fuzz;
mod harness;
mod limits;
mod metrics;
mod operations;
mod policy;
mod prometheus;
mod reorg;
mod restart;
mod sim;
mod tls;
mod virtual_bad_input;
mod virtual_channels;
mod virtual_many;
mod watcher;
