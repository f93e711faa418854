//! The event watcher: ingests the adjudicator's and the asset holders' events up to the
//! confirmation depth, one transaction per batch, and applies each in a savepoint.
//! Reorganisations are checked before each poll ([`Chain::check_reorg`], in `reorg.rs`).

use std::collections::BTreeSet;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;
use anyhow::Context;
use ingrid_client_sdk::bindings::adjudicator::Adjudicator;
use ingrid_client_sdk::bindings::eth_holder::EthAssetHolder;
use serde::Serialize;
use sqlx::{Connection, PgPool};
use tokio::sync::watch;

use super::context::{Chain, sleep_or_stop};
use super::outbox::Action;
use super::reorg::{CURSOR, HASH_HISTORY};
use crate::db;

/// Most blocks fetched per `eth_getLogs`.
const MAX_RANGE: u64 = 2_000;
impl Chain {
    /// Ingests confirmed events up to the confirmation depth, at most [`MAX_RANGE`] blocks,
    /// after undoing what a reorganisation replaced ([`Self::check_reorg`]); returns the new
    /// cursor, or `None` if there was nothing new.
    pub async fn ingest_once(&self, pool: &PgPool) -> anyhow::Result<Option<u64>> {
        let head = self.provider.get_block_number().await?;
        self.head.store(head, std::sync::atomic::Ordering::Relaxed);
        if let Some(cursor) = self.check_reorg(pool).await? {
            return Ok(Some(cursor.unwrap_or_default()));
        }
        let Some(safe) = head.checked_sub(self.confirmations) else { return Ok(None) };
        let from = match db::cursor(pool, CURSOR).await? {
            Some(done) => done + 1,
            None => self.start_block,
        };
        if from > safe {
            return Ok(None);
        }
        let to = safe.min(from + MAX_RANGE - 1);
        let to_hash = self.block_hash(to).await?.with_context(|| format!("the node has no block {to}"))?;
        let mut addresses = vec![self.deployment.adjudicator];
        addresses.extend(self.assets.iter().map(|a| a.holder));
        let filter = Filter::new().address(addresses).from_block(from).to_block(to);
        let logs = self.provider.get_logs(&filter).await?;
        // The logs and the hash remembered for `to` must be of one chain: each log's block is
        // the node's block at its height, and `to` did not change meanwhile.
        let mut seen = BTreeSet::from([(to, to_hash)]);
        for log in &logs {
            if let (Some(number), Some(hash)) = (log.block_number, log.block_hash)
                && seen.insert((number, hash))
            {
                anyhow::ensure!(
                    number != to && self.block_hash(number).await? == Some(hash),
                    "block {number} changed while its logs were read; retrying"
                );
            }
        }
        anyhow::ensure!(self.block_hash(to).await? == Some(to_hash), "block {to} changed while ingesting; retrying");
        self.ingest_logs(pool, &logs, to, Some(to_hash)).await?;
        let finalized = self.finalized().await;
        if let Some(f) = finalized {
            // Deposits at or below it are never undone: an acceptance need not ask the chain
            // about them (`db::opening_deposits_to_check`).
            let mut conn = pool.acquire().await?;
            db::set_cursor(&mut conn, db::FINALIZED_CURSOR, f.min(to)).await?;
        }
        let floor = finalized.unwrap_or_else(|| to.saturating_sub(HASH_HISTORY));
        if let Err(e) = db::prune_blocks(pool, floor.min(to)).await {
            tracing::warn!(error = ?e, "forgetting old block hashes failed");
        }
        Ok(Some(to))
    }

