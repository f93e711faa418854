//! The virtual channel's life cycle: its statuses and events, and the hub's book of one
//! virtual channel with a transition function that names what to store, sign and send to
//! the chain.

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};

use super::{Move, Refused};
use crate::error::ProtocolError;
use crate::role::Role;

/// Where a virtual channel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VirtualStatus {
    /// Proposed, waiting for the peer.
    Proposed,
    /// Both parents lock it: the participants pay each other directly.
    Open,
    /// Its final state is recorded and one parent is settled; the other waits for its client.
    Closing,
    /// Both parents are settled.
    Closed,
    /// The peer declined, or the proposer withdrew it.
    Rejected,
    /// Its validity ended before the peer accepted: it no longer counts against anyone.
    Expired,
}

impl VirtualStatus {
    /// Every status.
    pub const ALL: [Self; 6] = [Self::Proposed, Self::Open, Self::Closing, Self::Closed, Self::Rejected, Self::Expired];

    /// The wire (and database) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Open => "open",
            Self::Closing => "closing",
            Self::Closed => "closed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    /// Whether nothing can happen to it any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Closed | Self::Rejected | Self::Expired)
    }
}

impl std::fmt::Display for VirtualStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a virtual channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VirtualEvent {
    /// The peer accepts the proposal: both parents lock it.
    Accept,
    /// The peer declines, or the proposer withdraws.
    Reject,
    /// The proposal's validity ended before the peer accepted.
    Expire,
    /// A participant asks to close it with a final state (allowed while a parent still locks
    /// it; the status moves with the parents' settlements).
    CloseRequest,
    /// Its parents are settled: `both`, or one of them.
    Settled {
        /// Whether both parents are settled now.
        both: bool,
    },
}

impl VirtualEvent {
    /// Its name, for refusals and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Expire => "expire",
            Self::CloseRequest => "close",
            Self::Settled { both: false } => "one parent settled",
            Self::Settled { both: true } => "both parents settled",
        }
    }

    /// What the event does to a stored status.
    pub fn moves(self) -> Move<VirtualStatus> {
        use VirtualStatus::*;
        match self {
            Self::Accept => Move { from: &[Proposed], to: Open },
            Self::Reject => Move { from: &[Proposed], to: Rejected },
            Self::Expire => Move { from: &[Proposed], to: Expired },
            Self::CloseRequest => Move { from: &[Open, Closing], to: Open },
            Self::Settled { both: false } => Move { from: &[Open, Closing], to: Closing },
            Self::Settled { both: true } => Move { from: &[Open, Closing], to: Closed },
        }
    }
}

/// The virtual channel's transition function: the status after `event`, or a refusal.
pub fn virtual_channel(status: VirtualStatus, event: VirtualEvent) -> Result<VirtualStatus, Refused> {
    let m = event.moves();
    if !m.from.contains(&status) {
        if event == (VirtualEvent::Settled { both: true }) && status == VirtualStatus::Closed {
            return Ok(status); // seen again
        }
        return Err(Refused { status: status.as_str(), event: event.name() });
    }
    // A close request moves nothing by itself: it is allowed while a parent still locks it.
    Ok(if event == VirtualEvent::CloseRequest { status } else { m.to })
}

/// What the chain holds of a virtual channel's record (read by its record key) at chain
/// time `now`, as a close needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChain {
    /// No record: nothing registered.
    Unregistered,
    /// The record holds the close's final state and can no longer change (its timeout has
    /// passed: no refutation and no parent's registration replaces it).
    Fixed,
    /// Registered, but with another state, or it can still change (until `timeout`).
    Open {
        /// The registered version.
        version: u64,
        /// From when it is fixed.
        timeout: u64,
    },
}

impl OnChain {
    /// What a record read on chain means for a close with final-state digest `digest`:
    /// `registered` (the record's phase is not "none"), its `version`, `state_hash` and
    /// `timeout`, at chain time `now`.
    pub fn of(registered: bool, version: u64, state_hash: B256, timeout: u64, now: u64, digest: B256) -> Self {
        if !registered {
            Self::Unregistered
        } else if state_hash == digest && now >= timeout {
            Self::Fixed
        } else {
            Self::Open { version, timeout }
        }
    }
}

/// The hub's book of one virtual channel, as its transitions need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualBook {
    /// Its id (for refusals).
    pub id: B256,
    /// Its status.
    pub status: VirtualStatus,
    /// Unix time of its validity's end.
    pub valid_until: u64,
    /// Per parent (in participant order): settled after the close.
    pub settled: Vec<bool>,
}

