//! Virtual channels, pure: the parent updates that lock and settle a virtual channel, and
//! the transfers between its participants. The hub checks a client's parent update by
//! computing the same update and comparing, so both sides use one piece of arithmetic.
//!
//! A virtual channel V between Alice (V's participant 0) and Bob (participant 1) is locked
//! in Alice's basic channel X with the hub and in Bob's basic channel Y with the hub. In X,
//! V's Alice maps to Alice and V's Bob to the hub; in Y, V's Alice maps to the hub and V's
//! Bob to Bob. Each parent participant pays in what its image in V deposits.

use alloy::primitives::{Address, U256};

use crate::bindings::Channel::{State, SubAlloc};
use crate::role::Role;
use crate::validate::UpdateError;

/// How a virtual channel is locked in one of its parents: which participant of the parent
/// stands for each of the virtual channel's participants (the lock's index map). A parent of
/// V's participant `owner` with the hub has `owner` as its client, and the hub stands for the
/// other end; a parent between two hubs (a longer virtual channel) would map each end to
/// the hub on its side. Any number of parents is a list of links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Entry `i`: the parent's participant standing for V's participant `i`.
    pub stands_for: [Role; 2],
}

impl Link {
    /// The parent of V's participant `owner`, a basic channel between `owner` and the hub, in
    /// which the hub has the role `hub`.
    pub fn client_parent(owner: Role, hub: Role) -> Self {
        let mut stands_for = [hub; 2];
        stands_for[owner.index()] = hub.peer();
        Self { stands_for }
    }

    /// The link a lock's index map describes, if both entries are participants of a
    /// two-party parent.
    pub fn from_index_map(index_map: [u16; 2]) -> Option<Self> {
        let [a, b] = index_map.map(|i| Role::from_index(i as usize).ok());
        Some(Self { stands_for: [a?, b?] })
    }

    /// The lock's index map as the contracts store it.
    pub fn index_map(self) -> [u16; 2] {
        self.stands_for.map(Role::as_u16)
    }

    /// What the parent's participant `who` pays into the lock of V's opening deposits
    /// `deposits` (one asset): the deposits of the V participants it stands for.
    pub fn pays(self, who: Role, deposits: &[U256; 2]) -> Result<U256, UpdateError> {
        Role::ALL
            .into_iter()
            .filter(|p| self.stands_for[p.index()] == who)
            .try_fold(U256::ZERO, |sum, p| sum.checked_add(deposits[p.index()]).ok_or(UpdateError::Overflow))
    }
}

/// The next version of `parent` that locks the virtual channel whose opening state is
/// `opening`, linked by `link`: each parent participant pays in what the V participants it
/// stands for deposit, and the lock holds V's total per asset.
pub fn lock_in_parent(parent: &State, link: Link, opening: &State) -> Result<State, UpdateError> {
    if parent.outcome.assets != opening.outcome.assets {
        return Err(UpdateError::AssetsChanged);
    }
    let mut next = parent.clone();
    next.version = parent.version.checked_add(1).ok_or(UpdateError::Overflow)?;
    let mut totals = Vec::with_capacity(opening.outcome.balances.len());
    for (balances, deposits) in next.outcome.balances.iter_mut().zip(&opening.outcome.balances) {
        for who in Role::ALL {
            let payer = &mut balances[who.index()];
            *payer = payer.checked_sub(link.pays(who, deposits)?).ok_or(UpdateError::Overflow)?;
        }
        totals.push(deposits[0].checked_add(deposits[1]).ok_or(UpdateError::Overflow)?);
    }
    next.outcome.locked.push(SubAlloc { id: opening.channelId, balances: totals, indexMap: link.index_map() });
    Ok(next)
}

/// The next version of every parent in `parents` (with its link) that locks the virtual
/// channel opening with `opening`: one update per parent, in order.
pub fn lock_in_parents(parents: &[(&State, Link)], opening: &State) -> Result<Vec<State>, UpdateError> {
    parents.iter().map(|(parent, link)| lock_in_parent(parent, *link, opening)).collect()
}

/// `update` (a parent update of the proposer that locks a virtual channel) with the hub's
/// `fees` per asset paid in it: the client's balance down, the hub's (role `hub`) up.
pub fn pay_fees(update: &State, hub: Role, fees: &[U256]) -> Result<State, UpdateError> {
    if fees.len() != update.outcome.balances.len() {
        return Err(UpdateError::BalanceShape { assets: update.outcome.balances.len(), actual: fees.len() });
    }
    let mut next = update.clone();
    for (balances, fee) in next.outcome.balances.iter_mut().zip(fees) {
        let client = &mut balances[hub.peer().index()];
        *client = client.checked_sub(*fee).ok_or(UpdateError::Overflow)?;
        let hubs = &mut balances[hub.index()];
        *hubs = hubs.checked_add(*fee).ok_or(UpdateError::Overflow)?;
    }
    Ok(next)
}