    /// Applies `logs` (of the blocks up to `to`, whose hash is `to_hash` when known) in one
    /// transaction, remembers the hashes of their blocks and of `to`, and moves the cursor to
    /// `to`. An event that cannot be applied (malformed, unexpected, out of range) is stored
    /// with the reason in `chain_events.skipped`, logged and skipped (the metric
    /// `ingrid_chain_events_skipped` counts them): no single event stops ingestion. Only a
    /// failure of the database itself (connection, deadlock, serialisation) fails the batch,
    /// which is then retried whole.
    pub async fn ingest_logs(&self, pool: &PgPool, logs: &[Log], to: u64, to_hash: Option<B256>) -> anyhow::Result<()> {
        let mut tx = pool.begin().await?;
        let mut blocks: Vec<(u64, B256)> = Vec::new();
        for (i, log) in logs.iter().enumerate() {
            if let (Some(number), Some(hash)) = (log.block_number, log.block_hash)
                && !blocks.contains(&(number, hash))
            {
                blocks.push((number, hash));
            }
            let mut savepoint = tx.begin().await?;
            match self.apply_log(&mut savepoint, log).await {
                Ok(()) => savepoint.commit().await?,
                Err(e) if is_transient(&e) => return Err(e),
                Err(e) => {
                    savepoint.rollback().await?;
                    let record = skipped_record(log, i, to, &e);
                    tracing::error!(
                        block = record.block_number,
                        log_index = record.log_index,
                        event = record.name,
                        channel = ?record.channel_id,
                        error = ?e,
                        "chain event skipped: it cannot be applied"
                    );
                    db::insert_event(&mut tx, &record).await?;
                }
            }
        }
        blocks.extend(to_hash.map(|hash| (to, hash)));
        db::remember_blocks(&mut tx, &blocks).await?;
        db::set_cursor(&mut tx, CURSOR, to).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs [`Self::ingest_once`] until `stop` turns true.
    pub async fn run_watcher(self, pool: PgPool, mut stop: watch::Receiver<bool>) {
        loop {
            let caught_up = match self.ingest_once(&pool).await {
                Ok(progress) => progress.is_none(),
                Err(e) => {
                    tracing::warn!(error = ?e, "event ingestion failed; retrying");
                    true
                }
            };
            if caught_up && sleep_or_stop(&mut stop, self.poll).await {
                return;
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

/// What an ingested event changes in the books.
enum Effect {
    /// A deposit's new confirmed total.
    Deposit { channel: B256, participant: Address, total: U256 },
    /// A standby deposit's new confirmed total.
    Standby { channel: B256, participant: Address, total: U256 },
    /// A channel's conclusion with its final balances.
    Conclusion { channel: B256, version: u64, balances: Vec<[U256; 2]> },
    /// A registration or refutation of a channel's record.
    Registration(Box<crate::disputes::Registration>),
    /// Recorded only.
    None,
}

/// Decodes a log of type `E` into its name, channel, JSON payload and effect.
fn decode<E: SolEvent + Serialize>(
    log: &Log,
    channel: impl Fn(&E) -> B256,
    effect: impl Fn(&E) -> Effect,
) -> anyhow::Result<(&'static str, B256, serde_json::Value, Effect)> {
    let e = log.log_decode::<E>()?.inner.data;
    let name = E::SIGNATURE.split('(').next().unwrap_or(E::SIGNATURE);
    Ok((name, channel(&e), serde_json::to_value(&e)?, effect(&e)))
}

impl Chain {
    /// Stores one log (once) and applies its effect on the books.
    async fn apply_log(&self, tx: &mut sqlx::PgConnection, log: &Log) -> anyhow::Result<()> {
        use Adjudicator::{Concluded, Progressed, Refuted, Registered};
        use EthAssetHolder::{Deposited, OutcomeSet, StandbyDeposited, Withdrawn};
        let (Some(block_number), Some(log_index), Some(block_hash), Some(tx_hash)) =
            (log.block_number, log.log_index, log.block_hash, log.transaction_hash)
        else {
            anyhow::bail!("log without position: {log:?}");
        };
        let Some(topic) = log.topic0() else { return Ok(()) };
        let (name, channel, payload, effect) = match *topic {
            Deposited::SIGNATURE_HASH => decode::<Deposited>(
                log,
                |e| e.channelId,
                |e| Effect::Deposit { channel: e.channelId, participant: e.participant, total: e.total },
            )?,
            StandbyDeposited::SIGNATURE_HASH => decode::<StandbyDeposited>(
                log,
                |e| e.channelId,
                |e| Effect::Standby { channel: e.channelId, participant: e.participant, total: e.total },
            )?,
            OutcomeSet::SIGNATURE_HASH => decode::<OutcomeSet>(log, |e| e.channelId, |_| Effect::None)?,
            Withdrawn::SIGNATURE_HASH => decode::<Withdrawn>(log, |e| e.channelId, |_| Effect::None)?,
            Registered::SIGNATURE_HASH => decode::<Registered>(
                log,
                |e| e.channelId,
                |e| registration(e.params.clone(), e.state.clone(), e.timeout),
            )?,
            Refuted::SIGNATURE_HASH => {
                decode::<Refuted>(log, |e| e.channelId, |e| registration(e.params.clone(), e.state.clone(), e.timeout))?
            }
            // A forced move of an app channel replaces its record's state like a refutation.
            Progressed::SIGNATURE_HASH => decode::<Progressed>(
                log,
                |e| e.channelId,
                |e| registration(e.params.clone(), e.state.clone(), e.timeout),
            )?,
            Concluded::SIGNATURE_HASH => decode::<Concluded>(
                log,
                |e| e.channelId,
                |e| Effect::Conclusion { channel: e.channelId, version: e.version, balances: e.balances.clone() },
            )?,
            _ => return Ok(()),
        };
        let contract = log.address();
        let record = db::EventRecord {
            block_number,
            log_index,
            block_hash,
            tx_hash,
            contract,
            name,
            channel_id: Some(channel),
            payload,
            skipped: None,
        };
        if !db::insert_event(tx, &record).await? {
            return Ok(()); // a replay: applied before
        }
        match effect {
            Effect::Deposit { channel, participant, total } => {
                if db::record_deposit(tx, channel, contract, participant, total).await?
                    && db::open_if_funded(tx, channel).await?
                {
                    tracing::info!(%channel, "basic channel funded");
                }
                // The client's deposits are all confirmed: now the hub deposits its share.
                for (asset, amount) in db::hub_deposits_due(tx, channel, self.key.address()).await? {
                    let action = Action::Deposit { channel, asset, amount };
                    action.enqueue(tx, 0).await?;
                    tracing::info!(%channel, %asset, %amount, "client deposits confirmed: depositing the hub's share");
                }
            }
            Effect::Standby { channel, participant, total } => {
                if db::confirm_top_up(tx, channel, contract, participant, total).await? {
                    tracing::info!(%channel, asset = %contract, "collateral top-up confirmed on chain");
                }
            }
            Effect::Conclusion { channel, version, balances } => {
                if db::record_conclusion(tx, channel, &balances).await? {
                    tracing::info!(%channel, version, "basic channel concluded");
                }
                crate::disputes::on_conclusion(tx, channel).await?;
            }
            Effect::Registration(reg) => {
                crate::disputes::on_registration(tx, &self.deployment, self.settle_grace, &reg, block_number).await?;
            }
            Effect::None => {}
        }
        Ok(())
    }
}

/// Whether an ingestion error is the database's own trouble (worth retrying the batch) rather
/// than something wrong with the event (which is skipped).
fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| match cause.downcast_ref::<sqlx::Error>() {
        // Connection exceptions, transaction rollbacks (serialisation, deadlock), resources,
        // operator intervention, system errors.
        Some(sqlx::Error::Database(db)) => {
            db.code().is_some_and(|c| ["08", "40", "53", "57", "58", "XX"].iter().any(|class| c.starts_with(class)))
        }
        Some(
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed,
        ) => true,
        _ => false,
    })
}

/// The record of a log that could not be applied: its position (made up, past every real
/// index of block `to`, if the node gave none), the event's name as far as it is known, the
/// channel from its first indexed topic, the raw log and the reason.
fn skipped_record<'a>(log: &Log, i: usize, to: u64, e: &anyhow::Error) -> db::EventRecord<'a> {
    use Adjudicator::{Concluded, Progressed, Refuted, Registered};
    use EthAssetHolder::{Deposited, OutcomeSet, Withdrawn};
    let name = match log.topic0().copied() {
        Some(Deposited::SIGNATURE_HASH) => "Deposited",
        Some(OutcomeSet::SIGNATURE_HASH) => "OutcomeSet",
        Some(Withdrawn::SIGNATURE_HASH) => "Withdrawn",
        Some(Registered::SIGNATURE_HASH) => "Registered",
        Some(Refuted::SIGNATURE_HASH) => "Refuted",
        Some(Progressed::SIGNATURE_HASH) => "Progressed",
        Some(Concluded::SIGNATURE_HASH) => "Concluded",
        _ => "unknown",
    };
    let positioned = log.block_number.is_some() && log.log_index.is_some();
    db::EventRecord {
        block_number: log.block_number.unwrap_or(to),
        log_index: if positioned { log.log_index.unwrap_or_default() } else { (1 << 40) + i as u64 },
        block_hash: log.block_hash.unwrap_or_default(),
        tx_hash: log.transaction_hash.unwrap_or_default(),
        contract: log.address(),
        name,
        channel_id: log.topics().get(1).copied(),
        payload: serde_json::to_value(log).unwrap_or_default(),
        skipped: Some(format!("{e:#}")),
    }
}

fn registration(params: ingrid_client_sdk::Params, state: ingrid_client_sdk::State, timeout: u64) -> Effect {
    Effect::Registration(Box::new(crate::disputes::Registration { params, state, timeout }))
}
