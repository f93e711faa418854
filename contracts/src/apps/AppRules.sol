// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Channel} from "../Channel.sol";

/// @title AppRules
/// @notice What Ingrid's apps share: their errors and the checks of a move's allocation. The
/// Rust rules in `ingrid_protocol::app` mirror these line by line; a property test runs both
/// on generated moves and demands the same verdict.
library AppRules {
    /// The app data is not the canonical ABI encoding of the app's data.
    error NonCanonicalData();
    /// The mover is not the participant whose turn it is.
    error NotYourTurn();
    /// The move changes what it may not change, or is not a move of this app.
    error InvalidMove();
    /// The game is over: no move is possible from this state.
    error GameOver();
    /// The allocation of the new state is not the one the rule prescribes.
    error WrongAllocation();
    /// The new state's `isFinal` is not the one the rule prescribes.
    error WrongFinality();

    /// `to` has one balance pair per asset of `from` and gives everything to participant `p`.
    function requirePotTo(Channel.State calldata from, Channel.State calldata to, uint256 p)
        internal
        pure
    {
        uint256 n = from.outcome.balances.length;
        if (to.outcome.balances.length != n) revert WrongAllocation();
        for (uint256 a = 0; a < n; ++a) {
            uint256 total = from.outcome.balances[a][0] + from.outcome.balances[a][1];
            if (to.outcome.balances[a][p] != total || to.outcome.balances[a][1 - p] != 0) {
                revert WrongAllocation();
            }
        }
    }

    /// `to` has one balance pair per asset of `from`, each equal to `expected[a]`.
    function requireBalances(Channel.State calldata to, uint256[2][] memory expected)
        internal
        pure
    {
        uint256 n = expected.length;
        if (to.outcome.balances.length != n) revert WrongAllocation();
        for (uint256 a = 0; a < n; ++a) {
            if (
                to.outcome.balances[a][0] != expected[a][0]
                    || to.outcome.balances[a][1] != expected[a][1]
            ) revert WrongAllocation();
        }
    }

    /// `to.isFinal` is `expected`.
    function requireFinal(Channel.State calldata to, bool expected) internal pure {
        if (to.isFinal != expected) revert WrongFinality();
    }
}