/// What happens to a virtual channel, with what the transition needs to know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VirtualInput {
    /// Participant `by` accepts the proposal (its parent update and every other parent's
    /// checked by the caller).
    Accept {
        /// The accepting participant.
        by: Role,
    },
    /// The peer declines, or the proposer withdraws.
    Reject,
    /// The proposal's validity has ended (refused before `valid_until`).
    Expire,
    /// A close with the final state signed by both, whose updates of the parents at
    /// `settles` (positions) passed the checks. `on_chain` is the record read from the chain
    /// when [`VirtualBook::close_needs_chain`] asked for it.
    Close {
        /// The parents the request settles.
        settles: Vec<usize>,
        /// What the chain holds of the virtual channel's record, if read.
        on_chain: Option<OnChain>,
    },
}

/// What a transition asks its caller to do, in order and in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Countersign the update of the parent at this position and store it, signed by both,
    /// as that parent's latest state.
    CountersignParent(usize),
    /// Store the acceptance: the participant's parent and its signature on the opening state.
    StoreAcceptance(Role),
    /// Store the rejection.
    StoreRejection,
    /// Store the expiry of the proposal.
    StoreExpiry,
    /// Store the final state signed by both (the first close records it), which parents are
    /// settled and the status.
    StoreClose,
    /// Enqueue the on-chain registration of the parent at this position.
    RegisterParent(usize),
}

/// The outcome of an event: the next status, which parents are settled, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The status after the event.
    pub status: VirtualStatus,
    /// Per parent: settled after the event.
    pub settled: Vec<bool>,
    /// What to store, sign and send, in order.
    pub effects: Vec<Effect>,
    /// True when the request is taken but settles nothing yet (the chain must fix the final
    /// state first): the client asks again later.
    pub pending: bool,
}

impl VirtualBook {
    /// Whether `event` may happen now (without its effects): the refusal the hub answers.
    pub fn admits(&self, event: VirtualEvent) -> Result<VirtualStatus, ProtocolError> {
        virtual_channel(self.status, event).map_err(|_| {
            let code = match event {
                VirtualEvent::Accept | VirtualEvent::Reject | VirtualEvent::Expire => "not_proposed",
                VirtualEvent::CloseRequest | VirtualEvent::Settled { .. } => "not_open",
            };
            ProtocolError::conflict(code, format!("virtual channel {} is {:?}", self.id, self.status))
        })
    }

    /// Whether a close settling the parents at `settles` needs the chain's record of the
    /// virtual channel: when a record may exist (`registered`, from the hub's books), or
    /// when some parent would stay unsettled. Off chain, a virtual channel settles in every
    /// parent at once, or in some alone only after its final state is fixed on chain: else
    /// its other end could still register another state through another parent, and the
    /// hub would pay twice.
    pub fn close_needs_chain(&self, settles: &[usize], registered: bool) -> bool {
        registered || !self.settled_after(settles).iter().all(|s| *s)
    }

    fn settled_after(&self, settles: &[usize]) -> Vec<bool> {
        let mut settled = self.settled.clone();
        for p in settles {
            if let Some(s) = settled.get_mut(*p) {
                *s = true;
            }
        }
        settled
    }

