//! Disputes: what the hub does when a channel it is party to is registered on chain, and
//! when a client stops answering.
//!
//! The watcher calls [`on_registration`] for every `Registered`/`Refuted`/`Progressed` event it
//! ingests
//! (in the ingesting transaction) and [`on_conclusion`] for every `Concluded`. They record the
//! dispute and enqueue the hub's answer in the outbox, planned by the pure [`plan_basic`] and
//! [`plan_virtual`]:
//! - a basic channel registered with an older state than the hub's latest: refute with the
//!   latest (with the states of all its locks); then conclude and withdraw;
//! - a virtual channel registered (its shared record) through any parent: refute it if the
//!   hub holds a newer state of it, and register every parent that still locks it, so one
//!   record settles both sides and the hub stays neutral. A final state is fixed at once, so
//!   then the hub first gives the clients `settle_grace` to settle off chain.
//!
//! [`sweep_once`] (run by the leader) registers the parents of virtual channels whose
//! validity ended more than `settle_grace` ago without a close. The outbox performs the
//! actions (see [`super::outbox`]); each checks the chain first, so a retry or a restart in
//! the middle never does one twice.

use alloy::primitives::{Address, B256};

use ingrid_client_sdk::dispute;
use ingrid_client_sdk::{Deployment, Params, State};
use sqlx::{PgConnection, PgPool};

use super::outbox::Action;
use crate::db;

/// A `Registered`, `Refuted` or `Progressed` (a forced move of an app) event of the
/// adjudicator.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The channel (ledger or sub-channel).
    pub params: Params,
    /// The registered state.
    pub state: State,
    /// Until when it can be refuted.
    pub timeout: u64,
}

/// An action and how many seconds from now it is due.
pub type Planned = (Action, u64);

/// The hub's answer to a registration of its basic channel `channel` at `registered`
/// (version) when its own latest version is `latest`: refute if stale, conclude, and withdraw
/// every asset. (The virtual channels locked in it get records of their own, whose events
/// lead to their other parents; see [`plan_virtual`].)
pub fn plan_basic(channel: B256, registered: u64, latest: u64, assets: &[Address]) -> Vec<Planned> {
    let mut plan = Vec::new();
    if registered < latest {
        plan.push((Action::Refute { channel, registered }, 0));
    }
    plan.push((Action::Conclude { channel }, 0));
    plan.extend(assets.iter().map(|asset| (Action::Withdraw { channel, asset: *asset }, 0)));
    plan
}

/// The hub's answer to a registration of virtual channel `id` at `registered` (version,
/// `is_final`) when the newest state the hub holds has version `best`: refute if stale, and
/// register `parents` (those that still lock it), after `grace` seconds if the registered
/// state is final (it cannot change any more, so the clients may still settle off chain).
pub fn plan_virtual(
    id: B256,
    registered: u64,
    is_final: bool,
    best: u64,
    parents: &[B256],
    grace: u64,
) -> Vec<Planned> {
    let mut plan = Vec::new();
    if registered < best && !is_final {
        plan.push((Action::RefuteVirtual { id, registered }, 0));
    }
    let delay = if is_final { grace } else { 0 };
    plan.extend(parents.iter().map(|p| (Action::Register { channel: *p, because: Some(id) }, delay)));
    plan
}

async fn enqueue_all(db: &mut PgConnection, plan: Vec<Planned>) -> sqlx::Result<()> {
    for (action, delay) in plan {
        action.enqueue(db, delay).await?;
    }
    Ok(())
}

/// The adjudicator's record of virtual channel `params` as its parents lock it: keyed by the
/// assets and totals of its opening state (every later state keeps them).
pub fn virtual_record_key(initial: &State) -> anyhow::Result<B256> {
    let totals = ingrid_client_sdk::validate::asset_totals(&initial.outcome)
        .map_err(|e| anyhow::anyhow!("virtual channel {} has no valid totals: {e}", initial.channelId))?;
    Ok(dispute::sub_channel_key(initial.channelId, &initial.outcome.assets, &totals))
}

/// Records a registration of a channel the hub is party to and enqueues its answer. Other
/// channels' registrations are ignored. A virtual channel's registration is recorded under
/// its record key; one with other totals than its parents lock (a record they never read) is
/// recorded for the operator and changes nothing else.
pub async fn on_registration(
    db: &mut PgConnection,
    deployment: &Deployment,
    grace: u64,
    reg: &Registration,
    block: u64,
) -> anyhow::Result<()> {
    let id = reg.state.channelId;
    let key = dispute::record_key(&reg.params, &reg.state)?;
    let digest = deployment.state_digest(&reg.state);
    let (version, is_final) = (reg.state.version, reg.state.isFinal);
    let seen = |kind, ours, hub: &State| db::SeenRegistration {
        record_key: key,
        channel: id,
        kind,
        ours,
        version,
        digest,
        is_final,
        timeout: reg.timeout,
        hub_version: hub.version,
        hubs_state: hub.version == version && deployment.state_digest(hub) == digest,
        block,
    };
    if reg.params.ledger {
        let Some(row) = db::channel(db, id).await? else { return Ok(()) };
        let latest = db::state(db, id, row.latest_version).await?.state;
        db::record_dispute(db, &seen("basic", true, &latest)).await?;
        db::mark_registered(db, id).await?;
        tracing::warn!(channel = %id, version, hub_version = row.latest_version, "basic channel registered on chain");
        enqueue_all(db, plan_basic(id, version, row.latest_version, &latest.outcome.assets)).await?;
    } else {
        let Some(v) = db::virtual_by_id(db, id, 0).await? else { return Ok(()) };
        let best_state = v.view.final_state.as_ref().map_or(&v.view.initial, |f| &f.state);
        let best = best_state.version;
        let ours = virtual_record_key(&v.view.initial)? == key;
        db::record_dispute(db, &seen("virtual", ours, best_state)).await?;
        if !ours {
            tracing::warn!(virtual_channel = %id, version, "a state of a virtual channel with other totals registered: not the record its parents read");
            return Ok(());
        }
        tracing::warn!(virtual_channel = %id, version, hub_version = best, "virtual channel registered on chain");
        let mut parents = Vec::new();
        for parent in v.locking_parents() {
            if db::still_locks(db, parent, id).await? {
                parents.push(parent);
            }
        }
        enqueue_all(db, plan_virtual(id, version, is_final, best, &parents, grace)).await?;
    }
    Ok(())
}

