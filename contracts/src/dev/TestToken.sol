// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice "Ingrid Test USD" (tUSD, 6 decimals), for the local dev stack and the demo ONLY.
/// Anyone can mint any amount: never deploy it where the token is meant to have value.
contract TestToken is ERC20 {
    constructor() ERC20("Ingrid Test USD", "tUSD") {}

    /// @notice 6 decimals, like the USD stablecoins it stands in for.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints `amount` to `to`. Unrestricted: development and demo use only.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
