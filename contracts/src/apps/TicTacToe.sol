// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Channel} from "../Channel.sol";
import {IApp} from "../IApp.sol";
import {AppRules} from "./AppRules.sol";

/// @title TicTacToe
/// @notice Tic-tac-toe for the pot. Participant 0 plays mark 1 and moves first, participant 1
/// plays mark 2; they alternate, one mark per move on an empty cell. Three in a row wins the
/// pot and is final; a full board without a row is a draw, final, and returns the stakes.
/// Every other state gives the pot to the participant who just moved, which is what it gets if
/// the other stalls; the opening state (empty board) holds the stakes as they were put in.
///
/// `appData` is `abi.encode(Data)`, canonical.
contract TicTacToe is IApp {
    /// The game's data.
    struct Data {
        /// Cells row by row: 0 empty, 1 participant 0's mark, 2 participant 1's.
        uint8[9] board;
        /// What each participant put in, per asset (returned on a draw); never changes.
        uint256[2][] stakes;
    }

    /// @inheritdoc IApp
    function validTransition(
        Channel.Params calldata,
        Channel.State calldata from,
        Channel.State calldata to,
        uint256 actor
    ) external pure {
        Data memory f = decode(from.appData);
        Data memory t = decode(to.appData);
        if (f.stakes.length != from.outcome.balances.length) revert AppRules.InvalidMove();
        if (keccak256(abi.encode(t.stakes)) != keccak256(abi.encode(f.stakes))) {
            revert AppRules.InvalidMove();
        }
        if (winner(f.board) != 0 || full(f.board)) revert AppRules.GameOver();
        if (actor != turn(f.board)) revert AppRules.NotYourTurn();
        uint8 mark = uint8(actor) + 1;
        uint256 changed = 0;
        for (uint256 i = 0; i < 9; ++i) {
            if (t.board[i] == f.board[i]) continue;
            if (f.board[i] != 0 || t.board[i] != mark) revert AppRules.InvalidMove();
            ++changed;
        }
        if (changed != 1) revert AppRules.InvalidMove();
        if (winner(t.board) == mark) {
            AppRules.requireFinal(to, true);
            AppRules.requirePotTo(from, to, actor);
        } else if (full(t.board)) {
            AppRules.requireFinal(to, true);
            AppRules.requireBalances(to, f.stakes);
        } else {
            AppRules.requireFinal(to, false);
            AppRules.requirePotTo(from, to, actor);
        }
    }

    /// Whose turn it is on `board`: 0 when both placed as many marks, 1 when 0 placed one
    /// more; any other board (or a cell above 2) is not a game's.
    function turn(uint8[9] memory board) internal pure returns (uint256) {
        uint256 ones = 0;
        uint256 twos = 0;
        for (uint256 i = 0; i < 9; ++i) {
            if (board[i] == 1) ++ones;
            else if (board[i] == 2) ++twos;
            else if (board[i] != 0) revert AppRules.InvalidMove();
        }
        if (ones == twos) return 0;
        if (ones == twos + 1) return 1;
        revert AppRules.InvalidMove();
    }

    /// The mark (1 or 2) with three in a row on `board`, or 0. The first line in the order
    /// rows, columns, diagonals decides when there are several.
    function winner(uint8[9] memory board) internal pure returns (uint8) {
        uint8[3][8] memory lines = [
            [0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]
        ];
        for (uint256 l = 0; l < 8; ++l) {
            uint8 m = board[lines[l][0]];
            if (m != 0 && m == board[lines[l][1]] && m == board[lines[l][2]]) return m;
        }
        return 0;
    }

    /// Whether no cell of `board` is empty.
    function full(uint8[9] memory board) internal pure returns (bool) {
        for (uint256 i = 0; i < 9; ++i) {
            if (board[i] == 0) return false;
        }
        return true;
    }

    /// Decodes `appData`, which must be the canonical encoding of a `Data`.
    function decode(bytes calldata appData) internal pure returns (Data memory d) {
        d = abi.decode(appData, (Data));
        if (keccak256(abi.encode(d)) != keccak256(appData)) revert AppRules.NonCanonicalData();
    }
}
