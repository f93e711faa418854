// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Channel} from "../Channel.sol";
import {IApp} from "../IApp.sol";

/// @title AppChecker
/// @notice Test tool: runs an app's rule on many moves in one call and returns the verdicts,
/// so that a property test can compare the deployed rule with its Rust twin on a local chain
/// without a transaction per move. Not deployed in production.
contract AppChecker {
    /// One move to judge.
    struct Move {
        Channel.State from;
        Channel.State to;
        uint256 actor;
    }

    /// `valid[i]` is whether `app.validTransition(params, moves[i].from, moves[i].to,
    /// moves[i].actor)` returned without reverting.
    function verdicts(IApp app, Channel.Params calldata params, Move[] calldata moves)
        external
        view
        returns (bool[] memory valid)
    {
        uint256 n = moves.length;
        valid = new bool[](n);
        for (uint256 i = 0; i < n; ++i) {
            try app.validTransition(params, moves[i].from, moves[i].to, moves[i].actor) {
                valid[i] = true;
            } catch {
                valid[i] = false;
            }
        }
    }
}
