//! What the watcher and the outbox share: the chain connection and the hub's key.

use std::time::Duration;

use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::Deployment;
use ingrid_client_sdk::chain::Asset;
use tokio::sync::watch;

/// What the watcher and the outbox need.
#[derive(Clone)]
pub struct Chain {
    /// RPC with the hub's wallet.
    pub provider: DynProvider,
    /// Chain and adjudicator.
    pub deployment: Deployment,
    /// Accepted assets.
    pub assets: Vec<Asset>,
    /// The hub's key.
    pub key: PrivateKeySigner,
    /// Confirmation depth.
    pub confirmations: u64,
    /// First block to ingest on a fresh database.
    pub start_block: u64,
    /// Poll interval.
    pub poll: Duration,
    /// The latest head the watcher saw (read by the metrics).
    pub head: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// `channels.settle_grace`: how long the clients get before the hub goes to chain.
    pub settle_grace: u64,
    /// `chain.fee_bump_after_secs`: how long a transaction may wait unmined before it is
    /// replaced with a higher fee.
    pub fee_bump_after: Duration,
}

/// Sleeps for `period`; returns true if `stop` turned true meanwhile.
pub(crate) async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, period: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}
