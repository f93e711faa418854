//! Disputes: settling channels on chain when a party stops cooperating or cheats.
//!
//! Pure parts (no I/O): the adjudicator's record key of a sub-channel, and what a ledger
//! channel's registration carries (its state with the state of each of its locks, in lock
//! order; a sub-channel's states hold no locks of their own, the adjudicator refuses them).
//! Chain parts: the states registered on chain, read back from the adjudicator's events,
//! and the transactions of the dispute path. The [`Wallet`] parts give an end user
//! force-close (register, wait, conclude, withdraw) and a watcher that refutes stale
//! registrations of its channels and virtual channels.

use std::collections::HashMap;
use std::time::Duration;

use alloy::network::Ethereum;
use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::{PendingTransactionBuilder, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolEvent, SolValue};

use crate::api::FullySignedState;
use crate::bindings::Channel::{Allocation, Params, SignedState, State, SubAlloc};
use crate::bindings::adjudicator::Adjudicator;
use crate::chain::{self, ChainResult, DisputeRecord, phase};
use crate::state::Deployment;
use crate::validate::{UpdateError, asset_totals};
use crate::wallet::{Wallet, WalletError};

/// The adjudicator's record key of a sub-channel: `keccak256(abi.encode(id, assets, totals))`.
/// A state of the sub-channel with other totals lands on another record, so it can never
/// block the parents that locked these totals.
pub fn sub_channel_key(id: B256, assets: &[Address], totals: &[U256]) -> B256 {
    keccak256((id, assets.to_vec(), totals.to_vec()).abi_encode_params())
}

/// The record key of the sub-channel that `lock` funds in a parent holding `parent_assets`.
pub fn lock_key(lock: &SubAlloc, parent_assets: &[Address]) -> B256 {
    sub_channel_key(lock.id, parent_assets, &lock.balances)
}

/// The record key of a channel in `state`: its id for a ledger channel, the sub-channel key
/// of its totals otherwise.
pub fn record_key(params: &Params, state: &State) -> Result<B256, UpdateError> {
    if params.ledger {
        return Ok(state.channelId);
    }
    Ok(sub_channel_key(state.channelId, &state.outcome.assets, &asset_totals(&state.outcome)?))
}

/// A ledger channel's registration: its signed state and its locks' signed states in the
/// order the adjudicator reads them (lock order; written depth-first, which is the same for
/// sub-channels without locks). `best` gives the newest fully signed state
/// known for a sub-channel; one whose state is unknown makes the registration impossible.
pub fn registration(
    params: &Params,
    latest: &FullySignedState,
    best: impl Fn(B256) -> Option<(Params, FullySignedState)>,
) -> Result<(SignedState, Vec<SignedState>), B256> {
    fn walk(
        outcome: &Allocation,
        best: &impl Fn(B256) -> Option<(Params, FullySignedState)>,
        out: &mut Vec<SignedState>,
    ) -> Result<(), B256> {
        for lock in &outcome.locked {
            let (params, signed) = best(lock.id).ok_or(lock.id)?;
            let outcome = signed.state.outcome.clone();
            out.push(SignedState { params, state: signed.state, sigs: signed.sigs });
            walk(&outcome, best, out)?;
        }
        Ok(())
    }
    let ledger = SignedState { params: params.clone(), state: latest.state.clone(), sigs: latest.sigs.clone() };
    let mut subs = Vec::new();
    walk(&latest.state.outcome, &best, &mut subs)?;
    Ok((ledger, subs))
}

/// What a watcher does about a registered state of a channel it holds `mine` of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// The registered state is as new as ours (or newer): nothing to do.
    Nothing,
    /// Ours is newer and the record is still refutable: refute with it.
    Refute,
    /// Ours is newer but the record can no longer be refuted.
    TooLate,
}

/// The watcher's decision for a record (`version`, `timeout`) at chain time `now` when the
/// newest state it holds has version `mine`.
pub fn respond(record: &DisputeRecord, mine: u64, now: u64) -> Response {
    if record.phase != phase::DISPUTE || record.version >= mine {
        Response::Nothing
    } else if record.refutable(now) {
        Response::Refute
    } else {
        Response::TooLate
    }
}