/// The next version of basic channel state `latest` after a collateral top-up: the hub's
/// (role `hub`) balance of `asset` raised by `amount` (its new standby deposit). The channel's
/// total grows: sign it only once the standby is on chain (see [`top_up_covered`]).
pub fn top_up(latest: &State, hub: Role, asset: Address, amount: U256) -> Result<State, UpdateError> {
    let a = latest.outcome.assets.iter().position(|x| *x == asset).ok_or(UpdateError::AssetsChanged)?;
    let mut next = latest.clone();
    next.version = latest.version.checked_add(1).ok_or(UpdateError::Overflow)?;
    let hubs = &mut next.outcome.balances[a][hub.index()];
    *hubs = hubs.checked_add(amount).ok_or(UpdateError::Overflow)?;
    Ok(next)
}

/// Whether what is held on chain for a channel's participants in `asset` (`held`: deposits
/// and standbys, both participants summed) covers the channel's total of that asset in
/// `state` (balances plus locks).
pub fn top_up_covered(state: &State, asset: Address, held: U256) -> Result<bool, UpdateError> {
    let a = state.outcome.assets.iter().position(|x| *x == asset).ok_or(UpdateError::AssetsChanged)?;
    let totals = crate::validate::asset_totals(&state.outcome)?;
    Ok(totals[a] <= held)
}

/// The next version of `parent` that settles the virtual channel from its final state:
/// its lock removed and its final balances credited through the lock's index map.
pub fn settle_in_parent(parent: &State, final_state: &State) -> Result<State, UpdateError> {
    let position = parent
        .outcome
        .locked
        .iter()
        .position(|l| l.id == final_state.channelId)
        .ok_or(UpdateError::LocksChanged("the parent holds no lock of this virtual channel"))?;
    if parent.outcome.assets != final_state.outcome.assets {
        return Err(UpdateError::AssetsChanged);
    }
    let mut next = parent.clone();
    next.version = parent.version.checked_add(1).ok_or(UpdateError::Overflow)?;
    let lock = next.outcome.locked.remove(position);
    let per_asset = next.outcome.balances.iter_mut().zip(&final_state.outcome.balances).zip(&lock.balances);
    for (asset, ((balances, finals), locked)) in per_asset.enumerate() {
        let total = finals[0].checked_add(finals[1]).ok_or(UpdateError::Overflow)?;
        if total != *locked {
            return Err(UpdateError::TotalChanged { asset, before: *locked, after: total });
        }
        for (p, amount) in finals.iter().enumerate() {
            let payee = &mut balances[lock.indexMap[p] as usize];
            *payee = payee.checked_add(*amount).ok_or(UpdateError::Overflow)?;
        }
    }
    Ok(next)
}

/// The next version of a virtual channel's state in which participant `from` pays `amount`
/// of asset `asset` to its peer.
pub fn transfer(state: &State, from: Role, asset: Address, amount: U256) -> Result<State, UpdateError> {
    let a = state.outcome.assets.iter().position(|x| *x == asset).ok_or(UpdateError::AssetsChanged)?;
    let mut next = state.clone();
    next.version = state.version.checked_add(1).ok_or(UpdateError::Overflow)?;
    let balances = &mut next.outcome.balances[a];
    let (payer, payee) = (from.index(), from.peer().index());
    balances[payer] = balances[payer].checked_sub(amount).ok_or(UpdateError::Overflow)?;
    balances[payee] = balances[payee].checked_add(amount).ok_or(UpdateError::Overflow)?;
    Ok(next)
}

