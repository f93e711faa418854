// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Channel} from "./Channel.sol";

/// @title IAdjudicator
/// @notice Settles two-party channels on chain from off-chain signed states (DESIGN.md 2).
///
/// Every channel that is registered (a ledger channel, or a sub-channel locked in one) gets a
/// dispute record. A ledger channel's record is keyed by its channel id. A sub-channel's record
/// is keyed by `subChannelKey(id, assets, totals)`: its id, its assets (always its parent's) and
/// its whole value per asset (the sum of its two balances), which must equal the amounts its
/// parent locked for it. A virtual channel is a lock with the same id and amounts in two ledger
/// channels, so both parents share its record: one state settles both. A state of the same
/// sub-channel with another total has another record, which neither parent reads.
///
/// Only ledger channels hold locks: a sub-channel's state must have an empty `outcome.locked`
/// (`NestedLocks` otherwise, in `register` and `refute`), so sub-channels are one level deep.
/// A virtual channel's payment states never lock anything, and the bound keeps `conclude` at
/// gas linear in the ledger state's locks: with nesting allowed, the two ends of a virtual
/// channel could lock ever deeper sub-channels through refutes, each level delaying the
/// parent's conclusion by a challenge duration, until `conclude` ran out of EVM stack and the
/// parent's collateral was frozen for good.
///
/// A sub-channel's `challengeDuration` may not exceed its parent's (`ChallengeDurationTooLong`).
///
/// A sub-channel state's app data is empty without an app and at most `MAX_APP_DATA` (1024)
/// bytes with one (`AppDataTooLong`, in `register`, `refute` and `progress`), so a parent's
/// `conclude` stays within a transaction's size whatever the sub-channel's participants sign.
///
/// Sub-channel lists (`subs`, `subStates`) hold one state per lock of the ledger state, in
/// the order of its locks (the depth-first order of the lock tree, which is one level deep).
interface IAdjudicator {
    /// Phase of a dispute record.
    enum Phase {
        /// No record.
        None,
        /// A state is registered; refutable until `timeout`, concludable after.
        Dispute,
        /// The outcome was pushed to the asset holders (ledger channels only).
        Concluded,
        /// An app channel's state advanced by force-execution (`progress`); the other
        /// participant may answer with its move until `timeout` (sub-channels only).
        ForceExec
    }

    /// A dispute record.
    struct Dispute {
        /// Unix time from which the record is fixed: it can no longer be refuted nor advanced,
        /// and a parent may conclude with it.
        uint64 timeout;
        /// Version of the registered state.
        uint64 version;
        /// Current phase.
        Phase phase;
        /// Moves force-executed on this record so far (at most `MAX_FORCED_MOVES`).
        uint8 forcedMoves;
        /// For a record of an app channel in phase `Dispute` with a non-final state: the
        /// window, at the end of the refutation period, in which force-execution may begin
        /// (the channel's challenge duration). Refutable until `timeout - window`,
        /// force-executable from then until `timeout`. Zero for every other record.
        uint64 window;
        /// `hashState(state)` of the registered state.
        bytes32 stateHash;
    }

    /// A record was created for `channelId` (`parentId` is zero for the channel named in the
    /// call, the parent's id for a sub-channel). Carries everything a watcher needs. The record
    /// is under `channelId` for a ledger channel and under `subChannelKey(channelId,
    /// state.outcome.assets, totals of state.outcome)` for a sub-channel.
    event Registered(
        bytes32 indexed channelId,
        bytes32 indexed parentId,
        uint64 timeout,
        Channel.Params params,
        Channel.State state
    );

    /// The record of `channelId` was replaced by a newer version. `timeout` is the record's
    /// timeout after the change: unchanged, or the current time when the new state is final
    /// (a final state ends the dispute at once). The record's key is as for `Registered`.
    event Refuted(
        bytes32 indexed channelId,
        bytes32 indexed parentId,
        uint64 timeout,
        Channel.Params params,
        Channel.State state
    );

    /// The record of app channel `channelId` (a sub-channel, under its `subChannelKey`) was
    /// advanced by one move of `participants[actor]` to `state`, signed by that participant
    /// alone. `timeout` is when the record is fixed unless the other participant answers:
    /// `now + challengeDuration`, or `now` when `state` is final. `forcedMoves` counts the
    /// record's force-executed moves, this one included.
    event Progressed(
        bytes32 indexed channelId,
        uint64 timeout,
        uint8 forcedMoves,
        uint256 actor,
        Channel.Params params,
        Channel.State state
    );

    /// A ledger channel concluded: `balances[a][p]` of asset holder `assets[a]` were pushed,
    /// the locked sub-channels' outcomes already credited through their index maps.
    event Concluded(
        bytes32 indexed channelId, uint64 version, address[] assets, uint256[2][] balances
    );

