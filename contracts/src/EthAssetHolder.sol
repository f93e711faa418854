// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AssetHolder} from "./AssetHolder.sol";

/// @title EthAssetHolder
/// @notice Holds ether for ledger channels. `deposit` must be sent with `msg.value == amount`;
/// withdrawals are paid with a plain call forwarding all gas (no 2300-gas `transfer`), so
/// contract wallets can receive.
contract EthAssetHolder is AssetHolder {
    /// `msg.value` differs from the declared amount.
    error WrongValue(uint256 value, uint256 amount);
    /// The receiver rejected the payment.
    error PaymentFailed(address receiver);

    constructor(address adjudicator_) AssetHolder(adjudicator_) {}

    function _pull(uint256 amount) internal override returns (uint256) {
        if (msg.value != amount) revert WrongValue(msg.value, amount);
        return amount;
    }

    function _pay(address to, uint256 amount) internal override {
        // Only reached from `withdraw`: `to` is the receiver the participant signed for, and
        // `amount` was already debited from its holding (a plain call, so contract wallets can
        // receive; `withdraw` is nonReentrant).
        // slither-disable-next-line arbitrary-send-eth,low-level-calls
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert PaymentFailed(to);
    }
}
