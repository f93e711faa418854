// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {AssetHolder} from "./AssetHolder.sol";

/// @title Erc20AssetHolder
/// @notice Holds one ERC20 token for ledger channels. `deposit` pulls `amount` from the caller
/// with `transferFrom` (the caller approves this contract first) and credits what this contract
/// actually received, so fee-on-transfer tokens are accounted correctly. Tokens that return no
/// value from `transfer`/`transferFrom` are supported (SafeERC20). Rebasing tokens are not.
/// `deposit` is payable only because the interface is shared with the ETH holder: `_pull`
/// reverts on any ether (`EtherNotAccepted`), so no ether can be locked here.
// slither-disable-next-line locked-ether
contract Erc20AssetHolder is AssetHolder {
    using SafeERC20 for IERC20;

    /// Ether was sent with an ERC20 deposit.
    error EtherNotAccepted();
    /// The constructor was given the zero address as token.
    error ZeroToken();

    /// The token this holder holds.
    IERC20 public immutable token;

    constructor(address adjudicator_, IERC20 token_) AssetHolder(adjudicator_) {
        if (address(token_) == address(0)) revert ZeroToken();
        token = token_;
    }

    function _pull(uint256 amount) internal override returns (uint256) {
        if (msg.value != 0) revert EtherNotAccepted();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        return token.balanceOf(address(this)) - before;
    }

    function _pay(address to, uint256 amount) internal override {
        token.safeTransfer(to, amount);
    }
}
