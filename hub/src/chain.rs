//! The hub's seams to the chain: the event watcher (durable cursor, confirmation depth,
//! idempotent on replay) and the outbox worker (the hub's own transactions, retried,
//! correct after a restart because every action first checks what the chain already shows).

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use anyhow::Context;
use ingrid_client_sdk::bindings::adjudicator::Adjudicator;
use ingrid_client_sdk::bindings::eth_holder::EthAssetHolder;
use ingrid_client_sdk::chain::{self, Asset, phase};
use ingrid_client_sdk::{Deployment, SignedState};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgPool};
use tokio::sync::watch;

use crate::db;

/// A transaction the hub owes the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[schema(as = OutboxAction)]
pub enum Action {
    /// Deposit the hub's share of a basic channel.
    Deposit {
        /// Channel.
        #[schema(value_type = ingrid_client_sdk::openapi::HexB256)]
        channel: B256,
        /// Asset holder.
        #[schema(value_type = ingrid_client_sdk::openapi::HexAddress)]
        asset: Address,
        /// The hub's required holding.
        #[schema(value_type = ingrid_client_sdk::openapi::HexU256)]
        amount: U256,
    },
    /// Conclude a basic channel from its final state.
    ConcludeFinal {
        /// Channel.
        #[schema(value_type = ingrid_client_sdk::openapi::HexB256)]
        channel: B256,
        /// Version of the final state.
        version: u64,
    },
    /// Withdraw the hub's payout of a concluded channel.
    Withdraw {
        /// Channel.
        #[schema(value_type = ingrid_client_sdk::openapi::HexB256)]
        channel: B256,
        /// Asset holder.
        #[schema(value_type = ingrid_client_sdk::openapi::HexAddress)]
        asset: Address,
    },
    /// Register a basic channel on chain with the hub's latest states, because of virtual
    /// channel `because` (registered elsewhere, or its client stopped answering).
    Register {
        /// Channel.
        #[schema(value_type = ingrid_client_sdk::openapi::HexB256)]
        channel: B256,
        /// The virtual channel locked in it that makes this necessary (skipped once the
        /// channel no longer locks it); none when the operator closes the channel.
        #[schema(value_type = Option<ingrid_client_sdk::openapi::HexB256>)]
        because: Option<B256>,
    },
    /// Refute a stale registration (version `registered`) of a basic channel.
    Refute {
        /// Channel.
        #[schema(value_type = ingrid_client_sdk::openapi::HexB256)]
        channel: B256,
        /// The stale version.
        registered: u64,
    },
    /// Refute a stale registration (version `registered`) of a virtual channel's record.
    RefuteVirtual {
        /// The virtual channel.
        #[schema(value_type = ingrid_client_sdk::openapi::HexB256)]
        id: B256,
        /// The stale version.
        registered: u64,
    },
    /// Conclude a registered basic channel once its timeouts passed.
    Conclude {
        /// Channel.
        #[schema(value_type = ingrid_client_sdk::openapi::HexB256)]
        channel: B256,
    },
    /// Top up the hub's collateral in an open basic channel: its coins on standby there
    /// (funding only a raised state the client countersigns, and otherwise returned to the
    /// hub at settlement) reach `amount`.
    TopUp {
        /// Channel.
        #[schema(value_type = ingrid_client_sdk::openapi::HexB256)]
        channel: B256,
        /// Asset holder.
        #[schema(value_type = ingrid_client_sdk::openapi::HexAddress)]
        asset: Address,
        /// The hub's standby after the top-up (all its top-ups of this channel and asset).
        #[schema(value_type = ingrid_client_sdk::openapi::HexU256)]
        amount: U256,
    },
}

impl Action {
    /// Its place in the outbox (lower first): answers to disputes first, since a refutation
    /// is due before a timeout, then registrations and conclusions, then withdrawals, then
    /// deposits.
    pub fn priority(&self) -> i16 {
        match self {
            Self::Refute { .. } | Self::RefuteVirtual { .. } => 0,
            Self::Register { .. } => 1,
            Self::Conclude { .. } | Self::ConcludeFinal { .. } => 2,
            Self::Withdraw { .. } => 3,
            Self::Deposit { .. } | Self::TopUp { .. } => 4,
        }
    }

    /// Enqueues this action once (a second enqueue of the same action does nothing), due
    /// `delay_secs` from now.
    pub async fn enqueue(&self, db: &mut sqlx::PgConnection, delay_secs: u64) -> sqlx::Result<()> {
        db::enqueue_after(db, &self.dedup_key(), self.kind(), self.priority(), Some(self.channel()), self, delay_secs)
            .await
    }

