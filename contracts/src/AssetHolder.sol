// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IAssetHolder} from "./IAssetHolder.sol";

/// @title AssetHolder
/// @notice Holds one asset for ledger channels (DESIGN.md section 2). Deposits are credited to
/// a funding id `keccak256(abi.encode(channelId, participant))`; the adjudicator sets each
/// channel's outcome once; participants then pull their holdings with signed authorisations.
///
/// Settlement rule (`setOutcome`), per asset. Before settlement nothing can be withdrawn, so a
/// participant's holding is exactly what was deposited for it, `d_i`, and its standby exactly
/// what was deposited on standby for it, `s_i`; let `H = d0 + d1` (the channel's funding) and
/// `B = b0 + b1` (the outcome):
/// - funded (`H >= B`): nothing is destroyed. The excess `E = H - B` goes to whoever deposited
///   more than its final balance: participant `i` is credited
///   `b_i + min(E, max(0, d_i - b_i))`. The two credits add up to exactly `H` (if both
///   `d_i >= b_i`, the shares are `d_i - b_i`, which add up to `E`; if one `d_j < b_j`, the
///   other's `d_i - b_i` exceeds `E` and it gets all of `E`). Each gets at least its final
///   balance, and every participant gets at least its own deposits unless the other ended
///   with more than it deposited. Standby deposits are untouched: each is credited back to
///   its depositor's participant.
/// - funded with standby (`H < B <= H + s0 + s1`): the shortfall `B - H` is drawn from the two
///   standbys in proportion to them (`s0`'s share rounded down); each participant is credited
///   `b_i` plus what is left of its standby.
/// - underfunded (`H + s0 + s1 < B`): the deposits and standbys stay with their participants
///   (`refunded = true`).
///
/// Standby deposits (`depositStandby`) are how a participant raises a running channel's total
/// safely (the hub's collateral top-up): the raiser puts the coins on standby, and the other
/// party signs the state with the raised total only once it sees them there. A standby only
/// ever covers an outcome with a total that both signed above the funding; if the channel
/// ends with an earlier state (the raise never countersigned), it all goes back to its
/// depositor. Drawing in proportion favours neither participant; a participant that puts
/// coins on standby without having raised the total only helps the other fund it.
///
/// When the rule attributes an excess exactly: from deposits and balances alone the depositor
/// of an excess cannot always be told apart, because payments move balance across. Say the
/// channel's states account for deposits `f_i` (so `B = f0 + f1`), `x_i = d_i - f_i` is what
/// `i` deposited in excess, and `i` paid `q` net to the other (`b_i = f_i - q`). The rule
/// credits `i` with `min(E, x_i + q)` and the other with `max(0, x_j - q)`: exact when nobody
/// paid anybody net (`q = 0`), or when the whole excess came from the net payer (`x_j = 0`);
/// otherwise up to `min(q, x_j)` of the net receiver's excess is credited to the payer, who
/// still never ends with more than its balance plus the excess, nor the receiver with less
/// than its balance. This is why a raise goes through a standby, never through `deposit`.
///
/// Deposits remain possible after settlement; they add to the participant's holding and can
/// be withdrawn like the rest.
///
/// Withdrawals (`withdraw`): an authorisation names the amount to pay and the funding id's
/// next nonce (`nonces`). It pays exactly that amount, so anything else held (a late deposit,
/// say 1 wei sent by anyone to block an exact-amount rule) stays for a later authorisation,
/// and it is spent when used: the nonce moves on, so it can never be replayed, even after the
/// holding is back at the same amount. An amount rather than "the whole holding" is signed so
/// that an authorisation never moves more than its signer saw and agreed to.
///
/// A holding and its nonce share one storage slot: a holding plus its standby is at most
/// `2^192 - 1` (a deposit that would exceed it reverts with `HoldingOverflow`), so refunding
/// both always fits. An outcome whose credits would exceed it (only possible with a token
/// whose supply exceeds `2^192`, and balances both participants signed) is settled like an
/// underfunded one: the deposits and standbys stay with their participants.
///
/// Concrete holders implement how the asset moves in (`_pull`) and out (`_pay`).
abstract contract AssetHolder is IAssetHolder, EIP712("IngridAssetHolder", "1"), ReentrancyGuard {
    /// EIP-712 type hash of `Withdrawal`.
    bytes32 public constant WITHDRAWAL_TYPEHASH = keccak256(
        "Withdrawal(bytes32 channelId,address participant,address receiver,uint256 amount,uint256 nonce)"
    );

    /// The largest holding of a funding id (it shares a slot with the nonce).
    uint256 internal constant MAX_HOLDING = type(uint192).max;

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
    /// `auth.amount` is zero.
    error NothingToWithdraw();
    /// `auth.amount` exceeds the participant's holding.
    error InsufficientHolding(uint256 holding);
    /// `auth.nonce` is not the funding id's next nonce (it was used, or an earlier one was not).
    error InvalidNonce(uint256 expected);
    /// Paying to the zero address would burn the funds.
    error ZeroReceiver();
    /// The deposit would take the holding plus the standby above `2^192 - 1`.
    error HoldingOverflow();

    /// A funding id's holding and the nonce of its next withdrawal, in one slot.
    struct Account {
        uint192 holding;
        uint64 nonce;
    }

    /// @inheritdoc IAssetHolder
    address public immutable adjudicator;

    mapping(bytes32 fundingId => Account) private _accounts;

    /// Deposits on standby, per funding id, until settlement (see the contract's doc).
    mapping(bytes32 fundingId => uint256) private _standby;

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
        bytes32 id = fundingId(channelId, participant);
        Account storage a = _accounts[id];
        uint256 total = a.holding + received;
        if (total + _standby[id] > MAX_HOLDING) revert HoldingOverflow();
        // forge-lint: disable-next-line(unsafe-typecast)
        a.holding = uint192(total); // fits: checked on the line above
        emit Deposited(channelId, participant, received, total);
    }

    /// @inheritdoc IAssetHolder
    function depositStandby(bytes32 channelId, address participant, uint256 amount)
        external
        payable
        nonReentrant
    {
        if (participant == address(0)) revert ZeroParticipant();
        if (settled[channelId]) revert AlreadySettled();
        uint256 received = _pull(amount);
        bytes32 id = fundingId(channelId, participant);
        uint256 total = _standby[id] + received;
        if (total + _accounts[id].holding > MAX_HOLDING) revert HoldingOverflow();
        _standby[id] = total;
        emit StandbyDeposited(channelId, participant, received, total);
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
        Account storage a0 = _accounts[f0];
        Account storage a1 = _accounts[f1];
        uint256[2] memory standbys = [_standby[f0], _standby[f1]];
        if (standbys[0] != 0) delete _standby[f0];
        if (standbys[1] != 0) delete _standby[f1];
        (uint256[2] memory credited, bool refunded) =
            credits([uint256(a0.holding), uint256(a1.holding)], standbys, balances);
        // forge-lint: disable-next-line(unsafe-typecast)
        a0.holding = uint192(credited[0]); // fits: `credits` keeps each within MAX_HOLDING
        // forge-lint: disable-next-line(unsafe-typecast)
        a1.holding = uint192(credited[1]); // fits: `credits` keeps each within MAX_HOLDING
        emit OutcomeSet(channelId, balances, credited, refunded);
    }

    /// The settlement rule of the contract's doc: each participant's holding after an outcome of
    /// `balances` over `deposits` and `standbys`, and whether the channel was underfunded (or
    /// a credit would not fit a slot) so that everyone keeps what it put in.
    function credits(
        uint256[2] memory deposits,
        uint256[2] memory standbys,
        uint256[2] calldata balances
    ) public pure returns (uint256[2] memory credited, bool refunded) {
        uint256 held = deposits[0] + deposits[1];
        uint256 need = balances[0] + balances[1];
        credited = [deposits[0] + standbys[0], deposits[1] + standbys[1]];
        if (held + standbys[0] + standbys[1] < need) return (credited, true);
        uint256 c0;
        if (held >= need) {
            // b0 + min(E, max(0, d0 - b0)), and the standby back; the rest is participant 1's.
            uint256 excess = held - need;
            uint256 above0 = deposits[0] > balances[0] ? deposits[0] - balances[0] : 0;
            c0 = balances[0] + (above0 < excess ? above0 : excess) + standbys[0];
        } else {
            // The shortfall comes out of the standbys, in proportion to them (`s0`'s share
            // rounded down); the rest is participant 1's.
            c0 = balances[0] + standbys[0]
                - Math.mulDiv(need - held, standbys[0], standbys[0] + standbys[1]);
        }
        uint256 c1 = held + standbys[0] + standbys[1] - c0;
        // Cannot be held in a slot (see the contract's doc): settled like an underfunded one.
        if (c0 > MAX_HOLDING || c1 > MAX_HOLDING) return (credited, true);
        return ([c0, c1], false);
    }

    /// @inheritdoc IAssetHolder
    function withdraw(Withdrawal calldata auth, bytes calldata sig) external nonReentrant {
        if (!settled[auth.channelId]) revert NotSettled();
        if (auth.receiver == address(0)) revert ZeroReceiver();
        if (auth.amount == 0) revert NothingToWithdraw();
        // The unused third value only details a malformed signature; `err` is checked below.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(withdrawalDigest(auth), sig);
        if (err != ECDSA.RecoverError.NoError || signer != auth.participant) {
            revert InvalidSignature();
        }
        bytes32 id = fundingId(auth.channelId, auth.participant);
        Account storage a = _accounts[id];
        // A standby `setOutcome` did not credit (put under an address that is not one of the
        // channel's participants) is withdrawable like a late deposit.
        uint256 parked = _standby[id];
        if (parked != 0) {
            delete _standby[id];
            // forge-lint: disable-next-line(unsafe-typecast)
            a.holding += uint192(parked); // fits: holding plus standby stay within MAX_HOLDING
        }
        uint64 nonce = a.nonce;
        uint192 holding = a.holding;
        if (auth.nonce != nonce) revert InvalidNonce(nonce);
        if (auth.amount > holding) revert InsufficientHolding(holding);

        // forge-lint: disable-next-line(unsafe-typecast)
        a.holding = holding - uint192(auth.amount); // fits: at most the holding
        a.nonce = nonce + 1;
        emit Withdrawn(auth.channelId, auth.participant, auth.receiver, auth.amount, nonce);
        _pay(auth.receiver, auth.amount);
    }

    /// @inheritdoc IAssetHolder
    function holdings(bytes32 fundingId_) external view returns (uint256) {
        return _accounts[fundingId_].holding;
    }

    /// @inheritdoc IAssetHolder
    function standby(bytes32 fundingId_) external view returns (uint256) {
        return _standby[fundingId_];
    }

    /// @inheritdoc IAssetHolder
    function nonces(bytes32 fundingId_) external view returns (uint256) {
        return _accounts[fundingId_].nonce;
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
                    auth.amount,
                    auth.nonce
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
