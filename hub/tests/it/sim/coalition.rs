//! The coalition: several accounts of one person, who share keys and so co-sign any state of
//! a virtual channel between their accounts (any version up to `u64::MAX`, final or not, any
//! distribution, other totals), keep every state the hub ever signed for them, and call the
//! API and the contracts in any order. Each `co_*` function is one strategy with random
//! parameters; it returns [`Outcome::Skipped`] when its preconditions do not hold.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::Role;
use ingrid_client_sdk::api::{
    ChannelStatus, ChannelView, FullySignedState, OpenChannelRequest, QuoteRequest, StateRequest, VirtualAccept,
    VirtualClose, VirtualProposal,
};
use ingrid_client_sdk::app::{AppKind, MAX_APP_DATA, coin_flip, tic_tac_toe};
use ingrid_client_sdk::bindings::Adjudicator;
use ingrid_client_sdk::chain::{self, Asset, phase};
use ingrid_client_sdk::client::{ClientError, HubClient};
use ingrid_client_sdk::dispute::{self, record_key, sub_channel_key};
use ingrid_client_sdk::state::channel_id;
use ingrid_client_sdk::validate::asset_totals;
use ingrid_client_sdk::virtual_channel::{Link, lock_in_parent, pay_fees, settle_in_parent, top_up};
use ingrid_client_sdk::{Allocation, Params, SignedState, State, SubAlloc};
use rand::Rng;

use super::world::{COALITION, MAX_JUMP, Outcome, World, fmt_units, now, units};

/// One account of the coalition.
pub struct Member {
    /// `C0`, `C1`, ...
    pub name: String,
    /// Its key (the whole coalition holds all of them).
    pub key: PrivateKeySigner,
    /// Logged in to the hub (retries little: the coalition does not wait for a dead hub).
    pub api: HubClient,
    /// Sends its transactions.
    pub provider: DynProvider,
}

/// A basic channel of a coalition account with the hub.
pub struct CChannel {
    /// `X0`, `X1`, ...
    pub name: String,
    /// The member it belongs to.
    pub owner: usize,
    /// Params.
    pub params: Params,
    /// The hub's index.
    pub hub_index: Role,
    /// Every state signed by both, by version (ascending).
    pub states: Vec<FullySignedState>,
    /// The member's opening deposit.
    pub deposit: U256,
    /// Whether the member deposited it.
    pub funded: bool,
}

impl CChannel {
    /// The channel id.
    pub fn id(&self) -> B256 {
        channel_id(&self.params)
    }

    /// The newest state signed by both.
    pub fn latest(&self) -> &FullySignedState {
        self.states.last().expect("a channel has its opening state")
    }

    fn client_index(&self) -> usize {
        self.hub_index.peer().index()
    }

    fn keep(&mut self, signed: FullySignedState) {
        if signed.state.version > self.latest().state.version {
            self.states.push(signed);
        }
    }
}

/// Where a coalition virtual channel is, as the coalition knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VStatus {
    /// Params chosen; the hub knows nothing.
    Planned,
    /// Proposed to the hub.
    Proposed,
    /// Locked in both parents.
    Open,
    /// Settled in both parents off chain (as far as the coalition knows).
    Closed,
    /// Planned, but a parent is no longer open: never proposed (its states may still be
    /// registered anywhere).
    Abandoned,
}

/// A virtual channel between two coalition accounts.
pub struct CVirtual {
    /// `V0`, `V1`, ...
    pub name: String,
    /// Params (participants: the two members' addresses).
    pub params: Params,
    /// Proposer and acceptor (member indices).
    pub members: [usize; 2],
    /// Their parents (indices into the coalition's channels).
    pub parents: [usize; 2],
    /// The opening state.
    pub opening: State,
    /// Every state the coalition co-signed (the opening first).
    pub states: Vec<State>,
    /// Where it is.
    pub status: VStatus,
    /// Its validity (wall clock).
    pub valid_until: u64,
    /// The hub's fees, once quoted.
    pub fees: Vec<U256>,
    /// The version of the final state each parent was settled with off chain (hub countersigned).
    pub settled: [Option<u64>; 2],
}

impl CVirtual {
    /// The channel id.
    pub fn id(&self) -> B256 {
        channel_id(&self.params)
    }

    /// The record key of the states with the opening's totals (the parents' locks).
    pub fn key(&self) -> B256 {
        record_key(&self.params, &self.opening).expect("valid opening")
    }

    fn total(&self) -> U256 {
        self.opening.outcome.balances[0][0] + self.opening.outcome.balances[0][1]
    }

    fn max_version(&self) -> u64 {
        self.states.iter().map(|s| s.version).max().unwrap_or(0)
    }
}

/// A ledger channel between two coalition accounts, registered only to put a state of a
/// coalition virtual channel on chain.
pub struct OwnLedger {
    /// `Z0`, ...
    pub name: String,
    /// Its id.
    pub id: B256,
}

/// The colluding clients and everything they hold.
pub struct Coalition {
    /// Accounts.
    pub members: Vec<Member>,
    /// Their basic channels with the hub.
    pub channels: Vec<CChannel>,
    /// Their virtual channels.
    pub virtuals: Vec<CVirtual>,
    /// Their own ledger channels.
    pub own_ledgers: Vec<OwnLedger>,
}

/// A refusal by the hub or the chain, as the log shows it.
pub fn refusal(e: impl std::fmt::Display) -> Outcome {
    let text = e.to_string();
    Outcome::Refused(text.chars().take(220).collect())
}

fn hub_refusal(e: ClientError) -> Outcome {
    match &e {
        ClientError::Refused { status, body, .. } => Outcome::Refused(format!("{status} {}", body.error)),
        _ => refusal(e),
    }
}

fn chain_refusal(e: chain::ChainError) -> Outcome {
    match e.adjudicator_error() {
        Some(err) => Outcome::Refused(format!("reverted: {err:?}")),
        None => refusal(e),
    }
}

fn eth_asset(holder: Address) -> Asset {
    Asset { holder, token: None }
}

fn random_nonce(w: &mut World) -> U256 {
    U256::from_be_bytes(w.rng.random::<[u8; 32]>())
}

