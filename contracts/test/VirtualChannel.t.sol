// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Base} from "./utils/Base.sol";
import {Channel} from "../src/Channel.sol";
import {IAdjudicator} from "../src/IAdjudicator.sol";
import {Adjudicator} from "../src/Adjudicator.sol";

/// The seed's worked example (DESIGN.md section 3), settled cooperatively and through every
/// kind of dispute: X = Alice-Ingrid (3, 3), Y = Ingrid-Bob (4, 5); V = Alice-Bob opened with
/// (2, 3), so X = (1, 0) + lock 5 and Y = (2, 2) + lock 5; V pays to (4, 1); the close gives
/// X = (5, 1), Y = (6, 3). Ingrid holds 7 before and after.
contract VirtualChannelTest is Base {
    Channel.Params internal px; // Alice (0) - Ingrid (1)
    Channel.Params internal py; // Ingrid (0) - Bob (1)
    Channel.Params internal pv; // Alice (0) - Bob (1), virtual
    bytes32 internal x;
    bytes32 internal y;
    bytes32 internal v;
    /// V's record key: V holds 5 ETH in both parents.
    bytes32 internal vk;

    function setUp() public override {
        super.setUp();
        px = ledgerParams(ALICE_PK, INGRID_PK, 1);
        py = ledgerParams(INGRID_PK, BOB_PK, 2);
        pv = virtualParams(ALICE_PK, BOB_PK, 3);
        x = cid(px);
        y = cid(py);
        v = cid(pv);
        vk = ethKey(v, 5);
        // Funding: Alice 3 and Ingrid 3 in X; Ingrid 4 and Bob 5 in Y.
        depositEth(x, alice, 3);
        depositEth(x, ingrid, 3);
        depositEth(y, ingrid, 4);
        depositEth(y, bob, 5);
        assertEq(ingridHoldings(), 7, "Ingrid holds 7 before");
    }

    // ------------------------------------------------------------ the states

    /// X version 0: (3, 3), no locks.
    function x0() internal view returns (Channel.SignedState memory) {
        return signed(px, ethState(x, 0, 3, 3, false));
    }

    /// X version 1: (1, 0) + lock 5 on V; V's Alice -> Alice (0), V's Bob -> Ingrid (1).
    function x1() internal view returns (Channel.SignedState memory) {
        return signed(px, mkState(x, 1, ethOnly(), bal(1, 0), locks(lock1(v, 5, 0, 1)), false));
    }

    /// X version 2, final: (5, 1).
    function x2() internal view returns (Channel.SignedState memory) {
        return signed(px, ethState(x, 2, 5, 1, true));
    }

    /// Y version 0: (4, 5), no locks.
    function y0() internal view returns (Channel.SignedState memory) {
        return signed(py, ethState(y, 0, 4, 5, false));
    }

    /// Y version 1: (2, 2) + lock 5 on V; V's Alice -> Ingrid (0), V's Bob -> Bob (1).
    function y1() internal view returns (Channel.SignedState memory) {
        return signed(py, mkState(y, 1, ethOnly(), bal(2, 2), locks(lock1(v, 5, 0, 1)), false));
    }

    /// Y version 2, final: (6, 3).
    function y2() internal view returns (Channel.SignedState memory) {
        return signed(py, ethState(y, 2, 6, 3, true));
    }

    /// V at `version` with balances (a, b) for (Alice, Bob).
    function vs(uint64 version, uint256 a, uint256 b)
        internal
        view
        returns (Channel.SignedState memory)
    {
        return signed(pv, ethState(v, version, a, b, false));
    }

    /// V's history: opened (2, 3); Bob pays 2 -> (4, 1) at version 1.
    function vOpen() internal view returns (Channel.SignedState memory) {
        return vs(0, 2, 3);
    }

    function vLatest() internal view returns (Channel.SignedState memory) {
        return vs(1, 4, 1);
    }

    // ------------------------------------------------------------ helpers

    function ingridHoldings() internal view returns (uint256) {
        return eth.holdings(eth.fundingId(x, ingrid)) + eth.holdings(eth.fundingId(y, ingrid));
    }

    function concludeX(Channel.SignedState memory sx, Channel.SignedState memory sv) internal {
        adj.conclude(px, sx.state, subStates1(sv.state));
    }

    function concludeY(Channel.SignedState memory sy, Channel.SignedState memory sv) internal {
        adj.conclude(py, sy.state, subStates1(sv.state));
    }

    /// Everyone withdraws; checks the final balances X = (5, 1), Y = (6, 3).
    function withdrawAndCheck() internal {
        assertTrue(eth.settled(x) && eth.settled(y), "both settled");
        assertEq(ingridHoldings(), 7, "Ingrid holds 7 after");

        address aliceWallet = makeAddr("aliceWallet");
        address ingridWallet = makeAddr("ingridWallet");
        address bobWallet = makeAddr("bobWallet");
        assertEq(withdrawAll(eth, x, ALICE_PK, aliceWallet), 5, "Alice's X");
        assertEq(withdrawAll(eth, x, INGRID_PK, ingridWallet), 1, "Ingrid's X");
        assertEq(withdrawAll(eth, y, INGRID_PK, ingridWallet), 6, "Ingrid's Y");
        assertEq(withdrawAll(eth, y, BOB_PK, bobWallet), 3, "Bob's Y");
        assertEq(aliceWallet.balance, 5);
        assertEq(ingridWallet.balance, 7, "Ingrid is neutral");
        assertEq(bobWallet.balance, 3);
        assertEq(address(eth).balance, 0, "everything paid out, nothing more");
    }

    function assertPushed(bytes32 id, uint256 b0, uint256 b1) internal view {
        (,, IAdjudicator.Phase phase,) = adj.disputes(id);
        assertEq(uint8(phase), uint8(IAdjudicator.Phase.Concluded));
        assertEq(eth.holdings(eth.fundingId(id, id == x ? alice : ingrid)), b0);
        assertEq(eth.holdings(eth.fundingId(id, id == x ? ingrid : bob)), b1);
    }

    // ------------------------------------------------------------ (a) cooperative

    function test_cooperativeClose() public {
        // Open (X1, Y1 with V's initial state), pay inside V, then close both parents with
        // final states that fold V's final balances in.
        Channel.SignedState memory fx = x2();
        Channel.SignedState memory fy = y2();
        vm.expectEmit(address(adj));
        emit IAdjudicator.Concluded(x, 2, ethOnly(), bal(5, 1));
        adj.concludeFinal(fx);
        adj.concludeFinal(fy);
        assertPushed(x, 5, 1);
        assertPushed(y, 6, 3);
        // V never touched the chain.
        assertEq(uint8(phaseOf(vk)), uint8(IAdjudicator.Phase.None));
        withdrawAndCheck();
    }

    // ------------------------------------------------------------ (b) disputes

    function test_disputeClose() public {
        Channel.SignedState memory sv = vLatest();
        uint64 t0 = uint64(block.timestamp);

        vm.expectEmit(address(adj));
        emit IAdjudicator.Registered(x, bytes32(0), t0 + LEDGER_CD, px, x1().state);
        vm.expectEmit(address(adj));
        emit IAdjudicator.Registered(v, x, t0 + VIRTUAL_CD, pv, sv.state);
        adj.register(x1(), subs1(sv));

        // Y is registered later with the same V state: V's record stays as it is.
        vm.warp(block.timestamp + 10);
        vm.recordLogs();
        adj.register(y1(), subs1(sv));
        assertEq(vm.getRecordedLogs().length, 1, "only Y's Registered event");
        assertEq(timeoutOf(vk), t0 + VIRTUAL_CD, "V's timeout unchanged");

        Channel.State memory sx = x1().state;
        Channel.State memory sy = y1().state;
        // Not yet.
        vm.expectRevert(Adjudicator.TimeoutNotPassed.selector);
        adj.conclude(px, sx, subStates1(sv.state));

        vm.warp(t0 + LEDGER_CD);
        concludeX(x1(), sv);
        vm.expectRevert(Adjudicator.TimeoutNotPassed.selector);
        adj.conclude(py, sy, subStates1(sv.state));
        vm.warp(t0 + 10 + LEDGER_CD);
        concludeY(y1(), sv);

        assertPushed(x, 5, 1);
        assertPushed(y, 6, 3);
        // V's record is shared and stays in Dispute.
        assertEq(uint8(phaseOf(vk)), uint8(IAdjudicator.Phase.Dispute));
        withdrawAndCheck();
    }

    // ------------------------------------------------------------ (c) stale states

    /// The hub registers X's stale version 0 (3, 3), which would take 2 from Alice; Alice
    /// refutes with X1 and V's latest state; the hub then registers Y, staying neutral.
    function test_hubRegistersStaleLedgerState_aliceRefutes() public {
        adj.register(x0(), noSubs());
        assertEq(uint8(phaseOf(vk)), uint8(IAdjudicator.Phase.None));

        vm.warp(block.timestamp + LEDGER_CD - 1);
        adj.refute(x1(), subs1(vLatest()));
        assertEq(versionOf(x), 1);
        assertEq(versionOf(vk), 1);

        adj.register(y1(), subs1(vLatest()));
        vm.warp(block.timestamp + LEDGER_CD);

        // The stale state cannot be concluded any more.
        Channel.State memory stale = x0().state;
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(px, stale, noSubStates());

        concludeX(x1(), vLatest());
        concludeY(y1(), vLatest());
        withdrawAndCheck();
    }

    /// Bob registers Y with V's stale opening state (2, 3), which would give him 2 more; the
    /// hub registers X with V's latest state, which refutes V's shared record.
    function test_bobRegistersStaleVirtualState_hubRefutesThroughRegister() public {
        adj.register(y1(), subs1(vOpen()));
        assertEq(versionOf(vk), 0);

        vm.warp(block.timestamp + VIRTUAL_CD - 1);
        Channel.SignedState memory sx = x1();
        Channel.SignedState memory sv = vLatest();
        vm.expectEmit(address(adj));
        emit IAdjudicator.Refuted(v, x, timeoutOf(vk), pv, sv.state);
        adj.register(sx, subs1(sv));
        assertEq(versionOf(vk), 1);

        vm.warp(block.timestamp + LEDGER_CD);
        // Y cannot be concluded with the stale V state any more.
        Channel.State memory sy = y1().state;
        Channel.State memory staleV = vOpen().state;
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(py, sy, subStates1(staleV));
        concludeY(y1(), vLatest());
        concludeX(x1(), vLatest());
        withdrawAndCheck();
    }

    /// Bob registers Y with V's stale opening state; Alice refutes V's record directly.
    function test_bobRegistersStaleVirtualState_aliceRefutesVirtual() public {
        adj.register(y1(), subs1(vOpen()));
        vm.warp(block.timestamp + 1);
        Channel.SignedState memory sv = vLatest();
        vm.expectEmit(address(adj));
        emit IAdjudicator.Refuted(v, bytes32(0), timeoutOf(vk), pv, sv.state);
        adj.refute(sv, noSubs());
        assertEq(versionOf(vk), 1);

        // Alice's X is registered by Alice with the latest V (record already at version 1).
        adj.register(x1(), subs1(vLatest()));
        vm.warp(block.timestamp + LEDGER_CD);
        concludeY(y1(), vLatest());
        concludeX(x1(), vLatest());
        withdrawAndCheck();
    }

    /// V's history here is (2, 3) -> (5, 0) -> (4, 1): Alice registers X with the stale
    /// (5, 0). Bob refutes V's shared record directly (his own parent Y has not even been
    /// registered); the hub registers Y and both parents settle from V's latest state.
    function test_aliceRegistersStaleVirtualState_bobRefutesVirtual() public {
        Channel.SignedState memory stale = vs(1, 5, 0);
        Channel.SignedState memory latest = vs(2, 4, 1);
        adj.register(x1(), subs1(stale));
        assertEq(versionOf(vk), 1);

        vm.warp(block.timestamp + VIRTUAL_CD - 1);
        adj.refute(latest, noSubs());
        assertEq(versionOf(vk), 2);

        // Too late for anybody to refute V again.
        vm.warp(block.timestamp + 1);
        Channel.SignedState memory later = vs(3, 5, 0);
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(later, noSubs());

        // The hub registers Y with the stale state it was shown: V's record stays at (4, 1).
        adj.register(y1(), subs1(stale));
        assertEq(versionOf(vk), 2);

        vm.warp(block.timestamp + LEDGER_CD);
        Channel.State memory sx = x1().state;
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(px, sx, subStates1(stale.state));
        concludeX(x1(), latest);
        concludeY(y1(), latest);
        withdrawAndCheck();
    }

    /// Bob registers Y's stale version 0 (4, 5), before V existed; the hub refutes with Y1
    /// and V's latest state, Alice registers X.
    function test_bobRegistersStaleLedgerState_hubRefutes() public {
        adj.register(y0(), noSubs());
        adj.refute(y1(), subs1(vLatest()));
        adj.register(x1(), subs1(vLatest()));
        vm.warp(block.timestamp + LEDGER_CD);
        concludeY(y1(), vLatest());
        concludeX(x1(), vLatest());
        withdrawAndCheck();
    }

    /// One parent closes cooperatively, the other through a dispute: still (5, 1) and (6, 3).
    function test_mixedCooperativeAndDispute() public {
        adj.concludeFinal(x2());
        adj.register(y1(), subs1(vLatest()));
        vm.warp(block.timestamp + LEDGER_CD);
        concludeY(y1(), vLatest());
        withdrawAndCheck();
    }

    /// A party that misses V's challenge window loses to the stale state: the shared record
    /// binds both parents, so Ingrid stays neutral even then (she holds 7).
    function test_missedWindow_staleVirtualStateSettlesBothParents() public {
        adj.register(y1(), subs1(vOpen()));
        vm.warp(block.timestamp + VIRTUAL_CD);
        // Too late: register leaves the timed-out record alone, refute reverts.
        adj.register(x1(), subs1(vLatest()));
        assertEq(versionOf(vk), 0);
        Channel.SignedState memory sv = vLatest();
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(sv, noSubs());
        vm.warp(block.timestamp + LEDGER_CD);
        concludeX(x1(), vOpen());
        concludeY(y1(), vOpen());
        // X = (1 + 2, 0 + 3), Y = (2 + 2, 2 + 3).
        assertPushed(x, 3, 3);
        assertPushed(y, 4, 5);
        assertEq(ingridHoldings(), 7, "Ingrid still neutral");
    }

    // ------------------------------------------------------------ (d) colluding ends of V

    /// Alice and Bob sign a state of V worth 6 (not the 5 X and Y lock) giving Alice all of it,
    /// and register it first through Z, a ledger channel of their own. It lands on another
    /// record than the one X's and Y's locks read: both parents are registered with V's real
    /// latest state and conclude to (5, 1) and (6, 3), Ingrid holds 7, and Z concludes from
    /// its own record.
    function test_endsRegisterOtherTotalThroughOwnLedger_parentsStillConclude() public {
        Channel.Params memory pz = ledgerParams(ALICE_PK, BOB_PK, 4);
        bytes32 z = cid(pz);
        depositEth(z, alice, 6);
        Channel.State memory sz =
            mkState(z, 1, ethOnly(), bal(0, 0), locks(lock1(v, 6, 0, 1)), false);
        Channel.SignedState memory bogus = vs(100, 6, 0);
        adj.register(signed(pz, sz), subs1(bogus));
        assertEq(versionOf(ethKey(v, 6)), 100);
        assertEq(uint8(phaseOf(vk)), uint8(IAdjudicator.Phase.None));

        // The hub registers X and Y with V's latest state: X's creates V's record under the
        // locked 5 (Registered, not Refuted), Y's finds it.
        Channel.SignedState memory sv = vLatest();
        uint64 t0 = uint64(block.timestamp);
        vm.expectEmit(address(adj));
        emit IAdjudicator.Registered(v, x, t0 + VIRTUAL_CD, pv, sv.state);
        adj.register(x1(), subs1(sv));
        adj.register(y1(), subs1(sv));
        assertEq(versionOf(vk), 1);
        assertEq(versionOf(ethKey(v, 6)), 100, "the other record is untouched");

        vm.warp(t0 + LEDGER_CD);
        // The other state cannot settle X or Y.
        Channel.State memory sx = x1().state;
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(px, sx, subStates1(bogus.state));
        concludeX(x1(), sv);
        concludeY(y1(), sv);
        assertPushed(x, 5, 1);
        assertPushed(y, 6, 3);
        assertEq(ingridHoldings(), 7, "Ingrid's total across X and Y unchanged");

        // Z settles from its own record: Alice gets what Z holds for her.
        adj.conclude(pz, sz, subStates1(bogus.state));
        assertEq(eth.holdings(eth.fundingId(z, alice)), 6);
        assertEq(eth.holdings(eth.fundingId(z, bob)), 0);
        assertEq(withdrawAll(eth, z, ALICE_PK, makeAddr("aliceZ")), 6);
        withdrawAndCheck();
    }

    // ------------------------------------------------------------ (e) final states of V

    /// V's history for the final-state attacks: S1 (4, 1) at version 1, then two final
    /// states that Alice and Bob, colluding, both sign: F1 (5, 0) at version 2 and F2 (0, 5) at
    /// version 3. The first final state to reach V's record must settle both parents.
    function vS1() internal view returns (Channel.SignedState memory) {
        return vs(1, 4, 1);
    }

    function vF1() internal view returns (Channel.SignedState memory) {
        return signed(pv, ethState(v, 2, 5, 0, true));
    }

    function vF2() internal view returns (Channel.SignedState memory) {
        return signed(pv, ethState(v, 3, 0, 5, true));
    }

    /// Both parents concluded with F1: X = (1 + 5, 0 + 0), Y = (2 + 5, 2 + 0); Ingrid holds
    /// 0 + 7 = 7, as before V.
    function assertBothSettledWithF1() internal {
        vm.warp(block.timestamp + LEDGER_CD);
        Channel.State memory sx = x1().state;
        Channel.State memory f2 = vF2().state;
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(px, sx, subStates1(f2));
        concludeX(x1(), vF1());
        concludeY(y1(), vF1());
        assertPushed(x, 6, 0);
        assertPushed(y, 7, 2);
        assertEq(ingridHoldings(), 7, "Ingrid's total unchanged");
    }

    /// Flaw 1 of issue 11: a final state that reached V's record through `refute` kept the
    /// record's earlier timeout, so a higher final state could replace it until then (after the
    /// hub settled one parent off chain on the first). Now the first final state ends the
    /// dispute of the record at once.
    function test_finalVirtualStateByRefute_cannotBeReplaced() public {
        adj.register(x1(), subs1(vS1()));
        Channel.SignedState memory f1 = vF1();
        vm.expectEmit(address(adj));
        emit IAdjudicator.Refuted(v, bytes32(0), uint64(block.timestamp), pv, f1.state);
        adj.refute(f1, noSubs());
        assertEq(timeoutOf(vk), block.timestamp, "a final state ends V's dispute");

        Channel.SignedState memory f2 = vF2();
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(f2, noSubs());
        // Nor through a parent's registration, in the same block or later.
        adj.register(y1(), subs1(f2));
        vm.warp(block.timestamp + 1);
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(f2, noSubs());
        assertEq(versionOf(vk), 2);
        assertEq(stateHashOf(vk), adj.hashState(f1.state));
        assertBothSettledWithF1();
    }

    /// The same through a parent's registration: Y is registered with F1 while V's record
    /// holds S1 (the update branch of the shared record).
    function test_finalVirtualStateByParentRegister_cannotBeReplaced() public {
        adj.register(x1(), subs1(vS1()));
        vm.warp(block.timestamp + 5);
        Channel.SignedState memory f1 = vF1();
        vm.expectEmit(address(adj));
        emit IAdjudicator.Refuted(v, y, uint64(block.timestamp), pv, f1.state);
        adj.register(y1(), subs1(f1));
        assertEq(timeoutOf(vk), block.timestamp, "a final state ends V's dispute");

        Channel.SignedState memory f2 = vF2();
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(f2, noSubs());
        assertEq(stateHashOf(vk), adj.hashState(f1.state));
        assertBothSettledWithF1();
    }

    /// The same through a parent's refute: X is refuted with a newer X state carrying F1.
    function test_finalVirtualStateByParentRefute_cannotBeReplaced() public {
        adj.register(x0(), noSubs());
        adj.register(y1(), subs1(vS1()));
        adj.refute(x1(), subs1(vF1()));
        assertEq(timeoutOf(vk), block.timestamp, "a final state ends V's dispute");
        Channel.SignedState memory f2 = vF2();
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(f2, noSubs());
        assertBothSettledWithF1();
    }
}
