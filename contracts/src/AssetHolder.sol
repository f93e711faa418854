// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IAssetHolder} from "./IAssetHolder.sol";

/// @title AssetHolder
/// @notice Holds one asset for ledger channels (DESIGN.md section 2). Deposits are credited to
/// a funding id `keccak256(abi.encode(channelId, participant))`; the adjudicator sets each
/// channel's outcome once; participants then pull their holdings with a signed authorisation.
///
/// Settlement rule (`setOutcome`), per asset. Before settlement nothing can be withdrawn, so a
/// participant's holding is exactly what was deposited for it, `d_i`; let `H = d0 + d1` (all
/// that is held for the two participants) and `B = b0 + b1` (the outcome):
/// - funded (`H >= B`): nothing is destroyed. The excess `E = H - B` goes to whoever deposited
///   more than its final balance: participant `i` is credited
///   `b_i + min(E, max(0, d_i - b_i))`. The two credits add up to exactly `H` (if both
///   `d_i >= b_i`, the shares are `d_i - b_i`, which add up to `E`; if one `d_j < b_j`, the
///   other's `d_i - b_i` exceeds `E` and it gets all of `E`). Each gets at least its final
///   balance, and every participant gets at least its own deposits unless the other ended
///   with more than it deposited.
/// - underfunded (`H < B`): the holdings stay as deposited and each participant withdraws its
///   own deposits (`refunded = true`).
///
/// When the rule attributes an excess exactly: from deposits and balances alone the depositor
/// of an excess cannot always be told apart, because payments move balance across. Say the
/// channel's states account for deposits `f_i` (so `B = f0 + f1`), `x_i = d_i - f_i` is what
/// `i` deposited in excess, and `i` paid `q` net to the other (`b_i = f_i - q`). The rule
/// credits `i` with `min(E, x_i + q)` and the other with `max(0, x_j - q)`: exact when nobody
/// paid anybody net (`q = 0`), or when the whole excess came from the net payer (`x_j = 0`),
/// which is the case of a hub top-up that the client never countersigned after the hub paid
/// it; otherwise up to `min(q, x_j)` of the net receiver's excess is credited to the payer,
/// who still never ends with more than its balance plus the excess, nor the receiver with less
/// than its balance.
///
/// Deposits remain possible after settlement; they add to the participant's holding and can
/// be withdrawn like the rest.
///
/// Concrete holders implement how the asset moves in (`_pull`) and out (`_pay`).
abstract contract AssetHolder is IAssetHolder, EIP712("IngridAssetHolder", "1"), ReentrancyGuard {
    /// EIP-712 type hash of `Withdrawal`.
    bytes32 public constant WITHDRAWAL_TYPEHASH = keccak256(
        "Withdrawal(bytes32 channelId,address participant,address receiver,uint256 amount)"
    );

    /// The constructor was given the zero address as adjudicator.
    error ZeroAdjudicator();
    /// Deposits to the zero participant could never be withdrawn.
    error ZeroParticipant();
    /// `setOutcome` was called by someone other than the adjudicator.
    error NotAdjudicator();
    /// The outcome of the channel was already set.
    error AlreadySettled();
    /// The two participants are the same address.
    error InvalidParticipants();
    /// The channel's outcome is not set yet.
    error NotSettled();
    /// The withdrawal authorisation was not signed by its participant.
    error InvalidSignature();
    /// The participant holds nothing in the channel.
    error NothingToWithdraw();
    /// `auth.amount` is not the participant's whole holding.
    error AmountMismatch(uint256 holding);
    /// Paying to the zero address would burn the funds.
    error ZeroReceiver();

    /// @inheritdoc IAssetHolder
    address public immutable adjudicator;

    /// @inheritdoc IAssetHolder
    mapping(bytes32 fundingId => uint256) public holdings;

    /// @inheritdoc IAssetHolder
    mapping(bytes32 channelId => bool) public settled;

    constructor(address adjudicator_) {
        if (adjudicator_ == address(0)) revert ZeroAdjudicator();
        adjudicator = adjudicator_;
    }

    /// @inheritdoc IAssetHolder
    function deposit(bytes32 channelId, address participant, uint256 amount)
        external
        payable
        nonReentrant
    {
        if (participant == address(0)) revert ZeroParticipant();
        uint256 received = _pull(amount);
        bytes32 f = fundingId(channelId, participant);
        uint256 total = holdings[f] + received;
        holdings[f] = total;
        emit Deposited(channelId, participant, received, total);
    }

    /// @inheritdoc IAssetHolder
    function setOutcome(
        bytes32 channelId,
        address[2] calldata participants,
        uint256[2] calldata balances
    ) external {
        if (msg.sender != adjudicator) revert NotAdjudicator();
        if (settled[channelId]) revert AlreadySettled();
        if (participants[0] == participants[1]) revert InvalidParticipants();
        settled[channelId] = true;

        bytes32 f0 = fundingId(channelId, participants[0]);
        bytes32 f1 = fundingId(channelId, participants[1]);
        uint256 d0 = holdings[f0];
        uint256 held = d0 + holdings[f1];
        uint256 owed = balances[0] + balances[1];
        bool refunded = held < owed;
        uint256[2] memory credited;
        if (refunded) {
            credited = [d0, held - d0];
        } else {
            // See the contract's doc: b0 + min(E, max(0, d0 - b0)); the rest is participant 1's.
            uint256 excess = held - owed;
            uint256 above0 = d0 > balances[0] ? d0 - balances[0] : 0;
            credited[0] = balances[0] + (above0 < excess ? above0 : excess);
            credited[1] = held - credited[0];
            holdings[f0] = credited[0];
            holdings[f1] = credited[1];
        }
        emit OutcomeSet(channelId, balances, credited, refunded);
    }

    /// @inheritdoc IAssetHolder
    function withdraw(Withdrawal calldata auth, bytes calldata sig) external nonReentrant {
        if (!settled[auth.channelId]) revert NotSettled();
        if (auth.receiver == address(0)) revert ZeroReceiver();
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(withdrawalDigest(auth), sig);
        if (err != ECDSA.RecoverError.NoError || signer != auth.participant) {
            revert InvalidSignature();
        }
        bytes32 f = fundingId(auth.channelId, auth.participant);
        uint256 holding = holdings[f];
        if (holding == 0) revert NothingToWithdraw();
        if (auth.amount != holding) revert AmountMismatch(holding);

        holdings[f] = 0;
        emit Withdrawn(auth.channelId, auth.participant, auth.receiver, holding);
        _pay(auth.receiver, holding);
    }

    /// @inheritdoc IAssetHolder
    function fundingId(bytes32 channelId, address participant) public pure returns (bytes32) {
        return keccak256(abi.encode(channelId, participant));
    }

    /// @inheritdoc IAssetHolder
    function withdrawalDigest(Withdrawal calldata auth) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    WITHDRAWAL_TYPEHASH,
                    auth.channelId,
                    auth.participant,
                    auth.receiver,
                    auth.amount
                )
            )
        );
    }

    /// @notice The EIP-712 domain separator (`"IngridAssetHolder"`, `"1"`, chain id, this
    /// contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// Takes `amount` of the asset from the caller; returns what was actually received.
    function _pull(uint256 amount) internal virtual returns (uint256 received);

    /// Sends `amount` of the asset to `to`, reverting on failure.
    function _pay(address to, uint256 amount) internal virtual;
}
