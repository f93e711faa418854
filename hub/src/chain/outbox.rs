//! The outbox: the hub's own transactions ([`Action`]), stored with the change that makes
//! them due, performed by the leader one at a time in priority order (disputes first). An
//! attempt waits at most [`RECEIPT_WAIT`] for its receipt; a transaction unmined after
//! `fee_bump_after` is replaced at its nonce with a higher fee; every action first reads
//! what the chain already shows, so nothing is done twice.

use std::collections::HashMap;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use anyhow::Context;
use ingrid_client_sdk::Params;
use ingrid_client_sdk::SignedState;
use ingrid_client_sdk::api::FullySignedState;
use ingrid_client_sdk::chain::{self, Asset, phase};
use ingrid_client_sdk::dispute::{self, Response};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use super::context::{Chain, sleep_or_stop};
use crate::db;
use ingrid_protocol::machine::{self, Attempt, OutboxStatus, RetryPolicy};

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

/// How long one outbox attempt waits for its transaction's receipt; then the worker moves on
/// (to a dispute, say) and a later attempt follows the same transaction.
const RECEIPT_WAIT: Duration = Duration::from_secs(15);

impl Chain {
    /// Processes one due outbox entry; returns whether there was one.
    pub async fn outbox_once(&self, pool: &PgPool) -> anyhow::Result<bool> {
        // A claim outlives the longest attempt (a receipt wait plus a few calls) but not by
        // much: after a leader dies mid-attempt, the next one retries within this, well
        // inside the shortest challenge period the hub accepts in development (60 s).
        const LEASE_SECS: u64 = 2 * RECEIPT_WAIT.as_secs();
        let policy = RetryPolicy { max_attempts: 25, not_yet_secs: self.poll.as_secs_f64().max(1.0) };
        let Some(entry) = db::claim_outbox::<Action>(pool, LEASE_SECS).await? else { return Ok(false) };
        let (attempt, error) = match self.perform(pool, &entry).await {
            Ok(Step::Done) => (Attempt::Done, None),
            Ok(Step::NotYet(why)) => (Attempt::NotYet, Some(why)),
            Err(e) => {
                tracing::warn!(id = entry.id, action = ?entry.action, attempts = entry.attempts, error = ?e, "outbox action failed");
                (Attempt::Failed, Some(format!("{e:#}")))
            }
        };
        let attempts = u32::try_from(entry.attempts).unwrap_or_default();
        let after = machine::outbox(OutboxStatus::Pending, attempts, attempt, policy)?;
        let status = attempt.moves(attempts, policy);
        db::finish_outbox_attempt(pool, entry.id, status, after.retry_after_secs, error.as_deref()).await?;
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

    /// The registration of basic channel `channel` from the hub's latest states.
    async fn registration(
        &self,
        db: &mut PgConnection,
        channel: B256,
    ) -> anyhow::Result<(ingrid_client_sdk::SignedState, Vec<ingrid_client_sdk::SignedState>, FullySignedState)> {
        let row = db::channel(db, channel).await?.context("channel not found")?;
        let latest = db::state(db, channel, row.latest_version).await?;
        let ids: Vec<B256> = latest.state.outcome.locked.iter().map(|l| l.id).collect();
        let best: HashMap<B256, (Params, FullySignedState)> = db::best_virtual_states(db, &ids).await?;
        let (ledger, subs) = dispute::registration(&row.params, &latest, |id| best.get(&id).cloned())
            .map_err(|id| anyhow::anyhow!("no signed state of virtual channel {id} locked in {channel}"))?;
        Ok((ledger, subs, latest))
    }

    /// Registers basic channel `channel` with the hub's latest state, unless it is registered
    /// already or no longer locks virtual channel `because`.
    pub(crate) async fn register(
        &self,
        pool: &PgPool,
        channel: B256,
        because: Option<B256>,
    ) -> anyhow::Result<Option<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>>> {
        if chain::dispute(&self.provider, &self.deployment, channel).await?.phase != phase::NONE {
            return Ok(None);
        }
        let mut conn = pool.acquire().await?;
        if let Some(vc) = because
            && !db::still_locks(&mut conn, channel, vc).await?
        {
            return Ok(None);
        }
        let (ledger, subs, _) = self.registration(&mut conn, channel).await?;
        tracing::warn!(%channel, virtual_channel = ?because, "registering basic channel on chain");
        Ok(Some(dispute::send_register(&self.provider, &self.deployment, ledger, subs).await?))
    }

    /// Refutes a stale registration of basic channel `channel` with the hub's latest state.
    pub(crate) async fn refute(
        &self,
        pool: &PgPool,
        channel: B256,
    ) -> anyhow::Result<Option<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>>> {
        let record = chain::dispute(&self.provider, &self.deployment, channel).await?;
        let mut conn = pool.acquire().await?;
        let (ledger, subs, latest) = self.registration(&mut conn, channel).await?;
        let now = dispute::chain_time(&self.provider).await?;
        match dispute::respond(&record, latest.state.version, now) {
            Response::Refute => {
                tracing::warn!(%channel, stale = record.version, latest = latest.state.version, "refuting");
                Ok(Some(dispute::send_refute(&self.provider, &self.deployment, ledger, subs).await?))
            }
            Response::TooLate => {
                tracing::error!(%channel, stale = record.version, "a stale registration timed out before the refutation");
                Ok(None)
            }
            Response::Nothing => Ok(None),
        }
    }

    /// Refutes a stale registration of virtual channel `id` with the newest state the hub holds.
    pub(crate) async fn refute_virtual(
        &self,
        pool: &PgPool,
        id: B256,
    ) -> anyhow::Result<Option<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>>> {
        let mut conn = pool.acquire().await?;
        let (params, best) =
            db::best_virtual_states(&mut conn, &[id]).await?.remove(&id).context("virtual channel not found")?;
        let key = dispute::record_key(&params, &best.state)?;
        let record = chain::dispute(&self.provider, &self.deployment, key).await?;
        let now = dispute::chain_time(&self.provider).await?;
        if dispute::respond(&record, best.state.version, now) != Response::Refute {
            return Ok(None);
        }
        tracing::warn!(virtual_channel = %id, stale = record.version, latest = best.state.version, "refuting");
        let signed = ingrid_client_sdk::SignedState { params, state: best.state, sigs: best.sigs };
        Ok(Some(dispute::send_refute(&self.provider, &self.deployment, signed, Vec::new()).await?))
    }

    /// Concludes registered basic channel `channel` once every timeout it depends on passed.
    pub(crate) async fn conclude(
        &self,
        channel: B256,
    ) -> anyhow::Result<Result<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>, Step>> {
        let record = chain::dispute(&self.provider, &self.deployment, channel).await?;
        if record.phase == phase::CONCLUDED {
            return Ok(Err(Step::Done));
        }
        if record.phase == phase::NONE {
            return Ok(Err(Step::NotYet("channel not registered yet".into())));
        }
        let registered = dispute::registered_tree(&self.provider, &self.deployment, channel, self.start_block).await?;
        let Some(ready) = dispute::conclusion_time(channel, &registered) else {
            return Ok(Err(Step::NotYet("registered states not found yet".into())));
        };
        let now = dispute::chain_time(&self.provider).await?;
        if now < ready {
            return Ok(Err(Step::NotYet(format!("concludable from {ready}, chain time {now}"))));
        }
        match dispute::send_conclude(&self.provider, &self.deployment, channel, &registered).await? {
            Some(pending) => Ok(Ok(pending)),
            None => Ok(Err(Step::NotYet("registered states not found yet".into()))),
        }
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
