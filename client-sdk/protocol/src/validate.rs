//! Pure checks of channel states and updates: no I/O, no clock.
//!
//! An update moves a channel from its current fully signed state to the next version. It
//! preserves each asset's total (balances plus locked amounts), and changes the locks only
//! when it opens or closes one.

use std::collections::HashSet;

use alloy::primitives::{B256, U256};

use crate::bindings::Channel::{Allocation, Params, State, SubAlloc};
use crate::state::channel_id;

/// What a proposed update is allowed to do besides moving balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// Balances move between the participants; the locks stay as they are.
    Transfer,
    /// Exactly one lock, with this sub-channel id, is added; the other locks stay.
    OpenLock(B256),
    /// Exactly the lock with this sub-channel id is removed; the other locks stay.
    CloseLock(B256),
}

/// Why a state or an update is refused. Each variant names the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The state belongs to another channel.
    #[error("state is for channel {actual}, expected {expected}")]
    ChannelIdMismatch {
        /// The channel being updated.
        expected: B256,
        /// The id in the proposed state.
        actual: B256,
    },
    /// The version is not the one expected.
    #[error("version {actual}, expected {expected}")]
    WrongVersion {
        /// The only acceptable version.
        expected: u64,
        /// The proposed version.
        actual: u64,
    },
    /// The current state is final: nothing follows it.
    #[error("channel state is final")]
    AlreadyFinal,
    /// App data is reserved; payment channels carry none.
    #[error("app data must be empty for payment channels")]
    AppDataNotEmpty,
    /// The list of assets changed or has duplicates.
    #[error("assets differ from the channel's assets")]
    AssetsChanged,
    /// An asset appears twice.
    #[error("asset {0} listed twice")]
    DuplicateAsset(alloy::primitives::Address),
    /// `balances` or a lock's `balances` does not have one entry per asset.
    #[error("balances have {actual} entries for {assets} assets")]
    BalanceShape {
        /// Number of assets.
        assets: usize,
        /// Number of entries found.
        actual: usize,
    },
    /// A lock's index map points outside the two participants or maps both to one.
    #[error("lock {0} has an invalid index map")]
    InvalidIndexMap(B256),
    /// Two locks share an id.
    #[error("lock {0} appears twice")]
    DuplicateLock(B256),
    /// Adding up amounts overflowed 256 bits.
    #[error("amounts overflow")]
    Overflow,
    /// An asset's total (balances plus locks) changed.
    #[error("total of asset {asset} changed from {before} to {after}")]
    TotalChanged {
        /// Index of the asset.
        asset: usize,
        /// Total in the current state.
        before: U256,
        /// Total in the proposed state.
        after: U256,
    },
    /// The locks changed in a way the update kind does not allow.
    #[error("locks changed: {0}")]
    LocksChanged(&'static str),
    /// The params do not describe a two-party payment channel of the expected kind.
    #[error("invalid params: {0}")]
    InvalidParams(&'static str),
}

/// Checks the shape of an allocation and returns each asset's total (balances plus locks).
pub fn asset_totals(outcome: &Allocation) -> Result<Vec<U256>, UpdateError> {
    let assets = outcome.assets.len();
    let mut seen_assets = HashSet::with_capacity(assets);
    for asset in &outcome.assets {
        if !seen_assets.insert(*asset) {
            return Err(UpdateError::DuplicateAsset(*asset));
        }
    }
    if outcome.balances.len() != assets {
        return Err(UpdateError::BalanceShape { assets, actual: outcome.balances.len() });
    }
    let mut totals = outcome
        .balances
        .iter()
        .map(|[a, b]| a.checked_add(*b).ok_or(UpdateError::Overflow))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen_locks = HashSet::with_capacity(outcome.locked.len());
    for lock in &outcome.locked {
        check_lock_shape(lock, assets)?;
        if !seen_locks.insert(lock.id) {
            return Err(UpdateError::DuplicateLock(lock.id));
        }
        for (total, amount) in totals.iter_mut().zip(&lock.balances) {
            *total = total.checked_add(*amount).ok_or(UpdateError::Overflow)?;
        }
    }
    Ok(totals)
}

fn check_lock_shape(lock: &SubAlloc, assets: usize) -> Result<(), UpdateError> {
    if lock.balances.len() != assets {
        return Err(UpdateError::BalanceShape { assets, actual: lock.balances.len() });
    }
    let [a, b] = lock.indexMap;
    if a > 1 || b > 1 || a == b {
        return Err(UpdateError::InvalidIndexMap(lock.id));
    }
    Ok(())
}

/// Checks the params of a two-party payment channel: two distinct non-zero participants,
/// exactly one of `ledger`/`isVirtual`, no app, a challenge duration within `bounds` (seconds).
pub fn validate_params(params: &Params, bounds: (u64, u64)) -> Result<(), UpdateError> {
    let [a, b] = params.participants;
    if a.is_zero() || b.is_zero() {
        return Err(UpdateError::InvalidParams("participant is the zero address"));
    }
    if a == b {
        return Err(UpdateError::InvalidParams("participants are the same address"));
    }
    if params.ledger == params.isVirtual {
        return Err(UpdateError::InvalidParams("exactly one of ledger and isVirtual must be set"));
    }
    if !params.app.is_zero() {
        return Err(UpdateError::InvalidParams("apps are not supported; app must be zero"));
    }
    if params.challengeDuration < bounds.0 || params.challengeDuration > bounds.1 {
        return Err(UpdateError::InvalidParams("challenge duration out of bounds"));
    }
    Ok(())
}

/// Checks an opening state (version 0) of the channel described by `params`.
pub fn validate_initial(params: &Params, state: &State) -> Result<(), UpdateError> {
    let expected = channel_id(params);
    if state.channelId != expected {
        return Err(UpdateError::ChannelIdMismatch { expected, actual: state.channelId });
    }
    if state.version != 0 {
        return Err(UpdateError::WrongVersion { expected: 0, actual: state.version });
    }
    if !state.appData.is_empty() {
        return Err(UpdateError::AppDataNotEmpty);
    }
    if !state.outcome.locked.is_empty() {
        return Err(UpdateError::LocksChanged("an opening state holds no locks"));
    }
    asset_totals(&state.outcome).map(|_| ())
}

/// Checks that `proposed` is a valid next state after `current` for an update of `kind`.
pub fn validate_update(current: &State, proposed: &State, kind: UpdateKind) -> Result<(), UpdateError> {
    if proposed.channelId != current.channelId {
        return Err(UpdateError::ChannelIdMismatch { expected: current.channelId, actual: proposed.channelId });
    }
    if current.isFinal {
        return Err(UpdateError::AlreadyFinal);
    }
    let expected = current.version.checked_add(1).ok_or(UpdateError::Overflow)?;
    if proposed.version != expected {
        return Err(UpdateError::WrongVersion { expected, actual: proposed.version });
    }
    if !proposed.appData.is_empty() {
        return Err(UpdateError::AppDataNotEmpty);
    }
    if proposed.outcome.assets != current.outcome.assets {
        return Err(UpdateError::AssetsChanged);
    }
    let before = asset_totals(&current.outcome)?;
    let after = asset_totals(&proposed.outcome)?;
    for (asset, (before, after)) in before.into_iter().zip(after).enumerate() {
        if before != after {
            return Err(UpdateError::TotalChanged { asset, before, after });
        }
    }
    check_locks(&current.outcome.locked, &proposed.outcome.locked, kind)
}

fn check_locks(current: &[SubAlloc], proposed: &[SubAlloc], kind: UpdateKind) -> Result<(), UpdateError> {
    match kind {
        UpdateKind::Transfer => {
            if current != proposed {
                return Err(UpdateError::LocksChanged("a transfer leaves the locks unchanged"));
            }
        }
        UpdateKind::OpenLock(id) => {
            let Some((last, rest)) = proposed.split_last() else {
                return Err(UpdateError::LocksChanged("no lock was added"));
            };
            if last.id != id {
                return Err(UpdateError::LocksChanged("the added lock must come last with the opened id"));
            }
            if rest != current {
                return Err(UpdateError::LocksChanged("opening a lock leaves the other locks unchanged"));
            }
        }
        UpdateKind::CloseLock(id) => {
            let Some(pos) = current.iter().position(|l| l.id == id) else {
                return Err(UpdateError::LocksChanged("the closed lock is not held"));
            };
            let remaining = current.iter().enumerate().filter(|(i, _)| *i != pos).map(|(_, l)| l);
            if !remaining.eq(proposed.iter()) {
                return Err(UpdateError::LocksChanged("closing a lock removes exactly that lock"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, Bytes};
    use proptest::prelude::*;

    fn u(x: u64) -> U256 {
        U256::from(x)
    }

    fn state(version: u64, balances: [u64; 2], locks: Vec<SubAlloc>) -> State {
        State {
            channelId: B256::repeat_byte(7),
            version,
            outcome: Allocation {
                assets: vec![Address::repeat_byte(0xee)],
                balances: vec![[u(balances[0]), u(balances[1])]],
                locked: locks,
            },
            appData: Bytes::new(),
            isFinal: false,
        }
    }

    fn lock(id: u8, amount: u64) -> SubAlloc {
        SubAlloc { id: B256::repeat_byte(id), balances: vec![u(amount)], indexMap: [0, 1] }
    }

    #[test]
    fn transfer_preserving_the_total_is_accepted() {
        assert_eq!(validate_update(&state(0, [3, 3], vec![]), &state(1, [2, 4], vec![]), UpdateKind::Transfer), Ok(()));
    }

    #[test]
    fn version_must_be_exactly_next() {
        let cur = state(4, [3, 3], vec![]);
        for v in [4, 6, 0] {
            assert_eq!(
                validate_update(&cur, &state(v, [3, 3], vec![]), UpdateKind::Transfer),
                Err(UpdateError::WrongVersion { expected: 5, actual: v })
            );
        }
    }

    #[test]
    fn total_must_be_preserved() {
        assert!(matches!(
            validate_update(&state(0, [3, 3], vec![]), &state(1, [3, 4], vec![]), UpdateKind::Transfer),
            Err(UpdateError::TotalChanged { asset: 0, .. })
        ));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let mut big = state(1, [0, 0], vec![]);
        big.outcome.balances[0] = [U256::MAX, u(1)];
        assert_eq!(asset_totals(&big.outcome), Err(UpdateError::Overflow));
    }

    #[test]
    fn seed_example_open_and_close_lock() {
        // X = (3, 3); V opened with (2, 3): X = (1, 0) + lock 5; V closes at (4, 1): X = (5, 1).
        let x0 = state(0, [3, 3], vec![]);
        let x1 = state(1, [1, 0], vec![lock(9, 5)]);
        assert_eq!(validate_update(&x0, &x1, UpdateKind::OpenLock(B256::repeat_byte(9))), Ok(()));
        let x2 = state(2, [5, 1], vec![]);
        assert_eq!(validate_update(&x1, &x2, UpdateKind::CloseLock(B256::repeat_byte(9))), Ok(()));
        assert!(validate_update(&x1, &x2, UpdateKind::Transfer).is_err());
    }

    #[test]
    fn locks_only_change_as_the_kind_allows() {
        let cur = state(1, [1, 0], vec![lock(1, 5)]);
        let next = state(2, [0, 0], vec![lock(1, 5), lock(2, 1)]);
        assert!(validate_update(&cur, &next, UpdateKind::Transfer).is_err());
        assert!(validate_update(&cur, &next, UpdateKind::OpenLock(B256::repeat_byte(3))).is_err());
        assert_eq!(validate_update(&cur, &next, UpdateKind::OpenLock(B256::repeat_byte(2))), Ok(()));
        assert!(validate_update(&cur, &state(2, [6, 0], vec![]), UpdateKind::CloseLock(B256::repeat_byte(2))).is_err());
        let dup = state(2, [0, 0], vec![lock(1, 5), lock(1, 1)]);
        assert_eq!(
            validate_update(&cur, &dup, UpdateKind::OpenLock(B256::repeat_byte(1))),
            Err(UpdateError::DuplicateLock(B256::repeat_byte(1)))
        );
    }

    #[test]
    fn index_map_must_be_a_permutation_of_the_two_participants() {
        let mut bad = lock(2, 1);
        bad.indexMap = [1, 1];
        let cur = state(1, [1, 0], vec![]);
        assert_eq!(
            validate_update(&cur, &state(2, [0, 0], vec![bad]), UpdateKind::OpenLock(B256::repeat_byte(2))),
            Err(UpdateError::InvalidIndexMap(B256::repeat_byte(2)))
        );
    }

    #[test]
    fn nothing_follows_a_final_state() {
        let mut cur = state(1, [1, 1], vec![]);
        cur.isFinal = true;
        assert_eq!(
            validate_update(&cur, &state(2, [1, 1], vec![]), UpdateKind::Transfer),
            Err(UpdateError::AlreadyFinal)
        );
    }

    proptest! {
        /// Any transfer accepted preserves the total, and any change of the total is refused.
        #[test]
        fn transfers_conserve_value(a in 0u64..1_000_000, b in 0u64..1_000_000, x in 0u64..2_000_000, y in 0u64..2_000_000) {
            let cur = state(3, [a, b], vec![]);
            let next = state(4, [x, y], vec![]);
            let accepted = validate_update(&cur, &next, UpdateKind::Transfer).is_ok();
            prop_assert_eq!(accepted, a + b == x + y);
        }
    }
}
