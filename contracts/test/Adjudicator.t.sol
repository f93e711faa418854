// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {stdError} from "forge-std/StdError.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

import {Base} from "./utils/Base.sol";
import {Channel} from "../src/Channel.sol";
import {Adjudicator} from "../src/Adjudicator.sol";
import {IAdjudicator} from "../src/IAdjudicator.sol";
import {IAssetHolder} from "../src/IAssetHolder.sol";
import {ReenteringAssetHolder} from "./mocks/ReenteringAssetHolder.sol";

/// Unit tests of every Adjudicator function and revert path. The ledger channel L is
/// Alice (0) - Ingrid (1); its sub-channels are virtual channels between Alice and Bob.
contract AdjudicatorTest is Base {
    Channel.Params internal pl;
    Channel.Params internal pv;
    bytes32 internal l;
    bytes32 internal v;
    /// The record key of V worth 5 ETH (what L locks on V unless a test says otherwise).
    bytes32 internal vk;

    function setUp() public override {
        super.setUp();
        pl = ledgerParams(ALICE_PK, INGRID_PK, 1);
        pv = virtualParams(ALICE_PK, BOB_PK, 2);
        l = cid(pl);
        v = cid(pv);
        vk = ethKey(v, 5);
        depositEth(l, alice, 10);
        depositEth(l, ingrid, 10);
    }

    // ------------------------------------------------------------ builders

    function ls(uint64 version, uint256 b0, uint256 b1)
        internal
        view
        returns (Channel.State memory)
    {
        return ethState(l, version, b0, b1, false);
    }

    /// L at `version` with (b0, b1) and a lock of `amount` on V (identity index map).
    function lsLocked(uint64 version, uint256 b0, uint256 b1, uint256 amount)
        internal
        view
        returns (Channel.State memory)
    {
        return mkState(l, version, ethOnly(), bal(b0, b1), locks(lock1(v, amount, 0, 1)), false);
    }

    function vsig(uint64 version, uint256 a, uint256 b)
        internal
        view
        returns (Channel.SignedState memory)
    {
        return signed(pv, ethState(v, version, a, b, false));
    }

    function assertPhase(bytes32 id, IAdjudicator.Phase p) internal view {
        assertEq(uint8(phaseOf(id)), uint8(p));
    }

    function holding(bytes32 id, address who) internal view returns (uint256) {
        return eth.holdings(eth.fundingId(id, who));
    }

    // ------------------------------------------------------------ views

    function test_channelId_matchesLibrary() public view {
        assertEq(adj.channelId(pl), keccak256(abi.encode(pl)));
        assertEq(adj.channelId(pv), Channel.id(pv));
        assertTrue(adj.channelId(pl) != adj.channelId(pv));
    }

    function test_hashState_isEip712OfLibraryStructHash() public view {
        Channel.State memory s = lsLocked(7, 1, 2, 3);
        s.appData = hex"c0ffee";
        bytes32 domain = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("Ingrid"),
                keccak256("1"),
                block.chainid,
                address(adj)
            )
        );
        assertEq(adj.domainSeparator(), domain);
        bytes32 expected = MessageHashUtils.toTypedDataHash(domain, Channel.structHash(s));
        assertEq(adj.hashState(s), expected);
        // The struct hash follows the type string of Channel.sol.
        bytes32 manual = keccak256(
            abi.encode(
                keccak256(
                    "ChannelState(bytes32 channelId,uint64 version,bytes32 outcomeHash,bytes32 appDataHash,bool isFinal)"
                ),
                s.channelId,
                s.version,
                keccak256(abi.encode(s.outcome)),
                keccak256(s.appData),
                s.isFinal
            )
        );
        assertEq(Channel.structHash(s), manual);
    }

    function test_hashState_dependsOnEveryField() public view {
        Channel.State memory s = lsLocked(7, 1, 2, 3);
        bytes32 h = adj.hashState(s);
        s.version = 8;
        assertTrue(adj.hashState(s) != h);
        s = lsLocked(7, 1, 2, 3);
        s.isFinal = true;
        assertTrue(adj.hashState(s) != h);
        s = lsLocked(7, 1, 2, 3);
        s.appData = hex"01";
        assertTrue(adj.hashState(s) != h);
        s = lsLocked(7, 1, 2, 3);
        s.outcome.locked[0].indexMap = [uint16(1), uint16(0)];
        assertTrue(adj.hashState(s) != h);
        s = lsLocked(7, 1, 2, 3);
        s.channelId = v;
        assertTrue(adj.hashState(s) != h);
    }

    function test_eip712Domain() public view {
        (, string memory name, string memory version, uint256 chainId, address verifying,,) =
            adj.eip712Domain();
        assertEq(name, "Ingrid");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(adj));
    }

    function test_disputes_emptyRecord() public view {
        (uint64 timeout, uint64 version, IAdjudicator.Phase phase, bytes32 h) = adj.disputes(l);
        assertEq(timeout, 0);
        assertEq(version, 0);
        assertEq(uint8(phase), uint8(IAdjudicator.Phase.None));
        assertEq(h, bytes32(0));
    }

    function test_subChannelKey_isKeccakOfAbiEncoding() public view {
        uint256[] memory t1 = new uint256[](1);
        t1[0] = 5;
        assertEq(adj.subChannelKey(v, ethOnly(), t1), keccak256(abi.encode(v, ethOnly(), t1)));
        assertEq(adj.subChannelKey(v, ethOnly(), t1), vk);
        uint256[] memory t2 = new uint256[](2);
        t2[0] = 5;
        t2[1] = 7;
        assertEq(adj.subChannelKey(v, ethAndErc(), t2), keccak256(abi.encode(v, ethAndErc(), t2)));
        // Every part counts: the id, the total, the assets.
        assertTrue(adj.subChannelKey(l, ethOnly(), t1) != vk);
        t1[0] = 6;
        assertTrue(adj.subChannelKey(v, ethOnly(), t1) != vk);
        t1[0] = 5;
        address[] memory other = new address[](1);
        other[0] = address(erc);
        assertTrue(adj.subChannelKey(v, other, t1) != vk);
    }

    function test_disputes_subChannelRecordIsUnderItsKey() public {
        Channel.SignedState memory sv = vsig(4, 1, 4);
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(sv));
        uint256[] memory totals = new uint256[](1);
        totals[0] = 5;
        bytes32 key = adj.subChannelKey(v, ethOnly(), totals);
        (uint64 timeout, uint64 version, IAdjudicator.Phase phase, bytes32 h) = adj.disputes(key);
        assertEq(timeout, block.timestamp + VIRTUAL_CD);
        assertEq(version, 4);
        assertEq(uint8(phase), uint8(IAdjudicator.Phase.Dispute));
        assertEq(h, adj.hashState(sv.state));
        // The sub-channel's plain id has no record.
        (timeout, version, phase, h) = adj.disputes(v);
        assertEq(timeout, 0);
        assertEq(version, 0);
        assertEq(uint8(phase), uint8(IAdjudicator.Phase.None));
        assertEq(h, bytes32(0));
        // The ledger channel's record stays under its id.
        assertEq(versionOf(l), 1);
    }

    // ------------------------------------------------------------ register

    function test_register_ledgerAlone() public {
        Channel.SignedState memory s = signed(pl, ls(3, 4, 16));
        vm.expectEmit(address(adj));
        emit IAdjudicator.Registered(
            l, bytes32(0), uint64(block.timestamp) + LEDGER_CD, pl, s.state
        );
        adj.register(s, noSubs());
        (uint64 timeout, uint64 version, IAdjudicator.Phase phase, bytes32 h) = adj.disputes(l);
        assertEq(timeout, block.timestamp + LEDGER_CD);
        assertEq(version, 3);
        assertEq(uint8(phase), uint8(IAdjudicator.Phase.Dispute));
        assertEq(h, adj.hashState(s.state));
    }

    function test_register_finalState_timesOutAtOnce() public {
        Channel.SignedState memory s = signed(pl, ethState(l, 3, 4, 16, true));
        adj.register(s, noSubs());
        assertEq(timeoutOf(l), block.timestamp);
        adj.conclude(pl, s.state, noSubStates());
        assertEq(holding(l, alice), 4);
        assertEq(holding(l, ingrid), 16);
    }

    function test_register_withLock_createsSubRecord() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        Channel.SignedState memory sv = vsig(4, 1, 4);
        vm.expectEmit(address(adj));
        emit IAdjudicator.Registered(
            l, bytes32(0), uint64(block.timestamp) + LEDGER_CD, pl, s.state
        );
        vm.expectEmit(address(adj));
        emit IAdjudicator.Registered(v, l, uint64(block.timestamp) + VIRTUAL_CD, pv, sv.state);
        adj.register(s, subs1(sv));
        (uint64 timeout, uint64 version, IAdjudicator.Phase phase, bytes32 h) = adj.disputes(vk);
        assertEq(timeout, block.timestamp + VIRTUAL_CD);
        assertEq(version, 4);
        assertEq(uint8(phase), uint8(IAdjudicator.Phase.Dispute));
        assertEq(h, adj.hashState(sv.state));
    }

    function test_register_finalSubState_timesOutAtOnce() public {
        Channel.SignedState memory sv = signed(pv, ethState(v, 4, 1, 4, true));
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(sv));
        assertEq(timeoutOf(vk), block.timestamp);
        assertEq(timeoutOf(l), block.timestamp + LEDGER_CD);
    }

    function test_register_existingSubRecord_updatedWhenNewer() public {
        // A second ledger channel M (Ingrid-Bob) also locks V.
        Channel.Params memory pm = ledgerParams(INGRID_PK, BOB_PK, 9);
        bytes32 m = cid(pm);
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(4, 1, 4)));
        uint64 vTimeout = timeoutOf(vk);
        vm.warp(block.timestamp + 7);

        Channel.State memory sm =
            mkState(m, 1, ethOnly(), bal(0, 0), locks(lock1(v, 5, 0, 1)), false);
        Channel.SignedState memory sv = vsig(5, 2, 3);
        vm.expectEmit(address(adj));
        emit IAdjudicator.Refuted(v, m, vTimeout, pv, sv.state);
        adj.register(signed(pm, sm), subs1(sv));
        assertEq(versionOf(vk), 5);
        assertEq(timeoutOf(vk), vTimeout, "timeout unchanged");
        assertEq(stateHashOf(vk), adj.hashState(sv.state));
    }

    /// A final state that updates an existing sub-channel record ends its dispute at once.
    function test_register_existingSubRecord_finalEndsDispute() public {
        Channel.Params memory pm = ledgerParams(INGRID_PK, BOB_PK, 9);
        bytes32 m = cid(pm);
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(4, 1, 4)));
        vm.warp(block.timestamp + 7);
        Channel.State memory sm =
            mkState(m, 1, ethOnly(), bal(0, 0), locks(lock1(v, 5, 0, 1)), false);
        Channel.SignedState memory sv = signed(pv, ethState(v, 5, 2, 3, true));
        vm.expectEmit(address(adj));
        emit IAdjudicator.Refuted(v, m, uint64(block.timestamp), pv, sv.state);
        adj.register(signed(pm, sm), subs1(sv));
        assertEq(timeoutOf(vk), block.timestamp, "timeout is now");
        Channel.SignedState memory later = vsig(6, 5, 0);
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(later, noSubs());
    }

    function test_register_existingSubRecord_keptWhenNotNewer() public {
        Channel.Params memory pm = ledgerParams(INGRID_PK, BOB_PK, 9);
        bytes32 m = cid(pm);
        Channel.SignedState memory sv = vsig(4, 1, 4);
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(sv));
        bytes32 h = stateHashOf(vk);

        // Same version, different content: record kept, only M's Registered event.
        Channel.State memory sm =
            mkState(m, 1, ethOnly(), bal(0, 0), locks(lock1(v, 5, 0, 1)), false);
        Channel.SignedState memory same = vsig(4, 2, 3);
        Channel.SignedState memory smSigned = signed(pm, sm);
        vm.recordLogs();
        adj.register(smSigned, subs1(same));
        assertEq(vm.getRecordedLogs().length, 1);
        assertEq(stateHashOf(vk), h);
        assertEq(versionOf(vk), 4);
    }

    function test_register_existingSubRecord_olderVersionKept() public {
        Channel.Params memory pm = ledgerParams(INGRID_PK, BOB_PK, 9);
        bytes32 m = cid(pm);
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(4, 1, 4)));
        bytes32 h = stateHashOf(vk);
        Channel.State memory sm =
            mkState(m, 1, ethOnly(), bal(0, 0), locks(lock1(v, 5, 0, 1)), false);
        adj.register(signed(pm, sm), subs1(vsig(3, 5, 0)));
        assertEq(stateHashOf(vk), h);
        assertEq(versionOf(vk), 4);
    }

    function test_register_existingSubRecord_timedOutKept() public {
        Channel.Params memory pm = ledgerParams(INGRID_PK, BOB_PK, 9);
        bytes32 m = cid(pm);
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(4, 1, 4)));
        bytes32 h = stateHashOf(vk);
        vm.warp(timeoutOf(vk));
        Channel.State memory sm =
            mkState(m, 1, ethOnly(), bal(0, 0), locks(lock1(v, 5, 0, 1)), false);
        adj.register(signed(pm, sm), subs1(vsig(9, 5, 0)));
        assertEq(stateHashOf(vk), h);
        assertEq(versionOf(vk), 4);
        assertEq(uint8(phaseOf(m)), uint8(IAdjudicator.Phase.Dispute));
    }

    function test_register_revert_notLedger() public {
        Channel.SignedState memory sv = vsig(1, 1, 1);
        vm.expectRevert(Adjudicator.NotLedger.selector);
        adj.register(sv, noSubs());
    }

    function test_register_revert_ledgerAndVirtual() public {
        Channel.Params memory p = ledgerParams(ALICE_PK, INGRID_PK, 5);
        p.isVirtual = true;
        Channel.SignedState memory s = signed(p, ethState(cid(p), 1, 1, 1, false));
        vm.expectRevert(Adjudicator.NotLedger.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_sameParticipants() public {
        Channel.Params memory p = ledgerParams(ALICE_PK, ALICE_PK, 5);
        Channel.SignedState memory s = signed(p, ethState(cid(p), 1, 1, 1, false));
        vm.expectRevert(Adjudicator.InvalidParticipants.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_zeroParticipant() public {
        Channel.Params memory p = ledgerParams(ALICE_PK, INGRID_PK, 5);
        p.participants[1] = address(0);
        Channel.State memory st = ethState(cid(p), 1, 1, 1, false);
        Channel.SignedState memory s = signedBy(adj, p, st, ALICE_PK, INGRID_PK);
        vm.expectRevert(Adjudicator.InvalidParticipants.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_channelIdMismatch() public {
        Channel.SignedState memory s = signed(pl, ethState(v, 1, 1, 1, false));
        vm.expectRevert(Adjudicator.ChannelIdMismatch.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_wrongSigner0() public {
        Channel.SignedState memory s = signedBy(adj, pl, ls(1, 1, 1), EVE_PK, INGRID_PK);
        vm.expectRevert(abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 0));
        adj.register(s, noSubs());
    }

    function test_register_revert_wrongSigner1() public {
        Channel.SignedState memory s = signedBy(adj, pl, ls(1, 1, 1), ALICE_PK, EVE_PK);
        vm.expectRevert(abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 1));
        adj.register(s, noSubs());
    }

    function test_register_revert_swappedSignatures() public {
        Channel.SignedState memory s = signedBy(adj, pl, ls(1, 1, 1), INGRID_PK, ALICE_PK);
        vm.expectRevert(abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 0));
        adj.register(s, noSubs());
    }

    function test_register_revert_malformedSignature() public {
        Channel.SignedState memory s = signed(pl, ls(1, 1, 1));
        s.sigs[1] = hex"1234";
        vm.expectRevert(abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 1));
        adj.register(s, noSubs());
        s = signed(pl, ls(1, 1, 1));
        s.sigs[0] = new bytes(65); // all zero: recovers nothing
        vm.expectRevert(abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 0));
        adj.register(s, noSubs());
    }

    function test_register_revert_highS() public {
        Channel.SignedState memory s = signed(pl, ls(1, 1, 1));
        s.sigs[0] = malleate(s.sigs[0]);
        // The malleated signature recovers to the same key, but has a high s.
        (address rec,,) = ECDSA.tryRecover(adj.hashState(s.state), s.sigs[0]);
        assertEq(rec, address(0));
        vm.expectRevert(abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 0));
        adj.register(s, noSubs());
    }

    function test_register_revert_balancesLength() public {
        Channel.State memory st = mkState(l, 1, ethOnly(), bal2(1, 1, 1, 1), noLocks(), false);
        Channel.SignedState memory s = signed(pl, st);
        vm.expectRevert(Adjudicator.BalancesLengthMismatch.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_duplicateAsset() public {
        address[] memory assets = ethAndErc();
        assets[1] = address(eth);
        Channel.State memory st = mkState(l, 1, assets, bal2(1, 1, 1, 1), noLocks(), false);
        Channel.SignedState memory s = signed(pl, st);
        vm.expectRevert(Adjudicator.AssetMismatch.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_alreadyRegistered() public {
        adj.register(signed(pl, ls(1, 1, 1)), noSubs());
        Channel.SignedState memory s = signed(pl, ls(2, 1, 1));
        vm.expectRevert(Adjudicator.AlreadyRegistered.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_alreadyConcluded() public {
        adj.concludeFinal(signed(pl, ethState(l, 1, 1, 1, true)));
        Channel.SignedState memory s = signed(pl, ls(2, 1, 1));
        vm.expectRevert(Adjudicator.AlreadyRegistered.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_timeoutOverflow() public {
        Channel.Params memory p = ledgerParams(ALICE_PK, INGRID_PK, 5);
        p.challengeDuration = type(uint64).max;
        Channel.SignedState memory s = signed(p, ethState(cid(p), 1, 1, 1, false));
        vm.expectRevert(Adjudicator.TimeoutOverflow.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_tooFewSubs() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        vm.expectRevert(Adjudicator.SubCountMismatch.selector);
        adj.register(s, noSubs());
    }

    function test_register_revert_tooManySubs() public {
        Channel.SignedState memory s = signed(pl, ls(1, 5, 10));
        Channel.SignedState memory sv = vsig(1, 1, 4);
        vm.expectRevert(Adjudicator.SubCountMismatch.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_lockBalancesLength() public {
        Channel.State memory st = lsLocked(1, 5, 10, 5);
        st.outcome.locked[0].balances = new uint256[](2);
        Channel.SignedState memory s = signed(pl, st);
        Channel.SignedState memory sv = vsig(1, 1, 4);
        vm.expectRevert(Adjudicator.BalancesLengthMismatch.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_invalidIndexMap() public {
        Channel.State memory st = lsLocked(1, 5, 10, 5);
        st.outcome.locked[0].indexMap = [uint16(0), uint16(2)];
        Channel.SignedState memory s = signed(pl, st);
        Channel.SignedState memory sv = vsig(1, 1, 4);
        vm.expectRevert(Adjudicator.InvalidIndexMap.selector);
        adj.register(s, subs1(sv));
        st.outcome.locked[0].indexMap = [uint16(7), uint16(1)];
        s = signed(pl, st);
        vm.expectRevert(Adjudicator.InvalidIndexMap.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_subIsLedger() public {
        Channel.Params memory pm = ledgerParams(ALICE_PK, BOB_PK, 9);
        bytes32 m = cid(pm);
        Channel.State memory st =
            mkState(l, 1, ethOnly(), bal(5, 10), locks(lock1(m, 5, 0, 1)), false);
        Channel.SignedState memory s = signed(pl, st);
        Channel.SignedState memory sm = signed(pm, ethState(m, 1, 1, 4, false));
        vm.expectRevert(Adjudicator.SubChannelIsLedger.selector);
        adj.register(s, subs1(sm));
    }

    function test_register_revert_subWrongSignature() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        Channel.SignedState memory sv =
            signedBy(adj, pv, ethState(v, 1, 1, 4, false), ALICE_PK, INGRID_PK);
        vm.expectRevert(abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 1));
        adj.register(s, subs1(sv));
    }

    function test_register_revert_subIdNotLockId() public {
        // V2 is a valid, signed virtual channel, but the lock is for V.
        Channel.Params memory pv2 = virtualParams(ALICE_PK, BOB_PK, 77);
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        Channel.SignedState memory sv2 = signed(pv2, ethState(cid(pv2), 1, 1, 4, false));
        vm.expectRevert(Adjudicator.ChannelIdMismatch.selector);
        adj.register(s, subs1(sv2));
    }

    function test_register_revert_subStateIdNotParams() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        Channel.SignedState memory sv = vsig(1, 1, 4);
        sv.params.nonce = 1234; // the state (and lock) still say V
        vm.expectRevert(Adjudicator.ChannelIdMismatch.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_subAssetsDiffer() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        address[] memory other = new address[](1);
        other[0] = address(erc);
        Channel.SignedState memory sv =
            signed(pv, mkState(v, 1, other, bal(1, 4), noLocks(), false));
        vm.expectRevert(Adjudicator.AssetMismatch.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_subAssetsLonger() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        Channel.SignedState memory sv =
            signed(pv, mkState(v, 1, ethAndErc(), bal2(1, 4, 0, 0), noLocks(), false));
        vm.expectRevert(Adjudicator.AssetMismatch.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_subAssetsOtherOrder() public {
        Channel.SubAlloc memory lk = lock1(v, 5, 0, 1);
        lk.balances = new uint256[](2);
        lk.balances[0] = 5;
        Channel.State memory st = mkState(l, 1, ethAndErc(), bal2(5, 10, 0, 0), locks(lk), false);
        Channel.SignedState memory s = signed(pl, st);
        address[] memory swapped = new address[](2);
        swapped[0] = address(erc);
        swapped[1] = address(eth);
        Channel.SignedState memory sv =
            signed(pv, mkState(v, 1, swapped, bal2(1, 4, 0, 0), noLocks(), false));
        vm.expectRevert(Adjudicator.AssetMismatch.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_subBalancesLength() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        Channel.SignedState memory sv =
            signed(pv, mkState(v, 1, ethOnly(), bal2(1, 4, 0, 0), noLocks(), false));
        vm.expectRevert(Adjudicator.BalancesLengthMismatch.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_lockSumTooLow() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        Channel.SignedState memory sv = vsig(1, 1, 3);
        vm.expectRevert(Adjudicator.LockSumMismatch.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_lockSumTooHigh() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        Channel.SignedState memory sv = vsig(1, 1, 5);
        vm.expectRevert(Adjudicator.LockSumMismatch.selector);
        adj.register(s, subs1(sv));
    }

    function test_register_revert_lockSumOverflow() public {
        Channel.SignedState memory s = signed(pl, lsLocked(1, 5, 10, 5));
        Channel.SignedState memory sv = vsig(1, type(uint256).max, 6);
        vm.expectRevert(stdError.arithmeticError);
        adj.register(s, subs1(sv));
    }

    // ------------------------------------------------------------ nested locks (refused)

    /// The full record under `key` (timeout, version, phase, state hash), hashed: equal before
    /// and after a call means the call changed nothing there.
    function snap(bytes32 key) internal view returns (bytes32) {
        (uint64 timeout, uint64 version, IAdjudicator.Phase phase, bytes32 h) = record(key);
        return keccak256(abi.encode(timeout, version, phase, h));
    }

    /// What `snap` gives for a record that was never created.
    function noRecord() internal pure returns (bytes32) {
        return keccak256(abi.encode(uint64(0), uint64(0), IAdjudicator.Phase.None, bytes32(0)));
    }

    /// L locks 6 on S (Alice-Bob, a plain sub-channel); S = (1, 3) plus a lock of 2 on T
    /// (Alice-Bob), T = (2, 0): a sub-channel nested in a sub-channel, which is refused.
    /// `subs` is S's state followed by T's (the old depth-first layout).
    function nested()
        internal
        view
        returns (Channel.SignedState memory sl, Channel.SignedState[] memory subs)
    {
        Channel.Params memory ps = virtualParams(ALICE_PK, BOB_PK, 20);
        ps.isVirtual = false;
        Channel.Params memory pt = virtualParams(ALICE_PK, BOB_PK, 21);
        bytes32 s = cid(ps);
        bytes32 t = cid(pt);
        sl = signed(pl, mkState(l, 1, ethOnly(), bal(3, 11), locks(lock1(s, 6, 1, 0)), false));
        subs = new Channel.SignedState[](2);
        subs[0] = signed(ps, mkState(s, 5, ethOnly(), bal(1, 3), locks(lock1(t, 2, 1, 1)), false));
        subs[1] = signed(pt, ethState(t, 9, 2, 0, false));
    }

    /// No record for L, S (under L's locked 6) or T (under S's locked 2).
    function assertNoNestedRecords(Channel.SignedState[] memory subs) internal view {
        assertEq(snap(l), noRecord(), "L");
        assertEq(snap(ethKey(subs[0].state.channelId, 6)), noRecord(), "S");
        assertEq(snap(ethKey(subs[1].state.channelId, 2)), noRecord(), "T");
    }

    function test_register_revert_nestedLocks() public {
        (Channel.SignedState memory sl, Channel.SignedState[] memory subs) = nested();
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.register(sl, subs);
        // Without T's state (one state per lock of L): still refused for S's lock.
        Channel.SignedState[] memory one = subs1(subs[0]);
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.register(sl, one);
        assertNoNestedRecords(subs);
        // L registers fine with S's state holding no locks (S = (3, 3)).
        Channel.State memory flat = ethState(subs[0].state.channelId, 5, 3, 3, false);
        adj.register(sl, subs1(signed(subs[0].params, flat)));
        assertEq(versionOf(ethKey(subs[0].state.channelId, 6)), 5);
    }

    /// A lock list is refused for being non-empty, even when its only lock holds nothing (and
    /// even when the lock is malformed).
    function test_register_revert_nestedLocks_zeroLock() public {
        (Channel.SignedState memory sl, Channel.SignedState[] memory subs) = nested();
        Channel.State memory s0 = subs[0].state;
        s0.outcome.balances[0] = [uint256(3), 3];
        s0.outcome.locked[0].balances[0] = 0;
        Channel.SignedState memory sz = signed(subs[0].params, s0);
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.register(sl, subs1(sz));
        s0.outcome.locked[0].balances = new uint256[](2);
        sz = signed(subs[0].params, s0);
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.register(sl, subs1(sz));
        assertNoNestedRecords(subs);
    }

    /// A nested lock in L's second lock: the whole registration reverts, so neither L nor the
    /// sub-channel of its first (valid) lock gets a record.
    function test_register_revert_nestedLocks_inSecondLock() public {
        (Channel.SignedState memory sl, Channel.SignedState[] memory subs) = nested();
        Channel.SubAlloc[] memory lk = new Channel.SubAlloc[](2);
        lk[0] = lock1(v, 5, 0, 1);
        lk[1] = sl.state.outcome.locked[0];
        Channel.SignedState memory sl2 = signed(pl, mkState(l, 1, ethOnly(), bal(3, 6), lk, false));
        Channel.SignedState[] memory two = new Channel.SignedState[](2);
        two[0] = vsig(1, 1, 4);
        two[1] = subs[0];
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.register(sl2, two);
        assertNoNestedRecords(subs);
        assertEq(snap(vk), noRecord(), "V");
    }

    /// A state with locks anywhere in `subs` is refused, even as a surplus state after one
    /// per lock (checked before the count), in `register` and in `refute` of either kind.
    function test_revert_nestedLocks_inSurplusSub() public {
        (, Channel.SignedState[] memory nestedSubs) = nested();
        Channel.SignedState[] memory two = new Channel.SignedState[](2);
        two[0] = vsig(1, 1, 4);
        two[1] = nestedSubs[0];
        Channel.SignedState memory sl = signed(pl, lsLocked(1, 5, 10, 5));
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.register(sl, two);
        assertEq(snap(l), noRecord(), "L");
        assertEq(snap(vk), noRecord(), "V");

        adj.register(sl, subs1(vsig(1, 1, 4)));
        bytes32 lBefore = snap(l);
        bytes32 vBefore = snap(vk);
        Channel.SignedState memory sl2 = signed(pl, lsLocked(2, 5, 10, 5));
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.refute(sl2, two);
        Channel.SignedState memory sv = vsig(2, 4, 1);
        Channel.SignedState[] memory one = subs1(nestedSubs[0]);
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.refute(sv, one);
        assertEq(snap(l), lBefore, "L unchanged");
        assertEq(snap(vk), vBefore, "V unchanged");
    }

    /// V's state with locks given with a second parent M: refused, V's record unchanged.
    function test_register_revert_nestedLocks_existingRecordUnchanged() public {
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(1, 1, 4)));
        bytes32 before = snap(vk);
        Channel.Params memory pm = ledgerParams(INGRID_PK, BOB_PK, 9);
        bytes32 m = cid(pm);
        Channel.Params memory pw = virtualParams(ALICE_PK, BOB_PK, 31);
        bytes32 w = cid(pw);
        // V at version 2 = (1, 2) plus 2 on W: still worth 5, so it would land on V's record.
        Channel.SignedState memory sv =
            signed(pv, mkState(v, 2, ethOnly(), bal(1, 2), locks(lock1(w, 2, 0, 1)), false));
        Channel.SignedState[] memory subs = new Channel.SignedState[](2);
        subs[0] = sv;
        subs[1] = signed(pw, ethState(w, 1, 2, 0, false));
        Channel.SignedState memory smSigned =
            signed(pm, mkState(m, 1, ethOnly(), bal(0, 0), locks(lock1(v, 5, 0, 1)), false));
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.register(smSigned, subs);
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.register(smSigned, subs1(sv));
        assertEq(snap(vk), before, "V unchanged");
        assertEq(snap(m), noRecord(), "M");
        assertEq(snap(ethKey(w, 2)), noRecord(), "W");
    }

    /// The first step of a nesting chain: the ends of V refute V's record directly with a
    /// state (same total) that locks part of V on a new sub-channel W. Refused with or without
    /// W's state, whatever W's challenge duration; V's record is unchanged and L still
    /// concludes from it on time.
    function test_refute_revert_nestedLocks_subChannel() public {
        Channel.SignedState memory s1 = vsig(1, 1, 4);
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(s1));
        bytes32 before = snap(vk);
        uint64[2] memory durations = [VIRTUAL_CD, uint64(1) << 63];
        for (uint256 i = 0; i < 2; ++i) {
            (Channel.Params memory pw, bytes32 w,) = vWithDuration(durations[i], 31 + i);
            Channel.SignedState memory sv =
                signed(pv, mkState(v, 2, ethOnly(), bal(1, 2), locks(lock1(w, 2, 0, 1)), false));
            Channel.SignedState memory sw = signed(pw, ethState(w, 1, 2, 0, false));
            vm.expectRevert(Adjudicator.NestedLocks.selector);
            adj.refute(sv, subs1(sw));
            vm.expectRevert(Adjudicator.NestedLocks.selector);
            adj.refute(sv, noSubs());
            assertEq(snap(ethKey(w, 2)), noRecord(), "W");
        }
        // A malformed lock (two amounts for one asset) is refused the same way.
        Channel.SubAlloc memory lk = lock1(keccak256("W"), 2, 0, 1);
        lk.balances = new uint256[](2);
        Channel.SignedState memory bad =
            signed(pv, mkState(v, 2, ethOnly(), bal(1, 2), locks(lk), false));
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.refute(bad, noSubs());
        assertEq(snap(vk), before, "V unchanged");
        assertEq(versionOf(vk), 1);

        vm.warp(block.timestamp + LEDGER_CD);
        adj.conclude(pl, lsLocked(1, 5, 10, 5), subStates1(s1.state));
        assertEq(holding(l, alice), 6);
        assertEq(holding(l, ingrid), 14);
    }

    /// L refuted with a state locking S, whose state locks T: refused, L unchanged.
    function test_refute_revert_nestedLocks_throughLedger() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        bytes32 before = snap(l);
        (Channel.SignedState memory sl, Channel.SignedState[] memory subs) = nested();
        sl = signed(pl, mkState(l, 2, ethOnly(), bal(3, 11), sl.state.outcome.locked, false));
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.refute(sl, subs);
        Channel.SignedState[] memory one = subs1(subs[0]);
        vm.expectRevert(Adjudicator.NestedLocks.selector);
        adj.refute(sl, one);
        assertEq(snap(l), before, "L unchanged");
        assertEq(snap(ethKey(subs[0].state.channelId, 6)), noRecord(), "S");
        assertEq(snap(ethKey(subs[1].state.channelId, 2)), noRecord(), "T");
    }

    /// A sub-channel refuted directly takes no sub-states.
    function test_refute_revert_subChannelWithSubs() public {
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(1, 2, 3)));
        Channel.SignedState memory sv = vsig(2, 4, 1);
        Channel.SignedState[] memory extra = subs1(vsig(3, 4, 1));
        vm.expectRevert(Adjudicator.SubCountMismatch.selector);
        adj.refute(sv, extra);
        assertEq(versionOf(vk), 1);
    }

    /// The old depth-first layout (S's state then T's) for L's one lock: too many sub-states.
    function test_conclude_revert_innerSubStates() public {
        (Channel.State memory sl, Channel.State memory sv) = registered();
        Channel.SignedState memory sw = signed(pv, ethState(v, 9, 2, 0, false));
        Channel.State[] memory two = new Channel.State[](2);
        two[0] = sv;
        two[1] = sw.state;
        vm.expectRevert(Adjudicator.SubCountMismatch.selector);
        adj.conclude(pl, sl, two);
        adj.conclude(pl, sl, subStates1(sv));
        assertEq(holding(l, alice), 6);
    }

    // ------------------------------------------------------------ challenge durations

    /// V with challenge duration `cd`, its id and a signed state (1, 4) of it.
    function vWithDuration(uint64 cd, uint256 nonce)
        internal
        view
        returns (Channel.Params memory p, bytes32 id, Channel.SignedState memory s)
    {
        p = virtualParams(ALICE_PK, BOB_PK, nonce);
        p.challengeDuration = cd;
        id = cid(p);
        s = signed(p, ethState(id, 1, 1, 4, false));
    }

    function test_register_revert_challengeDurationTooLong() public {
        (, bytes32 id, Channel.SignedState memory s) = vWithDuration(LEDGER_CD + 1, 30);
        Channel.SignedState memory sl =
            signed(pl, mkState(l, 1, ethOnly(), bal(5, 10), locks(lock1(id, 5, 0, 1)), false));
        vm.expectRevert(Adjudicator.ChallengeDurationTooLong.selector);
        adj.register(sl, subs1(s));
        assertEq(snap(l), noRecord());
        assertEq(snap(ethKey(id, 5)), noRecord());
    }

    function test_register_equalChallengeDurationAccepted() public {
        (, bytes32 id, Channel.SignedState memory s) = vWithDuration(LEDGER_CD, 30);
        Channel.SignedState memory sl =
            signed(pl, mkState(l, 1, ethOnly(), bal(5, 10), locks(lock1(id, 5, 0, 1)), false));
        adj.register(sl, subs1(s));
        assertEq(timeoutOf(ethKey(id, 5)), block.timestamp + LEDGER_CD);
        vm.warp(block.timestamp + LEDGER_CD);
        adj.conclude(pl, sl.state, subStates1(s.state));
        // L = (5 + 1, 10 + 4).
        assertEq(holding(l, alice), 6);
        assertEq(holding(l, ingrid), 14);
    }

    function test_refute_revert_challengeDurationTooLong() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        (, bytes32 id, Channel.SignedState memory s) = vWithDuration(LEDGER_CD + 1, 30);
        Channel.SignedState memory sl =
            signed(pl, mkState(l, 2, ethOnly(), bal(5, 10), locks(lock1(id, 5, 0, 1)), false));
        vm.expectRevert(Adjudicator.ChallengeDurationTooLong.selector);
        adj.refute(sl, subs1(s));
        // Equal to the parent's: accepted.
        (, id, s) = vWithDuration(LEDGER_CD, 30);
        sl = signed(pl, mkState(l, 2, ethOnly(), bal(5, 10), locks(lock1(id, 5, 0, 1)), false));
        adj.refute(sl, subs1(s));
        assertEq(timeoutOf(ethKey(id, 5)), block.timestamp + LEDGER_CD);
    }

    // ------------------------------------------------------------ refute

    function test_refute_ledger() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        uint64 timeout = timeoutOf(l);
        vm.warp(timeout - 1);
        Channel.SignedState memory s = signed(pl, ls(2, 15, 5));
        vm.expectEmit(address(adj));
        emit IAdjudicator.Refuted(l, bytes32(0), timeout, pl, s.state);
        adj.refute(s, noSubs());
        assertEq(versionOf(l), 2);
        assertEq(timeoutOf(l), timeout);
        assertEq(stateHashOf(l), adj.hashState(s.state));
        vm.warp(timeout);
        adj.conclude(pl, s.state, noSubStates());
        assertEq(holding(l, alice), 15);
        assertEq(holding(l, ingrid), 5);
    }

    /// A final state that replaces a ledger channel's record ends its dispute at once: the
    /// timeout becomes now, nothing can replace it, and it can be concluded right away.
    function test_refute_ledger_finalEndsDispute() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        vm.warp(block.timestamp + 10);
        Channel.SignedState memory f = signed(pl, ethState(l, 2, 15, 5, true));
        vm.expectEmit(address(adj));
        emit IAdjudicator.Refuted(l, bytes32(0), uint64(block.timestamp), pl, f.state);
        adj.refute(f, noSubs());
        assertEq(timeoutOf(l), block.timestamp);
        Channel.SignedState memory later = signed(pl, ethState(l, 3, 0, 20, true));
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(later, noSubs());
        adj.conclude(pl, f.state, noSubStates());
        assertEq(holding(l, alice), 15);
        assertEq(holding(l, ingrid), 5);
    }

    /// A final ledger state with locks ends the ledger record's dispute, but `conclude` still
    /// waits for every lock's record to time out.
    function test_refute_ledger_finalWithLocks_concludeWaitsForSubs() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        Channel.State memory st = lsLocked(2, 5, 10, 5);
        st.isFinal = true;
        Channel.SignedState memory sv = vsig(0, 2, 3);
        adj.refute(signed(pl, st), subs1(sv));
        assertEq(timeoutOf(l), block.timestamp);
        assertEq(timeoutOf(vk), block.timestamp + VIRTUAL_CD);
        vm.expectRevert(Adjudicator.TimeoutNotPassed.selector);
        adj.conclude(pl, st, subStates1(sv.state));
        // V's record can still be refuted until its own timeout.
        Channel.SignedState memory sv2 = vsig(1, 4, 1);
        adj.refute(sv2, noSubs());
        vm.warp(block.timestamp + VIRTUAL_CD);
        adj.conclude(pl, st, subStates1(sv2.state));
        assertEq(holding(l, alice), 9);
        assertEq(holding(l, ingrid), 11);
    }

    /// A final state of a sub-channel refuted directly ends that record's dispute at once.
    function test_refute_subChannel_finalEndsDispute() public {
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(1, 2, 3)));
        Channel.SignedState memory f = signed(pv, ethState(v, 2, 5, 0, true));
        adj.refute(f, noSubs());
        assertEq(timeoutOf(vk), block.timestamp);
        Channel.SignedState memory f2 = signed(pv, ethState(v, 3, 0, 5, true));
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(f2, noSubs());
        assertEq(stateHashOf(vk), adj.hashState(f.state));
    }

    function test_refute_withNewLocks_registersSubs() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        Channel.SignedState memory s = signed(pl, lsLocked(2, 5, 10, 5));
        Channel.SignedState memory sv = vsig(0, 2, 3);
        vm.expectEmit(address(adj));
        emit IAdjudicator.Registered(v, l, uint64(block.timestamp) + VIRTUAL_CD, pv, sv.state);
        adj.refute(s, subs1(sv));
        assertEq(uint8(phaseOf(vk)), uint8(IAdjudicator.Phase.Dispute));
    }

    function test_refute_subChannelDirectly() public {
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(1, 2, 3)));
        Channel.SignedState memory sv = vsig(2, 4, 1);
        adj.refute(sv, noSubs());
        assertEq(versionOf(vk), 2);
        assertEq(versionOf(l), 1, "parent untouched");
        vm.warp(block.timestamp + LEDGER_CD);
        adj.conclude(pl, lsLocked(1, 5, 10, 5), subStates1(sv.state));
        assertEq(holding(l, alice), 9);
        assertEq(holding(l, ingrid), 11);
    }

    /// A state of V with another total than its registered one finds no record.
    function test_refute_revert_subChannelOtherTotal() public {
        Channel.SignedState memory s1 = vsig(1, 2, 3);
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(s1));
        (uint64 timeout, uint64 version, IAdjudicator.Phase phase, bytes32 h) = record(vk);
        Channel.SignedState memory more = vsig(2, 3, 3);
        vm.expectRevert(Adjudicator.NotRefutable.selector);
        adj.refute(more, noSubs());
        Channel.SignedState memory less = vsig(2, 1, 3);
        vm.expectRevert(Adjudicator.NotRefutable.selector);
        adj.refute(less, noSubs());
        // The record is unchanged; the other totals' keys have no record.
        (uint64 timeout2, uint64 version2, IAdjudicator.Phase phase2, bytes32 h2) = record(vk);
        assertEq(timeout2, timeout);
        assertEq(version2, version);
        assertEq(uint8(phase2), uint8(phase));
        assertEq(h2, h);
        assertEq(h2, adj.hashState(s1.state));
        assertEq(uint8(phaseOf(ethKey(v, 6))), uint8(IAdjudicator.Phase.None));
        assertEq(uint8(phaseOf(ethKey(v, 4))), uint8(IAdjudicator.Phase.None));
    }

    function test_refute_revert_subChannelTotalOverflow() public {
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(1, 2, 3)));
        Channel.SignedState memory sv = vsig(2, type(uint256).max, 1);
        vm.expectRevert(stdError.arithmeticError);
        adj.refute(sv, noSubs());
    }

    function test_refute_revert_noRecord() public {
        Channel.SignedState memory s = signed(pl, ls(2, 1, 1));
        vm.expectRevert(Adjudicator.NotRefutable.selector);
        adj.refute(s, noSubs());
    }

    function test_refute_revert_concluded() public {
        adj.concludeFinal(signed(pl, ethState(l, 1, 1, 1, true)));
        Channel.SignedState memory s = signed(pl, ls(2, 1, 1));
        vm.expectRevert(Adjudicator.NotRefutable.selector);
        adj.refute(s, noSubs());
    }

    function test_refute_revert_timeoutPassed() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        vm.warp(timeoutOf(l));
        Channel.SignedState memory s = signed(pl, ls(2, 1, 1));
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(s, noSubs());
    }

    function test_refute_revert_finalRegistered() public {
        adj.register(signed(pl, ethState(l, 1, 10, 10, true)), noSubs());
        Channel.SignedState memory s = signed(pl, ls(2, 1, 1));
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(s, noSubs());
    }

    function test_refute_revert_sameVersion() public {
        adj.register(signed(pl, ls(3, 10, 10)), noSubs());
        Channel.SignedState memory s = signed(pl, ls(3, 1, 1));
        vm.expectRevert(Adjudicator.VersionNotHigher.selector);
        adj.refute(s, noSubs());
    }

    function test_refute_revert_lowerVersion() public {
        adj.register(signed(pl, ls(3, 10, 10)), noSubs());
        Channel.SignedState memory s = signed(pl, ls(2, 1, 1));
        vm.expectRevert(Adjudicator.VersionNotHigher.selector);
        adj.refute(s, noSubs());
    }

    function test_refute_revert_badSignature() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        Channel.SignedState memory s = signedBy(adj, pl, ls(2, 20, 0), ALICE_PK, EVE_PK);
        vm.expectRevert(abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 1));
        adj.refute(s, noSubs());
    }

    function test_refute_revert_channelIdMismatch() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        Channel.SignedState memory s = signed(pl, ls(2, 20, 0));
        s.params.nonce = 99;
        vm.expectRevert(Adjudicator.ChannelIdMismatch.selector);
        adj.refute(s, noSubs());
    }

    function test_refute_revert_balancesLength() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        Channel.SignedState memory s =
            signed(pl, mkState(l, 2, ethOnly(), new uint256[2][](0), noLocks(), false));
        vm.expectRevert(Adjudicator.BalancesLengthMismatch.selector);
        adj.refute(s, noSubs());
    }

    function test_refute_revert_subCount() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        Channel.SignedState memory s = signed(pl, lsLocked(2, 5, 10, 5));
        vm.expectRevert(Adjudicator.SubCountMismatch.selector);
        adj.refute(s, noSubs());
        Channel.SignedState memory s2 = signed(pl, ls(2, 5, 10));
        Channel.SignedState memory sv = vsig(1, 1, 4);
        vm.expectRevert(Adjudicator.SubCountMismatch.selector);
        adj.refute(s2, subs1(sv));
    }

    function test_refute_revert_badSub() public {
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        Channel.SignedState memory s = signed(pl, lsLocked(2, 5, 10, 5));
        Channel.SignedState memory sv = vsig(1, 1, 1);
        vm.expectRevert(Adjudicator.LockSumMismatch.selector);
        adj.refute(s, subs1(sv));
    }

    // ------------------------------------------------------------ conclude

    function registered() internal returns (Channel.State memory sl, Channel.State memory sv) {
        sl = lsLocked(1, 5, 10, 5);
        Channel.SignedState memory v1 = vsig(1, 1, 4);
        sv = v1.state;
        adj.register(signed(pl, sl), subs1(v1));
        vm.warp(block.timestamp + LEDGER_CD);
    }

    function test_conclude_creditsThroughIndexMap() public {
        (Channel.State memory sl, Channel.State memory sv) = registered();
        vm.expectEmit(address(eth));
        emit IAssetHolder.OutcomeSet(l, [uint256(6), uint256(14)], [uint256(6), uint256(14)], false);
        vm.expectEmit(address(adj));
        emit IAdjudicator.Concluded(l, 1, ethOnly(), bal(6, 14));
        adj.conclude(pl, sl, subStates1(sv));
        assertPhase(l, IAdjudicator.Phase.Concluded);
        assertPhase(vk, IAdjudicator.Phase.Dispute);
        assertTrue(eth.settled(l));
        assertEq(holding(l, alice), 6);
        assertEq(holding(l, ingrid), 14);
    }

    function test_conclude_swappedIndexMap() public {
        Channel.State memory sl =
            mkState(l, 1, ethOnly(), bal(5, 10), locks(lock1(v, 5, 1, 0)), false);
        Channel.SignedState memory v1 = vsig(1, 1, 4);
        adj.register(signed(pl, sl), subs1(v1));
        vm.warp(block.timestamp + LEDGER_CD);
        adj.conclude(pl, sl, subStates1(v1.state));
        // V's Alice (1) -> L's Ingrid, V's Bob (4) -> L's Alice.
        assertEq(holding(l, alice), 9);
        assertEq(holding(l, ingrid), 11);
    }

    function test_conclude_twoAssetsTwoLocks() public {
        depositErc(l, alice, 100);
        depositErc(l, ingrid, 50);
        Channel.Params memory pw = virtualParams(ALICE_PK, BOB_PK, 3);
        bytes32 w = cid(pw);
        Channel.SubAlloc[] memory lk = new Channel.SubAlloc[](2);
        lk[0] = Channel.SubAlloc({id: v, balances: new uint256[](2), indexMap: [uint16(0), 1]});
        lk[0].balances[0] = 4;
        lk[0].balances[1] = 30;
        lk[1] = Channel.SubAlloc({id: w, balances: new uint256[](2), indexMap: [uint16(1), 0]});
        lk[1].balances[0] = 2;
        lk[1].balances[1] = 20;
        Channel.State memory sl = mkState(l, 1, ethAndErc(), bal2(8, 6, 70, 30), lk, false);
        Channel.SignedState[] memory subs = new Channel.SignedState[](2);
        subs[0] = signed(pv, mkState(v, 3, ethAndErc(), bal2(1, 3, 10, 20), noLocks(), false));
        subs[1] = signed(pw, mkState(w, 3, ethAndErc(), bal2(2, 0, 5, 15), noLocks(), false));
        adj.register(signed(pl, sl), subs);
        vm.warp(block.timestamp + LEDGER_CD);
        Channel.State[] memory st = new Channel.State[](2);
        st[0] = subs[0].state;
        st[1] = subs[1].state;
        adj.conclude(pl, sl, st);
        // ETH: Alice 8 + 1 + 0, Ingrid 6 + 3 + 2. tUSD: Alice 70 + 10 + 15, Ingrid 30 + 20 + 5.
        assertEq(holding(l, alice), 9);
        assertEq(holding(l, ingrid), 11);
        assertEq(erc.holdings(erc.fundingId(l, alice)), 95);
        assertEq(erc.holdings(erc.fundingId(l, ingrid)), 55);
    }

    function test_conclude_revert_notLedger() public {
        Channel.State memory sv = vsig(1, 1, 4).state;
        vm.expectRevert(Adjudicator.NotLedger.selector);
        adj.conclude(pv, sv, noSubStates());
    }

    function test_conclude_revert_channelIdMismatch() public {
        (Channel.State memory sl, Channel.State memory sv) = registered();
        Channel.Params memory other = ledgerParams(ALICE_PK, INGRID_PK, 55);
        vm.expectRevert(Adjudicator.ChannelIdMismatch.selector);
        adj.conclude(other, sl, subStates1(sv));
    }

    function test_conclude_revert_notRegistered() public {
        Channel.State memory sl = ls(1, 1, 1);
        vm.expectRevert(Adjudicator.NotRegistered.selector);
        adj.conclude(pl, sl, noSubStates());
    }

    function test_conclude_revert_alreadyConcluded() public {
        (Channel.State memory sl, Channel.State memory sv) = registered();
        adj.conclude(pl, sl, subStates1(sv));
        vm.expectRevert(Adjudicator.AlreadyConcluded.selector);
        adj.conclude(pl, sl, subStates1(sv));
    }

    function test_conclude_revert_timeoutNotPassed() public {
        Channel.SignedState memory s = signed(pl, ls(1, 1, 1));
        adj.register(s, noSubs());
        vm.warp(timeoutOf(l) - 1);
        vm.expectRevert(Adjudicator.TimeoutNotPassed.selector);
        adj.conclude(pl, s.state, noSubStates());
    }

    function test_conclude_revert_stateHashMismatch() public {
        (Channel.State memory sl, Channel.State memory sv) = registered();
        sl.outcome.balances[0][0] = 6;
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(pl, sl, subStates1(sv));
    }

    function test_conclude_revert_subCount() public {
        (Channel.State memory sl, Channel.State memory sv) = registered();
        vm.expectRevert(Adjudicator.SubCountMismatch.selector);
        adj.conclude(pl, sl, noSubStates());
        Channel.State[] memory two = new Channel.State[](2);
        two[0] = sv;
        two[1] = sv;
        vm.expectRevert(Adjudicator.SubCountMismatch.selector);
        adj.conclude(pl, sl, two);
    }

    function test_conclude_revert_subChannelIdMismatch() public {
        (Channel.State memory sl, Channel.State memory sv) = registered();
        sv.channelId = l;
        vm.expectRevert(Adjudicator.ChannelIdMismatch.selector);
        adj.conclude(pl, sl, subStates1(sv));
    }

    function test_conclude_revert_subStateHashMismatch() public {
        (Channel.State memory sl, Channel.State memory sv) = registered();
        sv.outcome.balances[0] = [uint256(0), 5];
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(pl, sl, subStates1(sv));
    }

    function test_conclude_revert_subTimeoutNotPassed() public {
        // L is registered without locks and refuted just before its timeout with a state that
        // locks V: V's record times out VIRTUAL_CD - 1 after L's.
        adj.register(signed(pl, ls(1, 10, 10)), noSubs());
        uint64 lTimeout = timeoutOf(l);
        vm.warp(lTimeout - 1);
        Channel.State memory sl = lsLocked(2, 5, 10, 5);
        Channel.SignedState memory sv = vsig(1, 1, 4);
        adj.refute(signed(pl, sl), subs1(sv));
        assertEq(timeoutOf(vk), lTimeout - 1 + VIRTUAL_CD);
        vm.warp(lTimeout);
        vm.expectRevert(Adjudicator.TimeoutNotPassed.selector);
        adj.conclude(pl, sl, subStates1(sv.state));
        vm.warp(timeoutOf(vk));
        adj.conclude(pl, sl, subStates1(sv.state));
        assertEq(holding(l, alice), 6);
    }

    /// The two ends of V sign a state of V with another total (6 instead of 5) and register it
    /// first through a ledger channel Z of their own: it lands on another record than the one
    /// L's lock reads, so L still concludes from V's real state, and Z from the other one.
    function test_conclude_recordWithOtherTotalIsSeparate() public {
        Channel.State memory sl = lsLocked(1, 5, 10, 5);
        Channel.Params memory pz = ledgerParams(ALICE_PK, BOB_PK, 66);
        bytes32 z = cid(pz);
        depositEth(z, alice, 6);
        Channel.State memory sz =
            mkState(z, 1, ethOnly(), bal(0, 0), locks(lock1(v, 6, 0, 1)), false);
        Channel.SignedState memory bogus = vsig(100, 6, 0);
        adj.register(signed(pz, sz), subs1(bogus));
        assertEq(versionOf(ethKey(v, 6)), 100);
        assertEq(uint8(phaseOf(vk)), uint8(IAdjudicator.Phase.None));

        // L's registration creates V's record under L's amounts (a Registered event, no
        // Refuted: it is not the record Z wrote).
        Channel.SignedState memory real = vsig(1, 1, 4);
        vm.expectEmit(address(adj));
        emit IAdjudicator.Registered(v, l, uint64(block.timestamp) + VIRTUAL_CD, pv, real.state);
        adj.register(signed(pl, sl), subs1(real));
        assertEq(versionOf(vk), 1);
        assertEq(versionOf(ethKey(v, 6)), 100);
        vm.warp(block.timestamp + LEDGER_CD);

        // L cannot be concluded with the other state, only with its own.
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(pl, sl, subStates1(bogus.state));
        adj.conclude(pl, sl, subStates1(real.state));
        assertEq(holding(l, alice), 6);
        assertEq(holding(l, ingrid), 14);

        adj.conclude(pz, sz, subStates1(bogus.state));
        assertEq(holding(z, alice), 6);
        assertEq(holding(z, bob), 0);
    }

    function test_conclude_recordWithOtherAssetsIsSeparate() public {
        Channel.State memory sl = lsLocked(1, 5, 10, 5);
        Channel.Params memory pz = ledgerParams(ALICE_PK, BOB_PK, 66);
        bytes32 z = cid(pz);
        address[] memory other = new address[](1);
        other[0] = address(erc);
        Channel.SignedState memory bogus =
            signed(pv, mkState(v, 100, other, bal(5, 0), noLocks(), false));
        adj.register(
            signed(pz, mkState(z, 1, other, bal(0, 0), locks(lock1(v, 5, 0, 1)), false)),
            subs1(bogus)
        );
        uint256[] memory five = new uint256[](1);
        five[0] = 5;
        assertEq(versionOf(subKey(v, other, five)), 100);
        Channel.SignedState memory real = vsig(1, 1, 4);
        adj.register(signed(pl, sl), subs1(real));
        assertEq(versionOf(vk), 1);
        vm.warp(block.timestamp + LEDGER_CD);
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(pl, sl, subStates1(bogus.state));
        adj.conclude(pl, sl, subStates1(real.state));
        assertEq(holding(l, alice), 6);
        assertEq(holding(l, ingrid), 14);
    }

    function test_conclude_revert_creditOverflow() public {
        Channel.State memory sl = lsLocked(1, type(uint256).max, 0, 5);
        Channel.SignedState memory v1 = vsig(1, 1, 4);
        adj.register(signed(pl, sl), subs1(v1));
        vm.warp(block.timestamp + LEDGER_CD);
        vm.expectRevert(stdError.arithmeticError);
        adj.conclude(pl, sl, subStates1(v1.state));
    }

    function test_conclude_revert_assetHolderRejects() public {
        // An asset that is not a contract: the whole conclusion reverts.
        address[] memory assets = new address[](1);
        assets[0] = makeAddr("notAContract");
        Channel.SignedState memory s = signed(pl, mkState(l, 1, assets, bal(1, 1), noLocks(), true));
        adj.register(s, noSubs());
        vm.expectRevert();
        adj.conclude(pl, s.state, noSubStates());
        assertPhase(l, IAdjudicator.Phase.Dispute);
    }

    function test_conclude_reentrantAssetHolderSeesConcluded() public {
        ReenteringAssetHolder evil = new ReenteringAssetHolder(adj);
        address[] memory assets = new address[](2);
        assets[0] = address(evil);
        assets[1] = address(eth);
        Channel.SignedState memory s =
            signed(pl, mkState(l, 1, assets, bal2(0, 0, 3, 17), noLocks(), true));
        adj.register(s, noSubs());
        evil.arm(pl, s.state);
        adj.conclude(pl, s.state, noSubStates());
        assertEq(evil.reentryError(), Adjudicator.AlreadyConcluded.selector);
        assertEq(evil.phaseSeen(), uint8(IAdjudicator.Phase.Concluded));
        assertEq(holding(l, alice), 3);
        assertEq(holding(l, ingrid), 17);
    }

    // ------------------------------------------------------------ concludeFinal

    function test_concludeFinal() public {
        Channel.SignedState memory s = signed(pl, ethState(l, 4, 12, 8, true));
        vm.expectEmit(address(adj));
        emit IAdjudicator.Concluded(l, 4, ethOnly(), bal(12, 8));
        adj.concludeFinal(s);
        (uint64 timeout, uint64 version, IAdjudicator.Phase phase, bytes32 h) = adj.disputes(l);
        assertEq(timeout, block.timestamp);
        assertEq(version, 4);
        assertEq(uint8(phase), uint8(IAdjudicator.Phase.Concluded));
        assertEq(h, adj.hashState(s.state));
        assertEq(holding(l, alice), 12);
        assertEq(holding(l, ingrid), 8);
    }

    function test_concludeFinal_fromDispute() public {
        adj.register(signed(pl, lsLocked(1, 5, 10, 5)), subs1(vsig(1, 1, 4)));
        adj.concludeFinal(signed(pl, ethState(l, 2, 6, 14, true)));
        assertPhase(l, IAdjudicator.Phase.Concluded);
        assertEq(holding(l, alice), 6);
        assertEq(holding(l, ingrid), 14);
    }

    function test_concludeFinal_twoAssets() public {
        depositErc(l, alice, 7);
        Channel.SignedState memory s =
            signed(pl, mkState(l, 1, ethAndErc(), bal2(10, 10, 2, 5), noLocks(), true));
        adj.concludeFinal(s);
        assertEq(erc.holdings(erc.fundingId(l, alice)), 2);
        assertEq(erc.holdings(erc.fundingId(l, ingrid)), 5);
    }

    function test_concludeFinal_revert_notLedger() public {
        Channel.SignedState memory s = signed(pv, ethState(v, 1, 1, 1, true));
        vm.expectRevert(Adjudicator.NotLedger.selector);
        adj.concludeFinal(s);
    }

    function test_concludeFinal_revert_notFinal() public {
        Channel.SignedState memory s = signed(pl, ls(1, 1, 1));
        vm.expectRevert(Adjudicator.NotFinal.selector);
        adj.concludeFinal(s);
    }

    function test_concludeFinal_revert_hasLocks() public {
        Channel.State memory st = lsLocked(1, 5, 10, 5);
        st.isFinal = true;
        Channel.SignedState memory s = signed(pl, st);
        vm.expectRevert(Adjudicator.HasLocks.selector);
        adj.concludeFinal(s);
    }

    function test_concludeFinal_revert_badSignature() public {
        Channel.SignedState memory s =
            signedBy(adj, pl, ethState(l, 1, 20, 0, true), ALICE_PK, ALICE_PK);
        vm.expectRevert(abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 1));
        adj.concludeFinal(s);
    }

    function test_concludeFinal_revert_channelIdMismatch() public {
        Channel.SignedState memory s = signed(pl, ethState(v, 1, 20, 0, true));
        vm.expectRevert(Adjudicator.ChannelIdMismatch.selector);
        adj.concludeFinal(s);
    }

    function test_concludeFinal_revert_balancesLength() public {
        Channel.SignedState memory s =
            signed(pl, mkState(l, 1, ethOnly(), bal2(1, 1, 1, 1), noLocks(), true));
        vm.expectRevert(Adjudicator.BalancesLengthMismatch.selector);
        adj.concludeFinal(s);
    }

    function test_concludeFinal_revert_alreadyConcluded() public {
        adj.concludeFinal(signed(pl, ethState(l, 1, 20, 0, true)));
        Channel.SignedState memory s = signed(pl, ethState(l, 2, 0, 20, true));
        vm.expectRevert(Adjudicator.AlreadyConcluded.selector);
        adj.concludeFinal(s);
    }

    function test_concludeFinal_revert_afterConclude() public {
        (Channel.State memory sl, Channel.State memory sv) = registered();
        adj.conclude(pl, sl, subStates1(sv));
        Channel.SignedState memory s = signed(pl, ethState(l, 2, 0, 20, true));
        vm.expectRevert(Adjudicator.AlreadyConcluded.selector);
        adj.concludeFinal(s);
    }

    // ------------------------------------------------------------ helpers

    /// The other valid (high-s) form of a 65-byte signature.
    function malleate(bytes memory sig) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        uint8 v_;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v_ := byte(0, mload(add(sig, 96)))
        }
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        return abi.encodePacked(r, bytes32(n - uint256(s)), v_ == 27 ? uint8(28) : uint8(27));
    }
}