/// A state registered on chain, as the adjudicator's latest event about its record shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The channel's params.
    pub params: Params,
    /// The registered state.
    pub state: State,
    /// Unix time from which the record can no longer be refuted.
    pub timeout: u64,
    /// The block of the event.
    pub block: u64,
}

/// The registered states of the channels `ids` (ledger channels and sub-channels), keyed by
/// record key ([`record_key`]), from the adjudicator's events since `from_block`.
pub async fn registered_states<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    ids: &[B256],
    from_block: u64,
) -> ChainResult<HashMap<B256, Registered>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let filter = Filter::new()
        .address(deployment.adjudicator)
        .event_signature(vec![
            Adjudicator::Registered::SIGNATURE_HASH,
            Adjudicator::Refuted::SIGNATURE_HASH,
            Adjudicator::Progressed::SIGNATURE_HASH,
        ])
        .topic1(ids.to_vec())
        .from_block(from_block);
    for log in provider.get_logs(&filter).await? {
        let block = log.block_number.unwrap_or_default();
        let (params, state, timeout) = if let Ok(e) = log.log_decode::<Adjudicator::Registered>() {
            let e = e.inner.data;
            (e.params, e.state, e.timeout)
        } else if let Ok(e) = log.log_decode::<Adjudicator::Refuted>() {
            let e = e.inner.data;
            (e.params, e.state, e.timeout)
        } else if let Ok(e) = log.log_decode::<Adjudicator::Progressed>() {
            let e = e.inner.data;
            (e.params, e.state, e.timeout)
        } else {
            continue;
        };
        // A state whose totals overflow was never accepted by the adjudicator.
        let Ok(key) = record_key(&params, &state) else { continue };
        out.insert(key, Registered { params, state, timeout, block });
    }
    Ok(out)
}

/// The registered states of ledger channel `channel` and of every sub-channel locked in what
/// is registered for it (recursively), keyed by record key, from events since `from_block`.
pub async fn registered_tree<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    channel: B256,
    from_block: u64,
) -> ChainResult<HashMap<B256, Registered>> {
    let mut found = HashMap::new();
    let mut asked: Vec<B256> = Vec::new();
    let mut next = vec![channel];
    // Each round reads one level deeper; payment channels have at most two levels.
    for _ in 0..8 {
        next.retain(|id| !asked.contains(id));
        if next.is_empty() {
            break;
        }
        let got = registered_states(provider, deployment, &next, from_block).await?;
        asked.append(&mut next);
        for registered in got.values() {
            next.extend(registered.state.outcome.locked.iter().map(|l| l.id));
        }
        found.extend(got);
    }
    Ok(found)
}

/// The latest block's timestamp: the adjudicator's "now".
pub async fn chain_time<P: Provider>(provider: &P) -> ChainResult<u64> {
    let block = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .ok_or_else(|| alloy::transports::TransportErrorKind::custom_str("no latest block"))?;
    Ok(block.header.timestamp)
}

/// Sends the registration of a ledger channel with its locks' states.
pub async fn send_register<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    ledger: SignedState,
    subs: Vec<SignedState>,
) -> ChainResult<PendingTransactionBuilder<Ethereum>> {
    Ok(Adjudicator::new(deployment.adjudicator, provider).register(ledger, subs).send().await?)
}

/// Sends a refutation of a registered state (a ledger channel's or a sub-channel's).
pub async fn send_refute<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    channel: SignedState,
    subs: Vec<SignedState>,
) -> ChainResult<PendingTransactionBuilder<Ethereum>> {
    Ok(Adjudicator::new(deployment.adjudicator, provider).refute(channel, subs).send().await?)
}

/// Sends the conclusion of a registered ledger channel from its registered state and its
/// locks' registered states (depth-first), as read by [`registered_states`]. `Ok(None)` when a
/// registered state is missing from `registered` (not ingested yet).
pub async fn send_conclude<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    channel: B256,
    registered: &HashMap<B256, Registered>,
) -> ChainResult<Option<PendingTransactionBuilder<Ethereum>>> {
    let Some((params, state, subs)) = conclusion(channel, registered) else { return Ok(None) };
    Ok(Some(Adjudicator::new(deployment.adjudicator, provider).conclude(params, state, subs).send().await?))
}

