// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IAssetHolder
/// @notice Holds one asset (ETH or one ERC20 token) for ledger channels. Deposits are credited
/// to a funding id `keccak256(abi.encode(channelId, participant))`. When the adjudicator sets
/// a channel's outcome, each participant can withdraw its share with a signed authorisation;
/// if the channel was underfunded, every participant gets its own deposits back instead. No
/// deposit is ever destroyed: an excess above the outcome is credited by the rule documented
/// in `AssetHolder`. Deposits on standby (`depositStandby`) fund only what a signed outcome
/// needs beyond the deposits, and otherwise go back to their depositors.
interface IAssetHolder {
    /// A participant's signed permission to pay `amount` of its holding in a settled channel to
    /// `receiver`, once. EIP-712 type
    /// `Withdrawal(bytes32 channelId,address participant,address receiver,uint256 amount,uint256 nonce)`
    /// in the domain `("IngridAssetHolder", "1", chainid, this asset holder)`.
    struct Withdrawal {
        bytes32 channelId;
        address participant;
        address receiver;
        /// Exactly what is paid; at most the participant's holding at the time of withdrawal
        /// (whatever else it holds stays), never zero.
        uint256 amount;
        /// Must equal `nonces(fundingId(channelId, participant))`; a withdrawal increments it,
        /// so every authorisation is used at most once.
        uint256 nonce;
    }

    /// `amount` was deposited for `participant` in `channelId`; `total` is its new holding.
    event Deposited(
        bytes32 indexed channelId, address indexed participant, uint256 amount, uint256 total
    );

    /// `amount` was put on standby for `participant` in `channelId`; `total` is its standby.
    event StandbyDeposited(
        bytes32 indexed channelId, address indexed participant, uint256 amount, uint256 total
    );

    /// The adjudicator set the outcome of `channelId` to `balances`. `credited` are the two
    /// participants' holdings after it: the balances plus each one's share of any excess
    /// deposit and what is left of its standby (funded), or the deposits and standbys
    /// themselves (`refunded`: the channel was underfunded and they stay with their
    /// depositors' participants). See `AssetHolder`.
    event OutcomeSet(
        bytes32 indexed channelId, uint256[2] balances, uint256[2] credited, bool refunded
    );

    /// `amount` of `participant`'s holding in `channelId` was paid to `receiver` by the
    /// authorisation with `nonce` (the funding id's next nonce is now `nonce + 1`).
    event Withdrawn(
        bytes32 indexed channelId,
        address indexed participant,
        address receiver,
        uint256 amount,
        uint256 nonce
    );

    /// Credits `amount` to (`channelId`, `participant`). For ETH `msg.value` must equal
    /// `amount`; for an ERC20 the holder pulls `amount` with `transferFrom` and credits what
    /// it actually received.
    function deposit(bytes32 channelId, address participant, uint256 amount) external payable;

    /// Puts `amount` on standby for (`channelId`, `participant`), paid like `deposit`. A
    /// standby is not part of the channel's funding: at settlement it covers only what the
    /// outcome needs beyond the deposits (a state whose raised total both participants
    /// signed), in proportion to the two standbys; the rest is credited back to its
    /// participant's holding. Reverts once the channel is settled.
    function depositStandby(bytes32 channelId, address participant, uint256 amount) external payable;

    /// Adjudicator only: records the final balances of a concluded channel, once, and credits
    /// everything held for its two participants (see `OutcomeSet`).
    function setOutcome(
        bytes32 channelId,
        address[2] calldata participants,
        uint256[2] calldata balances
    ) external;

    /// Pays `auth.amount` of a participant's holding in a settled channel to the receiver it
    /// signed for, if the holding covers it and `auth.nonce` is the funding id's next nonce
    /// (then increments it). Anyone may submit the authorisation.
    function withdraw(Withdrawal calldata auth, bytes calldata sig) external;

    /// The adjudicator allowed to set outcomes.
    function adjudicator() external view returns (address);

    /// Current holding of a funding id (at most `2^192 - 1`).
    function holdings(bytes32 fundingId_) external view returns (uint256);

    /// What is on standby for a funding id (zero after settlement, which credits it).
    function standby(bytes32 fundingId_) external view returns (uint256);

    /// The nonce the next withdrawal authorisation of a funding id must carry (starts at 0,
    /// incremented by every withdrawal).
    function nonces(bytes32 fundingId_) external view returns (uint256);

    /// Whether the outcome of `channelId` was set.
    function settled(bytes32 channelId) external view returns (bool);

    /// The funding id of (`channelId`, `participant`).
    function fundingId(bytes32 channelId, address participant) external pure returns (bytes32);

    /// The EIP-712 digest a participant signs to authorise `auth`.
    function withdrawalDigest(Withdrawal calldata auth) external view returns (bytes32);
}