/// Fills in the record keys of virtual channels' dispute rows written before disputes were
/// keyed by record (run once at start; a no-op afterwards).
pub async fn backfill_record_keys(pool: &PgPool) -> anyhow::Result<()> {
    for (id, _, initial) in db::disputes_without_key(pool).await? {
        db::set_dispute_key(pool, id, virtual_record_key(&initial)?).await?;
    }
    Ok(())
}

/// Records that basic channel `channel` concluded on chain (with the virtual channels it
/// settled), if it is one of the hub's.
pub async fn on_conclusion(db: &mut PgConnection, channel: B256) -> sqlx::Result<()> {
    db::record_dispute_conclusion(db, channel).await
}

/// Registers the parents of every open virtual channel whose validity ended more than
/// `grace` seconds before `now` (the clients did not close it): the hub goes to chain with
/// the newest states it has, and the clients refute with newer ones. Returns how many
/// virtual channels it found.
pub async fn sweep_once(pool: &PgPool, now: u64, grace: u64) -> anyhow::Result<usize> {
    let overdue = db::overdue_virtual(pool, now, grace, 100).await?;
    let mut tx = pool.begin().await?;
    for (vc, parents) in &overdue {
        tracing::warn!(virtual_channel = %vc, "virtual channel past its validity without a close: going to chain");
        let mut plan = Vec::new();
        for parent in parents {
            if db::still_locks(&mut tx, *parent, *vc).await? {
                plan.push((Action::Register { channel: *parent, because: Some(*vc) }, 0));
            }
        }
        enqueue_all(&mut tx, plan).await?;
    }
    tx.commit().await?;
    Ok(overdue.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ingrid_client_sdk::chain::{self, phase};
    use ingrid_protocol::machine::OnChain;

    fn b(n: u8) -> B256 {
        B256::repeat_byte(n)
    }

    fn record(phase: u8, version: u64, timeout: u64, state_hash: B256) -> chain::DisputeRecord {
        chain::DisputeRecord { timeout, version, phase, state_hash, window: 0 }
    }

    #[test]
    fn only_a_record_holding_this_state_past_its_timeout_is_fixed() {
        let digest = b(5);
        assert_eq!(record(phase::NONE, 0, 0, B256::ZERO).on_chain(100, digest), OnChain::Unregistered);
        assert_eq!(record(phase::DISPUTE, 7, 100, digest).on_chain(100, digest), OnChain::Fixed);
        assert_eq!(record(phase::DISPUTE, 7, 100, digest).on_chain(150, digest), OnChain::Fixed);
        // The final state is registered but the record can still be replaced until its timeout.
        assert_eq!(
            record(phase::DISPUTE, 7, 101, digest).on_chain(100, digest),
            OnChain::Open { version: 7, timeout: 101 }
        );
        // Another state is fixed: this one never settles anything.
        assert_eq!(
            record(phase::DISPUTE, 9, 50, b(6)).on_chain(100, digest),
            OnChain::Open { version: 9, timeout: 50 }
        );
    }

    #[test]
    fn a_stale_basic_registration_is_refuted_then_concluded_and_withdrawn() {
        let assets = [Address::repeat_byte(7)];
        let plan = plan_basic(b(1), 3, 5, &assets);
        assert_eq!(
            plan,
            vec![
                (Action::Refute { channel: b(1), registered: 3 }, 0),
                (Action::Conclude { channel: b(1) }, 0),
                (Action::Withdraw { channel: b(1), asset: assets[0] }, 0),
            ]
        );
        let current = plan_basic(b(1), 5, 5, &assets);
        assert!(!current.iter().any(|(a, _)| matches!(a, Action::Refute { .. })), "nothing to refute");
    }

    #[test]
    fn a_virtual_registration_registers_the_parents_and_refutes_only_what_can_change() {
        let plan = plan_virtual(b(9), 0, false, 4, &[b(1), b(2)], 600);
        assert_eq!(plan[0], (Action::RefuteVirtual { id: b(9), registered: 0 }, 0));
        assert_eq!(
            plan[1..],
            [
                (Action::Register { channel: b(1), because: Some(b(9)) }, 0),
                (Action::Register { channel: b(2), because: Some(b(9)) }, 0)
            ]
        );
        // A final state is fixed: no refutation, and the parents get the grace period.
        let plan = plan_virtual(b(9), 3, true, 4, &[b(2)], 600);
        assert_eq!(plan, vec![(Action::Register { channel: b(2), because: Some(b(9)) }, 600)]);
        // Nothing newer held, no parent still locking it: nothing to do.
        assert!(plan_virtual(b(9), 4, false, 4, &[], 600).is_empty());
    }
}