/// The arguments of `conclude` for `channel` from the registered states (`None` if one of
/// the records it reads is not in `registered`).
pub fn conclusion(channel: B256, registered: &HashMap<B256, Registered>) -> Option<(Params, State, Vec<State>)> {
    conclusion_tree(channel, registered).map(|(params, state, subs, _)| (params, state, subs))
}

/// The latest timeout of the records `conclude` of `channel` reads: concluding is possible
/// from that chain time on.
pub fn conclusion_time(channel: B256, registered: &HashMap<B256, Registered>) -> Option<u64> {
    conclusion_tree(channel, registered).map(|(_, _, _, latest)| latest)
}

/// The ledger channel's registered params and state, its locks' registered states in lock
/// order, and the latest timeout among all of them.
fn conclusion_tree(channel: B256, registered: &HashMap<B256, Registered>) -> Option<(Params, State, Vec<State>, u64)> {
    let ledger = registered.get(&channel)?;
    let mut latest = ledger.timeout;
    let mut subs = Vec::with_capacity(ledger.state.outcome.locked.len());
    // Sub-channels hold no locks (the adjudicator refuses them): one level.
    for lock in &ledger.state.outcome.locked {
        let sub = registered.get(&lock_key(lock, &ledger.state.outcome.assets))?;
        latest = latest.max(sub.timeout);
        subs.push(sub.state.clone());
    }
    Some((ledger.params.clone(), ledger.state.clone(), subs, latest))
}

/// What a wallet's watcher did in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchReport {
    /// Channels (ledger or virtual) whose stale registration this wallet refuted.
    pub refuted: Vec<B256>,
    /// Channels registered with a stale state past their timeout (too late to refute).
    pub too_late: Vec<B256>,
}

impl Wallet {
    /// The newest fully signed state this wallet holds of a virtual channel, with its params.
    fn best_virtual(&self, id: B256) -> Option<(Params, FullySignedState)> {
        let record = self.store.load_virtual(id).ok()??;
        Some((record.params, record.latest))
    }

    /// The registration of basic channel `id` from this wallet's newest states.
    fn my_registration(&self, id: B256) -> Result<(SignedState, Vec<SignedState>), WalletError> {
        let record = self.record(id)?;
        registration(&record.params, &record.latest, |v| self.best_virtual(v))
            .map_err(|v| WalletError::Invalid(format!("no signed state of virtual channel {v} in the store")))
    }

    /// Puts basic channel `id` on chain with this wallet's newest states, without the hub:
    /// registers it (with the newest state of every virtual channel locked in it) or, if it
    /// is registered already, refutes what is older than this wallet's states.
    pub async fn register_channel(&self, id: B256) -> Result<(), WalletError> {
        let (ledger, subs) = self.my_registration(id)?;
        let d = self.deployment();
        let record = chain::dispute(&self.provider, &d, id).await?;
        if record.phase == phase::NONE {
            chain::confirm(send_register(&self.provider, &d, ledger, subs).await?).await?;
        } else {
            self.refute_stale(&[id]).await?;
        }
        Ok(())
    }

    /// Refutes every stale registration of the given basic channels and of the virtual
    /// channels locked in them that this wallet can refute.
    async fn refute_stale(&self, channels: &[B256]) -> Result<WatchReport, WalletError> {
        let d = self.deployment();
        let now = chain_time(&self.provider).await?;
        let mut report = WatchReport::default();
        for &id in channels {
            let (ledger, subs) = self.my_registration(id)?;
            let record = chain::dispute(&self.provider, &d, id).await?;
            match respond(&record, ledger.state.version, now) {
                Response::Refute => {
                    chain::confirm(send_refute(&self.provider, &d, ledger.clone(), subs.clone()).await?).await?;
                    report.refuted.push(id);
                }
                Response::TooLate => report.too_late.push(id),
                Response::Nothing => {}
            }
            // The virtual channels' shared records, whoever registered them.
            for sub in subs.iter().filter(|s| !s.params.ledger) {
                let key = record_key(&sub.params, &sub.state)?;
                let record = chain::dispute(&self.provider, &d, key).await?;
                match respond(&record, sub.state.version, now) {
                    Response::Refute => {
                        chain::confirm(send_refute(&self.provider, &d, sub.clone(), Vec::new()).await?).await?;
                        report.refuted.push(sub.state.channelId);
                    }
                    Response::TooLate => report.too_late.push(sub.state.channelId),
                    Response::Nothing => {}
                }
                let id = sub.state.channelId;
                if record.phase != phase::NONE && self.store.load_virtual(id)?.is_some() {
                    // A channel of this client's: no state signed off chain counts any more.
                    // After the refutation, and never fatal to the pass: the next one retries.
                    if let Err(e) = self.sync_from_chain(id).await {
                        tracing::warn!(virtual_channel = %id, error = %e, "could not note the channel's record yet");
                    }
                }
            }
        }
        Ok(report)
    }