    /// The transition of `input` at unix time `now`, or a refusal (nothing changes).
    pub fn apply(&self, input: &VirtualInput, now: u64) -> Result<Transition, ProtocolError> {
        let unchanged = |status, effects| Transition { status, settled: self.settled.clone(), effects, pending: false };
        match input {
            VirtualInput::Accept { by } => {
                let status = self.admits(VirtualEvent::Accept)?;
                if now >= self.valid_until {
                    return Err(ProtocolError::conflict(
                        "proposal_expired",
                        format!("the proposal's validity ended at {}", self.valid_until),
                    ));
                }
                let mut effects: Vec<Effect> = (0..self.settled.len()).map(Effect::CountersignParent).collect();
                effects.push(Effect::StoreAcceptance(*by));
                Ok(unchanged(status, effects))
            }
            VirtualInput::Reject => Ok(unchanged(self.admits(VirtualEvent::Reject)?, vec![Effect::StoreRejection])),
            VirtualInput::Expire => {
                let status = self.admits(VirtualEvent::Expire)?;
                if now < self.valid_until {
                    return Err(ProtocolError::conflict(
                        "not_expired",
                        format!("the proposal is valid until {}", self.valid_until),
                    ));
                }
                Ok(unchanged(status, vec![Effect::StoreExpiry]))
            }
            VirtualInput::Close { settles, on_chain } => {
                self.admits(VirtualEvent::CloseRequest)?;
                if settles.iter().any(|p| self.settled.get(*p) != Some(&false)) {
                    return Err(ProtocolError::conflict(
                        "parent_settled_or_unknown",
                        "the update is for a parent already settled, or not a parent",
                    ));
                }
                if settles.iter().enumerate().any(|(i, p)| settles[..i].contains(p)) {
                    return Err(ProtocolError::invalid("duplicate_parent_update", "one update per parent"));
                }
                let settled = self.settled_after(settles);
                let both = settled.iter().all(|s| *s);
                if self.close_needs_chain(settles, false) || on_chain.is_some() {
                    match on_chain {
                        Some(OnChain::Fixed) => {}
                        Some(OnChain::Unregistered) if both => {}
                        Some(OnChain::Open { version, timeout }) => {
                            return Err(ProtocolError::conflict(
                                "virtual_in_dispute",
                                format!(
                                    "virtual channel {} is registered on chain at version {version} (fixed from \
                                     {timeout}), not with this final state: it settles through the chain",
                                    self.id
                                ),
                            ));
                        }
                        Some(OnChain::Unregistered) => {
                            // Some parent's client did not sign its update: fix the final state on
                            // chain through that parent first; nothing is settled now.
                            let register = settled.iter().position(|s| !s).unwrap_or_default();
                            let status = self.admits(VirtualEvent::Settled { both: false })?;
                            let effects = vec![Effect::StoreClose, Effect::RegisterParent(register)];
                            return Ok(Transition { status, settled: self.settled.clone(), effects, pending: true });
                        }
                        None => {
                            return Err(ProtocolError::conflict(
                                "chain_record_needed",
                                "settling some parents alone needs the virtual channel's record on chain",
                            ));
                        }
                    }
                }
                let status = self.admits(VirtualEvent::Settled { both })?;
                let mut effects: Vec<Effect> = settles.iter().map(|p| Effect::CountersignParent(*p)).collect();
                effects.push(Effect::StoreClose);
                Ok(Transition { status, settled, effects, pending: false })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rank(s: VirtualStatus) -> u8 {
        match s {
            VirtualStatus::Proposed => 0,
            VirtualStatus::Open => 1,
            VirtualStatus::Closing => 2,
            VirtualStatus::Closed | VirtualStatus::Rejected | VirtualStatus::Expired => 3,
        }
    }

    fn on_chain() -> impl Strategy<Value = Option<OnChain>> {
        prop_oneof![
            Just(None),
            Just(Some(OnChain::Unregistered)),
            Just(Some(OnChain::Fixed)),
            (0u64..5, 0u64..5).prop_map(|(version, timeout)| Some(OnChain::Open { version, timeout })),
        ]
    }

    fn input() -> impl Strategy<Value = VirtualInput> {
        prop_oneof![
            Just(VirtualInput::Accept { by: Role::Second }),
            Just(VirtualInput::Reject),
            Just(VirtualInput::Expire),
            (prop::collection::vec(0usize..3, 0..3), on_chain())
                .prop_map(|(settles, on_chain)| VirtualInput::Close { settles, on_chain }),
        ]
    }

    fn settles_of(input: &VirtualInput) -> Vec<usize> {
        match input {
            VirtualInput::Close { settles, .. } => settles.clone(),
            _ => Vec::new(),
        }
    }

    proptest! {
        /// Over any sequence of events: the status never moves back; a settled parent stays
        /// settled; closed exactly when every parent is settled; the hub countersigns only
        /// unsettled parents; and a parent settles while another stays unsettled only when
        /// the chain has fixed the final state (the hub's neutrality).
        #[test]
        fn the_book_of_a_virtual_channel_keeps_its_invariants(
            steps in prop::collection::vec((input(), 0u64..20), 0..30),
        ) {
            let mut book = VirtualBook { id: B256::ZERO, status: VirtualStatus::Proposed, valid_until: 10, settled: vec![false; 2] };
            for (input, now) in steps {
                let Ok(t) = book.apply(&input, now) else { continue };
                prop_assert!(rank(t.status) >= rank(book.status), "{:?} -> {:?}", book.status, t.status);
                prop_assert!(book.settled.iter().zip(&t.settled).all(|(before, after)| !before || *after));
                if t.status == VirtualStatus::Closed {
                    prop_assert!(t.settled.iter().all(|s| *s));
                }
                let mut countersigned = Vec::new();
                for e in &t.effects {
                    if let Effect::CountersignParent(p) = e {
                        prop_assert!(!book.settled[*p], "countersigned a settled parent");
                        prop_assert!(!countersigned.contains(p), "countersigned a parent twice");
                        countersigned.push(*p);
                    }
                }
                if let VirtualInput::Close { on_chain, .. } = &input {
                    let partly = t.settled.iter().any(|s| *s) && !t.settled.iter().all(|s| *s);
                    let newly = t.settled != book.settled;
                    if partly && newly {
                        prop_assert_eq!(*on_chain, Some(OnChain::Fixed));
                    }
                    if t.pending {
                        prop_assert_eq!(&t.settled, &book.settled);
                        let registered = t.effects.iter().find_map(|e| match e {
                            Effect::RegisterParent(p) => Some(*p),
                            _ => None,
                        });
                        prop_assert!(registered.is_some_and(|p| !book.settled[p] && !settles_of(&input).contains(&p)),
                            "registers a parent whose client did not sign: {registered:?}");
                    }
                }
                if let VirtualInput::Accept { .. } = input {
                    prop_assert!(now < book.valid_until);
                }
                if t.status == VirtualStatus::Expired {
                    prop_assert!(book.status != VirtualStatus::Open && now >= book.valid_until,
                        "only a proposal expires, and only after its validity");
                }
                book = VirtualBook { status: t.status, settled: t.settled, ..book };
            }
        }
    }

    #[test]
    fn a_close_of_one_parent_waits_for_the_chain_and_a_dispute_refuses() {
        let book =
            VirtualBook { id: B256::ZERO, status: VirtualStatus::Open, valid_until: 10, settled: vec![false; 2] };
        let close = |settles: Vec<usize>, on_chain| VirtualInput::Close { settles, on_chain };
        assert!(book.close_needs_chain(&[0], false) && !book.close_needs_chain(&[0, 1], false));
        assert!(book.close_needs_chain(&[0, 1], true), "a record may exist");
        let both = book.apply(&close(vec![0, 1], None), 0).expect("both");
        assert_eq!((both.status, both.pending), (VirtualStatus::Closed, false));
        assert_eq!(both.effects, vec![Effect::CountersignParent(0), Effect::CountersignParent(1), Effect::StoreClose]);
        let first = book.apply(&close(vec![1], Some(OnChain::Unregistered)), 0).expect("register first");
        assert_eq!((first.pending, first.settled.clone()), (true, vec![false, false]));
        assert_eq!(first.effects, vec![Effect::StoreClose, Effect::RegisterParent(0)]);
        let other = book.apply(&close(vec![0], Some(OnChain::Unregistered)), 0).expect("register first");
        assert_eq!(other.effects, vec![Effect::StoreClose, Effect::RegisterParent(1)], "the parent left unsigned");
        let fixed = book.apply(&close(vec![1], Some(OnChain::Fixed)), 0).expect("fixed");
        assert_eq!((fixed.status, fixed.settled), (VirtualStatus::Closing, vec![false, true]));
        let refused = book.apply(&close(vec![1], Some(OnChain::Open { version: 3, timeout: 9 })), 0);
        assert_eq!(refused.map_err(|e| e.code), Err("virtual_in_dispute"));
        assert_eq!(book.apply(&close(vec![1], None), 0).map_err(|e| e.code), Err("chain_record_needed"));
        let expired = VirtualBook { status: VirtualStatus::Proposed, ..book.clone() };
        assert_eq!(
            expired.apply(&VirtualInput::Accept { by: Role::Second }, 10).map_err(|e| e.code),
            Err("proposal_expired")
        );
        assert_eq!(book.apply(&VirtualInput::Reject, 0).map_err(|e| e.code), Err("not_proposed"));
    }

    #[test]
    fn a_proposal_expires_only_after_its_validity_and_then_cannot_be_accepted() {
        let book =
            VirtualBook { id: B256::ZERO, status: VirtualStatus::Proposed, valid_until: 10, settled: vec![false; 2] };
        assert_eq!(book.apply(&VirtualInput::Expire, 9).map_err(|e| e.code), Err("not_expired"));
        let t = book.apply(&VirtualInput::Expire, 10).expect("expires");
        assert_eq!((t.status, t.effects), (VirtualStatus::Expired, vec![Effect::StoreExpiry]));
        let expired = VirtualBook { status: VirtualStatus::Expired, ..book.clone() };
        assert!(expired.status.is_terminal());
        for input in [VirtualInput::Accept { by: Role::Second }, VirtualInput::Reject, VirtualInput::Expire] {
            assert_eq!(expired.apply(&input, 0).map_err(|e| e.code), Err("not_proposed"));
        }
        let open = VirtualBook { status: VirtualStatus::Open, ..book };
        assert_eq!(open.apply(&VirtualInput::Expire, 99).map_err(|e| e.code), Err("not_proposed"));
    }

    #[test]
    fn the_chain_record_is_fixed_only_with_this_state_after_its_timeout() {
        let digest = B256::repeat_byte(7);
        assert_eq!(OnChain::of(false, 0, B256::ZERO, 0, 100, digest), OnChain::Unregistered);
        assert_eq!(OnChain::of(true, 7, digest, 100, 100, digest), OnChain::Fixed);
        assert_eq!(OnChain::of(true, 7, digest, 101, 100, digest), OnChain::Open { version: 7, timeout: 101 });
        assert_eq!(OnChain::of(true, 7, B256::ZERO, 50, 100, digest), OnChain::Open { version: 7, timeout: 50 });
    }
}