    /// Short name, stored with the entry.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Deposit { .. } => "deposit",
            Self::ConcludeFinal { .. } => "conclude_final",
            Self::Withdraw { .. } => "withdraw",
            Self::Register { .. } => "register",
            Self::Refute { .. } => "refute",
            Self::RefuteVirtual { .. } => "refute_virtual",
            Self::Conclude { .. } => "conclude",
            Self::TopUp { .. } => "top_up",
        }
    }

    /// The key that makes enqueueing this action idempotent.
    pub fn dedup_key(&self) -> String {
        match self {
            Self::Deposit { channel, asset, .. } => format!("deposit:{channel}:{asset}"),
            Self::ConcludeFinal { channel, .. } => format!("conclude:{channel}"),
            Self::Withdraw { channel, asset } => format!("withdraw:{channel}:{asset}"),
            Self::Register { channel, .. } => format!("register:{channel}"),
            Self::Refute { channel, registered } => format!("refute:{channel}:{registered}"),
            Self::RefuteVirtual { id, registered } => format!("refute-virtual:{id}:{registered}"),
            Self::Conclude { channel } => format!("conclude-dispute:{channel}"),
            Self::TopUp { channel, asset, amount } => format!("top-up:{channel}:{asset}:{amount}"),
        }
    }

    /// The channel the action is about.
    pub fn channel(&self) -> B256 {
        match self {
            Self::Deposit { channel, .. }
            | Self::ConcludeFinal { channel, .. }
            | Self::Withdraw { channel, .. }
            | Self::Register { channel, .. }
            | Self::Refute { channel, .. }
            | Self::Conclude { channel }
            | Self::TopUp { channel, .. } => *channel,
            Self::RefuteVirtual { id, .. } => *id,
        }
    }
}

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

/// How long one outbox attempt waits for its transaction's receipt; then the worker moves on
/// (to a dispute, say) and a later attempt follows the same transaction.
const RECEIPT_WAIT: Duration = Duration::from_secs(15);

const CURSOR: &str = "events";
/// Most blocks fetched per `eth_getLogs`.
const MAX_RANGE: u64 = 2_000;

impl Chain {
    /// Ingests confirmed events up to the confirmation depth, at most [`MAX_RANGE`] blocks;
    /// returns the new cursor, or `None` if there was nothing new.
    pub async fn ingest_once(&self, pool: &PgPool) -> anyhow::Result<Option<u64>> {
        let head = self.provider.get_block_number().await?;
        self.head.store(head, std::sync::atomic::Ordering::Relaxed);
        let Some(safe) = head.checked_sub(self.confirmations) else { return Ok(None) };
        let from = match db::cursor(pool, CURSOR).await? {
            Some(done) => done + 1,
            None => self.start_block,
        };
        if from > safe {
            return Ok(None);
        }
        let to = safe.min(from + MAX_RANGE - 1);
        let mut addresses = vec![self.deployment.adjudicator];
        addresses.extend(self.assets.iter().map(|a| a.holder));
        let filter = Filter::new().address(addresses).from_block(from).to_block(to);
        let logs = self.provider.get_logs(&filter).await?;
        self.ingest_logs(pool, &logs, to).await?;
        Ok(Some(to))
    }