/// The final state closing a virtual channel at its latest balances.
pub fn finalize(state: &State) -> Result<State, UpdateError> {
    let mut next = state.clone();
    next.version = state.version.checked_add(1).ok_or(UpdateError::Overflow)?;
    next.isFinal = true;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::Channel::Allocation;
    use alloy::primitives::B256;
    use alloy::primitives::Bytes;

    #[test]
    fn a_top_up_raises_the_hubs_balance_and_needs_the_deposit_on_chain() {
        let latest = state(1, 4, [5, 0], vec![]);
        let asset = latest.outcome.assets[0];
        let next = top_up(&latest, Role::Second, asset, U256::from(3)).expect("top up");
        assert_eq!((next.version, next.outcome.balances[0]), (5, [U256::from(5), U256::from(3)]));
        assert!(!top_up_covered(&next, asset, U256::from(7)).expect("shape"), "not yet on chain");
        assert!(top_up_covered(&next, asset, U256::from(8)).expect("shape"));
        assert!(top_up(&latest, Role::Second, Address::repeat_byte(0x99), U256::from(3)).is_err(), "unknown asset");
    }

    fn state(id: u8, version: u64, balances: [u64; 2], locked: Vec<SubAlloc>) -> State {
        State {
            channelId: B256::repeat_byte(id),
            version,
            outcome: Allocation {
                assets: vec![Address::repeat_byte(0xee)],
                balances: vec![[U256::from(balances[0]), U256::from(balances[1])]],
                locked,
            },
            appData: Bytes::new(),
            isFinal: false,
        }
    }

    /// The seed's worked example: X = (3, 3) Alice–Ingrid, Y = (4, 5) Ingrid–Bob,
    /// V = (2, 3) → X = (1, 0) + 5, Y = (2, 2) + 5; V ends at (4, 1) → X = (5, 1), Y = (6, 3).
    #[test]
    fn seed_worked_example() {
        let x = state(1, 0, [3, 3], vec![]); // Alice 0, Ingrid 1
        let y = state(2, 0, [4, 5], vec![]); // Ingrid 0, Bob 1
        let v = state(9, 0, [2, 3], vec![]);
        let links = [Link::client_parent(Role::First, Role::Second), Link::client_parent(Role::Second, Role::First)];
        let [x1, y1]: [State; 2] =
            lock_in_parents(&[(&x, links[0]), (&y, links[1])], &v).expect("lock in X and Y").try_into().expect("two");
        assert_eq!(x1.outcome.balances[0], [U256::from(1), U256::ZERO]);
        assert_eq!(y1.outcome.balances[0], [U256::from(2), U256::from(2)]);
        assert_eq!(x1.outcome.locked[0].balances, vec![U256::from(5)]);
        assert_eq!(x1.outcome.locked[0].indexMap, [0, 1]);
        assert_eq!(y1.outcome.locked[0].indexMap, [0, 1]);

        let paid = transfer(&v, Role::Second, Address::repeat_byte(0xee), U256::from(2)).expect("Bob pays 2");
        let last = finalize(&paid).expect("final");
        let x2 = settle_in_parent(&x1, &last).expect("settle X");
        let y2 = settle_in_parent(&y1, &last).expect("settle Y");
        assert_eq!(x2.outcome.balances[0], [U256::from(5), U256::from(1)]);
        assert_eq!(y2.outcome.balances[0], [U256::from(6), U256::from(3)]);
        assert!(x2.outcome.locked.is_empty() && y2.outcome.locked.is_empty());
        assert_eq!((x2.version, y2.version), (2, 2));
    }

    /// A virtual channel over three parents (Alice–H1, H1–H2, H2–Bob): every parent stays
    /// balanced, and each hub ends where it started plus what its side paid through it.
    #[test]
    fn a_virtual_channel_locks_and_settles_in_any_number_of_parents() {
        let x = state(1, 0, [3, 3], vec![]); // Alice 0, H1 1
        let z = state(3, 0, [4, 4], vec![]); // H1 0, H2 1
        let y = state(2, 0, [4, 5], vec![]); // H2 0, Bob 1
        let v = state(9, 0, [2, 3], vec![]);
        let middle = Link { stands_for: [Role::First, Role::Second] };
        let links =
            [Link::client_parent(Role::First, Role::Second), middle, Link::client_parent(Role::Second, Role::First)];
        let locked = lock_in_parents(&[(&x, links[0]), (&z, links[1]), (&y, links[2])], &v).expect("lock");
        let balances = |s: &State| s.outcome.balances[0].map(|b| b.to::<u64>());
        assert_eq!(locked.iter().map(balances).collect::<Vec<_>>(), vec![[1, 0], [2, 1], [2, 2]]);
        let last = finalize(&transfer(&v, Role::Second, Address::repeat_byte(0xee), U256::from(2)).expect("pay"))
            .expect("final");
        let settled: Vec<State> = locked.iter().map(|p| settle_in_parent(p, &last).expect("settle")).collect();
        assert_eq!(settled.iter().map(balances).collect::<Vec<_>>(), vec![[5, 1], [6, 2], [6, 3]]);
        assert_eq!(middle.pays(Role::First, &[U256::from(2), U256::from(3)]), Ok(U256::from(2)));
    }

    #[test]
    fn hub_index_zero_in_the_proposers_parent_maps_correctly() {
        // X with the hub at index 0: Alice is index 1.
        let x = state(1, 4, [10, 7], vec![]);
        let v = state(9, 0, [2, 3], vec![]);
        let x1 = lock_in_parent(&x, Link::client_parent(Role::First, Role::First), &v).expect("lock");
        assert_eq!(x1.outcome.balances[0], [U256::from(7), U256::from(5)], "hub pays Bob's 3, Alice her 2");
        assert_eq!(x1.outcome.locked[0].indexMap, [1, 0]);
    }

    #[test]
    fn underfunded_parents_and_wrong_totals_are_errors() {
        let x = state(1, 0, [1, 1], vec![]);
        let v = state(9, 0, [2, 0], vec![]);
        assert_eq!(lock_in_parent(&x, Link::client_parent(Role::First, Role::Second), &v), Err(UpdateError::Overflow));
        let x = state(1, 0, [3, 3], vec![]);
        let v = state(9, 0, [2, 3], vec![]);
        let x1 = lock_in_parent(&x, Link::client_parent(Role::First, Role::Second), &v).expect("lock");
        let mut wrong = finalize(&v).expect("final");
        wrong.outcome.balances[0][0] = U256::from(9);
        assert!(matches!(settle_in_parent(&x1, &wrong), Err(UpdateError::TotalChanged { .. })));
        assert!(transfer(&v, Role::First, Address::repeat_byte(0xee), U256::from(3)).is_err(), "Alice has only 2");
    }
}
