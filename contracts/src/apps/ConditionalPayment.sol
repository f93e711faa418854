// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Channel} from "../Channel.sol";
import {IApp} from "../IApp.sol";
import {AppRules} from "./AppRules.sol";

/// @title ConditionalPayment
/// @notice Payments that become the payee's only on delivery: the payer offers `amounts`
/// against `lock`, the hash of what it wants (say, the keccak-256 of a response body); the
/// payee claims them by revealing a preimage of `lock` (the delivery itself). Until the
/// payee claims, the offered coins stay the payer's, which is what it gets if the payee
/// stalls. One offer is pending at a time; a channel carries any number of them in turn and
/// never ends by a move (it closes cooperatively, or concludes with its registered state).
///
/// `appData` is `abi.encode(Data)`, canonical.
contract ConditionalPayment is IApp {
    /// The channel's data.
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

    /// @inheritdoc IApp
    function validTransition(
        Channel.Params calldata,
        Channel.State calldata from,
        Channel.State calldata to,
        uint256 actor
    ) external pure {
        Data memory f = decode(from.appData);
        Data memory t = decode(to.appData);
        if (f.payer > 1 || t.payer != f.payer) revert AppRules.InvalidMove();
        AppRules.requireFinal(to, false);
        uint256 n = from.outcome.balances.length;
        uint256 payer = f.payer;
        uint256[2][] memory next = from.outcome.balances;
        if (f.amounts.length != 0) {
            // Claim: the payee opens the lock and takes the offer.
            if (actor == payer) revert AppRules.NotYourTurn();
            if (
                f.amounts.length != n || t.amounts.length != 0 || t.lock != f.lock
                    || keccak256(t.preimage) != f.lock
            ) revert AppRules.InvalidMove();
            for (uint256 a = 0; a < n; ++a) {
                if (f.amounts[a] > next[a][payer]) revert AppRules.InvalidMove();
                next[a][payer] -= f.amounts[a];
                next[a][1 - payer] += f.amounts[a];
            }
        } else {
            // Offer: the payer sets aside amounts it holds; nothing moves yet.
            if (actor != payer) revert AppRules.NotYourTurn();
            if (t.amounts.length != n || t.preimage.length != 0) revert AppRules.InvalidMove();
            for (uint256 a = 0; a < n; ++a) {
                if (t.amounts[a] > next[a][payer]) revert AppRules.InvalidMove();
            }
        }
        AppRules.requireBalances(to, next);
    }

    /// Decodes `appData`, which must be the canonical encoding of a `Data`.
    function decode(bytes calldata appData) internal pure returns (Data memory d) {
        d = abi.decode(appData, (Data));
        if (keccak256(abi.encode(d)) != keccak256(appData)) revert AppRules.NonCanonicalData();
    }
}
