// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Adjudicator} from "../Adjudicator.sol";
import {Channel} from "../Channel.sol";

/// @title ProgressChecker
/// @notice Test tool: the adjudicator with a way to judge many forced moves in one call, so
/// that a property test can compare `progress` with its Rust twin (`check_move`) on a local
/// chain. For each probe it plants a dispute record of `from` in the state where
/// force-execution may begin (phase `Dispute`, refutation period over, timeout not reached,
/// no forced move yet), calls `progress`, and reverts to undo it all, so probes are
/// independent. Meant for `eth_call`. Not deployed in production.
contract ProgressChecker is Adjudicator {
    /// One forced move to judge: `progress(params, from, to, actor, sig)`.
    struct Probe {
        Channel.Params params;
        Channel.State from;
        Channel.State to;
        uint256 actor;
        bytes sig;
    }

    /// How `judge` ends: always with this revert, which undoes the record it planted.
    /// `selector` is zero if `progress` accepted the move, else the selector of its revert
    /// (`0xffffffff` for a revert without one).
    error Verdict(bytes4 selector);

    /// `errors[i]` is zero if `progress` accepted `probes[i]`, else the selector of its
    /// revert (`0xffffffff` for a revert without one).
    function verdicts(Probe[] calldata probes) external returns (bytes4[] memory errors) {
        uint256 n = probes.length;
        errors = new bytes4[](n);
        for (uint256 i = 0; i < n; ++i) {
            // `judge` never returns: it reverts with the verdict.
            bytes4 e = 0xffffffff;
            try this.judge(probes[i]) {}
            catch (bytes memory reason) {
                e = _verdictOf(reason);
            }
            errors[i] = e;
        }
    }

    /// Plants a record of `probe.from` in which force-execution may begin, calls `progress`
    /// with the probe, and reverts with the `Verdict`, undoing every state change (so probes
    /// are independent).
    function judge(Probe calldata probe) external {
        _plant(probe.params, probe.from);
        try this.progress(probe.params, probe.from, probe.to, probe.actor, probe.sig) {
            revert Verdict(bytes4(0));
        } catch (bytes memory reason) {
            // The selector: the first four bytes (a revert without one has fewer).
            // forge-lint: disable-next-line(unsafe-typecast)
            revert Verdict(reason.length < 4 ? bytes4(0xffffffff) : bytes4(reason));
        }
    }

    /// The selector a `Verdict` revert carries (`0xffffffff` for any other revert).
    function _verdictOf(bytes memory reason) internal pure returns (bytes4 e) {
        // forge-lint: disable-next-line(unsafe-typecast)
        if (reason.length != 36 || bytes4(reason) != Verdict.selector) return 0xffffffff;
        for (uint256 k = 0; k < 4; ++k) {
            e |= bytes4(reason[4 + k]) >> (8 * k);
        }
    }

    /// Writes a record of `from` under the key `progress` reads for a move from it (the
    /// channel id of `params`, `from`'s assets and totals; a malformed or overflowing outcome
    /// gets some key, as `progress` refuses it before reading a record). The record is past its
    /// refutation period (`timeout - window == now`) and force-executable until `timeout`.
    function _plant(Channel.Params calldata params, Channel.State calldata from) internal {
        Channel.Allocation calldata outcome = from.outcome;
        uint256 numAssets = outcome.assets.length;
        uint256 numBalances = outcome.balances.length;
        uint256[] memory totals = new uint256[](numAssets);
        for (uint256 a = 0; a < numAssets && a < numBalances; ++a) {
            unchecked {
                totals[a] = outcome.balances[a][0] + outcome.balances[a][1];
            }
        }
        bytes32 key = keccak256(abi.encode(_channelId(params), outcome.assets, totals));
        Dispute storage d = _disputes[key];
        d.timeout = uint64(block.timestamp) + 1;
        d.version = from.version;
        d.phase = Phase.Dispute;
        d.forcedMoves = 0;
        d.window = 1;
        d.stateHash = _hashState(from);
    }
}