    /// Applies `logs` (of the blocks up to `to`) in one transaction and moves the cursor to
    /// `to`. An event that cannot be applied (malformed, unexpected, out of range) is stored
    /// with the reason in `chain_events.skipped`, logged and skipped (the metric
    /// `ingrid_chain_events_skipped` counts them): no single event stops ingestion. Only a
    /// failure of the database itself (connection, deadlock, serialisation) fails the batch,
    /// which is then retried whole.
    pub async fn ingest_logs(&self, pool: &PgPool, logs: &[Log], to: u64) -> anyhow::Result<()> {
        let mut tx = pool.begin().await?;
        for (i, log) in logs.iter().enumerate() {
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

    /// Processes one due outbox entry; returns whether there was one.
    pub async fn outbox_once(&self, pool: &PgPool) -> anyhow::Result<bool> {
        // A claim outlives the longest attempt (a receipt wait plus a few calls) but not by
        // much: after a leader dies mid-attempt, the next one retries within this, well
        // inside the shortest challenge period the hub accepts in development (60 s).
        const LEASE_SECS: u64 = 2 * RECEIPT_WAIT.as_secs();
        const MAX_ATTEMPTS: i32 = 25;
        let Some(entry) = db::claim_outbox::<Action>(pool, LEASE_SECS).await? else { return Ok(false) };
        match self.perform(pool, &entry).await {
            Ok(Step::Done) => db::complete_outbox(pool, entry.id).await?,
            Ok(Step::NotYet(why)) => {
                db::retry_outbox(pool, entry.id, &why, self.poll.as_secs_f64().max(1.0), false).await?
            }
            Err(e) => {
                let backoff = 2f64.powi(entry.attempts.min(6)).min(60.0);
                let give_up = entry.attempts >= MAX_ATTEMPTS;
                tracing::warn!(id = entry.id, action = ?entry.action, attempts = entry.attempts, error = ?e, "outbox action failed");
                db::retry_outbox(pool, entry.id, &format!("{e:#}"), backoff, give_up).await?;
            }
        }
        Ok(true)
    }

    /// Runs the outbox until `stop` turns true.
    pub async fn run_outbox(self, pool: PgPool, mut stop: watch::Receiver<bool>) {
        loop {
            let idle = match self.outbox_once(&pool).await {
                Ok(worked) => !worked,
                Err(e) => {
                    tracing::warn!(error = ?e, "outbox poll failed");
                    true
                }
            };
            if idle && sleep_or_stop(&mut stop, self.poll).await {
                return;
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    fn asset(&self, holder: Address) -> anyhow::Result<Asset> {
        self.assets
            .iter()
            .find(|a| a.holder == holder)
            .copied()
            .with_context(|| format!("asset {holder} is not configured"))
    }

    /// Does what `action` asks unless the chain already shows it done. A transaction sent by
    /// an earlier attempt is followed first, so nothing is sent twice: one still unmined after
    /// `fee_bump_after` is replaced (same nonce, higher fee), one mined or dropped is forgotten
    /// and the action decided afresh from the chain.
    async fn perform(&self, pool: &PgPool, entry: &db::OutboxEntry<Action>) -> anyhow::Result<Step> {
        let (id, action) = (entry.id, &entry.action);
        if let Some(hash) = entry.tx_hash {
            if self.provider.get_transaction_receipt(hash).await?.is_none()
                && let Some(sent) = self.provider.get_transaction_by_hash(hash).await?
            {
                if entry.tx_age_secs < self.fee_bump_after.as_secs_f64() {
                    return Ok(Step::NotYet(format!("waiting for transaction {hash}")));
                }
                let pending = self.replace_with_higher_fee(sent).await?;
                tracing::warn!(id, old = %hash, new = %pending.tx_hash(), "transaction not mined in time: replaced with a higher fee");
                db::set_outbox_tx(pool, id, Some(*pending.tx_hash())).await?;
                return wait_for(pending).await;
            }
            db::set_outbox_tx(pool, id, None).await?;
        }
        let hub = self.key.address();
        let pending = match action {
            Action::Deposit { channel, asset, amount } => {
                // A channel concluded before the hub's share went in (its client registered
                // and concluded it) needs none: a deposit now would sit in the holder.
                if chain::settled(&self.provider, *asset, *channel).await? {
                    return Ok(Step::Done);
                }
                let held = chain::holdings(&self.provider, *asset, *channel, hub).await?;
                if held >= *amount {
                    return Ok(Step::Done);
                }
                chain::send_deposit(&self.provider, &self.asset(*asset)?, *channel, hub, *amount - held).await?
            }
            Action::TopUp { channel, asset, amount } => {
                // A channel settled meanwhile has no raise left to fund (and the holder
                // refuses standby after settlement).
                if chain::settled(&self.provider, *asset, *channel).await? {
                    return Ok(Step::Done);
                }
                let held = chain::standby(&self.provider, *asset, *channel, hub).await?;
                if held >= *amount {
                    return Ok(Step::Done);
                }
                chain::send_standby(&self.provider, &self.asset(*asset)?, *channel, hub, *amount - held).await?
            }
            Action::ConcludeFinal { channel, version } => {
                if chain::dispute(&self.provider, &self.deployment, *channel).await?.phase == phase::CONCLUDED {
                    return Ok(Step::Done);
                }
                let mut conn = pool.acquire().await?;
                let row = db::channel(&mut conn, *channel).await?.context("channel not found")?;
                let signed = db::state(&mut conn, *channel, *version).await?;
                let ledger = SignedState { params: row.params, state: signed.state, sigs: signed.sigs };
                chain::send_conclude_final(&self.provider, &self.deployment, ledger).await?
            }
            Action::Register { channel, because } => match self.register(pool, *channel, *because).await? {
                Some(pending) => pending,
                None => return Ok(Step::Done),
            },
            Action::Refute { channel, .. } => match self.refute(pool, *channel).await? {
                Some(pending) => pending,
                None => return Ok(Step::Done),
            },
            Action::RefuteVirtual { id, .. } => match self.refute_virtual(pool, *id).await? {
                Some(pending) => pending,
                None => return Ok(Step::Done),
            },
            Action::Conclude { channel } => match self.conclude(*channel).await? {
                Ok(pending) => pending,
                Err(step) => return Ok(step),
            },
            Action::Withdraw { channel, asset } => {
                if !chain::settled(&self.provider, *asset, *channel).await? {
                    return Ok(Step::NotYet("channel not settled on chain yet".into()));
                }
                let amount = chain::holdings(&self.provider, *asset, *channel, hub).await?;
                if amount.is_zero() {
                    return Ok(Step::Done);
                }
                chain::send_withdraw(&self.provider, &self.deployment, *asset, &self.key, *channel, hub, amount).await?
            }
        };
        db::set_outbox_tx(pool, id, Some(*pending.tx_hash())).await?;
        wait_for(pending).await
    }

    /// Sends `sent` again with its nonce and a higher fee: at least 12.5 % above its own (what
    /// nodes demand of a replacement) and at least the node's current estimate.
    async fn replace_with_higher_fee(
        &self,
        sent: alloy::rpc::types::Transaction,
    ) -> anyhow::Result<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>> {
        use alloy::consensus::Transaction as _;
        let estimate = self.provider.estimate_eip1559_fees().await?;
        let (old_cap, old_tip) = (sent.max_fee_per_gas(), sent.max_priority_fee_per_gas().unwrap_or_default());
        let (cap, tip) = bumped_fees(old_cap, old_tip, estimate.max_fee_per_gas, estimate.max_priority_fee_per_gas);
        let nonce = sent.nonce();
        let mut request = sent.into_request();
        request.nonce = Some(nonce);
        request.gas_price = None;
        request.max_fee_per_gas = Some(cap);
        request.max_priority_fee_per_gas = Some(tip);
        Ok(self.provider.send_transaction(request).await?)
    }
}

/// The fees of a replacement transaction: each at least 12.5 % (rounded up) above the old one
/// and at least the node's estimate; the cap always covers the tip.
pub fn bumped_fees(old_cap: u128, old_tip: u128, estimate_cap: u128, estimate_tip: u128) -> (u128, u128) {
    let bump = |x: u128| x.saturating_add(x.div_ceil(8)).max(x.saturating_add(1));
    let tip = bump(old_tip).max(estimate_tip);
    let cap = bump(old_cap).max(estimate_cap).max(tip);
    (cap, tip)
}

/// Waits up to [`RECEIPT_WAIT`] for a transaction: done when mined successfully, an error if
/// it reverted, not yet if it is still unmined (a later attempt follows it).
async fn wait_for(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
) -> anyhow::Result<Step> {
    let hash = *pending.tx_hash();
    match pending.with_timeout(Some(RECEIPT_WAIT)).get_receipt().await {
        Ok(receipt) if receipt.status() => Ok(Step::Done),
        Ok(_) => anyhow::bail!("transaction {hash} reverted"),
        Err(e) => Ok(Step::NotYet(format!("transaction {hash} not mined yet ({e})"))),
    }
}

/// Outcome of one outbox attempt.
pub(crate) enum Step {
    /// The chain shows the action done.
    Done,
    /// Not possible yet (waiting for the chain); retried without counting as a failure.
    NotYet(String),
}

/// Sleeps for `period`; returns true if `stop` turned true meanwhile.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, period: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
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
        use Adjudicator::{Concluded, Refuted, Registered};
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
    use Adjudicator::{Concluded, Refuted, Registered};
    use EthAssetHolder::{Deposited, OutcomeSet, Withdrawn};
    let name = match log.topic0().copied() {
        Some(Deposited::SIGNATURE_HASH) => "Deposited",
        Some(OutcomeSet::SIGNATURE_HASH) => "OutcomeSet",
        Some(Withdrawn::SIGNATURE_HASH) => "Withdrawn",
        Some(Registered::SIGNATURE_HASH) => "Registered",
        Some(Refuted::SIGNATURE_HASH) => "Refuted",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_pays_at_least_an_eighth_more_and_the_current_estimate() {
        assert_eq!(bumped_fees(800, 80, 0, 0), (900, 90));
        assert_eq!(bumped_fees(801, 1, 0, 0), (902, 2), "rounded up, and always more");
        assert_eq!(bumped_fees(800, 80, 5000, 300), (5000, 300), "the node's estimate when the chain got dearer");
        assert_eq!(bumped_fees(100, 200, 0, 0), (225, 225), "the cap covers the tip");
        assert_eq!(bumped_fees(u128::MAX, 0, 0, 0).0, u128::MAX);
    }

    #[test]
    fn disputes_go_first_in_the_outbox() {
        let c = B256::repeat_byte(1);
        let a = Address::repeat_byte(2);
        let refute = Action::Refute { channel: c, registered: 1 }.priority();
        let register = Action::Register { channel: c, because: None }.priority();
        let conclude = Action::Conclude { channel: c }.priority();
        let withdraw = Action::Withdraw { channel: c, asset: a }.priority();
        let deposit = Action::Deposit { channel: c, asset: a, amount: U256::from(1) }.priority();
        assert!(refute < register && register < conclude && conclude < withdraw && withdraw < deposit);
        assert_eq!(Action::RefuteVirtual { id: c, registered: 0 }.priority(), refute);
    }
}
