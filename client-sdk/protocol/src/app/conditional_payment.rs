//! Payments that become the payee's only on delivery (contract `ConditionalPayment`): the
//! payer offers amounts against a lock, the keccak-256 of what it wants (say, a response
//! body); the payee claims them by revealing a preimage of the lock (the delivery itself).
//! Until then the offered coins stay the payer's, which is what it gets if the payee stalls.
//! One offer is pending at a time; a channel carries any number of them in turn and closes
//! cooperatively (no move makes it final).

use alloy::primitives::{B256, Bytes, U256, keccak256};
use alloy::sol_types::SolValue;

use super::{App, AppError, AppKind, decode, judge, make};
use crate::Role;
use crate::bindings::Channel::{Params, State};

alloy::sol! {
    /// The channel's data (`ConditionalPayment.Data`).
    #[derive(Debug, PartialEq, Eq)]
    struct Data {
        /// Who pays (0 or 1); the other participant is the payee. Never changes.
        uint8 payer;
        /// The hash the payee must open: `keccak256(preimage)`.
        bytes32 lock;
        /// The pending offer, one amount per asset; empty when nothing is pending.
        uint256[] amounts;
        /// The preimage the payee revealed with its last claim; empty otherwise.
        bytes preimage;
    }
}

/// The longest preimage a claim can reveal: the claim's app data (the ABI encoding of
/// [`Data`] with no amounts) must stay within [`super::MAX_APP_DATA`].
pub const MAX_PREIMAGE: usize = super::MAX_APP_DATA - 7 * 32;

/// The rule of conditional payments.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConditionalPayment;

/// The app data of the opening state: nothing pending, `payer` pays.
pub fn opening(payer: Role) -> Bytes {
    Data { payer: payer as u8, lock: B256::ZERO, amounts: vec![], preimage: Bytes::new() }.abi_encode().into()
}

/// The payer's move from `state`: offer `amounts` (one per asset) to whoever reveals a
/// preimage of `lock`.
pub fn offer(state: &State, lock: B256, amounts: Vec<U256>) -> Result<Bytes, AppError> {
    let d = data(state)?;
    Ok(Data { lock, amounts, preimage: Bytes::new(), ..d }.abi_encode().into())
}

/// The payee's move from `state`: claim the pending offer with `preimage`.
pub fn claim(state: &State, preimage: Bytes) -> Result<Bytes, AppError> {
    let d = data(state)?;
    Ok(Data { amounts: vec![], preimage, ..d }.abi_encode().into())
}

/// The lock of `preimage`: `keccak256(preimage)`.
pub fn lock_of(preimage: &[u8]) -> B256 {
    keccak256(preimage)
}

/// The channel's data in `state`.
pub fn data(state: &State) -> Result<Data, AppError> {
    decode(&state.appData)
}

/// The offer pending in `state`: its lock and amounts (one per asset), if any.
pub fn pending_offer(state: &State) -> Option<(B256, Vec<U256>)> {
    data(state).ok().filter(|d| !d.amounts.is_empty()).map(|d| (d.lock, d.amounts))
}

impl super::Prescribe for ConditionalPayment {
    type Data = Data;

    /// No move makes the channel final.
    fn prescribe(from: &State, f: &Data, t: &Data, actor: Role) -> Result<(Vec<[U256; 2]>, bool), AppError> {
        if f.payer > 1 || t.payer != f.payer {
            return Err(AppError::InvalidMove);
        }
        let payer = if f.payer == 0 { Role::First } else { Role::Second };
        let n = from.outcome.balances.len();
        let mut next = from.outcome.balances.clone();
        if !f.amounts.is_empty() {
            if actor == payer {
                return Err(AppError::NotYourTurn);
            }
            if f.amounts.len() != n || !t.amounts.is_empty() || t.lock != f.lock || keccak256(&t.preimage) != f.lock {
                return Err(AppError::InvalidMove);
            }
            for (b, amount) in next.iter_mut().zip(&f.amounts) {
                let paid = b[payer.index()].checked_sub(*amount).ok_or(AppError::InvalidMove)?;
                let got = b[payer.peer().index()].checked_add(*amount).ok_or(AppError::InvalidMove)?;
                *b = payer.pair(paid, got);
            }
        } else {
            if actor != payer {
                return Err(AppError::NotYourTurn);
            }
            if t.amounts.len() != n || !t.preimage.is_empty() {
                return Err(AppError::InvalidMove);
            }
            if next.iter().zip(&t.amounts).any(|(b, amount)| *amount > b[payer.index()]) {
                return Err(AppError::InvalidMove);
            }
        }
        Ok((next, false))
    }
}

impl App for ConditionalPayment {
    fn kind(&self) -> AppKind {
        AppKind::ConditionalPayment
    }

    fn valid_transition(&self, _: &Params, from: &State, to: &State, actor: Role) -> Result<(), AppError> {
        judge::<Self>(from, to, actor)
    }

    fn apply(&self, _: &Params, from: &State, actor: Role, app_data: Bytes) -> Result<State, AppError> {
        make::<Self>(from, actor, app_data)
    }

    fn turn(&self, state: &State) -> Option<Role> {
        let d = data(state).ok()?;
        let payer = Role::from_index(usize::from(d.payer)).ok()?;
        Some(if d.amounts.is_empty() { payer } else { payer.peer() })
    }

    /// With no offer pending, the payer's move (an offer) is optional.
    fn optional_move(&self, state: &State) -> bool {
        data(state).is_ok_and(|d| d.amounts.is_empty())
    }

    fn check_opening(&self, state: &State) -> Result<(), AppError> {
        let d = data(state)?;
        let Ok(payer) = Role::from_index(usize::from(d.payer)) else {
            return Err(AppError::InvalidOpening("the payer is participant 0 or 1"));
        };
        if state.isFinal || state.appData != opening(payer) {
            return Err(AppError::InvalidOpening("a conditional payment channel opens with nothing pending"));
        }
        Ok(())
    }
}
