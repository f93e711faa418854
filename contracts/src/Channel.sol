// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Channel
/// @notice The data model shared by the adjudicator, the asset holders, the hub and the SDK
/// (DESIGN.md section 2). Two-party channels only.
library Channel {
    /// @notice Fixed parameters of a channel. Its id is `keccak256(abi.encode(params))`.
    struct Params {
        /// Seconds a registered state can be refuted before it may be concluded.
        uint64 challengeDuration;
        /// Makes ids of channels between the same participants unique.
        uint256 nonce;
        /// The two participants: index 0 and index 1 in every balance list.
        address[2] participants;
        /// A basic (ledger) channel, funded by deposits in the asset holders.
        bool ledger;
        /// A virtual channel, funded by locks in two ledger channels.
        bool isVirtual;
        /// Reserved for apps; zero for payment channels.
        address app;
    }

    /// @notice A lock (the seed's nanocontract): coins of the parent set aside for a sub-channel.
    struct SubAlloc {
        /// Id of the sub-channel.
        bytes32 id;
        /// Locked amount per asset, in the order of the parent's `assets`.
        uint256[] balances;
        /// Participant i of the sub-channel is participant `indexMap[i]` of the parent.
        uint16[2] indexMap;
    }

    /// @notice Who gets what when the channel concludes.
    struct Allocation {
        /// Asset holder contracts (one per asset: ETH, each ERC20).
        address[] assets;
        /// `balances[a][p]`: amount of asset `a` owed to participant `p`.
        uint256[2][] balances;
        /// Sub-channels funded from this channel.
        SubAlloc[] locked;
    }

    /// @notice One version of a channel's state.
    struct State {
        bytes32 channelId;
        uint64 version;
        Allocation outcome;
        /// Reserved for apps; empty for payment channels.
        bytes appData;
        /// A final state can be concluded at once and never refuted.
        bool isFinal;
    }

    /// @notice A state with its params and both participants' signatures
    /// (65-byte r||s||v, low s) over `Adjudicator.hashState(state)`.
    struct SignedState {
        Params params;
        State state;
        bytes[2] sigs;
    }

    /// @notice EIP-712 type of a signed channel state. The domain is
    /// `("Ingrid", "1", chainid, adjudicator)`; `outcomeHash = keccak256(abi.encode(outcome))`,
    /// `appDataHash = keccak256(appData)`.
    bytes32 internal constant STATE_TYPEHASH = keccak256(
        "ChannelState(bytes32 channelId,uint64 version,bytes32 outcomeHash,bytes32 appDataHash,bool isFinal)"
    );

    /// @notice The channel id of `params`.
    function id(Params memory params) internal pure returns (bytes32) {
        return keccak256(abi.encode(params));
    }

    /// @notice The EIP-712 struct hash of `state` (before the domain is applied).
    function structHash(State memory state) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                STATE_TYPEHASH,
                state.channelId,
                state.version,
                keccak256(abi.encode(state.outcome)),
                keccak256(state.appData),
                state.isFinal
            )
        );
    }
}
