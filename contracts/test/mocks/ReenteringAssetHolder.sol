// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Channel} from "../../src/Channel.sol";
import {Adjudicator} from "../../src/Adjudicator.sol";
import {IAdjudicator} from "../../src/IAdjudicator.sol";

/// A hostile "asset holder" listed in a channel's assets: on `setOutcome` it looks at the
/// channel's record and tries to conclude the channel a second time.
contract ReenteringAssetHolder {
    Adjudicator internal immutable adj;
    Channel.Params internal params;
    Channel.State internal state;
    bool internal armed;

    bytes4 public reentryError;
    uint8 public phaseSeen;

    constructor(Adjudicator adj_) {
        adj = adj_;
    }

    function arm(Channel.Params calldata p, Channel.State calldata s) external {
        params = p;
        state.channelId = s.channelId;
        state.version = s.version;
        state.isFinal = s.isFinal;
        state.appData = s.appData;
        for (uint256 i = 0; i < s.outcome.assets.length; ++i) {
            state.outcome.assets.push(s.outcome.assets[i]);
            state.outcome.balances.push(s.outcome.balances[i]);
        }
        armed = true;
    }

    function setOutcome(bytes32 channelId, address[2] calldata, uint256[2] calldata) external {
        if (!armed) return;
        armed = false;
        (,, IAdjudicator.Phase phase,) = adj.disputes(channelId);
        phaseSeen = uint8(phase);
        try adj.conclude(params, state, new Channel.State[](0)) {
            reentryError = bytes4(0);
        } catch (bytes memory err) {
            reentryError = bytes4(err);
        }
    }
}
