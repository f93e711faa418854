// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAssetHolder} from "../../src/IAssetHolder.sol";

/// Rejects every ether payment.
contract RejectingReceiver {
    receive() external payable {
        revert("no thanks");
    }
}

/// A contract wallet whose `receive` needs far more than 2300 gas.
contract ExpensiveReceiver {
    uint256[] internal log;

    receive() external payable {
        for (uint256 i = 0; i < 5; ++i) {
            log.push(msg.value);
        }
    }

    function entries() external view returns (uint256) {
        return log.length;
    }
}

/// On receiving ether, tries to withdraw again (a second, valid authorisation it was given).
contract ReentrantReceiver {
    IAssetHolder internal holder;
    IAssetHolder.Withdrawal internal auth;
    bytes internal sig;
    bool internal armed;
    bytes public reentryError;

    function arm(IAssetHolder h, IAssetHolder.Withdrawal calldata a, bytes calldata s) external {
        holder = h;
        auth = a;
        sig = s;
        armed = true;
    }

    receive() external payable {
        if (!armed) return;
        armed = false;
        try holder.withdraw(auth, sig) {
            reentryError = "";
        } catch (bytes memory err) {
            reentryError = err;
        }
    }
}