impl World {
    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() { None } else { Some(items[self.rng.random_range(0..items.len())]) }
    }

    /// A fraction (1..=`max_pct` percent) of `x`, at least 1 wei when `x` is not zero.
    pub fn fraction(&mut self, x: U256, max_pct: u64) -> U256 {
        if x.is_zero() {
            return x;
        }
        let pct = self.rng.random_range(1..=max_pct.max(1));
        (x * U256::from(pct) / U256::from(100u64)).max(U256::from(1u64))
    }

    fn co_channels_where(&self, f: impl Fn(&CChannel) -> bool) -> Vec<usize> {
        (0..self.co.channels.len()).filter(|c| f(&self.co.channels[*c])).collect()
    }

    fn co_virtuals_where(&self, f: impl Fn(&CVirtual) -> bool) -> Vec<usize> {
        (0..self.co.virtuals.len()).filter(|v| f(&self.co.virtuals[*v])).collect()
    }

    fn co_sign(&self, member: usize, state: &State) -> anyhow::Result<Bytes> {
        Ok(self.d.sign_state(&self.co.members[member].key, state)?)
    }

    /// A state of virtual channel `v` signed by both its members.
    fn co_signed_v(&self, v: usize, state: &State) -> anyhow::Result<SignedState> {
        let cv = &self.co.virtuals[v];
        Ok(SignedState {
            params: cv.params.clone(),
            state: state.clone(),
            sigs: [self.co_sign(cv.members[0], state)?, self.co_sign(cv.members[1], state)?],
        })
    }

    fn co_signed_ledger(&self, c: usize, signed: &FullySignedState) -> SignedState {
        let ch = &self.co.channels[c];
        SignedState { params: ch.params.clone(), state: signed.state.clone(), sigs: signed.sigs.clone() }
    }

    /// Stores the hub's countersignature on `state` of channel `c` (checked), signed by its owner.
    fn co_keep(&mut self, c: usize, state: State, hub_sig: Bytes) -> anyhow::Result<()> {
        self.sigs.see(&self.d, self.hub_addr, &state, &hub_sig);
        self.d.verify_state(&state, &hub_sig, self.hub_addr)?;
        let ch = &self.co.channels[c];
        let mine = self.co_sign(ch.owner, &state)?;
        let sigs = ch.hub_index.pair(hub_sig, mine);
        self.co.channels[c].keep(FullySignedState { state, sigs });
        Ok(())
    }

    /// Reads channel `c` from the hub and keeps its latest state if it is newer (both
    /// signatures checked). `None` if the hub does not answer.
    pub async fn co_sync(&mut self, c: usize) -> Option<ChannelView> {
        let (owner, id) = (self.co.channels[c].owner, self.co.channels[c].id());
        let view = self.co.members[owner].api.channel(id).await.ok()?;
        let ch = &self.co.channels[c];
        let hub_index = ch.hub_index;
        let ok = ch
            .params
            .participants
            .iter()
            .enumerate()
            .all(|(i, p)| self.d.verify_state(&view.latest.state, &view.latest.sigs[i], *p).is_ok());
        if ok {
            self.sigs.see(&self.d, self.hub_addr, &view.latest.state, &view.latest.sigs[hub_index.index()]);
            self.co.channels[c].keep(view.latest.clone());
        }
        Some(view)
    }

    /// A balance split of `total`: all to one side, all to the other, or random; all to
    /// `favour` most of the time when given.
    fn split(&mut self, total: U256, favour: Option<usize>) -> [U256; 2] {
        let side = match favour {
            Some(f) if self.rng.random_bool(0.75) => Some(f),
            _ => match self.rng.random_range(0..5) {
                0 | 1 => Some(0),
                2 | 3 => Some(1),
                _ => None,
            },
        };
        match side {
            Some(0) => [total, U256::ZERO],
            Some(_) => [U256::ZERO, total],
            None => {
                let a = if total.is_zero() {
                    total
                } else {
                    total * U256::from(self.rng.random_range(0..=100u64)) / U256::from(100u64)
                };
                [a, total - a]
            }
        }
    }

    /// The side of `v` whose parent the coalition did not settle off chain while the other
    /// is settled: a fresh state should give everything there.
    fn unsettled_side(&self, v: usize) -> Option<usize> {
        match self.co.virtuals[v].settled {
            [Some(_), None] => Some(1),
            [None, Some(_)] => Some(0),
            _ => None,
        }
    }

    /// A fresh state of `v` above every co-signed version (`None` past `u64::MAX`).
    fn fresh_v(&mut self, v: usize, is_final: bool, favour: Option<usize>) -> Option<State> {
        let max = self.co.virtuals[v].max_version();
        let step = self.rng.random_range(1..=3u64);
        let version = max.checked_add(step)?;
        let total = self.co.virtuals[v].total();
        let balances = self.split(total, favour);
        // Now and then, an app channel's state with app data over the adjudicator's bound: a
        // close the hub must refuse, a registration the chain refuses.
        let oversized = !self.co.virtuals[v].params.app.is_zero() && self.rng.random_bool(0.1);
        let junk = oversized.then(|| {
            let n = self.rng.random_range(MAX_APP_DATA + 1..=MAX_APP_DATA + 600);
            (0..n).map(|_| self.rng.random::<u8>()).collect::<Vec<u8>>()
        });
        let cv = &mut self.co.virtuals[v];
        let mut state = cv.opening.clone();
        state.version = version;
        state.isFinal = is_final;
        state.outcome.balances = vec![balances];
        if let Some(junk) = junk {
            state.appData = junk.into();
        }
        cv.states.push(state.clone());
        Some(state)
    }

    /// A co-signed state of `v` whose totals match the parents' locks: a random one, the
    /// opening, or (`fresh`) a new one.
    fn any_v_state(&mut self, v: usize, prefer_old: bool) -> Option<State> {
        let key = self.co.virtuals[v].key();
        let params = self.co.virtuals[v].params.clone();
        let candidates: Vec<State> =
            self.co.virtuals[v].states.iter().filter(|s| record_key(&params, s).ok() == Some(key)).cloned().collect();
        if prefer_old || self.rng.random_bool(0.5) {
            let i = if prefer_old {
                self.rng.random_range(0..candidates.len().div_ceil(2))
            } else {
                self.rng.random_range(0..candidates.len())
            };
            return candidates.get(i).cloned();
        }
        let is_final = self.rng.random_bool(0.2);
        let favour = self.unsettled_side(v);
        self.fresh_v(v, is_final, favour)
    }

    fn v_of_lock(&self, lock: &SubAlloc) -> Option<usize> {
        self.co.virtuals.iter().position(|cv| cv.id() == lock.id)
    }

    /// The sub-states for registering channel `c` at `state`: for every lock, a co-signed
    /// state of its virtual channel (`chosen` for `v` when given).
    fn subs_for(
        &mut self,
        state: &State,
        stale: bool,
        chosen: Option<(usize, State)>,
    ) -> anyhow::Result<Option<Vec<SignedState>>> {
        let mut subs = Vec::new();
        for lock in state.outcome.locked.clone() {
            let Some(v) = self.v_of_lock(&lock) else { return Ok(None) };
            let s = match &chosen {
                Some((cv, s)) if *cv == v => s.clone(),
                _ => match self.any_v_state(v, stale) {
                    Some(s) => s,
                    None => return Ok(None),
                },
            };
            subs.push(self.co_signed_v(v, &s)?);
        }
        Ok(Some(subs))
    }

    // ------------------------------------------------------------------ basic channels

    /// `open_channel` / `open_unfunded_channel`.
    pub async fn co_open_channel(&mut self, fund: bool) -> anyhow::Result<Outcome> {
        let owner = self.rng.random_range(0..COALITION);
        let mine_units = self.rng.random_range(20..=60u64);
        let hub_units = if self.rng.random_bool(0.35) { 0 } else { self.rng.random_range(5..=mine_units) };
        let challenge = *[600u64, 1200, 3600].get(self.rng.random_range(0..3)).unwrap_or(&1200);
        let nonce = random_nonce(self);
        let params = Params {
            challengeDuration: challenge,
            nonce,
            participants: [self.co.members[owner].key.address(), self.hub_addr],
            ledger: true,
            isVirtual: false,
            app: Address::ZERO,
        };
        let id = channel_id(&params);
        let state = State {
            channelId: id,
            version: 0,
            outcome: Allocation {
                assets: vec![self.eth],
                balances: vec![[units(mine_units), units(hub_units)]],
                locked: vec![],
            },
            appData: Bytes::new(),
            isFinal: false,
        };
        let signature = self.co_sign(owner, &state)?;
        let request = OpenChannelRequest { params: params.clone(), state: state.clone(), signature };
        let answer = match self.co.members[owner].api.open_channel(&request, None).await {
            Ok(a) => a,
            Err(e) => return Ok(hub_refusal(e)),
        };
        let name = format!("X{}", self.co.channels.len());
        self.sigs.see(&self.d, self.hub_addr, &state, &answer.signature);
        let mine = self.co_sign(owner, &state)?;
        self.co.channels.push(CChannel {
            name: name.clone(),
            owner,
            params,
            hub_index: Role::Second,
            states: vec![FullySignedState { state, sigs: [mine, answer.signature] }],
            deposit: units(mine_units),
            funded: false,
        });
        let c = self.co.channels.len() - 1;
        let mut what = format!(
            "{name} = {} with the hub: {} + hub {}, challenge {challenge}s ({id})",
            self.co.members[owner].name,
            fmt_units(units(mine_units)),
            fmt_units(units(hub_units))
        );
        if fund {
            let m = &self.co.members[owner];
            match chain::deposit(&m.provider, &eth_asset(self.eth), id, m.key.address(), units(mine_units)).await {
                Ok(_) => {
                    self.co.channels[c].funded = true;
                    what.push_str(", funded");
                }
                Err(e) => what.push_str(&format!(", deposit failed: {e}")),
            }
        } else {
            what.push_str(", never funded");
        }
        Ok(Outcome::Done(what))
    }

    /// `fund_channel`: the member's late deposit, or more than the channel needs.
    pub async fn co_fund_channel(&mut self) -> anyhow::Result<Outcome> {
        let Some(c) = self.pick(&self.co_channels_where(|_| true)) else { return Ok(Outcome::Skipped) };
        let (owner, id, funded, deposit, name) = {
            let ch = &self.co.channels[c];
            (ch.owner, ch.id(), ch.funded, ch.deposit, ch.name.clone())
        };
        let amount = if funded { units(self.rng.random_range(1..=10)) } else { deposit };
        if amount.is_zero() {
            return Ok(Outcome::Skipped);
        }
        let m = &self.co.members[owner];
        match chain::deposit(&m.provider, &eth_asset(self.eth), id, m.key.address(), amount).await {
            Ok(_) => {
                self.co.channels[c].funded = true;
                let what = if funded { "over-funds" } else { "funds" };
                Ok(Outcome::Done(format!("{} {what} {name} with {}", self.co.members[owner].name, fmt_units(amount))))
            }
            Err(e) => Ok(chain_refusal(e)),
        }
    }

    /// `standby`: coins on standby in a coalition channel, under the member's address or the
    /// hub's (a gift that must not let anybody take the hub's own top-ups).
    pub async fn co_standby(&mut self) -> anyhow::Result<Outcome> {
        let Some(c) = self.pick(&self.co_channels_where(|_| true)) else { return Ok(Outcome::Skipped) };
        let (owner, id, name) = {
            let ch = &self.co.channels[c];
            (ch.owner, ch.id(), ch.name.clone())
        };
        let amount = units(self.rng.random_range(1..=10));
        let for_hub = self.rng.random_bool(0.5);
        let m = &self.co.members[owner];
        let participant = if for_hub { self.hub_addr } else { m.key.address() };
        let sent = chain::send_standby(&m.provider, &eth_asset(self.eth), id, participant, amount).await;
        match match sent {
            Ok(pending) => chain::confirm(pending).await,
            Err(e) => Err(e),
        } {
            Ok(_) => Ok(Outcome::Done(format!(
                "{} puts {} on standby in {name} for {}",
                self.co.members[owner].name,
                fmt_units(amount),
                if for_hub { "the hub" } else { "itself" }
            ))),
            Err(e) => Ok(chain_refusal(e)),
        }
    }

    /// `pay_hub`.
    pub async fn co_pay_hub(&mut self) -> anyhow::Result<Outcome> {
        let Some(c) = self.pick(&self.co_channels_where(|ch| ch.funded)) else { return Ok(Outcome::Skipped) };
        let Some(view) = self.co_sync(c).await else { return Ok(Outcome::Refused("hub unreachable".into())) };
        if view.status != ChannelStatus::Open {
            return Ok(Outcome::Skipped);
        }
        let (owner, id, ci, hi) = {
            let ch = &self.co.channels[c];
            (ch.owner, ch.id(), ch.client_index(), ch.hub_index)
        };
        let mut state = self.co.channels[c].latest().state.clone();
        let amount = self.fraction(state.outcome.balances[0][ci], 30);
        if amount.is_zero() {
            return Ok(Outcome::Skipped);
        }
        state.outcome.balances[0][ci] -= amount;
        state.outcome.balances[0][hi.index()] += amount;
        state.version += 1;
        let signature = self.co_sign(owner, &state)?;
        let request = StateRequest { state: state.clone(), signature };
        match self.co.members[owner].api.update(id, &request, None).await {
            Ok(answer) => {
                self.co_keep(c, state.clone(), answer.signature)?;
                self.paid_to_hub += amount;
                Ok(Outcome::Done(format!(
                    "{} pays the hub {} (v{})",
                    self.co.channels[c].name,
                    fmt_units(amount),
                    state.version
                )))
            }
            Err(e) => Ok(hub_refusal(e)),
        }
    }

    /// `close_channel` (any) and `close_ignoring_top_up` (only when the holder holds more than
    /// the latest state: the hub's top-up on standby, not signed into a state).
    pub async fn co_close_channel(&mut self, ignoring_top_up: bool) -> anyhow::Result<Outcome> {
        let candidates =
            self.co_channels_where(|ch| ch.latest().state.outcome.locked.is_empty() && !ch.latest().state.isFinal);
        let mut chosen = None;
        for c in self.shuffled(candidates) {
            if ignoring_top_up {
                let (id, params) = (self.co.channels[c].id(), self.co.channels[c].params.clone());
                let mut held = U256::ZERO;
                for p in params.participants {
                    held += chain::holdings(&self.reader(), self.eth, id, p).await?;
                    held += chain::standby(&self.reader(), self.eth, id, p).await?;
                }
                let total = asset_totals(&self.co.channels[c].latest().state.outcome)?[0];
                if held <= total {
                    continue;
                }
            }
            chosen = Some(c);
            break;
        }
        let Some(c) = chosen else { return Ok(Outcome::Skipped) };
        let Some(view) = self.co_sync(c).await else { return Ok(Outcome::Refused("hub unreachable".into())) };
        if !matches!(view.status, ChannelStatus::Open | ChannelStatus::Funding) {
            return Ok(Outcome::Skipped);
        }
        let (owner, id) = (self.co.channels[c].owner, self.co.channels[c].id());
        let mut state = self.co.channels[c].latest().state.clone();
        if !state.outcome.locked.is_empty() {
            return Ok(Outcome::Skipped);
        }
        state.version += 1;
        state.isFinal = true;
        let signature = self.co_sign(owner, &state)?;
        let offer = view.top_up.as_ref().map(|t| fmt_units(t.amount));
        match self.co.members[owner].api.close(id, &StateRequest { state: state.clone(), signature }, None).await {
            Ok(answer) => {
                self.co_keep(c, state.clone(), answer.signature)?;
                Ok(Outcome::Done(format!(
                    "closes {} at v{} with {:?}{}",
                    self.co.channels[c].name,
                    state.version,
                    state.outcome.balances[0].map(fmt_units),
                    offer.map(|o| format!(" (top-up offer of {o} ignored)")).unwrap_or_default()
                )))
            }
            Err(e) => Ok(hub_refusal(e)),
        }
    }

    /// `accept_top_up`.
    pub async fn co_accept_top_up(&mut self) -> anyhow::Result<Outcome> {
        let candidates = self.co_channels_where(|ch| ch.funded && !ch.latest().state.isFinal);
        for c in self.shuffled(candidates) {
            if let Some(outcome) = self.co_accept_top_up_in(c).await? {
                return Ok(outcome);
            }
        }
        Ok(Outcome::Skipped)
    }

    /// Takes the top-up the hub offers in channel `c`, if it offers one.
    pub async fn co_accept_top_up_in(&mut self, c: usize) -> anyhow::Result<Option<Outcome>> {
        let Some(view) = self.co_sync(c).await else { return Ok(Some(Outcome::Refused("hub unreachable".into()))) };
        let Some(offer) = view.top_up else { return Ok(None) };
        let (owner, id, hi) = (self.co.channels[c].owner, self.co.channels[c].id(), self.co.channels[c].hub_index);
        let next = top_up(&self.co.channels[c].latest().state, hi, offer.asset, offer.amount)?;
        let signature = self.co_sign(owner, &next)?;
        Ok(Some(
            match self.co.members[owner].api.top_up(id, &StateRequest { state: next.clone(), signature }, None).await {
                Ok(answer) => {
                    self.co_keep(c, next, answer.signature)?;
                    Outcome::Done(format!(
                        "takes the top-up of {} in {}",
                        fmt_units(offer.amount),
                        self.co.channels[c].name
                    ))
                }
                Err(e) => hub_refusal(e),
            },
        ))
    }

    /// The coalition's channels the hub reports open (each read from the hub).
    pub async fn co_open_channels(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for c in self.co_channels_where(|ch| ch.funded && !ch.latest().state.isFinal) {
            if self.co_sync(c).await.is_some_and(|v| v.status == ChannelStatus::Open) {
                out.push(c);
            }
        }
        out
    }

    /// Indices in random order.
    pub fn shuffled(&mut self, mut items: Vec<usize>) -> Vec<usize> {
        for i in (1..items.len()).rev() {
            let j = self.rng.random_range(0..=i);
            items.swap(i, j);
        }
        items
    }

    // ------------------------------------------------------------------ virtual channels

    /// `plan_virtual`: params and deposits of a virtual channel between two members, fixed
    /// now (its record key on chain depends on them) and told to nobody.
    pub async fn co_plan_virtual(&mut self) -> anyhow::Result<Outcome> {
        let open = self.co_open_channels().await;
        let Some(x) = self.pick(&open) else { return Ok(Outcome::Skipped) };
        let px = self.co.channels[x].owner;
        let others: Vec<usize> = open.iter().copied().filter(|y| self.co.channels[*y].owner != px).collect();
        let Some(y) = self.pick(&others) else { return Ok(Outcome::Skipped) };
        let py = self.co.channels[y].owner;
        let (xs, ys) = (self.co.channels[x].latest().state.clone(), self.co.channels[y].latest().state.clone());
        let (xc, xh) = (
            xs.outcome.balances[0][self.co.channels[x].client_index()],
            xs.outcome.balances[0][self.co.channels[x].hub_index.index()],
        );
        let (yc, yh) = (
            ys.outcome.balances[0][self.co.channels[y].client_index()],
            ys.outcome.balances[0][self.co.channels[y].hub_index.index()],
        );
        // Within what the parents hold, mostly (room for the proposer's fee).
        let fit = self.rng.random_bool(0.9);
        let mut a = self.fraction(xc.saturating_sub(units(3)), 70);
        let mut b = self.fraction(yc, 70);
        if fit {
            a = a.min(yh);
            b = b.min(xh);
        }
        if self.rng.random_bool(0.2) {
            b = U256::ZERO;
        }
        if (a + b).is_zero() {
            return Ok(Outcome::Skipped);
        }
        let max_challenge =
            self.co.channels[x].params.challengeDuration.min(self.co.channels[y].params.challengeDuration);
        // Mostly long: a record that stays refutable longer leaves more room for moves.
        let challenges: Vec<u64> =
            [60u64, 120, 300, 600, 600, 600].into_iter().filter(|c| *c <= max_challenge).collect();
        let challenge = self.pick(&challenges).unwrap_or(60);
        // Some run an app (the hub allows the coin flip and tic-tac-toe), whose moves the
        // coalition may force on chain (`force_move`).
        let apps = self.env.stack.contracts.apps;
        let (app, app_data) = match self.rng.random_range(0..10) {
            0..=1 => (apps.coin_flip, coin_flip::opening()),
            2 => (apps.tic_tac_toe, tic_tac_toe::opening(&[[a, b]])),
            _ => (Address::ZERO, Bytes::new()),
        };
        let params = Params {
            challengeDuration: challenge,
            nonce: random_nonce(self),
            participants: [self.co.members[px].key.address(), self.co.members[py].key.address()],
            ledger: false,
            isVirtual: true,
            app,
        };
        let id = channel_id(&params);
        let opening = State {
            channelId: id,
            version: 0,
            outcome: Allocation { assets: vec![self.eth], balances: vec![[a, b]], locked: vec![] },
            appData: app_data,
            isFinal: false,
        };
        let valid_until = now() + self.rng.random_range(40..=600);
        let name = format!("V{}", self.co.virtuals.len());
        let what = format!(
            "plans {name} = {} ({}) -> {} ({}): [{}, {}], challenge {challenge}s, valid {}s ({id})",
            self.co.members[px].name,
            self.co.channels[x].name,
            self.co.members[py].name,
            self.co.channels[y].name,
            fmt_units(a),
            fmt_units(b),
            valid_until - now()
        );
        self.co.virtuals.push(CVirtual {
            name,
            params,
            members: [px, py],
            parents: [x, y],
            opening: opening.clone(),
            states: vec![opening],
            status: VStatus::Planned,
            valid_until,
            fees: Vec::new(),
            settled: [None, None],
        });
        Ok(Outcome::Done(what))
    }

    /// `open_virtual`: quote, propose, and (mostly) accept a planned virtual channel.
    pub async fn co_open_virtual(&mut self) -> anyhow::Result<Outcome> {
        let Some(v) = self.pick(&self.co_virtuals_where(|cv| cv.status == VStatus::Planned)) else {
            return Ok(Outcome::Skipped);
        };
        let [x, y] = self.co.virtuals[v].parents;
        let [px, py] = self.co.virtuals[v].members;
        let open = |view: Option<ChannelView>| view.is_some_and(|v| v.status == ChannelStatus::Open);
        if !open(self.co_sync(x).await) || !open(self.co_sync(y).await) {
            if self.hub.is_up() {
                self.co.virtuals[v].status = VStatus::Abandoned;
                return Ok(Outcome::Refused(format!(
                    "a parent of {} is not open: abandoned",
                    self.co.virtuals[v].name
                )));
            }
            return Ok(Outcome::Refused("hub unreachable".into()));
        }
        let cv = &self.co.virtuals[v];
        let request = QuoteRequest {
            peer: cv.params.participants[1],
            parent: self.co.channels[x].id(),
            deposits: cv.opening.outcome.balances.clone(),
            valid_until: cv.valid_until,
        };
        let quote = match self.co.members[px].api.quote(&request).await {
            Ok(q) => q,
            Err(e) => return Ok(hub_refusal(e)),
        };
        let opening = cv.opening.clone();
        let xh = self.co.channels[x].hub_index;
        let update =
            match lock_in_parent(&self.co.channels[x].latest().state, Link::client_parent(Role::First, xh), &opening)
                .and_then(|u| pay_fees(&u, xh, &quote.fees))
            {
                Ok(u) => u,
                Err(e) => return Ok(refusal(format!("cannot lock: {e}"))),
            };
        let proposal = VirtualProposal {
            params: cv.params.clone(),
            state: opening.clone(),
            signature: self.co_sign(px, &opening)?,
            parent: StateRequest { signature: self.co_sign(px, &update)?, state: update },
            valid_until: cv.valid_until,
            quote: Some(quote.clone()),
        };
        let name = cv.name.clone();
        if let Err(e) = self.co.members[px].api.propose_virtual(&proposal, None).await {
            return Ok(hub_refusal(e));
        }
        self.co.virtuals[v].status = VStatus::Proposed;
        self.co.virtuals[v].fees = quote.fees.clone();
        let fee = quote.fees.first().copied().unwrap_or_default();
        if self.rng.random_bool(0.15) {
            return Ok(Outcome::Done(format!("proposes {name} (fee {}), not accepted yet", fmt_units(fee))));
        }
        let _ = py;
        match self.co_accept(v).await? {
            Outcome::Done(what) => Ok(Outcome::Done(format!("proposes {name} (fee {}); {what}", fmt_units(fee)))),
            other => Ok(other),
        }
    }

    /// `accept_virtual`.
    pub async fn co_accept_virtual(&mut self) -> anyhow::Result<Outcome> {
        let Some(v) = self.pick(&self.co_virtuals_where(|cv| cv.status == VStatus::Proposed)) else {
            return Ok(Outcome::Skipped);
        };
        self.co_accept(v).await
    }

    async fn co_accept(&mut self, v: usize) -> anyhow::Result<Outcome> {
        let [x, y] = self.co.virtuals[v].parents;
        let py = self.co.virtuals[v].members[1];
        self.co_sync(y).await;
        let opening = self.co.virtuals[v].opening.clone();
        let yh = self.co.channels[y].hub_index;
        let update = match lock_in_parent(
            &self.co.channels[y].latest().state,
            Link::client_parent(Role::Second, yh),
            &opening,
        ) {
            Ok(u) => u,
            Err(e) => return Ok(refusal(format!("cannot lock: {e}"))),
        };
        let accept = VirtualAccept {
            signature: self.co_sign(py, &opening)?,
            parent: StateRequest { signature: self.co_sign(py, &update)?, state: update.clone() },
        };
        let id = self.co.virtuals[v].id();
        match self.co.members[py].api.accept_virtual(id, &accept, None).await {
            Ok(answer) => {
                self.co_keep(y, update, answer.signature)?;
                self.co_sync(x).await;
                self.co.virtuals[v].status = VStatus::Open;
                self.fees += self.co.virtuals[v].fees.first().copied().unwrap_or_default();
                Ok(Outcome::Done(format!("{} accepts {}: open", self.co.members[py].name, self.co.virtuals[v].name)))
            }
            Err(e) => Ok(hub_refusal(e)),
        }
    }

    /// `pay_virtual`: the next state, co-signed (the hub never sees it).
    pub fn co_pay_virtual(&mut self) -> anyhow::Result<Outcome> {
        let Some(v) = self.pick(&self.co_virtuals_where(|cv| cv.status == VStatus::Open)) else {
            return Ok(Outcome::Skipped);
        };
        let Some(state) = self.fresh_v(v, false, None) else { return Ok(Outcome::Skipped) };
        Ok(Outcome::Done(format!(
            "co-signs {} v{} {:?}",
            self.co.virtuals[v].name,
            state.version,
            state.outcome.balances[0].map(fmt_units)
        )))
    }

    /// `close_virtual_at_hub`: a final state (the one registered on chain, an older co-signed
    /// one, or a fresh one) and one or both parents' settlement updates.
    pub async fn co_close_virtual_at_hub(&mut self) -> anyhow::Result<Outcome> {
        let open = self.co_virtuals_where(|cv| cv.status == VStatus::Open);
        // A final state fixed on chain is what the hub settles a parent alone with: mostly
        // pick a virtual channel whose record holds one.
        let mut fixed = Vec::new();
        for v in &open {
            let key = self.co.virtuals[*v].key();
            let r = self.record(key).await?;
            if r.phase == phase::DISPUTE
                && self.co.virtuals[*v].states.iter().any(|s| s.isFinal && s.version == r.version)
            {
                fixed.push(*v);
            }
        }
        let pool = if !fixed.is_empty() && self.rng.random_bool(0.7) { fixed } else { open };
        let Some(v) = self.pick(&pool) else {
            return Ok(Outcome::Skipped);
        };
        let key = self.co.virtuals[v].key();
        let id = self.co.virtuals[v].id();
        let registered = dispute::registered_states(&self.reader(), &self.d, &[id], 0).await?;
        let on_chain = registered.get(&key).map(|r| r.state.clone()).filter(|s| s.isFinal);
        let finals: Vec<State> = self.co.virtuals[v]
            .states
            .iter()
            .filter(|s| s.isFinal && s.outcome.balances[0][0] + s.outcome.balances[0][1] == self.co.virtuals[v].total())
            .cloned()
            .collect();
        let mut unsettled: Vec<usize> = (0..2).filter(|s| self.co.virtuals[v].settled[*s].is_none()).collect();
        // With a final state fixed on chain, the hub settles a parent that is not registered
        // on chain: mostly ask for those.
        if on_chain.is_some() && self.rng.random_bool(0.8) {
            let mut free = Vec::new();
            for side in &unsettled {
                let c = self.co.virtuals[v].parents[*side];
                if self.record(self.co.channels[c].id()).await?.phase == phase::NONE {
                    free.push(*side);
                }
            }
            if !free.is_empty() {
                unsettled = free;
            }
        }
        let sides: Vec<usize> = if unsettled.len() == 2 && self.rng.random_bool(0.35) {
            vec![0, 1]
        } else {
            match self.pick(&unsettled) {
                Some(s) => vec![s],
                None => return Ok(Outcome::Skipped),
            }
        };
        let favour = if sides.len() == 1 { Some(sides[0]) } else { None };
        let (last, source) = match (on_chain, self.rng.random_range(0..10)) {
            (Some(s), 0..=5) => (s, "registered on chain"),
            (_, 6..=7) if !finals.is_empty() => {
                let i = self.rng.random_range(0..finals.len());
                (finals[i].clone(), "co-signed earlier")
            }
            _ => match self.fresh_v(v, true, favour) {
                Some(s) => (s, "fresh"),
                None => return Ok(Outcome::Skipped),
            },
        };
        let mut parents = Vec::new();
        for side in &sides {
            let c = self.co.virtuals[v].parents[*side];
            self.co_sync(c).await;
            let owner = self.co.channels[c].owner;
            let Ok(update) = settle_in_parent(&self.co.channels[c].latest().state, &last) else { continue };
            parents.push((c, StateRequest { signature: self.co_sign(owner, &update)?, state: update }));
        }
        if parents.is_empty() {
            return Ok(Outcome::Skipped);
        }
        let sigs = self.co_signed_v(v, &last)?.sigs;
        let close =
            VirtualClose { state: last.clone(), sigs, parents: parents.iter().map(|(_, u)| u.clone()).collect() };
        let asker = self.co.channels[parents[0].0].owner;
        let names: Vec<String> = parents.iter().map(|(c, _)| self.co.channels[*c].name.clone()).collect();
        let what = format!(
            "asks the hub to close {} with {source} final v{} {:?} settling {}",
            self.co.virtuals[v].name,
            last.version,
            last.outcome.balances[0].map(fmt_units),
            names.join("+")
        );
        match self.co.members[asker].api.close_virtual(id, &close, None).await {
            Ok(answer) if answer.signatures.is_empty() => {
                Ok(Outcome::Done(format!("{what}: 202, the hub goes to chain first")))
            }
            Ok(answer) => {
                let mut settled = Vec::new();
                for sig in answer.signatures {
                    let Some((c, update)) = parents.iter().find(|(c, _)| self.co.channels[*c].id() == sig.channel_id)
                    else {
                        continue;
                    };
                    let c = *c;
                    self.co_keep(c, update.state.clone(), sig.signature)?;
                    let side = if self.co.virtuals[v].parents[0] == c { 0 } else { 1 };
                    self.co.virtuals[v].settled[side] = Some(last.version);
                    settled.push(self.co.channels[c].name.clone());
                }
                if self.co.virtuals[v].settled.iter().all(Option::is_some) {
                    self.co.virtuals[v].status = VStatus::Closed;
                }
                Ok(Outcome::Done(format!("{what}: the hub countersigned {}", settled.join("+"))))
            }
            Err(e) => Ok(hub_refusal(e)),
        }
    }

    // ------------------------------------------------------------------ on chain

    /// `register_parent` / `register_parent_stale`.
    pub async fn co_register_parent(&mut self, stale: bool) -> anyhow::Result<Outcome> {
        // Mostly a parent of a coalition virtual channel.
        let with_locks = self.co_channels_where(|ch| !ch.latest().state.outcome.locked.is_empty());
        let candidates = if !with_locks.is_empty() && self.rng.random_bool(0.8) {
            with_locks
        } else {
            self.co_channels_where(|ch| !stale || ch.states.len() > 1)
        };
        let mut chosen = None;
        for c in self.shuffled(candidates) {
            if self.record(self.co.channels[c].id()).await?.phase == phase::NONE {
                chosen = Some(c);
                break;
            }
        }
        let Some(c) = chosen else { return Ok(Outcome::Skipped) };
        self.co_register_with(c, stale, None).await
    }

    /// Registers channel `c` at its latest state (or, `stale`, an older one) with co-signed
    /// states of its locks (`chosen` for one of them).
    pub async fn co_register_with(
        &mut self,
        c: usize,
        stale: bool,
        chosen: Option<(usize, State)>,
    ) -> anyhow::Result<Outcome> {
        let n = self.co.channels[c].states.len();
        let i = if stale && n > 1 { self.rng.random_range(0..n - 1) } else { n - 1 };
        let signed = self.co.channels[c].states[i].clone();
        let Some(subs) = self.subs_for(&signed.state, stale, chosen)? else { return Ok(Outcome::Skipped) };
        let ledger = self.co_signed_ledger(c, &signed);
        let subs_text: Vec<String> = subs
            .iter()
            .map(|s| {
                let name = self
                    .co
                    .virtuals
                    .iter()
                    .find(|cv| cv.id() == s.state.channelId)
                    .map_or("?".into(), |cv| cv.name.clone());
                format!("{name}@v{}{}", s.state.version, if s.state.isFinal { " final" } else { "" })
            })
            .collect();
        let what = format!(
            "registers {} at v{} (latest v{}) with [{}]",
            self.co.channels[c].name,
            signed.state.version,
            self.co.channels[c].latest().state.version,
            subs_text.join(", ")
        );
        let owner = self.co.channels[c].owner;
        match chain::register(&self.co.members[owner].provider, &self.d, ledger, subs).await {
            Ok(_) => Ok(Outcome::Done(what)),
            Err(e) => Ok(chain_refusal(e)),
        }
    }

    /// `register_own_ledger`: a coalition ledger channel locking virtual channel `v` (in any
    /// status, even planned: the hub does not know it yet) registered with a state of `v`.
    pub async fn co_register_own_ledger(&mut self) -> anyhow::Result<Outcome> {
        let Some(v) = self.pick(&self.co_virtuals_where(|_| true)) else { return Ok(Outcome::Skipped) };
        let roll = self.rng.random_range(0..20);
        let state = match roll {
            0..=9 => self.fresh_v(v, false, None),
            10..=13 => self.any_v_state(v, false),
            14..=16 => {
                let favour = self.unsettled_side(v);
                self.fresh_v(v, true, favour)
            }
            _ => {
                // Other totals: a state of `v` the parents' locks never read.
                let mut s = self.fresh_v(v, false, None);
                if let Some(s) = &mut s {
                    s.outcome.balances[0][0] += units(self.rng.random_range(1..=20));
                    self.co.virtuals[v].states.push(s.clone());
                }
                s
            }
        };
        let Some(state) = state else { return Ok(Outcome::Skipped) };
        self.co_register_through_own(v, state).await
    }

    /// `preregister_virtual`.
    pub async fn co_preregister_virtual(&mut self) -> anyhow::Result<Outcome> {
        let Some(v) = self.pick(&self.co_virtuals_where(|cv| cv.status == VStatus::Planned)) else {
            return Ok(Outcome::Skipped);
        };
        let Some(state) = self.fresh_v(v, false, None) else { return Ok(Outcome::Skipped) };
        self.co_register_through_own(v, state).await
    }

    async fn co_register_through_own(&mut self, v: usize, state: State) -> anyhow::Result<Outcome> {
        let [m0, m1] = self.co.virtuals[v].members;
        let params = Params {
            challengeDuration: 3600,
            nonce: random_nonce(self),
            participants: [self.co.members[m0].key.address(), self.co.members[m1].key.address()],
            ledger: true,
            isVirtual: false,
            app: Address::ZERO,
        };
        let totals = asset_totals(&state.outcome)?;
        let z = State {
            channelId: channel_id(&params),
            version: 1,
            outcome: Allocation {
                assets: vec![self.eth],
                balances: vec![[U256::ZERO, U256::ZERO]],
                locked: vec![SubAlloc { id: state.channelId, balances: totals.clone(), indexMap: [0, 1] }],
            },
            appData: Bytes::new(),
            isFinal: false,
        };
        let ledger =
            SignedState { params: params.clone(), sigs: [self.co_sign(m0, &z)?, self.co_sign(m1, &z)?], state: z };
        let sub = self.co_signed_v(v, &state)?;
        let name = format!("Z{}", self.co.own_ledgers.len());
        let cv = &self.co.virtuals[v];
        let foreign = sub_channel_key(state.channelId, &state.outcome.assets, &totals) != cv.key();
        let what = format!(
            "registers own ledger {name} locking {} ({:?}) at v{}{} {:?}{}",
            cv.name,
            cv.status,
            state.version,
            if state.isFinal { " final" } else { "" },
            state.outcome.balances[0].map(fmt_units),
            if foreign { " (other totals)" } else { "" }
        );
        match chain::register(&self.co.members[m0].provider, &self.d, ledger, vec![sub]).await {
            Ok(_) => {
                self.co.own_ledgers.push(OwnLedger { name, id: channel_id(&params) });
                Ok(Outcome::Done(what))
            }
            Err(e) => Ok(chain_refusal(e)),
        }
    }

    /// `refute_virtual_final` / `refute_virtual`: a co-signed state of higher version on the
    /// record of `v` (the parents' totals) while it is refutable.
    pub async fn co_refute_virtual(&mut self, is_final: bool) -> anyhow::Result<Outcome> {
        let now = self.chain_time().await?;
        let mut refutable = Vec::new();
        for v in 0..self.co.virtuals.len() {
            let r = self.record(self.co.virtuals[v].key()).await?;
            if r.refutable(now) && r.version < u64::MAX {
                refutable.push((v, r));
            }
        }
        // Mostly one whose other parent the hub settled off chain already.
        let half: Vec<usize> =
            (0..refutable.len()).filter(|i| self.unsettled_side(refutable[*i].0).is_some()).collect();
        let pool: Vec<usize> =
            if !half.is_empty() && self.rng.random_bool(0.7) { half } else { (0..refutable.len()).collect() };
        let Some(i) = self.pick(&pool) else { return Ok(Outcome::Skipped) };
        let (v, r) = refutable[i];
        let state = if !is_final && self.rng.random_bool(0.3) {
            let key = self.co.virtuals[v].key();
            let params = self.co.virtuals[v].params.clone();
            let higher: Vec<State> = self.co.virtuals[v]
                .states
                .iter()
                .filter(|s| s.version > r.version && !s.isFinal && record_key(&params, s).ok() == Some(key))
                .cloned()
                .collect();
            if higher.is_empty() { None } else { Some(higher[self.rng.random_range(0..higher.len())].clone()) }
        } else {
            None
        };
        let state = match state {
            Some(s) => s,
            None => {
                let favour = self.unsettled_side(v);
                // Above the record, not just above what the coalition signed.
                let max = self.co.virtuals[v].max_version().max(r.version);
                let Some(version) = max.checked_add(self.rng.random_range(1..=2)) else { return Ok(Outcome::Skipped) };
                let mut s = self.co.virtuals[v].opening.clone();
                s.version = version;
                s.isFinal = is_final;
                let total = self.co.virtuals[v].total();
                s.outcome.balances = vec![self.split(total, favour)];
                self.co.virtuals[v].states.push(s.clone());
                s
            }
        };
        self.co_refute_with(v, r.version, state).await
    }

    async fn co_refute_with(&mut self, v: usize, registered: u64, state: State) -> anyhow::Result<Outcome> {
        let signed = self.co_signed_v(v, &state)?;
        let m = self.co.virtuals[v].members[0];
        let what = format!(
            "refutes {}'s record (v{registered}) with v{}{} {:?}",
            self.co.virtuals[v].name,
            state.version,
            if state.isFinal { " final" } else { "" },
            state.outcome.balances[0].map(fmt_units)
        );
        match chain::refute(&self.co.members[m].provider, &self.d, signed, Vec::new()).await {
            Ok(_) => Ok(Outcome::Done(what)),
            Err(e) => Ok(chain_refusal(e)),
        }
    }

    /// `force_move`: one move of a coalition app channel whose record is past its refutation
    /// period (or answering a forced move), signed by its mover alone: mostly the move the
    /// game calls for, sometimes one by the wrong player or an invalid one (the adjudicator
    /// must refuse those).
    pub async fn co_force_move(&mut self) -> anyhow::Result<Outcome> {
        let now = self.chain_time().await?;
        let mut open = Vec::new();
        for v in 0..self.co.virtuals.len() {
            if self.co.virtuals[v].params.app.is_zero() {
                continue;
            }
            let r = self.record(self.co.virtuals[v].key()).await?;
            if (r.phase == phase::DISPUTE || r.phase == phase::FORCE_EXEC) && now < r.timeout {
                open.push(v);
            }
        }
        let Some(v) = self.pick(&open) else { return Ok(Outcome::Skipped) };
        let (id, key, params) =
            (self.co.virtuals[v].id(), self.co.virtuals[v].key(), self.co.virtuals[v].params.clone());
        // Mostly wait out the refutation period first (the hub and honest parties may still
        // act meanwhile); sometimes try too early.
        let r = self.record(key).await?;
        let mut waited = String::new();
        if r.refutable(now) && self.rng.random_bool(0.7) {
            let secs = (r.timeout - r.window - now).clamp(1, MAX_JUMP);
            let notes = self.pass_time(secs).await?;
            let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
            waited = format!(" after {secs}s pass{notes}");
        }
        let registered = dispute::registered_states(&self.reader(), &self.d, &[id], 0).await?;
        let Some(from) = registered.get(&key).map(|r| r.state.clone()) else { return Ok(Outcome::Skipped) };
        let rules = self.env.stack.contracts.apps.registry();
        let Some(rule) = rules.get(&params.app) else { return Ok(Outcome::Skipped) };
        let actor = match rule.turn(&from) {
            Some(turn) if self.rng.random_bool(0.85) => turn,
            _ => {
                if self.rng.random_bool(0.5) {
                    Role::First
                } else {
                    Role::Second
                }
            }
        };
        // The coalition's commitment is derived from the channel, so it can always reveal.
        let (salt, bit) = (id, id[0] & 1 == 1);
        let data = match rule.kind() {
            AppKind::CoinFlip => match coin_flip::data(&from).map(|d| d.stage) {
                Ok(0) => Some(coin_flip::commit(salt, bit)),
                Ok(1) => coin_flip::guess(&from, self.rng.random_bool(0.5)).ok(),
                Ok(_) => coin_flip::reveal(&from, salt, if self.rng.random_bool(0.9) { bit } else { !bit }).ok(),
                Err(_) => None,
            },
            _ => tic_tac_toe::place(&from, actor, self.rng.random_range(0..9)).ok(),
        };
        let Some(data) = data else { return Ok(Outcome::Skipped) };
        let to = match rule.apply(&params, &from, actor, data.clone()) {
            Ok(next) => next,
            Err(_) => {
                // An invalid move, put to the chain anyway.
                let mut s = from.clone();
                s.version += 1;
                s.appData = data;
                let total = self.co.virtuals[v].total();
                s.outcome.balances = vec![self.split(total, None)];
                s
            }
        };
        let mover = self.co.virtuals[v].members[actor.index()];
        let signer = if self.rng.random_bool(0.05) { actor.peer() } else { actor };
        let sig = self.co_sign(self.co.virtuals[v].members[signer.index()], &to)?;
        self.co.virtuals[v].states.push(to.clone());
        let what = format!(
            "forces v{} of {} ({:?} moves{}) {:?}{}",
            to.version,
            self.co.virtuals[v].name,
            actor,
            if signer == actor { "" } else { ", signed by the other" },
            to.outcome.balances[0].map(fmt_units),
            if to.isFinal { " final" } else { "" }
        ) + &waited;
        let adjudicator = Adjudicator::new(self.d.adjudicator, &self.co.members[mover].provider);
        let call = adjudicator.progress(params, from, to, U256::from(actor.index()), sig);
        match call.send().await {
            Ok(pending) => match chain::confirm(pending).await {
                Ok(_) => Ok(Outcome::Done(what)),
                Err(e) => Ok(chain_refusal(e)),
            },
            Err(e) => Ok(chain_refusal(chain::ChainError::from(e))),
        }
    }

    /// `huge_version`: a co-signed state of a virtual channel the hub knows, with a version of
    /// at least 2^63, put on chain whichever way is open (refute, a parent, an own ledger).
    pub async fn co_huge_version(&mut self) -> anyhow::Result<Outcome> {
        // The hub must know the channel (proposed at least) for its watcher to read the event.
        let known =
            self.co_virtuals_where(|cv| matches!(cv.status, VStatus::Proposed | VStatus::Open | VStatus::Closed));
        let Some(v) = self.pick(&known) else {
            return Ok(Outcome::Skipped);
        };
        let version =
            if self.rng.random_bool(0.2) { u64::MAX } else { (1u64 << 63) + self.rng.random_range(0..1000u64) };
        if self.co.virtuals[v].max_version() >= version {
            return Ok(Outcome::Skipped);
        }
        let mut state = self.co.virtuals[v].opening.clone();
        state.version = version;
        state.isFinal = self.rng.random_bool(0.3);
        let total = self.co.virtuals[v].total();
        state.outcome.balances = vec![self.split(total, None)];
        self.co.virtuals[v].states.push(state.clone());
        let r = self.record(self.co.virtuals[v].key()).await?;
        if r.phase == phase::DISPUTE && self.chain_time().await? < r.timeout && r.version < version {
            return self.co_refute_with(v, r.version, state).await;
        }
        if r.phase == phase::NONE && self.co.virtuals[v].status == VStatus::Open {
            for side in 0..2 {
                let c = self.co.virtuals[v].parents[side];
                let locks = self.co.channels[c].latest().state.outcome.locked.iter().any(|l| l.id == state.channelId);
                if locks && self.record(self.co.channels[c].id()).await?.phase == phase::NONE {
                    return self.co_register_with(c, false, Some((v, state))).await;
                }
            }
        }
        self.co_register_through_own(v, state).await
    }

    /// `refute_parent`: a registered coalition channel refuted with a newer state the coalition
    /// holds (and any co-signed states of its locks).
    pub async fn co_refute_parent(&mut self) -> anyhow::Result<Outcome> {
        let now = self.chain_time().await?;
        let mut chosen = None;
        let candidates = self.co_channels_where(|_| true);
        for c in self.shuffled(candidates) {
            let r = self.record(self.co.channels[c].id()).await?;
            if r.phase == phase::DISPUTE && now < r.timeout && r.version < self.co.channels[c].latest().state.version {
                chosen = Some((c, r.version));
                break;
            }
        }
        let Some((c, registered)) = chosen else { return Ok(Outcome::Skipped) };
        let newer: Vec<usize> = (0..self.co.channels[c].states.len())
            .filter(|i| self.co.channels[c].states[*i].state.version > registered)
            .collect();
        let Some(i) = self.pick(&newer) else { return Ok(Outcome::Skipped) };
        let signed = self.co.channels[c].states[i].clone();
        let Some(subs) = self.subs_for(&signed.state, false, None)? else { return Ok(Outcome::Skipped) };
        let ledger = self.co_signed_ledger(c, &signed);
        let owner = self.co.channels[c].owner;
        let what = format!("refutes {} (v{registered}) with v{}", self.co.channels[c].name, signed.state.version);
        match chain::refute(&self.co.members[owner].provider, &self.d, ledger, subs).await {
            Ok(_) => Ok(Outcome::Done(what)),
            Err(e) => Ok(chain_refusal(e)),
        }
    }

    /// Every ledger channel the simulation knows: the coalition's and the honest clients'
    /// channels with the hub, and the coalition's own.
    pub fn all_ledgers(&self) -> Vec<(String, B256)> {
        let mut out: Vec<(String, B256)> = self.co.channels.iter().map(|c| (c.name.clone(), c.id())).collect();
        for h in &self.honest {
            for (i, id) in h.channels.iter().enumerate() {
                out.push((format!("{}.{i}", h.name), *id));
            }
        }
        out.extend(self.co.own_ledgers.iter().map(|z| (z.name.clone(), z.id)));
        out
    }

    /// `conclude`: any registered ledger channel whose timeouts (its own and its locks'
    /// records) passed, concluded from the registered states.
    pub async fn co_conclude(&mut self) -> anyhow::Result<Outcome> {
        let now = self.chain_time().await?;
        let ledgers = self.all_ledgers();
        let order = self.shuffled((0..ledgers.len()).collect());
        for i in order {
            let (name, id) = ledgers[i].clone();
            if self.record(id).await?.phase != phase::DISPUTE {
                continue;
            }
            let registered = dispute::registered_tree(&self.reader(), &self.d, id, 0).await?;
            if dispute::conclusion_time(id, &registered).is_none_or(|t| t > now) {
                continue;
            }
            let m = self.rng.random_range(0..COALITION);
            let sent = dispute::send_conclude(&self.co.members[m].provider, &self.d, id, &registered).await;
            return match sent {
                Ok(Some(pending)) => match chain::confirm(pending).await {
                    Ok(_) => Ok(Outcome::Done(format!("concludes {name}"))),
                    Err(e) => Ok(chain_refusal(e)),
                },
                Ok(None) => Ok(Outcome::Skipped),
                Err(e) => Ok(chain_refusal(e)),
            };
        }
        Ok(Outcome::Skipped)
    }

    /// `conclude_final`: a coalition channel whose latest state is final (the hub signed the
    /// close) concluded at once.
    pub async fn co_conclude_final(&mut self) -> anyhow::Result<Outcome> {
        let candidates = self.co_channels_where(|ch| ch.latest().state.isFinal);
        for c in self.shuffled(candidates) {
            if self.concluded(self.co.channels[c].id()).await? {
                continue;
            }
            let ledger = self.co_signed_ledger(c, &self.co.channels[c].latest().clone());
            let owner = self.co.channels[c].owner;
            return match chain::conclude_final(&self.co.members[owner].provider, &self.d, ledger).await {
                Ok(_) => Ok(Outcome::Done(format!("concludes {} with its final state", self.co.channels[c].name))),
                Err(e) => Ok(chain_refusal(e)),
            };
        }
        Ok(Outcome::Skipped)
    }

    /// `withdraw`: the coalition's holdings in a concluded channel.
    pub async fn co_withdraw(&mut self) -> anyhow::Result<Outcome> {
        let candidates = self.co_channels_where(|_| true);
        for c in self.shuffled(candidates) {
            if let Some(what) = self.co_withdraw_one(c).await? {
                return Ok(what);
            }
        }
        Ok(Outcome::Skipped)
    }

    /// Withdraws the owner's holding of channel `c` if it is settled and not empty.
    pub async fn co_withdraw_one(&mut self, c: usize) -> anyhow::Result<Option<Outcome>> {
        let (owner, id) = (self.co.channels[c].owner, self.co.channels[c].id());
        let m = &self.co.members[owner];
        if !chain::settled(&self.reader(), self.eth, id).await?
            || chain::holdings(&self.reader(), self.eth, id, m.key.address()).await?.is_zero()
        {
            return Ok(None);
        }
        Ok(Some(match chain::withdraw(&m.provider, &self.d, self.eth, &m.key, id, m.key.address()).await {
            Ok(amount) => {
                Outcome::Done(format!("{} withdraws {} from {}", m.name, fmt_units(amount), self.co.channels[c].name))
            }
            Err(e) => chain_refusal(e),
        }))
    }

    /// `bad_request`: a request the hub must refuse (a stale version, a foreign parent, a
    /// replayed state, a non-final close).
    pub async fn co_bad_request(&mut self) -> anyhow::Result<Outcome> {
        match self.rng.random_range(0..3) {
            0 => {
                // A stale update: the next version after an older state.
                let Some(c) = self.pick(&self.co_channels_where(|ch| ch.states.len() > 1)) else {
                    return Ok(Outcome::Skipped);
                };
                let n = self.co.channels[c].states.len();
                let i = self.rng.random_range(0..n - 1);
                let (owner, id) = (self.co.channels[c].owner, self.co.channels[c].id());
                let mut state = self.co.channels[c].states[i].state.clone();
                state.version += 1;
                let signature = self.co_sign(owner, &state)?;
                let answer = self.co.members[owner].api.update(id, &StateRequest { state, signature }, None).await;
                Ok(self.bad_answer("stale update", answer.map(|a| (id, a.version, a.signature))))
            }
            1 => {
                // A virtual channel whose proposer's parent is another member's channel.
                let Some(v) = self.pick(&self.co_virtuals_where(|cv| cv.status == VStatus::Planned)) else {
                    return Ok(Outcome::Skipped);
                };
                let [x, y] = self.co.virtuals[v].parents;
                let px = self.co.virtuals[v].members[0];
                let opening = self.co.virtuals[v].opening.clone();
                let yh = self.co.channels[y].hub_index;
                let Ok(update) =
                    lock_in_parent(&self.co.channels[y].latest().state, Link::client_parent(Role::First, yh), &opening)
                else {
                    return Ok(Outcome::Skipped);
                };
                let proposal = VirtualProposal {
                    params: self.co.virtuals[v].params.clone(),
                    state: opening.clone(),
                    signature: self.co_sign(px, &opening)?,
                    parent: StateRequest { signature: self.co_sign(px, &update)?, state: update },
                    valid_until: self.co.virtuals[v].valid_until,
                    quote: None,
                };
                let _ = x;
                let answer = self.co.members[px].api.propose_virtual(&proposal, None).await;
                Ok(self.bad_answer("proposal on a foreign parent", answer.map(|_| (B256::ZERO, 0, Bytes::new()))))
            }
            _ => {
                // A close with a non-final state.
                let Some(v) = self.pick(&self.co_virtuals_where(|cv| cv.status == VStatus::Open)) else {
                    return Ok(Outcome::Skipped);
                };
                let Some(state) = self.fresh_v(v, false, None) else { return Ok(Outcome::Skipped) };
                let c = self.co.virtuals[v].parents[0];
                let owner = self.co.channels[c].owner;
                let Ok(update) = settle_in_parent(&self.co.channels[c].latest().state, &state) else {
                    return Ok(Outcome::Skipped);
                };
                let close = VirtualClose {
                    sigs: self.co_signed_v(v, &state)?.sigs,
                    state,
                    parents: vec![StateRequest { signature: self.co_sign(owner, &update)?, state: update }],
                };
                let id = self.co.virtuals[v].id();
                let answer = self.co.members[owner].api.close_virtual(id, &close, None).await;
                Ok(self.bad_answer("non-final close", answer.map(|_| (B256::ZERO, 0, Bytes::new()))))
            }
        }
    }

    fn bad_answer(&mut self, what: &str, answer: Result<(B256, u64, Bytes), ClientError>) -> Outcome {
        match answer {
            Err(ClientError::Refused { status, body, .. }) if (400..500).contains(&status) => {
                Outcome::Done(format!("{what}: refused {status} {}", body.error))
            }
            Err(e) => Outcome::Refused(format!("{what}: {e}")),
            Ok(_) => Outcome::Done(format!("{what}: ACCEPTED by the hub")),
        }
    }
}
