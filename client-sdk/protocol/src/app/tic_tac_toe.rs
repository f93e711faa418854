//! Tic-tac-toe for the pot (contract `TicTacToe`). The first participant plays mark 1 and
//! moves first, the second plays mark 2. Three in a row wins the pot (final); a full board
//! without one is a draw (final) that returns the stakes. Every other state gives the pot to
//! the participant who just moved: what it gets if the other stalls.

use alloy::primitives::{Bytes, U256};
use alloy::sol_types::SolValue;

use super::{App, AppError, AppKind, decode, judge, make, pot_to};
use crate::Role;
use crate::bindings::Channel::{Params, State};

alloy::sol! {
    /// The game's data (`TicTacToe.Data`).
    #[derive(Debug, PartialEq, Eq)]
    struct Data {
        /// Cells row by row: 0 empty, 1 the first participant's mark, 2 the second's.
        uint8[9] board;
        /// What each participant put in, per asset (returned on a draw); never changes.
        uint256[2][] stakes;
    }
}

/// The rule of tic-tac-toe.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicTacToe;

const LINES: [[usize; 3]; 8] = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];

/// The app data of the opening state: an empty board and the stakes (the opening
/// allocation).
pub fn opening(stakes: &[[U256; 2]]) -> Bytes {
    Data { board: [0; 9], stakes: stakes.to_vec() }.abi_encode().into()
}

/// `role`'s move from `state`: its mark on `cell` (0..9, row by row).
pub fn place(state: &State, role: Role, cell: usize) -> Result<Bytes, AppError> {
    let mut d = data(state)?;
    *d.board.get_mut(cell).ok_or(AppError::InvalidMove)? = mark(role);
    Ok(d.abi_encode().into())
}

/// The game's data in `state`.
pub fn data(state: &State) -> Result<Data, AppError> {
    decode(&state.appData)
}

/// The mark of `role`.
pub const fn mark(role: Role) -> u8 {
    match role {
        Role::First => 1,
        Role::Second => 2,
    }
}

/// The mark with three in a row on `board` (the first line in the order rows, columns,
/// diagonals), or 0.
pub fn winner(board: &[u8; 9]) -> u8 {
    LINES
        .iter()
        .map(|l| board[l[0]])
        .zip(LINES.iter())
        .find(|(m, l)| *m != 0 && *m == board[l[1]] && *m == board[l[2]])
        .map_or(0, |(m, _)| m)
}

fn full(board: &[u8; 9]) -> bool {
    board.iter().all(|c| *c != 0)
}

/// Whose turn it is on `board`; refused for a board no game reaches by counts.
fn turn_of(board: &[u8; 9]) -> Result<Role, AppError> {
    let mut counts = [0usize; 3];
    for c in board {
        *counts.get_mut(usize::from(*c)).ok_or(AppError::InvalidMove)? += 1;
    }
    match (counts[1], counts[2]) {
        (x, o) if x == o => Ok(Role::First),
        (x, o) if x == o + 1 => Ok(Role::Second),
        _ => Err(AppError::InvalidMove),
    }
}

impl super::Prescribe for TicTacToe {
    type Data = Data;

    fn prescribe(from: &State, f: &Data, t: &Data, actor: Role) -> Result<(Vec<[U256; 2]>, bool), AppError> {
        if f.stakes.len() != from.outcome.balances.len() || t.stakes != f.stakes {
            return Err(AppError::InvalidMove);
        }
        if winner(&f.board) != 0 || full(&f.board) {
            return Err(AppError::GameOver);
        }
        if actor != turn_of(&f.board)? {
            return Err(AppError::NotYourTurn);
        }
        let m = mark(actor);
        let mut changed = 0;
        for (a, b) in f.board.iter().zip(&t.board) {
            if a == b {
                continue;
            }
            if *a != 0 || *b != m {
                return Err(AppError::InvalidMove);
            }
            changed += 1;
        }
        if changed != 1 {
            return Err(AppError::InvalidMove);
        }
        if winner(&t.board) == m {
            Ok((pot_to(from, actor)?, true))
        } else if full(&t.board) {
            Ok((f.stakes.clone(), true))
        } else {
            Ok((pot_to(from, actor)?, false))
        }
    }
}

impl App for TicTacToe {
    fn kind(&self) -> AppKind {
        AppKind::TicTacToe
    }

    fn valid_transition(&self, _: &Params, from: &State, to: &State, actor: Role) -> Result<(), AppError> {
        judge::<Self>(from, to, actor)
    }

    fn apply(&self, _: &Params, from: &State, actor: Role, app_data: Bytes) -> Result<State, AppError> {
        make::<Self>(from, actor, app_data)
    }

    fn turn(&self, state: &State) -> Option<Role> {
        let d = data(state).ok()?;
        if winner(&d.board) != 0 || full(&d.board) {
            return None;
        }
        turn_of(&d.board).ok()
    }

    fn check_opening(&self, state: &State) -> Result<(), AppError> {
        if state.isFinal || state.appData != opening(&state.outcome.balances) {
            return Err(AppError::InvalidOpening(
                "tic-tac-toe opens with an empty board and the stakes as its allocation",
            ));
        }
        Ok(())
    }
}
