//! Chain reorganisations, for the watcher.
//!
//! The watcher remembers the hash of the last block of every batch and of
//! every block it ingested an event from (`chain_blocks`). Before each poll it compares the
//! highest of them with the node's block at that height; by the chain of parent hashes, an
//! equal hash means every block ingested below it is still the chain's too. A different hash
//! means the chain replaced blocks the hub ingested: the watcher searches down the remembered
//! blocks for the highest one the chain still holds ([`fork_step`]) and, in one transaction,
//! undoes everything ingested above it ([`Chain::undo_above`]): the events leave
//! `chain_events` for a `chain_reorgs` record, the cursor goes back, and the confirmed
//! deposits and standbys of the channels they touched are derived again from the events that
//! remain. An open channel whose opening deposits are no longer all confirmed goes back to
//! `funding` (the machine's `FundingUndone`), where every update, a virtual channel's lock
//! among them, is refused until its deposits are confirmed again; the next polls ingest the
//! new blocks like any others. Registrations and conclusions that disappear are recorded and
//! logged, and the books keep them (a channel stays `closing` or `closed`, which locks
//! nothing more).
//!
//! The hub's own transactions that an undone deposit had made due: a pending deposit of the
//! hub's share into a channel whose client deposit disappeared is withdrawn from the outbox
//! (a transaction it already sent may still be mined: those coins wait in the channel, and
//! the hub gets them back with the channel's outcome); a deposit or standby of the hub's own
//! that disappeared too is re-armed (its finished outbox entry is renamed) so it is made
//! again once due. The node's `finalized` block, where it names one, bounds how far back
//! hashes are kept.

use std::collections::BTreeSet;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::B256;
use alloy::providers::Provider;
use ingrid_client_sdk::api::ChannelStatus;
use ingrid_protocol::machine::TopUpStatus;
use sqlx::{PgConnection, PgPool};

use super::context::Chain;
use super::outbox::Action;
use crate::db;

/// The name of the watcher's cursor in `chain_cursor`.
pub(super) const CURSOR: &str = "events";
/// How far below the cursor block hashes are kept when the node names no `finalized` block.
pub(super) const HASH_HISTORY: u64 = 10_000;
/// Most remembered blocks a search for the fork point reads.
const SEARCH_LIMIT: i64 = 100_000;

/// One step of the search for the highest remembered block that the chain still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForkStep {
    /// The highest remembered block is the chain's: nothing ingested was replaced.
    Intact,
    /// Ask the node for its hash at this height next.
    Ask(u64),
    /// The chain replaced the remembered blocks above `kept`; with `None`, every
    /// remembered block (everything ingested is to be undone).
    Replaced {
        /// The highest remembered block the chain still holds.
        kept: Option<u64>,
    },
}

/// The next step of the fork-point search. `remembered`: the remembered blocks, highest
/// first; `answers`: the node's hash at the first `answers.len()` of them (`None`: it has no
/// block there). The first remembered block whose hash the node gives back is the highest the
/// chain still holds, and every block below it is the chain's too (each block commits to its
/// parent). Pure, so that it is tested without a node.
pub(crate) fn fork_step(remembered: &[(u64, B256)], answers: &[Option<B256>]) -> ForkStep {
    for (i, ((number, hash), answer)) in remembered.iter().zip(answers).enumerate() {
        if *answer == Some(*hash) {
            return if i == 0 { ForkStep::Intact } else { ForkStep::Replaced { kept: Some(*number) } };
        }
    }
    match remembered.get(answers.len()) {
        _ if remembered.is_empty() => ForkStep::Intact,
        Some((number, _)) => ForkStep::Ask(*number),
        None => ForkStep::Replaced { kept: None },
    }
}

impl Chain {
    /// The node's hash of block `number`, if it has one.
    pub(super) async fn block_hash(&self, number: u64) -> anyhow::Result<Option<B256>> {
        Ok(self.provider.get_block_by_number(number.into()).await?.map(|b| b.header.hash))
    }

