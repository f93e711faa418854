// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {Base} from "./utils/Base.sol";
import {Channel} from "../src/Channel.sol";
import {IAssetHolder} from "../src/IAssetHolder.sol";
import {AssetHolder} from "../src/AssetHolder.sol";
import {EthAssetHolder} from "../src/EthAssetHolder.sol";
import {Erc20AssetHolder} from "../src/Erc20AssetHolder.sol";

/// Standby deposits (`depositStandby`) and the settlement rule `credits` that applies them:
/// the hub's collateral top-up of issue 11, flaw 3, end to end through the adjudicator, then
/// the rule's cases on both holders with the adjudicator impersonated, and a property test of
/// `credits`.
contract StandbyTest is Base {
    bytes32 internal constant C = keccak256("channel");
    uint256 internal constant MAX = type(uint192).max;

    // ------------------------------------------------------------ helpers

    function setOutcome(AssetHolder h, bytes32 channelId, uint256 b0, uint256 b1) internal {
        vm.prank(address(adj));
        h.setOutcome(channelId, [alice, bob], [b0, b1]);
    }

    function standbyEth(bytes32 channelId, address participant, uint256 amount) internal {
        address payer = makeAddr("payer");
        vm.deal(payer, amount);
        vm.prank(payer);
        eth.depositStandby{value: amount}(channelId, participant, amount);
    }

    function standbyErc(bytes32 channelId, address participant, uint256 amount) internal {
        address payer = makeAddr("payer");
        token.mint(payer, amount);
        vm.startPrank(payer);
        token.approve(address(erc), amount);
        erc.depositStandby(channelId, participant, amount);
        vm.stopPrank();
    }

    /// Deposits and standbys for Alice and Bob in `C` at `h` (ETH or ERC20).
    function fund(AssetHolder h, uint256 d0, uint256 d1, uint256 s0, uint256 s1) internal {
        if (address(h) == address(eth)) {
            if (d0 > 0) depositEth(C, alice, d0);
            if (d1 > 0) depositEth(C, bob, d1);
            if (s0 > 0) standbyEth(C, alice, s0);
            if (s1 > 0) standbyEth(C, bob, s1);
        } else {
            if (d0 > 0) depositErc(C, alice, d0);
            if (d1 > 0) depositErc(C, bob, d1);
            if (s0 > 0) standbyErc(C, alice, s0);
            if (s1 > 0) standbyErc(C, bob, s1);
        }
    }

    function holdingOf(AssetHolder h, bytes32 channelId, address who)
        internal
        view
        returns (uint256)
    {
        return h.holdings(h.fundingId(channelId, who));
    }

    function standbyOf(AssetHolder h, bytes32 channelId, address who)
        internal
        view
        returns (uint256)
    {
        return h.standby(h.fundingId(channelId, who));
    }

    /// What the holder owns of its asset.
    function assetBalance(AssetHolder h) internal view returns (uint256) {
        return address(h) == address(eth) ? address(eth).balance : token.balanceOf(address(erc));
    }

    function holders() internal view returns (AssetHolder[2] memory) {
        return [AssetHolder(eth), AssetHolder(erc)];
    }

    // ------------------------------------------------------------ issue 11, flaw 3, end to end

    /// The client (Alice, 0) and the hub (Ingrid, 1) each deposit 5 ETH and 5 tUSD in the
    /// ledger channel L; the client pays the hub 2 (state 1: (3, 7) in both assets); the hub
    /// puts 4 of each on standby to raise its balance. Returns L's params.
    function flaw3Setup(bool topUpOnStandby) internal returns (Channel.Params memory pl) {
        pl = ledgerParams(ALICE_PK, INGRID_PK, 11);
        bytes32 l = cid(pl);
        depositEth(l, alice, 5);
        depositEth(l, ingrid, 5);
        depositErc(l, alice, 5);
        depositErc(l, ingrid, 5);
        if (topUpOnStandby) {
            standbyEth(l, ingrid, 4);
            standbyErc(l, ingrid, 4);
        } else {
            depositEth(l, ingrid, 4);
            depositErc(l, ingrid, 4);
        }
    }

    function flaw3State(bytes32 l, uint64 version, uint256 hub, bool isFinal)
        internal
        view
        returns (Channel.State memory)
    {
        return mkState(l, version, ethAndErc(), bal2(3, hub, 3, hub), noLocks(), isFinal);
    }

    /// Registers `s` (signed by both) and waits out the challenge.
    function registerAndWait(Channel.Params memory pl, Channel.State memory s) internal {
        adj.register(signed(pl, s), noSubs());
        vm.warp(block.timestamp + LEDGER_CD);
    }

    /// Withdraws both participants' holdings of L at both holders and checks the amounts and
    /// that nothing stays behind.
    function withdrawBoth(bytes32 l, uint256 client, uint256 hub) internal {
        for (uint256 k = 0; k < 2; ++k) {
            AssetHolder h = holders()[k];
            assertEq(withdrawAll(h, l, ALICE_PK, makeAddr("client wallet")), client, "client");
            assertEq(withdrawAll(h, l, INGRID_PK, makeAddr("hub wallet")), hub, "hub");
            assertEq(assetBalance(h), 0, "nothing stays in the holder");
        }
        assertEq(makeAddr("client wallet").balance, client);
        assertEq(makeAddr("hub wallet").balance, hub);
        assertEq(token.balanceOf(makeAddr("client wallet")), client);
        assertEq(token.balanceOf(makeAddr("hub wallet")), hub);
    }

    /// Flaw 3: the client ignores the top-up and concludes with the last state it signed,
    /// (3, 7). The hub gets its balance plus its whole standby (7 + 4), the client its balance
    /// (3), in both assets.
    function test_flaw3_ignoredTopUp_oldStateReturnsWholeStandbyToHub() public {
        Channel.Params memory pl = flaw3Setup(true);
        bytes32 l = cid(pl);
        Channel.State memory s = flaw3State(l, 1, 7, false);
        registerAndWait(pl, s);
        vm.expectEmit(address(eth));
        emit IAssetHolder.OutcomeSet(l, [uint256(3), 7], [uint256(3), 11], false);
        vm.expectEmit(address(erc));
        emit IAssetHolder.OutcomeSet(l, [uint256(3), 7], [uint256(3), 11], false);
        adj.conclude(pl, s, noSubStates());
        for (uint256 k = 0; k < 2; ++k) {
            assertEq(holdingOf(holders()[k], l, alice), 3);
            assertEq(holdingOf(holders()[k], l, ingrid), 11);
            assertEq(standbyOf(holders()[k], l, ingrid), 0, "the standby is credited");
        }
        withdrawBoth(l, 3, 11);
    }

    /// The client countersigned the raised state (3, 11) once it saw the standby; the hub
    /// concludes with it (the client's last state (3, 7) refuted first). The raise of 4 is
    /// drawn from the hub's standby: hub 11, client 3.
    function test_flaw3_acceptedTopUp_raisedStateDrawsHubStandby() public {
        Channel.Params memory pl = flaw3Setup(true);
        bytes32 l = cid(pl);
        adj.register(signed(pl, flaw3State(l, 1, 7, false)), noSubs());
        Channel.State memory raised = flaw3State(l, 2, 11, false);
        adj.refute(signed(pl, raised), noSubs());
        vm.warp(block.timestamp + LEDGER_CD);
        vm.expectEmit(address(eth));
        emit IAssetHolder.OutcomeSet(l, [uint256(3), 11], [uint256(3), 11], false);
        adj.conclude(pl, raised, noSubStates());
        withdrawBoth(l, 3, 11);
    }

    /// The same raised state closed cooperatively with a final state.
    function test_flaw3_acceptedTopUp_concludeFinal() public {
        Channel.Params memory pl = flaw3Setup(true);
        bytes32 l = cid(pl);
        adj.concludeFinal(signed(pl, flaw3State(l, 2, 11, true)));
        withdrawBoth(l, 3, 11);
    }

    /// Why the top-up goes on standby: with the old way (the hub's 4 deposited with
    /// `deposit`), the excess rule cannot tell the top-up from the client's over-payment and
    /// credits the client min(q, t) = 2 of the hub's coins: client 5, hub 9, instead of 3 and
    /// 11.
    function test_flaw3_topUpByDeposit_wouldCreditClientMore() public {
        Channel.Params memory pl = flaw3Setup(false);
        bytes32 l = cid(pl);
        Channel.State memory s = flaw3State(l, 1, 7, false);
        registerAndWait(pl, s);
        adj.conclude(pl, s, noSubStates());
        for (uint256 k = 0; k < 2; ++k) {
            assertGt(holdingOf(holders()[k], l, alice), 3, "the client gains");
            assertEq(holdingOf(holders()[k], l, alice), 5);
            assertEq(holdingOf(holders()[k], l, ingrid), 9);
        }
    }

    /// Flaw 3 for any payment q <= 5 from the client to the hub and any top-up t: ignored
    /// (old state (5 - q, 5 + q)), the hub gets 5 + q + t; accepted (raised state
    /// (5 - q, 5 + q + t)), the same. The client gets 5 - q either way.
    function testFuzz_flaw3_topUpAlwaysStaysWithHub(uint256 q, uint256 t, bool accepted) public {
        q = bound(q, 0, 5);
        t = bound(t, 1, 1e30);
        depositEth(C, alice, 5);
        depositEth(C, bob, 5);
        standbyEth(C, bob, t);
        setOutcome(eth, C, 5 - q, 5 + q + (accepted ? t : 0));
        assertEq(holdingOf(eth, C, alice), 5 - q);
        assertEq(holdingOf(eth, C, bob), 5 + q + t);
    }

    // ------------------------------------------------------------ depositStandby

    function test_standby_emitsAndAccumulates() public {
        vm.deal(eve, 7);
        token.mint(eve, 7);
        vm.prank(eve);
        token.approve(address(erc), 7);
        for (uint256 k = 0; k < 2; ++k) {
            AssetHolder h = holders()[k];
            uint256 value = k == 0 ? 3 : 0;
            vm.expectEmit(address(h));
            emit IAssetHolder.StandbyDeposited(C, alice, 3, 3);
            vm.prank(eve);
            h.depositStandby{value: value}(C, alice, 3);
            value = k == 0 ? 4 : 0;
            vm.expectEmit(address(h));
            emit IAssetHolder.StandbyDeposited(C, alice, 4, 7);
            vm.prank(eve);
            h.depositStandby{value: value}(C, alice, 4);
            assertEq(standbyOf(h, C, alice), 7);
            assertEq(standbyOf(h, C, bob), 0);
            assertEq(holdingOf(h, C, alice), 0, "a standby is not a holding");
            assertEq(assetBalance(h), 7);
        }
    }

    function test_standby_revert_wrongValue() public {
        vm.deal(eve, 10);
        vm.startPrank(eve);
        vm.expectRevert(abi.encodeWithSelector(EthAssetHolder.WrongValue.selector, 2, 3));
        eth.depositStandby{value: 2}(C, alice, 3);
        vm.expectRevert(abi.encodeWithSelector(EthAssetHolder.WrongValue.selector, 4, 3));
        eth.depositStandby{value: 4}(C, alice, 3);
        vm.stopPrank();
        assertEq(standbyOf(eth, C, alice), 0);
    }

    function test_standby_revert_etherToErc20Holder() public {
        token.mint(eve, 10);
        vm.deal(eve, 1);
        vm.startPrank(eve);
        token.approve(address(erc), 10);
        vm.expectRevert(Erc20AssetHolder.EtherNotAccepted.selector);
        erc.depositStandby{value: 1}(C, alice, 10);
        vm.stopPrank();
    }

    function test_standby_revert_zeroParticipant() public {
        vm.deal(eve, 1);
        vm.prank(eve);
        vm.expectRevert(AssetHolder.ZeroParticipant.selector);
        eth.depositStandby{value: 1}(C, address(0), 1);
        vm.expectRevert(AssetHolder.ZeroParticipant.selector);
        erc.depositStandby(C, address(0), 1);
    }

    /// A standby after settlement could never be credited: it is refused (a deposit is not).
    function test_standby_revert_alreadySettled() public {
        for (uint256 k = 0; k < 2; ++k) {
            AssetHolder h = holders()[k];
            fund(h, 5, 5, 0, 0);
            setOutcome(h, C, 5, 5);
            if (k == 0) {
                vm.deal(eve, 1);
                vm.prank(eve);
                vm.expectRevert(AssetHolder.AlreadySettled.selector);
                eth.depositStandby{value: 1}(C, bob, 1);
            } else {
                token.mint(eve, 1);
                vm.startPrank(eve);
                token.approve(address(erc), 1);
                vm.expectRevert(AssetHolder.AlreadySettled.selector);
                erc.depositStandby(C, bob, 1);
                vm.stopPrank();
            }
            fund(h, 0, 1, 0, 0); // a deposit still works
            assertEq(holdingOf(h, C, bob), 6);
        }
    }

    /// A holding plus its standby stays within 2^192 - 1, whichever comes first.
    function test_standby_revert_holdingOverflow() public {
        depositErc(C, alice, MAX - 1);
        standbyErc(C, alice, 1);
        token.mint(eve, 2);
        vm.startPrank(eve);
        token.approve(address(erc), 2);
        vm.expectRevert(AssetHolder.HoldingOverflow.selector);
        erc.depositStandby(C, alice, 1);
        vm.expectRevert(AssetHolder.HoldingOverflow.selector);
        erc.deposit(C, alice, 1);
        vm.stopPrank();
        assertEq(standbyOf(erc, C, alice), 1);
        assertEq(holdingOf(erc, C, alice), MAX - 1);

        // Standby first: the deposit is the one refused.
        standbyErc(C, bob, MAX);
        token.mint(eve, 1);
        vm.startPrank(eve);
        token.approve(address(erc), 1);
        vm.expectRevert(AssetHolder.HoldingOverflow.selector);
        erc.deposit(C, bob, 1);
        vm.stopPrank();
    }

    /// A standby cannot be withdrawn before settlement (nothing can).
    function test_standby_revert_withdrawBeforeSettlement() public {
        standbyEth(C, alice, 5);
        IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal(C, alice, alice, 5, 0);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.expectRevert(AssetHolder.NotSettled.selector);
        eth.withdraw(w, sig);
    }

    // ------------------------------------------------------------ settlement with standbys

    /// An outcome within the deposits leaves the standbys untouched: the excess rule applies
    /// to the deposits and each standby goes back to its participant in full.
    function test_setOutcome_funded_standbysReturnedInFull() public {
        for (uint256 k = 0; k < 2; ++k) {
            AssetHolder h = holders()[k];
            fund(h, 6, 4, 2, 3);
            // E = 2, Alice deposited less than her balance: the excess is Bob's.
            vm.expectEmit(address(h));
            emit IAssetHolder.OutcomeSet(C, [uint256(7), 1], [uint256(9), 6], false);
            setOutcome(h, C, 7, 1);
            assertEq(holdingOf(h, C, alice), 7 + 2);
            assertEq(holdingOf(h, C, bob), 1 + 2 + 3);
            assertEq(standbyOf(h, C, alice), 0);
            assertEq(standbyOf(h, C, bob), 0);
        }
    }

    /// The shortfall B - H = 8 is drawn from standbys 3 and 6 in proportion: floor(8 * 3 / 9)
    /// = 2 from Alice's, 6 from Bob's.
    function test_setOutcome_shortfallDrawnInProportion() public {
        for (uint256 k = 0; k < 2; ++k) {
            AssetHolder h = holders()[k];
            fund(h, 5, 5, 3, 6);
            vm.expectEmit(address(h));
            emit IAssetHolder.OutcomeSet(C, [uint256(8), 10], [uint256(9), 10], false);
            setOutcome(h, C, 8, 10);
            assertEq(holdingOf(h, C, alice), 8 + 3 - 2);
            assertEq(holdingOf(h, C, bob), 10 + 6 - 6);
            assertEq(withdrawAll(h, C, ALICE_PK, alice), 9);
            assertEq(withdrawAll(h, C, BOB_PK, bob), 10);
            assertEq(assetBalance(h), 0, "nothing stays in the holder");
        }
    }

    /// Rounding: Alice's share of the draw is rounded down, so participant 1 pays the
    /// remainder (here the whole 1 of a shortfall split over equal standbys); nothing is
    /// lost or created.
    function test_setOutcome_drawRoundsDownForParticipant0() public {
        fund(eth, 0, 0, 1, 1);
        setOutcome(eth, C, 0, 1);
        assertEq(holdingOf(eth, C, alice), 1, "Alice's standby untouched (0.5 rounded down)");
        assertEq(holdingOf(eth, C, bob), 1, "Bob's standby paid the 1");
        fund(erc, 0, 0, 2, 1);
        setOutcome(erc, C, 2, 0); // draw0 = floor(2 * 2 / 3) = 1, draw1 = 1
        assertEq(holdingOf(erc, C, alice), 2 + 2 - 1);
        assertEq(holdingOf(erc, C, bob), 0 + 1 - 1);
    }

    /// An outcome the deposits and both standbys cannot cover: everyone keeps what it put in.
    function test_setOutcome_underfundedEvenWithStandbys_refunds() public {
        for (uint256 k = 0; k < 2; ++k) {
            AssetHolder h = holders()[k];
            fund(h, 5, 5, 1, 2);
            vm.expectEmit(address(h));
            emit IAssetHolder.OutcomeSet(C, [uint256(9), 9], [uint256(6), 7], true);
            setOutcome(h, C, 9, 9);
            assertEq(withdrawAll(h, C, ALICE_PK, alice), 5 + 1);
            assertEq(withdrawAll(h, C, BOB_PK, bob), 5 + 2);
            assertEq(assetBalance(h), 0);
        }
    }

    /// Exactly covered: the whole of both standbys is drawn.
    function test_setOutcome_standbysExactlyCoverShortfall() public {
        fund(eth, 5, 5, 1, 2);
        setOutcome(eth, C, 4, 9);
        assertEq(holdingOf(eth, C, alice), 4);
        assertEq(holdingOf(eth, C, bob), 9);
    }

    /// After settlement the returned standby is a holding like any other: its participant
    /// withdraws it (Bob put 3 on standby and has no balance in the outcome).
    function test_withdraw_paysReturnedStandby() public {
        for (uint256 k = 0; k < 2; ++k) {
            AssetHolder h = holders()[k];
            fund(h, 5, 0, 0, 3);
            setOutcome(h, C, 5, 0);
            address wallet = makeAddr(k == 0 ? "eth wallet" : "erc wallet");
            assertEq(withdrawAll(h, C, BOB_PK, wallet), 3);
            assertEq(withdrawAll(h, C, ALICE_PK, alice), 5);
            assertEq(k == 0 ? wallet.balance : token.balanceOf(wallet), 3);
            assertEq(assetBalance(h), 0);
        }
    }

    /// A standby under an address that is not one of the channel's participants is not
    /// credited by `setOutcome`, but it is not lost: after settlement its owner withdraws it
    /// like a late deposit (the withdrawal folds it into the holding first).
    function test_withdraw_paysStandbyOfANonParticipant() public {
        for (uint256 k = 0; k < 2; ++k) {
            AssetHolder h = holders()[k];
            address eve = vm.addr(EVE_PK);
            fund(h, 5, 0, 0, 0);
            if (k == 0) standbyEth(C, eve, 4);
            else standbyErc(C, eve, 4);
            setOutcome(h, C, 5, 0);
            assertEq(standbyOf(h, C, eve), 4, "not credited by the outcome");
            bytes32 f = h.fundingId(C, eve);
            IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal({
                channelId: C, participant: eve, receiver: eve, amount: 4, nonce: h.nonces(f)
            });
            h.withdraw(w, withdrawalSig(h, EVE_PK, w));
            assertEq(standbyOf(h, C, eve), 0);
            assertEq(h.holdings(f), 0);
            assertEq(k == 0 ? eve.balance : token.balanceOf(eve), 4);
            assertEq(withdrawAll(h, C, ALICE_PK, alice), 5);
            assertEq(assetBalance(h), 0, "nothing stays behind");
        }
    }

    /// Credits above 2^192 - 1 (only with an absurd token supply and balances both signed)
    /// settle like an underfunded channel: deposits and standbys stay with their
    /// participants.
    function test_setOutcome_creditAboveMaxHolding_refundsStandbys() public {
        fund(erc, MAX, 0, 0, MAX);
        vm.expectEmit(address(erc));
        emit IAssetHolder.OutcomeSet(C, [2 * MAX, 0], [MAX, MAX], true);
        setOutcome(erc, C, 2 * MAX, 0);
        assertEq(holdingOf(erc, C, alice), MAX);
        assertEq(holdingOf(erc, C, bob), MAX);
    }

    /// The standby is per channel: settling one channel leaves another's standby alone.
    function test_setOutcome_otherChannelsStandbyUntouched() public {
        bytes32 d = keccak256("other");
        standbyEth(C, bob, 4);
        standbyEth(d, bob, 7);
        setOutcome(eth, C, 0, 0);
        assertEq(holdingOf(eth, C, bob), 4);
        assertEq(standbyOf(eth, d, bob), 7);
        assertEq(holdingOf(eth, d, bob), 0);
    }

    /// A limit of the rule, documented: standbys are drawn in proportion whatever each was
    /// put there for. The client raised its own balance by 4 with a standby of 4 and the hub
    /// countersigned (9, 5); meanwhile the hub put 4 on standby for its own raise, which the
    /// client never countersigned. Concluding (9, 5) draws the shortfall 4 as 2 and 2, so the
    /// hub's uncountersigned top-up pays 2 of the client's raise: client 11 (put in 9), hub 7
    /// (put in 9, signed balance 5). With a larger standby of its own, the client's share of
    /// the draw, and the hub's loss, grows towards the hub's whole standby.
    function test_concurrentRaises_pendingStandbyFundsTheOthersRaise() public {
        fund(eth, 5, 5, 4, 4);
        setOutcome(eth, C, 9, 5);
        assertEq(holdingOf(eth, C, alice), 11);
        assertEq(holdingOf(eth, C, bob), 7);
        (uint256[2] memory c,) = eth.credits([uint256(5), 5], [uint256(100), 4], [uint256(105), 5]);
        assertEq(c[0], 105 + 100 - 96, "the client's standby pays only 96 of its raise of 100");
        assertEq(c[1], 5, "the hub's whole top-up of 4 pays the rest");
    }

    /// A limit of the rule, documented: deposits fund an outcome before standbys do. The
    /// hub's top-up (4 on standby, (3, 11) countersigned) is pending when the client deposits
    /// 4 more with `deposit` to raise its own balance, which the hub never countersigns.
    /// Concluding (3, 11) is covered by the deposits alone (H = B = 14), so the hub's standby
    /// comes back in full and the client's 4 pay the hub's raise: client 3 (put in 9, signed
    /// balance 3), hub 15 (put in 9, signed balance 11). Had the hub's top-up been a deposit
    /// (the old way), the excess rule would have given client 7, hub 11.
    function test_mixedRaises_uncountersignedDepositFundsTheOthersStandbyRaise() public {
        fund(eth, 5 + 4, 5, 0, 4);
        setOutcome(eth, C, 3, 11);
        assertEq(holdingOf(eth, C, alice), 3);
        assertEq(holdingOf(eth, C, bob), 15);
        (uint256[2] memory old,) = eth.credits([uint256(9), 9], [uint256(0), 0], [uint256(3), 11]);
        assertEq(old[0], 7);
        assertEq(old[1], 11);
    }

    // ------------------------------------------------------------ the rule, as a property

    /// `credits` for any deposits and standbys a holder can hold (d_i + s_i <= 2^192 - 1) and
    /// any balances (up to 2^193 each, beyond what fits a slot).
    function testFuzz_credits(uint256[2] memory d, uint256[2] memory s, uint256[2] calldata b)
        public
        view
    {
        d[0] = bound(d[0], 0, MAX);
        d[1] = bound(d[1], 0, MAX);
        s[0] = bound(s[0], 0, MAX - d[0]);
        s[1] = bound(s[1], 0, MAX - d[1]);
        uint256[2] memory bb = [bound(b[0], 0, 2 ** 193), bound(b[1], 0, 2 ** 193)];
        (uint256[2] memory c, bool refunded) = eth.credits(d, s, bb);
        checkCredits(d, s, bb, c, refunded);
    }

    /// The same with small numbers, where the boundaries between the cases (B = H, B = H +
    /// s0 + s1) and the rounding are hit often.
    function testFuzz_credits_small(uint8[2] memory d8, uint8[2] memory s8, uint8[2] memory b8)
        public
        view
    {
        uint256[2] memory d = [uint256(d8[0] % 16), d8[1] % 16];
        uint256[2] memory s = [uint256(s8[0] % 16), s8[1] % 16];
        uint256[2] memory b = [uint256(b8[0] % 40), b8[1] % 40];
        (uint256[2] memory c, bool refunded) = eth.credits(d, s, b);
        checkCredits(d, s, b, c, refunded);
    }

    /// The rule of `AssetHolder`'s doc, written out again independently of `credits`: the
    /// credits before the check that they fit a slot, or `covered` false if B > H + s0 + s1.
    function model(uint256[2] memory d, uint256[2] memory s, uint256[2] memory b)
        internal
        pure
        returns (uint256[2] memory c, bool covered)
    {
        uint256 held = d[0] + d[1];
        uint256 need = b[0] + b[1];
        if (need > held + s[0] + s[1]) return (c, false);
        if (need <= held) {
            uint256 excess = held - need;
            for (uint256 i = 0; i < 2; ++i) {
                uint256 above = d[i] > b[i] ? d[i] - b[i] : 0;
                c[i] = b[i] + Math.min(excess, above) + s[i];
            }
            // Both formulas give the two credits: if d1 < b1, participant 0's share is all of
            // the excess and participant 1's is 0; if d0 < b0, the other way round.
        } else {
            uint256 draw0 = Math.mulDiv(need - held, s[0], s[0] + s[1]);
            c[0] = b[0] + s[0] - draw0;
            c[1] = b[1] + s[1] - (need - held - draw0);
        }
        return (c, true);
    }

    function checkCredits(
        uint256[2] memory d,
        uint256[2] memory s,
        uint256[2] memory b,
        uint256[2] memory c,
        bool refunded
    ) internal view {
        uint256 held = d[0] + d[1];
        uint256 onStandby = s[0] + s[1];
        uint256 need = b[0] + b[1];
        assertEq(c[0] + c[1], held + onStandby, "nothing destroyed or created");

        (uint256[2] memory expected, bool covered) = model(d, s, b);
        bool fits = expected[0] <= MAX && expected[1] <= MAX;
        assertEq(refunded, !covered || !fits, "refunded exactly when uncovered or too large");
        if (refunded) {
            assertEq(c[0], d[0] + s[0], "refund 0");
            assertEq(c[1], d[1] + s[1], "refund 1");
            return;
        }
        assertEq(c[0], expected[0], "rule for participant 0");
        assertEq(c[1], expected[1], "rule for participant 1");
        for (uint256 i = 0; i < 2; ++i) {
            assertGe(c[i], b[i], "at least the final balance");
        }
        if (need <= held) {
            // Funded: the standbys come back in full, on top of the balance and a share of
            // the excess; each gets back its deposits and standby unless the other ended
            // above its own deposit.
            assertGe(c[0], b[0] + s[0]);
            assertGe(c[1], b[1] + s[1]);
            assertLe(c[0], b[0] + s[0] + (held - need));
            assertLe(c[1], b[1] + s[1] + (held - need));
            if (b[1] <= d[1]) assertGe(c[0], d[0] + s[0], "0 keeps its own");
            if (b[0] <= d[0]) assertGe(c[1], d[1] + s[1], "1 keeps its own");
        } else {
            checkDraws(d, s, b, c);
        }
    }

    /// Funded with standby: exactly the shortfall is drawn, each standby's share in proportion
    /// (participant 0's rounded down), never more than the standby, and neither participant
    /// is favoured beyond one unit of rounding (swapping them mirrors the credits, to within
    /// 1).
    function checkDraws(
        uint256[2] memory d,
        uint256[2] memory s,
        uint256[2] memory b,
        uint256[2] memory c
    ) internal view {
        uint256 shortfall = b[0] + b[1] - d[0] - d[1];
        uint256 draw0 = b[0] + s[0] - c[0];
        uint256 draw1 = b[1] + s[1] - c[1];
        assertEq(draw0 + draw1, shortfall, "the shortfall, no more");
        assertEq(draw0, Math.mulDiv(shortfall, s[0], s[0] + s[1]), "0's share, rounded down");
        assertLe(draw0, s[0]);
        assertLe(draw1, s[1]);
        (uint256[2] memory m,) = eth.credits([d[1], d[0]], [s[1], s[0]], [b[1], b[0]]);
        assertApproxEqAbs(m[0], c[1], 1, "mirror 1");
        assertApproxEqAbs(m[1], c[0], 1, "mirror 0");
    }

    /// The holders apply `credits`: for any deposits, standbys and outcome, the holdings after
    /// settlement are its credits, the standbys are cleared, and withdrawing everything
    /// drains the holder.
    function testFuzz_setOutcome_appliesCreditsAndDrains(
        uint256 d0,
        uint256 d1,
        uint256 s0,
        uint256 s1,
        uint256 b0,
        uint256 b1
    ) public {
        d0 = bound(d0, 0, 1e30);
        d1 = bound(d1, 0, 1e30);
        s0 = bound(s0, 0, 1e30);
        s1 = bound(s1, 0, 1e30);
        b0 = bound(b0, 0, 3e30);
        b1 = bound(b1, 0, 3e30);
        fund(eth, d0, d1, s0, s1);
        (uint256[2] memory c, bool refunded) = eth.credits([d0, d1], [s0, s1], [b0, b1]);
        vm.expectEmit(address(eth));
        emit IAssetHolder.OutcomeSet(C, [b0, b1], c, refunded);
        setOutcome(eth, C, b0, b1);
        assertEq(holdingOf(eth, C, alice), c[0]);
        assertEq(holdingOf(eth, C, bob), c[1]);
        assertEq(standbyOf(eth, C, alice), 0);
        assertEq(standbyOf(eth, C, bob), 0);
        if (c[0] > 0) withdrawAll(eth, C, ALICE_PK, alice);
        if (c[1] > 0) withdrawAll(eth, C, BOB_PK, bob);
        assertEq(alice.balance + bob.balance, d0 + d1 + s0 + s1);
        assertEq(address(eth).balance, 0, "nothing is stuck");
    }
}
