// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {Channel} from "./Channel.sol";
import {IAdjudicator} from "./IAdjudicator.sol";
import {IAssetHolder} from "./IAssetHolder.sol";
import {IApp} from "./IApp.sol";

/// @title Adjudicator
/// @notice Settles two-party ledger channels and the sub-channels (e.g. virtual channels)
/// locked in them from states signed off chain (DESIGN.md sections 2 and 3).
///
/// Life cycle of a ledger channel: `register` opens a dispute with a signed state and the
/// signed states of all its locks; `refute` replaces a registered state (of the ledger channel
/// or of one of its sub-channels) with a strictly newer one until the record's timeout;
/// `conclude` pushes the outcome to the asset holders after every involved timeout passed. A
/// final state without locks can skip all of this through `concludeFinal`.
///
/// A final state ends the dispute of the record it is written to at once, however it gets
/// there (`register`, `refute`, or a parent's `register` / `refute` that updates a shared
/// sub-channel record): the record's timeout becomes the current time, so nothing can replace
/// it, not even another final state with a higher version. Both parents of a virtual channel
/// thus settle with the first final state of it that reached its record. This never lets a
/// ledger channel conclude before its locks: `conclude` still waits for every lock's record
/// to time out, and a final ledger state with locks only ends the ledger record's dispute.
///
/// Only ledger channels hold locks: a sub-channel's state with a non-empty `outcome.locked` is
/// refused (`NestedLocks`) wherever it is given, in `register` and `refute` alike. Sub-channels
/// are thus exactly one level deep, which is all the product uses (a virtual channel's payment
/// states never lock anything). This bounds `conclude`: it reads one registered sub-state per
/// lock of the ledger state and so costs gas linear in the number of locks. Were nesting
/// allowed, the two ends of a virtual channel could refute its record with a state locking a
/// new sub-channel, then that one's record the same way, and so on: every level could push the
/// parent's conclusion back by up to a challenge duration, and a deep enough chain (about 75
/// levels) would make `conclude` run out of EVM stack and freeze the parent's collateral (the
/// hub's) for good. A depth counter would not help, since records are built bottom-up.
///
/// Dispute records: a ledger channel's record is keyed by its channel id; a sub-channel's by
/// `subChannelKey(id, assets, totals)` = `keccak256(abi.encode(id, assets, totals))`, where
/// `assets` are the sub-channel's assets (its parent's) and `totals[a]` is the sub-channel's
/// whole value in asset `a` (the sum of its two balances, as it holds no locks), which must
/// equal the amount its parent locked for it. A virtual channel locked with the same amounts
/// in two ledger channels (Alice-Ingrid and Ingrid-Bob) thus has one record that settles both;
/// a state of it with another total (say, signed by its two ends and registered through a
/// ledger channel of their own) lands on another record, which a parent with different amounts
/// never reads.
/// Sub-channel records are never marked `Concluded`: each parent concludes from the same record.
///
/// A sub-channel's challenge duration may not exceed its ledger channel's, so every
/// sub-channel record times out at most the ledger channel's challenge duration after it was
/// created.
///
/// Records of concluded ledger channels keep the concluded version and state hash; after
/// `concludeFinal` the record's `timeout` is the time of the conclusion.
///
/// Every check reverts with a custom error; nothing malformed is accepted silently.
contract Adjudicator is IAdjudicator, EIP712("Ingrid", "1") {
    /// `sigs[index]` is malformed or was not made by `participants[index]`.
    error InvalidSignature(uint256 index);
    /// A state's channel id is not the id of its params (or of the lock that names it).
    error ChannelIdMismatch();
    /// The two participants of a channel are the same address or the zero address.
    error InvalidParticipants();
    /// The channel is not a ledger channel (or claims to be both ledger and virtual).
    error NotLedger();
    /// A ledger channel was given where a sub-channel was expected.
    error SubChannelIsLedger();
    /// The ledger channel already has a dispute record.
    error AlreadyRegistered();
    /// There is no record in phase `Dispute` for the channel.
    error NotRefutable();
    /// The record's timeout passed: it can no longer be refuted.
    error TimeoutPassed();
    /// The given version is not strictly higher than the registered one.
    error VersionNotHigher();
    /// The record's timeout has not passed yet.
    error TimeoutNotPassed();
    /// The given state is not the registered one.
    error StateHashMismatch();
    /// A sub-channel's total value per asset differs from the amount locked for it.
    error LockSumMismatch();
    /// A sub-channel's assets differ from its parent's, or an outcome lists an asset twice.
    error AssetMismatch();
    /// An outcome's balance list (or a lock's amount list) does not have one entry per asset.
    error BalancesLengthMismatch();
    /// The number of sub-channel states differs from the number of the ledger state's locks.
    error SubCountMismatch();
    /// `concludeFinal` needs a final state.
    error NotFinal();
    /// `concludeFinal` needs a state without locks.
    error HasLocks();
    /// The ledger channel already concluded.
    error AlreadyConcluded();
    /// The ledger channel has no record to conclude (phase `None`).
    error NotRegistered();
    /// A lock's index map has an entry other than 0 or 1.
    error InvalidIndexMap();
    /// `now + challengeDuration` does not fit in 64 bits.
    error TimeoutOverflow();
    /// A sub-channel's challenge duration exceeds its ledger channel's.
    error ChallengeDurationTooLong();
    /// A sub-channel's state has locks: only ledger channels may lock sub-channels.
    error NestedLocks();
    /// A ledger channel names an app: apps run in sub-channels only.
    error LedgerWithApp();
    /// `progress` was called for a channel without an app (or for a ledger channel).
    error NoApp();
    /// The record cannot be advanced now: it is still refutable, or it is fixed.
    error NotProgressable();
    /// A forced move's state is not the next version of the registered one.
    error VersionNotNext();
    /// A forced move changes the assets or the total value per asset.
    error ValueNotPreserved();
    /// The record had its `MAX_FORCED_MOVES` forced moves.
    error ForceExecutionOver();
    /// The actor of a forced move is not 0 or 1.
    error InvalidActor();
    /// A forced move starts from a final state.
    error FinalState();
    /// A sub-channel's app data is longer than `MAX_APP_DATA`, or not empty without an app.
    error AppDataTooLong();

    /// The most moves that can be force-executed on one record: with the refutation period and
    /// the first move's window, a sub-channel record is fixed at most
    /// `(2 + MAX_FORCED_MOVES) * challengeDuration` after it was created.
    uint8 public constant MAX_FORCED_MOVES = 16;

    /// The longest app data of a sub-channel state (none without an app). A parent's
    /// `conclude` carries one registered state per lock: bounding each keeps that call within
    /// a transaction's size whatever two colluding participants sign, so their parent (the
    /// hub's coins) can always conclude.
    uint256 public constant MAX_APP_DATA = 1024;

    /// Keyed by the channel id of a ledger channel, by `subChannelKey` of a sub-channel.
    mapping(bytes32 key => Dispute) internal _disputes;

    // ---------------------------------------------------------------- external

    /// @inheritdoc IAdjudicator
    function register(Channel.SignedState calldata ledger, Channel.SignedState[] calldata subs)
        external
    {
        _requireLedgerParams(ledger.params);
        (bytes32 id, bytes32 stateHash) = _verifySigned(ledger);
        _requireValidOutcome(ledger.state.outcome);

        Dispute storage d = _disputes[id];
        if (d.phase != Phase.None) revert AlreadyRegistered();
        (uint64 timeout,) = _timeout(ledger);
        d.timeout = timeout;
        d.version = ledger.state.version;
        d.phase = Phase.Dispute;
        d.stateHash = stateHash;
        emit Registered(id, bytes32(0), timeout, ledger.params, ledger.state);

        _registerSubs(id, ledger.state.outcome, subs, ledger.params.challengeDuration);
    }

    /// @inheritdoc IAdjudicator
    function refute(Channel.SignedState calldata ch, Channel.SignedState[] calldata subs) external {
        (bytes32 id, bytes32 stateHash) = _verifySigned(ch);
        Channel.Allocation calldata outcome = ch.state.outcome;
        _requireValidOutcome(outcome);

        // A sub-channel's record is found by the totals of the given state: one with another
        // total than the registered state's finds no record. A sub-channel holds no locks.
        bytes32 key = id;
        if (!ch.params.ledger) {
            if (outcome.locked.length != 0) revert NestedLocks();
            _requireAppData(ch.params, ch.state);
            key = keccak256(abi.encode(id, outcome.assets, _totals(outcome)));
        }
        Dispute storage d = _disputes[key];
        if (d.phase != Phase.Dispute) revert NotRefutable();
        if (!_refutable(d)) revert TimeoutPassed();
        if (ch.state.version <= d.version) revert VersionNotHigher();
        d.version = ch.state.version;
        d.stateHash = stateHash;
        // A final state ends the record's dispute at once: nothing may replace it.
        uint64 timeout = d.timeout;
        if (ch.state.isFinal) {
            timeout = uint64(block.timestamp);
            d.timeout = timeout;
            d.window = 0;
        }
        emit Refuted(id, bytes32(0), timeout, ch.params, ch.state);

        // A sub-channel has no locks, so it takes no sub-states.
        _registerSubs(id, outcome, subs, ch.params.challengeDuration);
    }

    /// @inheritdoc IAdjudicator
    function conclude(
        Channel.Params calldata params,
        Channel.State calldata state,
        Channel.State[] calldata subStates
    ) external {
        _requireLedgerParams(params);
        bytes32 id = _channelId(params);
        if (state.channelId != id) revert ChannelIdMismatch();

        Dispute storage d = _disputes[id];
        if (d.phase == Phase.None) revert NotRegistered();
        if (d.phase == Phase.Concluded) revert AlreadyConcluded();
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < d.timeout) revert TimeoutNotPassed();
        if (_hashState(state) != d.stateHash) revert StateHashMismatch();
        _requireValidOutcome(state.outcome);

        uint256[2][] memory balances = state.outcome.balances;
        _creditSubs(state.outcome, balances, subStates);

        d.phase = Phase.Concluded;
        _pushOutcome(id, params.participants, state.outcome.assets, balances);
        emit Concluded(id, state.version, state.outcome.assets, balances);
    }

    /// @inheritdoc IAdjudicator
    function concludeFinal(Channel.SignedState calldata ledger) external {
        _requireLedgerParams(ledger.params);
        if (!ledger.state.isFinal) revert NotFinal();
        if (ledger.state.outcome.locked.length != 0) revert HasLocks();
        (bytes32 id, bytes32 stateHash) = _verifySigned(ledger);
        _requireValidOutcome(ledger.state.outcome);

        Dispute storage d = _disputes[id];
        if (d.phase == Phase.Concluded) revert AlreadyConcluded();
        d.timeout = uint64(block.timestamp);
        d.version = ledger.state.version;
        d.phase = Phase.Concluded;
        d.stateHash = stateHash;

        uint256[2][] memory balances = ledger.state.outcome.balances;
        _pushOutcome(id, ledger.params.participants, ledger.state.outcome.assets, balances);
        emit Concluded(id, ledger.state.version, ledger.state.outcome.assets, balances);
    }

    /// @inheritdoc IAdjudicator
    function progress(
        Channel.Params calldata params,
        Channel.State calldata from,
        Channel.State calldata to,
        uint256 actor,
        bytes calldata sig
    ) external {
        if (params.ledger || params.app == address(0)) revert NoApp();
        if (actor > 1) revert InvalidActor();
        bytes32 id = _channelId(params);
        if (from.channelId != id || to.channelId != id) revert ChannelIdMismatch();
        Dispute storage d = _disputes[_moveKey(id, from.outcome, to.outcome)];
        if (d.phase == Phase.Dispute) {
            if (_refutable(d)) revert NotProgressable();
        } else if (d.phase != Phase.ForceExec) {
            revert NotProgressable();
        }
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= d.timeout) revert NotProgressable();
        if (_hashState(from) != d.stateHash) revert StateHashMismatch();
        if (from.isFinal) revert FinalState();
        if (to.version != uint256(from.version) + 1) revert VersionNotNext();
        if (d.forcedMoves >= MAX_FORCED_MOVES) revert ForceExecutionOver();
        bytes32 digest = _hashState(to);
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, sig);
        if (err != ECDSA.RecoverError.NoError || signer != params.participants[actor]) {
            revert InvalidSignature(actor);
        }
        IApp(params.app).validTransition(params, from, to, actor);
        _advance(d, params, to, digest, actor);
    }

    /// @inheritdoc IAdjudicator
    function forceExecution(bytes32 key) external view returns (uint64 window, uint8 forcedMoves) {
        Dispute storage d = _disputes[key];
        return (d.window, d.forcedMoves);
    }

    /// @inheritdoc IAdjudicator
    function disputes(bytes32 channelId_)
        external
        view
        returns (uint64 timeout, uint64 version, Phase phase, bytes32 stateHash)
    {
        Dispute storage d = _disputes[channelId_];
        return (d.timeout, d.version, d.phase, d.stateHash);
    }

    /// @inheritdoc IAdjudicator
    function subChannelKey(bytes32 channelId_, address[] calldata assets, uint256[] calldata totals)
        external
        pure
        returns (bytes32)
    {
        return _subChannelKey(channelId_, assets, totals);
    }

    /// @inheritdoc IAdjudicator
    function channelId(Channel.Params calldata params) external pure returns (bytes32) {
        return _channelId(params);
    }

    /// @inheritdoc IAdjudicator
    function hashState(Channel.State calldata state) external view returns (bytes32) {
        return _hashState(state);
    }

    /// @notice The EIP-712 domain separator (`"Ingrid"`, `"1"`, chain id, this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- hashing

    /// Same as `Channel.id`, without copying the params to memory.
    function _channelId(Channel.Params calldata params) internal pure returns (bytes32) {
        return keccak256(abi.encode(params));
    }

    /// The record key of a sub-channel (`subChannelKey`).
    function _subChannelKey(bytes32 id, address[] calldata assets, uint256[] calldata totals)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(id, assets, totals));
    }

    /// Same as `_hashTypedDataV4(Channel.structHash(state))`, without copying the state to
    /// memory (the tests check both give the same digest).
    function _hashState(Channel.State calldata state) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                Channel.STATE_TYPEHASH,
                state.channelId,
                state.version,
                keccak256(abi.encode(state.outcome)),
                keccak256(state.appData),
                state.isFinal
            )
        );
        return _hashTypedDataV4(structHash);
    }

    // ---------------------------------------------------------------- checks

    function _requireLedgerParams(Channel.Params calldata params) internal pure {
        if (!params.ledger || params.isVirtual) revert NotLedger();
        if (params.app != address(0)) revert LedgerWithApp();
    }

    /// A sub-channel state's app data: empty without an app, at most `MAX_APP_DATA` bytes with
    /// one.
    function _requireAppData(Channel.Params calldata params, Channel.State calldata state)
        internal
        pure
    {
        uint256 n = state.appData.length;
        if (params.app == address(0)) {
            if (n != 0) revert AppDataTooLong();
        } else if (n > MAX_APP_DATA) {
            revert AppDataTooLong();
        }
    }

    /// Whether a record in phase `Dispute` can still be refuted: before `timeout - window`.
    function _refutable(Dispute storage d) internal view returns (bool) {
        // forge-lint: disable-next-line(block-timestamp)
        return block.timestamp + uint256(d.window) < d.timeout;
    }

    /// Checks the participants, the channel id and both signatures; returns the channel id and
    /// the state's digest (`hashState`).
    function _verifySigned(Channel.SignedState calldata s)
        internal
        view
        returns (bytes32 id, bytes32 digest)
    {
        address p0 = s.params.participants[0];
        address p1 = s.params.participants[1];
        if (p0 == address(0) || p1 == address(0) || p0 == p1) revert InvalidParticipants();
        id = _channelId(s.params);
        if (s.state.channelId != id) revert ChannelIdMismatch();
        digest = _hashState(s.state);
        for (uint256 i = 0; i < 2; ++i) {
            // The unused third value only details a malformed signature; `err` is checked below.
            // slither-disable-next-line unused-return
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, s.sigs[i]);
            if (err != ECDSA.RecoverError.NoError || signer != s.params.participants[i]) {
                revert InvalidSignature(i);
            }
        }
    }

    /// One balance pair per asset, and no asset listed twice (a second `setOutcome` on the
    /// same holder would revert and block the channel forever).
    function _requireValidOutcome(Channel.Allocation calldata outcome) internal pure {
        uint256 n = outcome.assets.length;
        if (outcome.balances.length != n) revert BalancesLengthMismatch();
        for (uint256 i = 1; i < n; ++i) {
            for (uint256 j = 0; j < i; ++j) {
                if (outcome.assets[i] == outcome.assets[j]) revert AssetMismatch();
            }
        }
    }

    /// A lock has one amount per asset of its parent and an index map into {0, 1}.
    function _requireValidLock(Channel.SubAlloc calldata lock, uint256 numAssets) internal pure {
        if (lock.balances.length != numAssets) revert BalancesLengthMismatch();
        if (lock.indexMap[0] > 1 || lock.indexMap[1] > 1) revert InvalidIndexMap();
    }

    /// The sub-channel holds the same assets as its parent, in the same order.
    function _requireSameAssets(address[] calldata parent, address[] calldata sub) internal pure {
        uint256 n = parent.length;
        if (sub.length != n) revert AssetMismatch();
        for (uint256 a = 0; a < n; ++a) {
            if (sub[a] != parent[a]) revert AssetMismatch();
        }
    }

    /// The timeout and window of a new record for `s`: a final state is fixed at once; any
    /// other is refutable for a challenge duration, and an app channel's then gets a second
    /// one in which force-execution may begin.
    function _timeout(Channel.SignedState calldata s)
        internal
        view
        returns (uint64 timeout, uint64 window)
    {
        if (s.state.isFinal) return (uint64(block.timestamp), 0);
        uint64 cd = s.params.challengeDuration;
        if (s.params.app != address(0)) window = cd;
        uint256 t = block.timestamp + uint256(cd) + uint256(window);
        if (t > type(uint64).max) revert TimeoutOverflow();
        // forge-lint: disable-next-line(unsafe-typecast)
        timeout = uint64(t); // fits: checked on the line above
    }

    // ---------------------------------------------------------------- register / refute

    /// Registers `subs[l]` as the state of `parent`'s lock `l`, for every lock. No state in
    /// `subs` may hold locks (checked first, for all of them: `NestedLocks`), and `subs` must
    /// have exactly one state per lock. `parentDuration` is the parent's challenge duration.
    function _registerSubs(
        bytes32 parentId,
        Channel.Allocation calldata parent,
        Channel.SignedState[] calldata subs,
        uint64 parentDuration
    ) internal {
        uint256 numSubs = subs.length;
        for (uint256 i = 0; i < numSubs; ++i) {
            if (subs[i].state.outcome.locked.length != 0) revert NestedLocks();
        }
        uint256 numLocks = parent.locked.length;
        if (numSubs != numLocks) revert SubCountMismatch();
        uint256 numAssets = parent.assets.length;
        for (uint256 l = 0; l < numLocks; ++l) {
            Channel.SubAlloc calldata lock = parent.locked[l];
            _requireValidLock(lock, numAssets);
            _registerSub(parentId, parent.assets, lock, subs[l], parentDuration);
        }
    }

    /// Checks one sub-channel's signed state (holding no locks) against its lock, then
    /// records it under the key of the lock's id, the parent's assets and the locked amounts
    /// (which the checks make the sub-channel's own assets and totals).
    function _registerSub(
        bytes32 parentId,
        address[] calldata parentAssets,
        Channel.SubAlloc calldata lock,
        Channel.SignedState calldata sub,
        uint64 parentDuration
    ) internal {
        if (sub.params.ledger) revert SubChannelIsLedger();
        (bytes32 subId, bytes32 subHash) = _verifySigned(sub);
        _requireAppData(sub.params, sub.state);
        if (subId != lock.id) revert ChannelIdMismatch();
        if (sub.params.challengeDuration > parentDuration) revert ChallengeDurationTooLong();
        Channel.Allocation calldata outcome = sub.state.outcome;
        _requireValidOutcome(outcome);
        _requireSameAssets(parentAssets, outcome.assets);
        _requireStaticTotals(outcome, lock.balances);
        bytes32 key = _subChannelKey(subId, parentAssets, lock.balances);
        _recordSub(key, subId, subHash, parentId, sub);
    }

    /// For every asset, the sub-channel's two balances add up to the amount its parent locked
    /// for it (it holds no locks of its own); reverts on overflow.
    function _requireStaticTotals(Channel.Allocation calldata outcome, uint256[] calldata locked)
        internal
        pure
    {
        uint256 numAssets = locked.length;
        for (uint256 a = 0; a < numAssets; ++a) {
            if (outcome.balances[a][0] + outcome.balances[a][1] != locked[a]) {
                revert LockSumMismatch();
            }
        }
    }

    /// A sub-channel's whole value per asset (its `totals`): the sum of its two balances, as it
    /// holds no locks; reverts on overflow.
    function _totals(Channel.Allocation calldata outcome)
        internal
        pure
        returns (uint256[] memory totals)
    {
        uint256 numAssets = outcome.assets.length;
        totals = new uint256[](numAssets);
        for (uint256 a = 0; a < numAssets; ++a) {
            totals[a] = outcome.balances[a][0] + outcome.balances[a][1];
        }
    }

    /// The record key of an app channel's move from `from` to `to`: both without locks, with
    /// the same assets and the same total per asset (the key's totals).
    function _moveKey(bytes32 id, Channel.Allocation calldata from, Channel.Allocation calldata to)
        internal
        pure
        returns (bytes32)
    {
        if (from.locked.length != 0 || to.locked.length != 0) revert NestedLocks();
        _requireValidOutcome(from);
        _requireValidOutcome(to);
        _requireSameAssets(from.assets, to.assets);
        uint256[] memory totals = _totals(from);
        _requirePreserved(totals, to);
        return keccak256(abi.encode(id, from.assets, totals));
    }

    /// Writes a forced move's state `to` (digest `digest`) to record `d`: phase `ForceExec`,
    /// fixed after the other participant's time to answer, or at once if `to` is final.
    function _advance(
        Dispute storage d,
        Channel.Params calldata params,
        Channel.State calldata to,
        bytes32 digest,
        uint256 actor
    ) internal {
        _requireAppData(params, to);
        uint8 moves = d.forcedMoves + 1;
        uint64 timeout = uint64(block.timestamp);
        if (!to.isFinal) {
            uint256 t = block.timestamp + params.challengeDuration;
            if (t > type(uint64).max) revert TimeoutOverflow();
            // forge-lint: disable-next-line(unsafe-typecast)
            timeout = uint64(t); // fits: checked on the line above
        }
        d.timeout = timeout;
        d.version = to.version;
        d.phase = Phase.ForceExec;
        d.forcedMoves = moves;
        d.window = 0;
        d.stateHash = digest;
        emit Progressed(to.channelId, timeout, moves, actor, params, to);
    }

    /// `to`'s total per asset is `totals` (the asset lists are checked equal before).
    function _requirePreserved(uint256[] memory totals, Channel.Allocation calldata to)
        internal
        pure
    {
        uint256 n = totals.length;
        for (uint256 a = 0; a < n; ++a) {
            if (to.balances[a][0] + to.balances[a][1] != totals[a]) revert ValueNotPreserved();
        }
    }

    /// Creates the sub-channel's record under `key`, or updates it if it is refutable and older.
    function _recordSub(
        bytes32 key,
        bytes32 subId,
        bytes32 subHash,
        bytes32 parentId,
        Channel.SignedState calldata sub
    ) internal {
        Dispute storage d = _disputes[key];
        if (d.phase == Phase.None) {
            (uint64 timeout, uint64 window) = _timeout(sub);
            d.timeout = timeout;
            d.version = sub.state.version;
            d.phase = Phase.Dispute;
            d.window = window;
            d.stateHash = subHash;
            emit Registered(subId, parentId, timeout, sub.params, sub.state);
        } else if (d.phase == Phase.Dispute && _refutable(d) && sub.state.version > d.version) {
            d.version = sub.state.version;
            d.stateHash = subHash;
            // A final state ends the record's dispute at once: nothing may replace it.
            uint64 timeout = d.timeout;
            if (sub.state.isFinal) {
                timeout = uint64(block.timestamp);
                d.timeout = timeout;
                d.window = 0;
            }
            emit Refuted(subId, parentId, timeout, sub.params, sub.state);
        }
        // Otherwise the record stays: its refutation period is over (a final state ends it
        // when it is recorded; force-execution may have begun), or it is at least as new as
        // this state.
    }

    // ---------------------------------------------------------------- conclude

    /// Credits the outcome of `subStates[l]`, the registered state of `parent`'s lock `l`, to
    /// `balances` (the parent's balances) through the lock's index map, for every lock;
    /// `subStates` must have exactly one state per lock. A sub-state has no locks of its own
    /// (its record's state hash only ever matches a state without locks), so this is one level.
    function _creditSubs(
        Channel.Allocation calldata parent,
        uint256[2][] memory balances,
        Channel.State[] calldata subStates
    ) internal view {
        uint256 numLocks = parent.locked.length;
        if (subStates.length != numLocks) revert SubCountMismatch();
        uint256 numAssets = parent.assets.length;
        for (uint256 l = 0; l < numLocks; ++l) {
            Channel.SubAlloc calldata lock = parent.locked[l];
            _requireValidLock(lock, numAssets);
            Channel.State calldata sub = subStates[l];
            _requireConcludedSub(lock, sub, parent.assets);
            _credit(lock, sub.outcome.balances, balances);
        }
    }

    /// The registered, timed-out state of the lock's sub-channel, with its parent's assets:
    /// the record of the lock's id, the parent's assets and the locked amounts.
    function _requireConcludedSub(
        Channel.SubAlloc calldata lock,
        Channel.State calldata sub,
        address[] calldata parentAssets
    ) internal view {
        if (sub.channelId != lock.id) revert ChannelIdMismatch();
        Dispute storage d = _disputes[_subChannelKey(lock.id, parentAssets, lock.balances)];
        // Defensive: every lock of a registered state got a record under this key when the
        // state was registered, and sub-channel records are never concluded.
        if (d.phase != Phase.Dispute && d.phase != Phase.ForceExec) revert NotRegistered();
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < d.timeout) revert TimeoutNotPassed();
        if (_hashState(sub) != d.stateHash) revert StateHashMismatch();
        _requireValidOutcome(sub.outcome);
        _requireSameAssets(parentAssets, sub.outcome.assets);
    }

    /// Adds a sub-channel's final balances to its parent's through the lock's index map, after
    /// checking they add up to the locked amounts.
    function _credit(
        Channel.SubAlloc calldata lock,
        uint256[2][] calldata subBalances,
        uint256[2][] memory balances
    ) internal pure {
        uint256 numAssets = balances.length;
        uint16 to0 = lock.indexMap[0];
        uint16 to1 = lock.indexMap[1];
        for (uint256 a = 0; a < numAssets; ++a) {
            uint256 b0 = subBalances[a][0];
            uint256 b1 = subBalances[a][1];
            if (b0 + b1 != lock.balances[a]) revert LockSumMismatch();
            balances[a][to0] += b0;
            balances[a][to1] += b1;
        }
    }

    /// Calls every asset holder (after all state changes).
    function _pushOutcome(
        bytes32 id,
        address[2] calldata participants,
        address[] calldata assets,
        uint256[2][] memory balances
    ) internal {
        uint256 n = assets.length;
        for (uint256 a = 0; a < n; ++a) {
            IAssetHolder(assets[a]).setOutcome(id, participants, balances[a]);
        }
    }
}