    /// Checks the remembered blocks against the node. When the chain replaced some, undoes what
    /// was ingested above the highest one it still holds and returns `Some(cursor)` (the
    /// cursor to go on from; `None` inside: start again from the first block). Returns `None`
    /// when the chain still holds everything ingested.
    pub async fn check_reorg(&self, pool: &PgPool) -> anyhow::Result<Option<Option<u64>>> {
        let Some(top) = db::highest_block(pool).await? else { return Ok(None) };
        let Some(answer) = self.block_hash(top.0).await? else {
            // The node has no block at that height yet: it is behind what the hub ingested
            // (another node behind a load balancer, say). Wait until it has.
            tracing::debug!(block = top.0, "the node has no block at the height last ingested yet");
            return Ok(None);
        };
        if answer == top.1 {
            return Ok(None);
        }
        let remembered = db::remembered_blocks(pool, SEARCH_LIMIT).await?;
        let mut answers = Vec::new();
        let kept = loop {
            match fork_step(&remembered, &answers) {
                ForkStep::Intact => return Ok(None), // it changed back meanwhile
                ForkStep::Ask(number) => answers.push(self.block_hash(number).await?),
                ForkStep::Replaced { kept } => break kept,
            }
        };
        // A node that replaces what it called final (or everything ingested, past its
        // finalized block) is broken or lying: undoing the books on its word would put every
        // channel back to funding. Ingestion stops instead (the lag alert fires) until an
        // operator looks.
        if let Some(f) = self.finalized().await
            && kept.unwrap_or(0) < f
            && f > self.start_block
        {
            anyhow::bail!(
                "the node replaced blocks at or below its finalized block {f} (highest remembered block it still \
                 holds: {kept:?}); refusing to undo them: check the node"
            );
        }
        tracing::warn!(
            replaced = top.0,
            kept = ?kept,
            "chain reorganisation: the chain replaced blocks the hub ingested; undoing what was ingested above the fork"
        );
        self.undo_above(pool, kept, top).await.map(Some)
    }

    /// The node's `finalized` block number, if it names one.
    pub(super) async fn finalized(&self) -> Option<u64> {
        match self.provider.get_block_by_number(BlockNumberOrTag::Finalized).await {
            Ok(block) => block.map(|b| b.header.number),
            Err(e) => {
                tracing::debug!(error = ?e, "the node names no finalized block");
                None
            }
        }
    }

    /// Undoes, in one transaction, what was ingested above block `kept` (everything for
    /// `None`) after the chain replaced `replaced` (the highest remembered block: number and
    /// the hash ingested): records it in `chain_reorgs`, takes the events out, moves the cursor
    /// back, and derives the touched channels' confirmed funding again from the events that
    /// remain (see the module's notes). Returns the cursor to go on from.
    pub async fn undo_above(
        &self,
        pool: &PgPool,
        kept: Option<u64>,
        replaced: (u64, B256),
    ) -> anyhow::Result<Option<u64>> {
        let mut tx = pool.begin().await?;
        let reorg = db::insert_reorg(&mut tx, kept, replaced).await?;
        let undone = db::take_events_above(&mut tx, kept, reorg).await?;
        db::rewind_cursor(&mut tx, CURSOR, kept).await?;
        let (mut touched, mut disputed) = (BTreeSet::new(), BTreeSet::new());
        for e in undone.iter().filter(|e| !e.skipped) {
            match (e.name.as_str(), e.channel) {
                ("Deposited" | "StandbyDeposited", Some(channel)) => {
                    touched.insert(channel);
                }
                ("Registered" | "Refuted" | "Progressed" | "Concluded", channel) => {
                    tracing::error!(
                        block = e.block_number,
                        event = e.name,
                        channel = ?channel,
                        reorg,
                        "a registration or conclusion the hub had acted on was undone by a chain reorganisation: \
                         the books keep it, and the hub's answers are armed again; see chain_reorgs"
                    );
                    disputed.extend(channel);
                }
                _ => {}
            }
        }
        let touched: Vec<B256> = touched.into_iter().collect();
        db::lock_channels(&mut tx, &touched).await?; // in id order, as every other path
        let (mut unfunded, mut outbox) = (Vec::new(), Vec::new());
        for &channel in &touched {
            if self.rederive_funding(&mut tx, channel, reorg, &mut outbox).await? {
                unfunded.push(channel);
            }
        }
        for &channel in &disputed {
            rearm_dispute_answers(&mut tx, channel, reorg, &mut outbox).await?;
        }
        db::finish_reorg(&mut tx, reorg, &unfunded, &outbox).await?;
        let cursor = db::cursor_in(&mut tx, CURSOR).await?;
        tx.commit().await?;
        tracing::warn!(
            reorg,
            kept = ?kept,
            undone = undone.len(),
            unfunded = unfunded.len(),
            outbox_changes = outbox.len(),
            "chain reorganisation undone; ingesting the new blocks"
        );
        for channel in &unfunded {
            tracing::warn!(%channel, reorg, "basic channel no longer funded: a deposit counted for it disappeared");
        }
        Ok(cursor)
    }