    /// One pass of this wallet's own watcher: every basic channel in the store (and every
    /// virtual channel locked in one) registered on chain with an older state than the
    /// wallet's is refuted. Run it more often than the shortest challenge duration.
    pub async fn watch_once(&self) -> Result<WatchReport, WalletError> {
        let ids: Vec<B256> = self.store.list()?.iter().map(|r| r.id()).collect();
        self.refute_stale(&ids).await
    }

    /// Concludes registered basic channel `id` once every timeout passed, from the states
    /// registered on chain (events since `from_block`), waiting at most `timeout` for the
    /// chain's clock. Already concluded is fine.
    pub async fn conclude_channel(&self, id: B256, from_block: u64, timeout: Duration) -> Result<(), WalletError> {
        let d = self.deployment();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if chain::dispute(&self.provider, &d, id).await?.phase == phase::CONCLUDED {
                return Ok(());
            }
            let registered = registered_tree(&self.provider, &d, id, from_block).await?;
            if let Some(ready) = conclusion_time(id, &registered)
                && chain_time(&self.provider).await? >= ready
                && let Some(pending) = send_conclude(&self.provider, &d, id, &registered).await?
            {
                chain::confirm(pending).await?;
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WalletError::Timeout("the channel's dispute to time out"));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Force-closes basic channel `id` without the hub: registers it with this wallet's newest
    /// states (the hub's and the peers' newer states may still refute them), waits until the
    /// chain's clock passes every timeout (at most `timeout`), concludes, and withdraws every
    /// asset. Returns the amounts withdrawn per asset of the channel.
    pub async fn force_close(&self, id: B256, timeout: Duration) -> Result<Vec<U256>, WalletError> {
        let from_block = self.provider.get_block_number().await.map_err(chain::ChainError::from)?;
        self.register_channel(id).await?;
        self.conclude_channel(id, from_block.saturating_sub(1), timeout).await?;
        self.withdraw(id, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Bytes;

    fn outcome(total: u64, locks: Vec<SubAlloc>) -> Allocation {
        Allocation {
            assets: vec![Address::repeat_byte(1)],
            balances: vec![[U256::from(total), U256::ZERO]],
            locked: locks,
        }
    }

    fn signed(id: u8, version: u64, outcome: Allocation) -> FullySignedState {
        FullySignedState {
            state: State { channelId: B256::repeat_byte(id), version, outcome, appData: Bytes::new(), isFinal: false },
            sigs: [Bytes::from(vec![id; 65]), Bytes::from(vec![id; 65])],
        }
    }

    fn params(ledger: bool) -> Params {
        Params {
            challengeDuration: 60,
            nonce: U256::ZERO,
            participants: [Address::repeat_byte(1), Address::repeat_byte(2)],
            ledger,
            isVirtual: !ledger,
            app: Address::ZERO,
        }
    }

    fn lock(id: u8, amount: u64) -> SubAlloc {
        SubAlloc { id: B256::repeat_byte(id), balances: vec![U256::from(amount)], indexMap: [0, 1] }
    }

    #[test]
    fn the_key_commits_to_the_totals() {
        let assets = [Address::repeat_byte(1)];
        let a = sub_channel_key(B256::repeat_byte(9), &assets, &[U256::from(5)]);
        let b = sub_channel_key(B256::repeat_byte(9), &assets, &[U256::from(6)]);
        assert_ne!(a, b);
        let sub = params(false);
        let state = signed(9, 3, outcome(5, vec![])).state;
        assert_eq!(record_key(&sub, &state).unwrap(), a);
        assert_eq!(lock_key(&lock(9, 5), &assets), a);
        let ledger = params(true);
        assert_eq!(record_key(&ledger, &state).unwrap(), state.channelId);
    }

    #[test]
    fn registration_lists_locks_depth_first_and_names_a_missing_one() {
        // Ledger 1 locks 2 and 3; 2 locks 4.
        let ledger = signed(1, 7, outcome(1, vec![lock(2, 5), lock(3, 2)]));
        let states: HashMap<B256, FullySignedState> = [
            (2, signed(2, 1, outcome(3, vec![lock(4, 2)]))),
            (3, signed(3, 4, outcome(2, vec![]))),
            (4, signed(4, 2, outcome(2, vec![]))),
        ]
        .into_iter()
        .map(|(i, s)| (B256::repeat_byte(i), s))
        .collect();
        let best = |id: B256| states.get(&id).map(|s| (params(true), s.clone()));
        let (l, subs) = registration(&params(true), &ledger, best).unwrap();
        assert_eq!(l.state.version, 7);
        let order: Vec<u8> = subs.iter().map(|s| s.state.channelId[0]).collect();
        assert_eq!(order, [2, 4, 3]);
        let without_4 = |id: B256| (id != B256::repeat_byte(4)).then(|| best(id)).flatten();
        assert_eq!(registration(&params(true), &ledger, without_4).unwrap_err(), B256::repeat_byte(4));
    }

    #[test]
    fn the_watcher_refutes_only_older_refutable_records() {
        let record =
            |phase, version, timeout| DisputeRecord { timeout, version, phase, state_hash: B256::ZERO, window: 0 };
        assert_eq!(respond(&record(phase::NONE, 0, 0), 5, 10), Response::Nothing);
        assert_eq!(respond(&record(phase::DISPUTE, 5, 100), 5, 10), Response::Nothing);
        assert_eq!(respond(&record(phase::DISPUTE, 6, 100), 5, 10), Response::Nothing);
        assert_eq!(respond(&record(phase::DISPUTE, 4, 100), 5, 10), Response::Refute);
        assert_eq!(respond(&record(phase::DISPUTE, 4, 100), 5, 100), Response::TooLate);
        assert_eq!(respond(&record(phase::CONCLUDED, 4, 100), 5, 10), Response::Nothing);
        // An app channel's record: refutable until timeout - window, then only advanced by
        // forced moves (phase FORCE_EXEC): a refutation would revert.
        let app = DisputeRecord { window: 50, ..record(phase::DISPUTE, 4, 100) };
        assert_eq!(respond(&app, 5, 49), Response::Refute);
        assert_eq!(respond(&app, 5, 50), Response::TooLate);
        assert_eq!(respond(&record(phase::FORCE_EXEC, 4, 100), 5, 10), Response::Nothing);
    }

    #[test]
    fn conclusion_reads_every_record_and_the_latest_timeout() {
        let reg = |s: FullySignedState, timeout| Registered { params: params(true), state: s.state, timeout, block: 1 };
        let ledger = signed(1, 7, outcome(1, vec![lock(2, 5)]));
        let v = signed(2, 3, outcome(5, vec![]));
        let assets = ledger.state.outcome.assets.clone();
        let mut registered = HashMap::new();
        registered.insert(B256::repeat_byte(1), reg(ledger, 100));
        assert_eq!(conclusion(B256::repeat_byte(1), &registered), None, "the lock's record is missing");
        registered.insert(sub_channel_key(B256::repeat_byte(2), &assets, &[U256::from(5)]), reg(v.clone(), 150));
        let (_, state, subs) = conclusion(B256::repeat_byte(1), &registered).unwrap();
        assert_eq!((state.version, subs), (7, vec![v.state]));
        assert_eq!(conclusion_time(B256::repeat_byte(1), &registered), Some(150));
    }
}
