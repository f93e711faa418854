// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Channel} from "./Channel.sol";

/// @title IApp
/// @notice The rule of a state-channel app (the seed's nanocontract): which move from one
/// state to the next a participant may make alone. A channel names its app in
/// `Params.app`; its states carry the app's data in `appData`.
///
/// The adjudicator calls `validTransition` when a participant force-executes a move
/// (`IAdjudicator.progress`), after checking what every app shares: `to` is the next version of
/// the registered `from`, both of the channel, with the same assets and the same total per
/// asset, no locks, `from` not final, and `to` signed by `participants[actor]`. The app checks
/// the rest: whose turn it is, what the move may change, and the allocation of `to`. Each
/// state's allocation must be what each participant gets if the next mover stalls, so that
/// aborting a game never pays off; a state the rule marks final (`isFinal`) concludes at once.
///
/// A rule is pure: it reads nothing but its arguments, and reverts on an invalid move.
interface IApp {
    /// Reverts unless `participants[actor]` may move the channel from `from` to `to`.
    function validTransition(
        Channel.Params calldata params,
        Channel.State calldata from,
        Channel.State calldata to,
        uint256 actor
    ) external pure;
}