    /// Derives `channel`'s confirmed deposits and standbys again from the events that remain
    /// ingested, moves it back to `funding` if its opening deposits are no longer all
    /// confirmed, and sets the hub's own deposit and standby actions right (withdrawn when the
    /// client's deposit is gone, re-armed when the hub's own disappeared). Returns whether the
    /// channel left `open`.
    async fn rederive_funding(
        &self,
        tx: &mut PgConnection,
        channel: B256,
        reorg: i64,
        outbox: &mut Vec<db::OutboxChange>,
    ) -> anyhow::Result<bool> {
        let deposits = db::remaining_totals(tx, channel, "Deposited").await?;
        for row in db::funding_rows(tx, channel).await? {
            let confirmed = deposits.get(&(row.asset, row.participant)).copied().unwrap_or_default();
            if confirmed != row.deposited {
                db::set_deposited(tx, channel, row.asset, row.participant, confirmed).await?;
            }
        }
        let unfunded = db::unfund_if_short(tx, channel).await?;
        let Some(row) = db::channel(tx, channel).await? else { return Ok(unfunded) };
        let hub = self.key.address();
        let rows = db::funding_rows(tx, channel).await?;
        if row.status == ChannelStatus::Funding {
            let client_short = rows.iter().any(|f| f.participant != hub && f.deposited < f.opening);
            for f in rows.iter().filter(|f| f.participant == hub && !f.opening.is_zero()) {
                let key = Action::Deposit { channel, asset: f.asset, amount: f.opening }.dedup_key();
                if client_short && db::withdraw_pending(tx, &key).await? {
                    outbox.push(db::OutboxChange { key: key.clone(), status: "pending".into(), change: "withdrawn" });
                }
                if f.deposited < f.opening
                    && let Some(status) = db::rearm_finished(tx, &key, reorg).await?
                {
                    outbox.push(db::OutboxChange { key, status, change: "re-armed" });
                }
            }
            // The client's deposits still confirmed but the hub's gone: deposit it again.
            for (asset, amount) in db::hub_deposits_due(tx, channel, hub).await? {
                Action::Deposit { channel, asset, amount }.enqueue(tx, 0).await?;
            }
        }
        let standby = db::remaining_totals(tx, channel, "StandbyDeposited").await?;
        for t in db::top_ups_of(tx, channel).await? {
            let confirmed = standby.get(&(t.asset, t.participant)).copied().unwrap_or_default();
            if t.status == TopUpStatus::Depositing || confirmed >= t.target {
                continue;
            }
            if db::undo_top_up(tx, channel, t.asset, t.target).await? {
                tracing::warn!(%channel, asset = %t.asset, "collateral top-up no longer confirmed: its standby disappeared");
            }
            let action = Action::TopUp { channel, asset: t.asset, amount: t.target };
            if let Some(status) = db::rearm_finished(tx, &action.dedup_key(), reorg).await? {
                outbox.push(db::OutboxChange { key: action.dedup_key(), status, change: "re-armed" });
            }
            if matches!(row.status, ChannelStatus::Funding | ChannelStatus::Open) {
                action.enqueue(tx, 0).await?;
            }
        }
        Ok(unfunded)
    }
}

