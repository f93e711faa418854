// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Channel} from "../Channel.sol";
import {IApp} from "../IApp.sol";
import {AppRules} from "./AppRules.sol";

/// @title CoinFlip
/// @notice The seed's fair game: a commit-reveal coin flip for the whole pot.
///
/// Participant 0 commits to a secret bit (`commitment = keccak256(abi.encode(salt, bit))`),
/// participant 1 guesses it in the open, participant 0 reveals: participant 1 wins the pot if
/// its guess is the bit, participant 0 otherwise. Every state's allocation is what each gets
/// if the next mover stalls: after the commitment the pot is 0's (1 must guess), after the
/// guess it is 1's (0 must reveal), so the staller loses. The opening state (stage 0) holds
/// the stakes as they were put in.
///
/// `appData` is `abi.encode(Data)`, canonical.
contract CoinFlip is IApp {
    /// The game's data.
    struct Data {
        /// 0: waiting for 0's commitment; 1: committed, waiting for 1's guess; 2: guessed,
        /// waiting for 0's reveal; 3: revealed (final).
        uint8 stage;
        /// `keccak256(abi.encode(salt, bit))` from stage 1 on.
        bytes32 commitment;
        /// Participant 1's guess (0 or 1) from stage 2 on.
        uint8 guess;
        /// The revealed salt (stage 3).
        bytes32 salt;
        /// The revealed bit (stage 3).
        uint8 bit;
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
        if (f.stage == 0) {
            if (actor != 0) revert AppRules.NotYourTurn();
            if (t.stage != 1 || t.guess != 0 || t.salt != 0 || t.bit != 0) {
                revert AppRules.InvalidMove();
            }
            AppRules.requireFinal(to, false);
            AppRules.requirePotTo(from, to, 0);
        } else if (f.stage == 1) {
            if (actor != 1) revert AppRules.NotYourTurn();
            if (
                t.stage != 2 || t.commitment != f.commitment || t.guess > 1 || t.salt != 0
                    || t.bit != 0
            ) revert AppRules.InvalidMove();
            AppRules.requireFinal(to, false);
            AppRules.requirePotTo(from, to, 1);
        } else if (f.stage == 2) {
            if (actor != 0) revert AppRules.NotYourTurn();
            if (
                t.stage != 3 || t.commitment != f.commitment || t.guess != f.guess || t.bit > 1
                    || keccak256(abi.encode(t.salt, t.bit)) != f.commitment
            ) revert AppRules.InvalidMove();
            AppRules.requireFinal(to, true);
            AppRules.requirePotTo(from, to, t.bit == f.guess ? 1 : 0);
        } else {
            revert AppRules.GameOver();
        }
    }

    /// Decodes `appData`, which must be the canonical encoding of a `Data`.
    function decode(bytes calldata appData) internal pure returns (Data memory d) {
        d = abi.decode(appData, (Data));
        if (keccak256(abi.encode(d)) != keccak256(appData)) revert AppRules.NonCanonicalData();
    }
}