    /// Opens a dispute for a ledger channel (no record yet) with a state signed by both
    /// participants, together with the signed states of its locks (one per lock, in order).
    /// Each sub-channel without a record (under its `subChannelKey` with the locked amounts)
    /// gets one; a sub-channel whose record is still refutable is updated when the given
    /// version is higher; otherwise its record stays. No state in `subs` may have locks
    /// (`NestedLocks`), and a sub-channel's challenge duration may not exceed the ledger
    /// channel's. The timeout is `now + challengeDuration`, or `now` for a final state; a
    /// final sub-state that updates an existing record also sets that record's timeout to
    /// `now`.
    function register(Channel.SignedState calldata ledger, Channel.SignedState[] calldata subs)
        external;

    /// Replaces the registered state of a channel (ledger or sub-channel) with a strictly
    /// higher version before its timeout. For a sub-channel, the record replaced is the one
    /// under `subChannelKey` of the given state's id, assets and totals: a state with another
    /// total than the registered one finds no record (`NotRefutable`); a sub-channel's state
    /// with locks is refused (`NestedLocks`), so `subs` must then be empty. For a ledger
    /// channel, `subs` are the signed states of the new state's locks (one per lock, in
    /// order), treated as in `register` (`NestedLocks` for any of them with locks). The
    /// timeout does not move, unless the new state is final: then it becomes `now`, which ends
    /// the dispute (no later refute can replace a final state). A ledger channel's final
    /// state with locks still concludes only once every lock's record timed out.
    function refute(Channel.SignedState calldata ch, Channel.SignedState[] calldata subs) external;

    /// Force-executes one move of an app channel (a sub-channel whose `params.app` is not zero)
    /// whose record holds `from`: `to` must be `from`'s next version, of the same channel, with
    /// the same assets and the same total per asset and no locks, `from` not final, `to`
    /// signed by `participants[actor]` alone, and the app's `validTransition(params, from, to,
    /// actor)` must not revert. Allowed while the record is in phase `Dispute` past its
    /// refutation period (`timeout - window <= now < timeout`) or in phase `ForceExec` before
    /// its timeout, and at most `MAX_FORCED_MOVES` times per record. The record then holds
    /// `to` in phase `ForceExec` with timeout `now + challengeDuration` (the other
    /// participant's time to answer), or `now` if `to` is final, which fixes it at once. A
    /// sub-channel record is thus fixed at most `(2 + MAX_FORCED_MOVES) * challengeDuration`
    /// after it was created, whatever its participants do, so their parents' coins are never
    /// locked without end.
    function progress(
        Channel.Params calldata params,
        Channel.State calldata from,
        Channel.State calldata to,
        uint256 actor,
        bytes calldata sig
    ) external;

    /// Concludes a ledger channel whose record and whose locks' records (under `subChannelKey`
    /// of each lock's id, the parent's assets and the locked amounts) have timed out, from
    /// the registered states (checked against the records; `subStates` holds one per lock, in
    /// order, none with locks of its own), and pushes the outcome to every asset holder: each
    /// lock's outcome is credited to the parent's participants through its index map. The sum
    /// of a lock's outcome must equal the locked amount.
    function conclude(
        Channel.Params calldata params,
        Channel.State calldata state,
        Channel.State[] calldata subStates
    ) external;

    /// Concludes a ledger channel at once from a final state with no locks, signed by both,
    /// unless it already concluded.
    function concludeFinal(Channel.SignedState calldata ledger) external;

    /// The dispute record under `key`: pass the channel id of a ledger channel, but
    /// `subChannelKey(...)` of a sub-channel (a sub-channel's plain id has no record).
    function disputes(bytes32 key)
        external
        view
        returns (uint64 timeout, uint64 version, Phase phase, bytes32 stateHash);

    /// The force-execution fields of the record under `key`: its `window` and `forcedMoves`
    /// (see `Dispute`).
    function forceExecution(bytes32 key) external view returns (uint64 window, uint8 forcedMoves);

    /// The record key of a sub-channel: `keccak256(abi.encode(id, assets, totals))`, where
    /// `id` is its channel id, `assets` are the sub-channel's (its parent's) assets and
    /// `totals[a]` is its whole value in asset `a` (the sum of its two balances; equal to its
    /// parent's locked amounts `lock.balances`).
    function subChannelKey(bytes32 id, address[] calldata assets, uint256[] calldata totals)
        external
        pure
        returns (bytes32);

    /// The channel id of `params`.
    function channelId(Channel.Params calldata params) external pure returns (bytes32);

    /// The EIP-712 digest both participants sign for `state` (bound to this chain and
    /// this adjudicator).
    function hashState(Channel.State calldata state) external view returns (bytes32);
}