/// The hub's answers to a registration, refutation or conclusion of `channel` that a
/// reorganisation undid: its refutations, registrations (of a virtual channel's parents too),
/// conclusions and withdrawals that finished are armed again (the finished entry stays,
/// renamed, and a pending copy takes its key). Each checks the chain before it sends, so one
/// the new chain does not need does nothing; one whose transaction the reorganisation dropped
/// is sent again.
async fn rearm_dispute_answers(
    tx: &mut PgConnection,
    channel: B256,
    reorg: i64,
    outbox: &mut Vec<db::OutboxChange>,
) -> anyhow::Result<()> {
    const ANSWERS: [&str; 6] = ["refute", "refute_virtual", "register", "conclude", "conclude_final", "withdraw"];
    let mut owners = vec![channel];
    if let Some(v) = db::virtual_by_id(tx, channel, 0).await? {
        owners.extend(v.locking_parents()); // the registrations of its parents
    }
    for owner in owners {
        for entry in db::finished_entries(tx, owner, &ANSWERS).await? {
            if let Some(status) = db::rearm_finished(tx, &entry.0, reorg).await? {
                db::enqueue_again(tx, owner, &entry).await?;
                outbox.push(db::OutboxChange { key: entry.0.clone(), status, change: "re-armed" });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs the search against `chain` (the node's hash per height; shorter if the chain is
    /// shorter); returns its verdict and the heights it asked for.
    fn search(remembered: &[(u64, B256)], chain: &[B256]) -> (ForkStep, Vec<u64>) {
        let (mut answers, mut asked) = (Vec::new(), Vec::new());
        loop {
            match fork_step(remembered, &answers) {
                ForkStep::Ask(n) => {
                    asked.push(n);
                    answers.push(chain.get(n as usize).copied());
                }
                verdict => return (verdict, asked),
            }
        }
    }

    fn hash(fork: u8, n: u64) -> B256 {
        let mut h = B256::with_last_byte(fork);
        h[..8].copy_from_slice(&n.to_be_bytes());
        h
    }

    #[test]
    fn the_highest_block_the_chain_still_holds_is_kept() {
        let old: Vec<B256> = (0..10).map(|n| hash(0, n)).collect();
        let remembered: Vec<(u64, B256)> = [9, 7, 4, 2].iter().map(|&n| (n, old[n as usize])).collect();
        assert_eq!(search(&remembered, &old), (ForkStep::Intact, vec![9]), "one question when nothing changed");
        // Blocks 6.. replaced: 4 is the highest remembered block the chain holds.
        let mut new = old.clone();
        (6..10).for_each(|n| new[n] = hash(1, n as u64));
        assert_eq!(search(&remembered, &new), (ForkStep::Replaced { kept: Some(4) }, vec![9, 7, 4]));
        // A shorter chain: the node has no block 9 any more.
        assert_eq!(search(&remembered, &new[..8]).0, ForkStep::Replaced { kept: Some(4) });
        // Everything replaced: nothing is kept.
        let other: Vec<B256> = (0..10).map(|n| hash(2, n)).collect();
        assert_eq!(search(&remembered, &other), (ForkStep::Replaced { kept: None }, vec![9, 7, 4, 2]));
        assert_eq!(fork_step(&[], &[]), ForkStep::Intact, "nothing remembered, nothing to check");
    }

    proptest! {
        /// For any chain, fork height, new branch (longer or shorter) and set of remembered
        /// blocks of the old chain: the search keeps exactly the highest remembered block at
        /// or below the fork, finds the chain intact exactly when no remembered block is above
        /// the fork, and asks only about remembered blocks, from the top, one each.
        #[test]
        fn the_search_stops_at_the_highest_block_below_the_fork(
            len in 1u64..60,
            fork in 0u64..60,
            new_len in 1u64..70,
            picks in prop::collection::vec(any::<bool>(), 60),
        ) {
            let old: Vec<B256> = (0..len).map(|n| hash(0, n)).collect();
            // The new chain shares blocks 0..=fork with the old one.
            let new: Vec<B256> = (0..new_len).map(|n| if n <= fork && n < len { old[n as usize] } else { hash(1, n) }).collect();
            let mut remembered: Vec<(u64, B256)> =
                (0..len).filter(|&n| picks[n as usize] || n == len - 1).map(|n| (n, old[n as usize])).collect();
            remembered.reverse();
            let (verdict, asked) = search(&remembered, &new);
            let shared = |n: u64| n <= fork && n < new_len;
            let expected_kept = remembered.iter().find(|(n, _)| shared(*n)).map(|(n, _)| *n);
            if shared(remembered[0].0) {
                prop_assert_eq!(verdict, ForkStep::Intact);
            } else {
                prop_assert_eq!(verdict, ForkStep::Replaced { kept: expected_kept });
            }
            let expected_asked: Vec<u64> = remembered.iter().map(|(n, _)| *n).take_while(|n| !shared(*n)).chain(expected_kept).collect();
            prop_assert_eq!(asked, expected_asked);
        }
    }
}
