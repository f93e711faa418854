//! The seed's fair game: a commit-reveal coin flip for the whole pot (contract `CoinFlip`).
//!
//! The first participant commits to a secret bit (`keccak256(abi.encode(salt, bit))`), the
//! second guesses it in the open, the first reveals: the second wins the pot if its guess is
//! the bit, the first otherwise. After the commitment the pot is the first's (the second must
//! guess), after the guess the second's (the first must reveal): the staller loses. The
//! opening state holds the stakes as they were put in.

use alloy::primitives::{B256, Bytes, U256, keccak256};
use alloy::sol_types::SolValue;

use super::{App, AppError, AppKind, decode, judge, make, pot_to};
use crate::Role;
use crate::bindings::Channel::{Params, State};

alloy::sol! {
    /// The game's data (`CoinFlip.Data`).
    #[derive(Debug, PartialEq, Eq)]
    struct Data {
        /// 0: waiting for the commitment; 1: waiting for the guess; 2: waiting for the reveal;
        /// 3: revealed (final).
        uint8 stage;
        /// `keccak256(abi.encode(salt, bit))` from stage 1 on.
        bytes32 commitment;
        /// The second participant's guess (0 or 1) from stage 2 on.
        uint8 guess;
        /// The revealed salt (stage 3).
        bytes32 salt;
        /// The revealed bit (stage 3).
        uint8 bit;
    }
}

/// The rule of the coin flip.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoinFlip;

/// The commitment to `bit` with `salt`: `keccak256(abi.encode(salt, bit))`.
pub fn commitment(salt: B256, bit: bool) -> B256 {
    keccak256((salt, U256::from(u8::from(bit))).abi_encode())
}

/// The app data of the opening state (stage 0).
pub fn opening() -> Bytes {
    Data { stage: 0, commitment: B256::ZERO, guess: 0, salt: B256::ZERO, bit: 0 }.abi_encode().into()
}

/// The first participant's move: commit to `bit` with a secret `salt` (keep both: the reveal
/// needs them).
pub fn commit(salt: B256, bit: bool) -> Bytes {
    Data { stage: 1, commitment: commitment(salt, bit), guess: 0, salt: B256::ZERO, bit: 0 }.abi_encode().into()
}

/// The second participant's move from `state` (stage 1): guess `guess`.
pub fn guess(state: &State, guess: bool) -> Result<Bytes, AppError> {
    let d = data(state)?;
    Ok(Data { stage: 2, guess: u8::from(guess), ..d }.abi_encode().into())
}

/// The first participant's move from `state` (stage 2): reveal `salt` and `bit`.
pub fn reveal(state: &State, salt: B256, bit: bool) -> Result<Bytes, AppError> {
    let d = data(state)?;
    Ok(Data { stage: 3, salt, bit: u8::from(bit), ..d }.abi_encode().into())
}

/// The game's data in `state`.
pub fn data(state: &State) -> Result<Data, AppError> {
    decode(&state.appData)
}

/// The winner of a revealed game.
pub fn winner(state: &State) -> Option<Role> {
    let d = data(state).ok()?;
    (d.stage == 3).then_some(if d.bit == d.guess { Role::Second } else { Role::First })
}

impl super::Prescribe for CoinFlip {
    type Data = Data;

    /// The allocation and finality `actor`'s move from `from` (data `f`) to data `t` must
    /// have: the contract's checks, in its order.
    fn prescribe(from: &State, f: &Data, t: &Data, actor: Role) -> Result<(Vec<[U256; 2]>, bool), AppError> {
        match f.stage {
            0 => {
                if actor != Role::First {
                    return Err(AppError::NotYourTurn);
                }
                if t.stage != 1 || t.guess != 0 || t.salt != B256::ZERO || t.bit != 0 {
                    return Err(AppError::InvalidMove);
                }
                Ok((pot_to(from, Role::First)?, false))
            }
            1 => {
                if actor != Role::Second {
                    return Err(AppError::NotYourTurn);
                }
                if t.stage != 2 || t.commitment != f.commitment || t.guess > 1 || t.salt != B256::ZERO || t.bit != 0 {
                    return Err(AppError::InvalidMove);
                }
                Ok((pot_to(from, Role::Second)?, false))
            }
            2 => {
                if actor != Role::First {
                    return Err(AppError::NotYourTurn);
                }
                if t.stage != 3
                    || t.commitment != f.commitment
                    || t.guess != f.guess
                    || t.bit > 1
                    || commitment(t.salt, t.bit == 1) != f.commitment
                {
                    return Err(AppError::InvalidMove);
                }
                let winner = if t.bit == f.guess { Role::Second } else { Role::First };
                Ok((pot_to(from, winner)?, true))
            }
            _ => Err(AppError::GameOver),
        }
    }
}

impl App for CoinFlip {
    fn kind(&self) -> AppKind {
        AppKind::CoinFlip
    }

    fn valid_transition(&self, _: &Params, from: &State, to: &State, actor: Role) -> Result<(), AppError> {
        judge::<Self>(from, to, actor)
    }

    fn apply(&self, _: &Params, from: &State, actor: Role, app_data: Bytes) -> Result<State, AppError> {
        make::<Self>(from, actor, app_data)
    }

    fn turn(&self, state: &State) -> Option<Role> {
        match data(state).ok()?.stage {
            0 | 2 => Some(Role::First),
            1 => Some(Role::Second),
            _ => None,
        }
    }

    fn check_opening(&self, state: &State) -> Result<(), AppError> {
        if state.isFinal || state.appData != opening() {
            return Err(AppError::InvalidOpening("a coin flip opens at stage 0 with empty fields"));
        }
        Ok(())
    }
}
