// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Base} from "./utils/Base.sol";
import {Channel} from "../src/Channel.sol";
import {IAdjudicator} from "../src/IAdjudicator.sol";
import {Adjudicator} from "../src/Adjudicator.sol";
import {AppRules} from "../src/apps/AppRules.sol";
import {CoinFlip} from "../src/apps/CoinFlip.sol";
import {TicTacToe} from "../src/apps/TicTacToe.sol";
import {ConditionalPayment} from "../src/apps/ConditionalPayment.sol";

/// Apps in a virtual channel, settled through force-execution (`progress`). V = Alice (0) -
/// Bob (1) runs an app and is worth 10, locked in X = Alice-Ingrid (3, 1) + lock 10 (V's Alice
/// -> Alice, V's Bob -> Ingrid) and in Y = Ingrid-Bob (2, 2) + lock 10 (V's Alice -> Ingrid,
/// V's Bob -> Bob). Funding: Alice 8 and Ingrid 6 in X, Ingrid 7 and Bob 7 in Y, so both
/// parents are funded exactly and Ingrid holds 13 = 1 + 2 + 10 before and after, whatever V's
/// distribution.
///
/// Every refused move is checked for its exact error and for leaving V's record as it was
/// (phase, version, timeout, state hash, window, forced moves).
contract AppTest is Base {
    uint256 internal constant POT = 10;
    uint256 internal constant INGRID_TOTAL = 13;

    CoinFlip internal coinFlip;
    TicTacToe internal ticTacToe;
    ConditionalPayment internal payment;

    Channel.Params internal px; // Alice (0) - Ingrid (1)
    Channel.Params internal py; // Ingrid (0) - Bob (1)
    bytes32 internal x;
    bytes32 internal y;

    /// The app channel under test (see `useApp`) and its record key (worth `POT` ETH).
    Channel.Params internal pv;
    bytes32 internal v;
    bytes32 internal vk;

    /// The coin flip's secret: Alice commits to `BIT` with `SALT`.
    bytes32 internal constant SALT = keccak256("alice's salt");
    uint8 internal constant BIT = 1;

    bytes internal constant PREIMAGE = "the response body";

    /// A dispute record with its force-execution fields.
    struct Rec {
        uint64 timeout;
        uint64 version;
        IAdjudicator.Phase phase;
        bytes32 stateHash;
        uint64 window;
        uint8 forcedMoves;
    }

    function setUp() public override {
        super.setUp();
        coinFlip = new CoinFlip();
        ticTacToe = new TicTacToe();
        payment = new ConditionalPayment();
        px = ledgerParams(ALICE_PK, INGRID_PK, 1);
        py = ledgerParams(INGRID_PK, BOB_PK, 2);
        x = cid(px);
        y = cid(py);
        depositEth(x, alice, 8);
        depositEth(x, ingrid, 6);
        depositEth(y, ingrid, 7);
        depositEth(y, bob, 7);
        useApp(address(coinFlip));
    }

    // ------------------------------------------------------------ channels and states

    /// Makes V an Alice-Bob virtual channel running `app`.
    function useApp(address app) internal {
        pv = virtualParams(ALICE_PK, BOB_PK, 3);
        pv.app = app;
        v = cid(pv);
        vk = ethKey(v, POT);
    }

    /// X version 1: (3, 1) + lock 10 on V.
    function xState() internal view returns (Channel.SignedState memory) {
        return signed(px, mkState(x, 1, ethOnly(), bal(3, 1), locks(lock1(v, POT, 0, 1)), false));
    }

    /// Y version 1: (2, 2) + lock 10 on V.
    function yState() internal view returns (Channel.SignedState memory) {
        return signed(py, mkState(y, 1, ethOnly(), bal(2, 2), locks(lock1(v, POT, 0, 1)), false));
    }

    function vState(uint64 version, uint256 a, uint256 b, bytes memory appData, bool isFinal)
        internal
        view
        returns (Channel.State memory s)
    {
        s = ethState(v, version, a, b, isFinal);
        s.appData = appData;
    }

    /// `s` signed by both Alice and Bob.
    function both(Channel.State memory s) internal view returns (Channel.SignedState memory) {
        return signed(pv, s);
    }

    function sigOf(uint256 pk, Channel.State memory s) internal view returns (bytes memory) {
        return signState(adj, pk, s);
    }

    /// Force-executes `from` -> `to` as `actor`, signed by `pk`.
    function move(Channel.State memory from, Channel.State memory to, uint256 actor, uint256 pk)
        internal
    {
        adj.progress(pv, from, to, actor, sigOf(pk, to));
    }

    /// Registers X with `s` as V's state (creating V's record), then Y with it.
    function registerBoth(Channel.State memory s) internal {
        adj.register(xState(), subs1(both(s)));
        adj.register(yState(), subs1(both(s)));
    }

    function concludeBoth(Channel.State memory s) internal {
        Channel.State memory sx = xState().state;
        Channel.State memory sy = yState().state;
        adj.conclude(px, sx, subStates1(s));
        adj.conclude(py, sy, subStates1(s));
    }

    function holding(bytes32 channel, address who) internal view returns (uint256) {
        return eth.holdings(eth.fundingId(channel, who));
    }

    /// Both parents concluded with V at (a, b): X = (3 + a, 1 + b), Y = (2 + a, 2 + b), and
    /// Ingrid holds what she put in.
    function assertSettled(uint256 a, uint256 b) internal view {
        assertEq(holding(x, alice), 3 + a, "Alice in X");
        assertEq(holding(x, ingrid), 1 + b, "Ingrid in X");
        assertEq(holding(y, ingrid), 2 + a, "Ingrid in Y");
        assertEq(holding(y, bob), 2 + b, "Bob in Y");
        assertEq(
            holding(x, ingrid) + holding(y, ingrid), 1 + 2 + POT, "Ingrid's total is unchanged"
        );
        assertEq(holding(x, ingrid) + holding(y, ingrid), INGRID_TOTAL, "what Ingrid deposited");
    }

    // ------------------------------------------------------------ records

    function rec(bytes32 key) internal view returns (Rec memory r) {
        (r.timeout, r.version, r.phase, r.stateHash) = adj.disputes(key);
        (r.window, r.forcedMoves) = adj.forceExecution(key);
    }

    function assertRec(Rec memory got, Rec memory want) internal pure {
        assertEq(got.timeout, want.timeout, "timeout");
        assertEq(got.version, want.version, "version");
        assertEq(uint8(got.phase), uint8(want.phase), "phase");
        assertEq(got.stateHash, want.stateHash, "state hash");
        assertEq(got.window, want.window, "window");
        assertEq(got.forcedMoves, want.forcedMoves, "forced moves");
    }

    function assertRec(
        bytes32 key,
        uint64 timeout,
        uint64 version,
        IAdjudicator.Phase phase,
        Channel.State memory s,
        uint64 window,
        uint8 forcedMoves
    ) internal view {
        assertRec(rec(key), Rec(timeout, version, phase, adj.hashState(s), window, forcedMoves));
    }

    /// `progress(p, from, to, actor, sig)` reverts with exactly `err` and leaves V's record as
    /// it was.
    function refused(
        Channel.Params memory p,
        Channel.State memory from,
        Channel.State memory to,
        uint256 actor,
        bytes memory sig,
        bytes memory err
    ) internal {
        Rec memory before = rec(vk);
        vm.expectRevert(err);
        adj.progress(p, from, to, actor, sig);
        assertRec(rec(vk), before);
    }

    /// `refused` with V's params and `to` signed by `actor`'s own key.
    function refused(
        Channel.State memory from,
        Channel.State memory to,
        uint256 actor,
        bytes memory err
    ) internal {
        refused(pv, from, to, actor, sigOf(actor == 0 ? ALICE_PK : BOB_PK, to), err);
    }

    function sel(bytes4 selector) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector);
    }

    // ------------------------------------------------------------ coin flip states

    function cf(uint8 stage, bytes32 commitment, uint8 guess, bytes32 salt, uint8 bit)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encode(CoinFlip.Data(stage, commitment, guess, salt, bit));
    }

    function commitment() internal pure returns (bytes32) {
        return keccak256(abi.encode(SALT, BIT));
    }

    /// Version 0: the stakes (5, 5), waiting for Alice's commitment.
    function cfOpen() internal view returns (Channel.State memory) {
        return vState(0, 5, 5, cf(0, 0, 0, 0, 0), false);
    }

    /// Version 1: Alice committed; the pot is hers unless Bob guesses.
    function cfCommit() internal view returns (Channel.State memory) {
        return vState(1, POT, 0, cf(1, commitment(), 0, 0, 0), false);
    }

    /// Version 2: Bob guessed `g`; the pot is his unless Alice reveals.
    function cfGuess(uint8 g) internal view returns (Channel.State memory) {
        return vState(2, 0, POT, cf(2, commitment(), g, 0, 0), false);
    }

    /// Version 3, final: Alice revealed; Bob wins if he guessed `BIT`.
    function cfReveal(uint8 g) internal view returns (Channel.State memory) {
        (uint256 a, uint256 b) = g == BIT ? (uint256(0), POT) : (POT, uint256(0));
        return vState(3, a, b, cf(3, commitment(), g, SALT, BIT), true);
    }

    // ------------------------------------------------------------ tic-tac-toe states

    function stakes() internal pure returns (uint256[2][] memory s) {
        s = new uint256[2][](1);
        s[0] = [uint256(5), 5];
    }

    function ttt(uint8[9] memory board) internal pure returns (bytes memory) {
        return abi.encode(TicTacToe.Data(board, stakes()));
    }

    function emptyBoard() internal pure returns (uint8[9] memory b) {}

    /// Version 0: empty board, the stakes (5, 5).
    function tttOpen() internal view returns (Channel.State memory) {
        return vState(0, 5, 5, ttt(emptyBoard()), false);
    }

    /// The state after `from` (version `from.version + 1`) with `board`: pot to `mover`, or
    /// final with the pot to `mover` on `win`, or final with the stakes back on a draw.
    function tttNext(
        Channel.State memory from,
        uint8[9] memory board,
        uint256 mover,
        bool win,
        bool draw
    ) internal view returns (Channel.State memory) {
        if (draw) return vState(from.version + 1, 5, 5, ttt(board), true);
        (uint256 a, uint256 b) = mover == 0 ? (POT, uint256(0)) : (uint256(0), POT);
        return vState(from.version + 1, a, b, ttt(board), win);
    }

    function decodeBoard(Channel.State memory s) internal pure returns (uint8[9] memory) {
        return abi.decode(s.appData, (TicTacToe.Data)).board;
    }

    /// Plays `cells` in turn (Alice first) by force-execution from `s`, every move answered
    /// one second before the previous one's timeout; the last move is `win` or `draw`.
    function tttPlay(Channel.State memory s, uint8[] memory cells, bool win, bool draw)
        internal
        returns (Channel.State memory)
    {
        for (uint256 i = 0; i < cells.length; ++i) {
            uint256 mover = i % 2;
            uint8[9] memory board = decodeBoard(s);
            board[cells[i]] = uint8(mover + 1);
            bool last = i + 1 == cells.length;
            Channel.State memory next = tttNext(s, board, mover, last && win, last && draw);
            vm.warp(timeoutOf(vk) - 1);
            move(s, next, mover, mover == 0 ? ALICE_PK : BOB_PK);
            s = next;
        }
        return s;
    }

    // ------------------------------------------------------------ conditional payment states

    function amounts1(uint256 a) internal pure returns (uint256[] memory r) {
        r = new uint256[](1);
        r[0] = a;
    }

    function noAmounts() internal pure returns (uint256[] memory) {
        return new uint256[](0);
    }

    function cp(uint8 payer, uint256[] memory amounts, bytes memory preimage)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encode(ConditionalPayment.Data(payer, keccak256(PREIMAGE), amounts, preimage));
    }

    // ------------------------------------------------------------ records of app channels

    function test_appRecord_getsRefutationPeriodAndWindow() public {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = cfOpen();
        vm.expectEmit(address(adj));
        emit IAdjudicator.Registered(v, x, t0 + 2 * VIRTUAL_CD, pv, open);
        adj.register(xState(), subs1(both(open)));
        assertRec(vk, t0 + 2 * VIRTUAL_CD, 0, IAdjudicator.Phase.Dispute, open, VIRTUAL_CD, 0);
        // The parent's own record is as before.
        assertEq(timeoutOf(x), t0 + LEDGER_CD);
        (uint64 w, uint8 m) = adj.forceExecution(x);
        assertEq(w, 0);
        assertEq(m, 0);
    }

    function test_nonAppRecord_hasNoWindow_andCannotProgress() public {
        pv = virtualParams(ALICE_PK, BOB_PK, 3);
        v = cid(pv);
        vk = ethKey(v, POT);
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory s0 = vState(0, 5, 5, "", false);
        adj.register(xState(), subs1(both(s0)));
        assertRec(vk, t0 + VIRTUAL_CD, 0, IAdjudicator.Phase.Dispute, s0, 0, 0);
        // Still refutable until its timeout, as before.
        vm.warp(t0 + VIRTUAL_CD - 1);
        Channel.State memory s1 = vState(1, 6, 4, "", false);
        adj.refute(both(s1), noSubs());
        Channel.State memory s2 = vState(2, 7, 3, "", false);
        refused(s1, s2, 0, sel(Adjudicator.NoApp.selector));
        vm.warp(t0 + VIRTUAL_CD);
        refused(s1, s2, 0, sel(Adjudicator.NoApp.selector));
    }

    function test_ledgerWithApp_refused() public {
        Channel.Params memory pl = ledgerParams(ALICE_PK, INGRID_PK, 9);
        pl.app = address(coinFlip);
        bytes32 l = cid(pl);
        Channel.SignedState memory s = signed(pl, ethState(l, 1, 1, 1, false));
        Channel.SignedState[] memory none = noSubs();
        vm.expectRevert(Adjudicator.LedgerWithApp.selector);
        adj.register(s, none);
        Channel.SignedState memory f = signed(pl, ethState(l, 2, 1, 1, true));
        vm.expectRevert(Adjudicator.LedgerWithApp.selector);
        adj.concludeFinal(f);
        Channel.State memory st = s.state;
        Channel.State[] memory noStates = noSubStates();
        vm.expectRevert(Adjudicator.LedgerWithApp.selector);
        adj.conclude(pl, st, noStates);
        assertEq(uint8(phaseOf(l)), uint8(IAdjudicator.Phase.None));
        // Nor can such a channel be force-executed.
        Channel.State memory to = ethState(l, 2, 2, 0, false);
        bytes memory sig = sigOf(ALICE_PK, to);
        vm.expectRevert(Adjudicator.NoApp.selector);
        adj.progress(pl, st, to, 0, sig);
    }

    // ------------------------------------------------------------ the coin flip, end to end

    /// The seed's dispute: Alice commits by force-execution, Bob never guesses. After the
    /// timeout both parents conclude; Alice gets her free coins and the whole pot, Ingrid's
    /// total is what she put in.
    function test_coinFlip_bobStallsAfterCommit_aliceTakesThePot() public {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = cfOpen();
        adj.register(xState(), subs1(both(open)));
        assertRec(vk, t0 + 2 * VIRTUAL_CD, 0, IAdjudicator.Phase.Dispute, open, VIRTUAL_CD, 0);

        // During the refutation period nobody may move alone.
        Channel.State memory commit = cfCommit();
        vm.warp(t0 + VIRTUAL_CD - 1);
        refused(open, commit, 0, sel(Adjudicator.NotProgressable.selector));

        // Refutation over: Alice commits.
        vm.warp(t0 + VIRTUAL_CD);
        vm.expectEmit(address(adj));
        emit IAdjudicator.Progressed(v, t0 + 2 * VIRTUAL_CD, 1, 0, pv, commit);
        move(open, commit, 0, ALICE_PK);
        assertRec(vk, t0 + 2 * VIRTUAL_CD, 1, IAdjudicator.Phase.ForceExec, commit, 0, 1);

        // The hub registers Y with V's opening state: V's record stays.
        vm.warp(t0 + 60);
        Rec memory r = rec(vk);
        adj.register(yState(), subs1(both(open)));
        assertRec(rec(vk), r);

        // Bob never guesses; the parents wait for V.
        vm.warp(t0 + 2 * VIRTUAL_CD - 1);
        Channel.State memory sx = xState().state;
        vm.expectRevert(Adjudicator.TimeoutNotPassed.selector);
        adj.conclude(px, sx, subStates1(commit));

        // At the timeout it is too late to guess.
        vm.warp(t0 + 2 * VIRTUAL_CD);
        refused(commit, cfGuess(0), 1, sel(Adjudicator.NotProgressable.selector));
        // The opening state no longer settles anything.
        vm.expectRevert(Adjudicator.StateHashMismatch.selector);
        adj.conclude(px, sx, subStates1(open));
        adj.conclude(px, sx, subStates1(commit));
        vm.warp(t0 + 60 + LEDGER_CD);
        Channel.State memory sy = yState().state;
        adj.conclude(py, sy, subStates1(commit));

        assertSettled(POT, 0);
        assertEq(holding(x, alice), 3 + POT, "Alice: her free coins and the whole pot");
        assertEq(holding(y, bob), 2, "Bob: his free coins only");

        address ingridWallet = makeAddr("ingridWallet");
        withdrawAll(eth, x, INGRID_PK, ingridWallet);
        withdrawAll(eth, y, INGRID_PK, ingridWallet);
        assertEq(ingridWallet.balance, INGRID_TOTAL, "the hub's total is unchanged");
        withdrawAll(eth, x, ALICE_PK, makeAddr("aliceWallet"));
        withdrawAll(eth, y, BOB_PK, makeAddr("bobWallet"));
        assertEq(address(eth).balance, 0, "everything paid out, nothing more");
    }

    /// The whole game by force-execution, each move late: the reveal is final and fixes V's
    /// record at once, so both parents (whose own records timed out) conclude in that block.
    function playCoinFlipToTheEnd(uint8 g) internal returns (Channel.State memory reveal) {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = cfOpen();
        registerBoth(open);
        vm.warp(t0 + 90);
        Channel.State memory commit = cfCommit();
        move(open, commit, 0, ALICE_PK);
        vm.warp(t0 + 130);
        Channel.State memory guess = cfGuess(g);
        move(commit, guess, 1, BOB_PK);
        assertRec(vk, t0 + 180, 2, IAdjudicator.Phase.ForceExec, guess, 0, 2);

        vm.warp(t0 + 170);
        Channel.State memory sx = xState().state;
        vm.expectRevert(Adjudicator.TimeoutNotPassed.selector);
        adj.conclude(px, sx, subStates1(guess));

        reveal = cfReveal(g);
        vm.expectEmit(address(adj));
        emit IAdjudicator.Progressed(v, t0 + 170, 3, 0, pv, reveal);
        move(guess, reveal, 0, ALICE_PK);
        assertRec(vk, t0 + 170, 3, IAdjudicator.Phase.ForceExec, reveal, 0, 3);

        // Nothing replaces or advances the final state.
        Channel.State memory after_ = vState(4, 5, 5, cf(3, commitment(), g, SALT, BIT), true);
        refused(reveal, after_, 1, sel(Adjudicator.NotProgressable.selector));
        Channel.SignedState memory later = both(after_);
        vm.expectRevert(Adjudicator.NotRefutable.selector);
        adj.refute(later, noSubs());

        concludeBoth(reveal);
    }

    function test_coinFlip_forcedToTheEnd_bobGuessesRight_concludesAtOnce() public {
        playCoinFlipToTheEnd(BIT);
        assertSettled(0, POT);
    }

    function test_coinFlip_forcedToTheEnd_bobGuessesWrong_concludesAtOnce() public {
        playCoinFlipToTheEnd(1 - BIT);
        assertSettled(POT, 0);
    }

    /// Alice commits and stalls after Bob's guess: the pot is Bob's.
    function test_coinFlip_aliceStallsAfterGuess_bobTakesThePot() public {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = cfOpen();
        registerBoth(open);
        vm.warp(t0 + VIRTUAL_CD);
        Channel.State memory commit = cfCommit();
        move(open, commit, 0, ALICE_PK);
        vm.warp(t0 + 99);
        Channel.State memory guess = cfGuess(0);
        move(commit, guess, 1, BOB_PK);
        assertRec(vk, t0 + 149, 2, IAdjudicator.Phase.ForceExec, guess, 0, 2);
        vm.warp(t0 + 149);
        refused(guess, cfReveal(0), 0, sel(Adjudicator.NotProgressable.selector));
        concludeBoth(guess);
        assertSettled(0, POT);
    }

    /// Nobody moves: after the window the opening state settles both parents.
    function test_coinFlip_nobodyMoves_stakesReturned() public {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = cfOpen();
        registerBoth(open);
        vm.warp(t0 + 2 * VIRTUAL_CD);
        refused(open, cfCommit(), 0, sel(Adjudicator.NotProgressable.selector));
        concludeBoth(open);
        assertSettled(5, 5);
    }

    // ------------------------------------------------------------ final states

    /// A final state registered through a parent is fixed at once: no window, no move, no
    /// refute; the parent concludes as soon as its own record timed out.
    function test_finalStateRegistered_fixedAtOnce() public {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory fin = cfReveal(BIT);
        registerBoth(fin);
        assertRec(vk, t0, 3, IAdjudicator.Phase.Dispute, fin, 0, 0);
        Channel.State memory after_ = vState(4, 5, 5, fin.appData, false);
        refused(fin, after_, 1, sel(Adjudicator.NotProgressable.selector));
        Channel.SignedState memory later = both(after_);
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(later, noSubs());
        vm.warp(t0 + LEDGER_CD - 1);
        Channel.State memory sx = xState().state;
        vm.expectRevert(Adjudicator.TimeoutNotPassed.selector);
        adj.conclude(px, sx, subStates1(fin));
        vm.warp(t0 + LEDGER_CD);
        concludeBoth(fin);
        assertSettled(0, POT);
    }

    /// A final state refuted during the refutation period ends it (and the window).
    function test_finalStateRefuted_fixedAtOnce() public {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = cfOpen();
        registerBoth(open);
        vm.warp(t0 + 10);
        Channel.State memory fin = cfReveal(1 - BIT);
        adj.refute(both(fin), noSubs());
        assertRec(vk, t0 + 10, 3, IAdjudicator.Phase.Dispute, fin, 0, 0);
        refused(
            fin, vState(4, 5, 5, fin.appData, false), 0, sel(Adjudicator.NotProgressable.selector)
        );
        vm.warp(t0 + LEDGER_CD);
        concludeBoth(fin);
        assertSettled(POT, 0);
    }

    /// The same through a parent's registration during the refutation period.
    function test_finalStateByParentRegister_fixedAtOnce() public {
        uint64 t0 = uint64(block.timestamp);
        adj.register(xState(), subs1(both(cfOpen())));
        vm.warp(t0 + 20);
        Channel.State memory fin = cfReveal(BIT);
        adj.register(yState(), subs1(both(fin)));
        assertRec(vk, t0 + 20, 3, IAdjudicator.Phase.Dispute, fin, 0, 0);
        vm.warp(t0 + 20 + LEDGER_CD);
        concludeBoth(fin);
        assertSettled(0, POT);
    }

    // ------------------------------------------------------------ refutation and the window

    function test_refute_duringRefutationPeriod_keepsTimeoutAndWindow() public {
        uint64 t0 = uint64(block.timestamp);
        adj.register(xState(), subs1(both(cfOpen())));
        vm.warp(t0 + VIRTUAL_CD - 1);
        Channel.State memory commit = cfCommit();
        adj.refute(both(commit), noSubs());
        assertRec(vk, t0 + 2 * VIRTUAL_CD, 1, IAdjudicator.Phase.Dispute, commit, VIRTUAL_CD, 0);
        // Then Bob's guess comes through Y's registration, still in the period.
        Channel.State memory guess = cfGuess(0);
        adj.register(yState(), subs1(both(guess)));
        assertRec(vk, t0 + 2 * VIRTUAL_CD, 2, IAdjudicator.Phase.Dispute, guess, VIRTUAL_CD, 0);
        // The window opens: the game goes on from the refuted state.
        vm.warp(t0 + VIRTUAL_CD);
        Channel.State memory reveal = cfReveal(0);
        move(guess, reveal, 0, ALICE_PK);
        assertRec(vk, t0 + VIRTUAL_CD, 3, IAdjudicator.Phase.ForceExec, reveal, 0, 1);
        // Y was registered at t0 + 49.
        vm.warp(t0 + VIRTUAL_CD - 1 + LEDGER_CD);
        concludeBoth(reveal);
        assertSettled(POT, 0);
    }

    function test_refute_inWindow_refused() public {
        uint64 t0 = uint64(block.timestamp);
        adj.register(xState(), subs1(both(cfOpen())));
        vm.warp(t0 + VIRTUAL_CD);
        Rec memory before = rec(vk);
        Channel.SignedState memory commit = both(cfCommit());
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(commit, noSubs());
        assertRec(rec(vk), before);
        // A parent's registration leaves the record as it is.
        adj.register(yState(), subs1(commit));
        assertRec(rec(vk), before);
        vm.warp(t0 + 2 * VIRTUAL_CD - 1);
        vm.expectRevert(Adjudicator.TimeoutPassed.selector);
        adj.refute(commit, noSubs());
        assertRec(rec(vk), before);
    }

    function test_refute_inForceExec_refused() public {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = cfOpen();
        adj.register(xState(), subs1(both(open)));
        vm.warp(t0 + VIRTUAL_CD);
        move(open, cfCommit(), 0, ALICE_PK);
        Rec memory before = rec(vk);
        // Even a later state both signed cannot replace a forced move.
        Channel.SignedState memory guess = both(cfGuess(1));
        vm.expectRevert(Adjudicator.NotRefutable.selector);
        adj.refute(guess, noSubs());
        assertRec(rec(vk), before);
        Channel.SignedState memory fin = both(cfReveal(1));
        vm.expectRevert(Adjudicator.NotRefutable.selector);
        adj.refute(fin, noSubs());
        adj.register(yState(), subs1(fin));
        assertRec(rec(vk), before);
    }

    /// The window's two ends: the first move from `timeout - window` to `timeout - 1`, each
    /// answer until one second before the previous move's timeout.
    function test_window_bounds() public {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = cfOpen();
        registerBoth(open);
        Channel.State memory commit = cfCommit();
        vm.warp(t0 + VIRTUAL_CD - 1);
        refused(open, commit, 0, sel(Adjudicator.NotProgressable.selector));
        vm.warp(t0 + 2 * VIRTUAL_CD);
        refused(open, commit, 0, sel(Adjudicator.NotProgressable.selector));
        vm.warp(t0 + 2 * VIRTUAL_CD - 1);
        move(open, commit, 0, ALICE_PK);
        assertRec(vk, t0 + 3 * VIRTUAL_CD - 1, 1, IAdjudicator.Phase.ForceExec, commit, 0, 1);

        Channel.State memory guess = cfGuess(1);
        vm.warp(t0 + 3 * VIRTUAL_CD - 1);
        refused(commit, guess, 1, sel(Adjudicator.NotProgressable.selector));
        vm.warp(t0 + 3 * VIRTUAL_CD - 2);
        move(commit, guess, 1, BOB_PK);
        assertRec(vk, t0 + 4 * VIRTUAL_CD - 2, 2, IAdjudicator.Phase.ForceExec, guess, 0, 2);

        // Alice does not reveal in time: the guess settles both parents.
        vm.warp(t0 + 4 * VIRTUAL_CD - 2);
        refused(guess, cfReveal(1), 0, sel(Adjudicator.NotProgressable.selector));
        concludeBoth(guess);
        assertSettled(0, POT);
    }

    // ------------------------------------------------------------ progress: refusals

    /// V's record holds the coin flip's opening state, past its refutation period.
    function inWindow() internal returns (Channel.State memory open) {
        open = cfOpen();
        adj.register(xState(), subs1(both(open)));
        vm.warp(block.timestamp + VIRTUAL_CD);
    }

    /// V's record holds Alice's forced commitment.
    function inForceExec() internal returns (Channel.State memory commit) {
        Channel.State memory open = inWindow();
        commit = cfCommit();
        move(open, commit, 0, ALICE_PK);
    }

    /// App data is bounded (1024 bytes; none without an app) wherever a sub-channel state
    /// reaches a record: a parent's `conclude` carries every lock's state, and colluding
    /// players could otherwise make it too large to send, freezing the hub's coins.
    function test_appData_bounded_everywhere() public {
        bytes memory huge = new bytes(adj.MAX_APP_DATA() + 1);
        Channel.SignedState memory sx = xState();
        Channel.SignedState[] memory big = subs1(both(vState(0, 5, 5, huge, false)));
        vm.expectRevert(sel(Adjudicator.AppDataTooLong.selector));
        adj.register(sx, big);
        assertEq(uint8(phaseOf(vk)), uint8(IAdjudicator.Phase.None));
        // A payment sub-channel carries no app data at all.
        useApp(address(0));
        sx = xState();
        Channel.SignedState[] memory paid = subs1(both(vState(0, 5, 5, hex"01", false)));
        vm.expectRevert(sel(Adjudicator.AppDataTooLong.selector));
        adj.register(sx, paid);
        // Refuting a registered record with a big state, and forcing a claim whose preimage
        // makes the data too long, are refused and change nothing.
        useApp(address(payment));
        Channel.State memory open = vState(0, 10, 0, cp(0, noAmounts(), ""), false);
        adj.register(xState(), subs1(both(open)));
        Channel.SignedState memory bigger = both(vState(1, 10, 0, huge, false));
        Rec memory before = rec(vk);
        vm.expectRevert(sel(Adjudicator.AppDataTooLong.selector));
        adj.refute(bigger, noSubs());
        assertRec(rec(vk), before);
        vm.warp(block.timestamp + VIRTUAL_CD);
        bytes memory long = new bytes(adj.MAX_APP_DATA());
        Channel.State memory offer = vState(
            1,
            10,
            0,
            abi.encode(ConditionalPayment.Data(0, keccak256(long), amounts1(4), "")),
            false
        );
        move(open, offer, 0, ALICE_PK);
        Channel.State memory claim = vState(
            2,
            6,
            4,
            abi.encode(ConditionalPayment.Data(0, keccak256(long), noAmounts(), long)),
            false
        );
        refused(offer, claim, 1, sel(Adjudicator.AppDataTooLong.selector));
    }

    function test_progress_refused_noApp() public {
        Channel.State memory open = inWindow();
        Channel.State memory commit = cfCommit();
        Channel.Params memory p = pv;
        p.app = address(0);
        refused(p, open, commit, 0, sigOf(ALICE_PK, commit), sel(Adjudicator.NoApp.selector));
        p = pv;
        p.ledger = true;
        refused(p, open, commit, 0, sigOf(ALICE_PK, commit), sel(Adjudicator.NoApp.selector));
    }

    function test_progress_refused_invalidActor() public {
        Channel.State memory open = inWindow();
        Channel.State memory commit = cfCommit();
        refused(
            pv, open, commit, 2, sigOf(ALICE_PK, commit), sel(Adjudicator.InvalidActor.selector)
        );
    }

    function test_progress_refused_channelIdMismatch() public {
        Channel.State memory open = inWindow();
        Channel.State memory commit = cfCommit();
        bytes memory err = sel(Adjudicator.ChannelIdMismatch.selector);
        // `to` of another channel.
        Channel.State memory to = cfCommit();
        to.channelId = x;
        refused(pv, open, to, 0, sigOf(ALICE_PK, to), err);
        // `from` of another channel.
        Channel.State memory from = cfOpen();
        from.channelId = x;
        refused(pv, from, commit, 0, sigOf(ALICE_PK, commit), err);
        // Params of another channel (same app, another nonce).
        Channel.Params memory p = pv;
        p.nonce = 4;
        refused(p, open, commit, 0, sigOf(ALICE_PK, commit), err);
    }

    function test_progress_refused_nestedLocks() public {
        Channel.State memory open = inWindow();
        Channel.State memory to = cfCommit();
        to.outcome.locked = locks(lock1(keccak256("w"), 1, 0, 1));
        refused(open, to, 0, sel(Adjudicator.NestedLocks.selector));
        Channel.State memory from = cfOpen();
        from.outcome.locked = locks(lock1(keccak256("w"), 1, 0, 1));
        refused(from, cfCommit(), 0, sel(Adjudicator.NestedLocks.selector));
    }

    function test_progress_refused_valueNotPreserved() public {
        Channel.State memory open = inWindow();
        Channel.State memory more = vState(1, POT, 1, cfCommit().appData, false);
        refused(open, more, 0, sel(Adjudicator.ValueNotPreserved.selector));
        Channel.State memory less = vState(1, POT - 1, 0, cfCommit().appData, false);
        refused(open, less, 0, sel(Adjudicator.ValueNotPreserved.selector));
    }

    function test_progress_refused_otherAssets() public {
        Channel.State memory open = inWindow();
        Channel.State memory to = cfCommit();
        to.outcome.assets[0] = address(erc);
        refused(open, to, 0, sel(Adjudicator.AssetMismatch.selector));
        to = cfCommit();
        to.outcome.assets = ethAndErc();
        to.outcome.balances = bal2(POT, 0, 0, 0);
        refused(open, to, 0, sel(Adjudicator.AssetMismatch.selector));
        to = cfCommit();
        to.outcome.balances = bal2(POT, 0, 0, 0);
        refused(open, to, 0, sel(Adjudicator.BalancesLengthMismatch.selector));
    }

    function test_progress_refused_notProgressable() public {
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = cfOpen();
        Channel.State memory commit = cfCommit();
        bytes memory err = sel(Adjudicator.NotProgressable.selector);
        // No record yet.
        refused(open, commit, 0, err);
        adj.register(xState(), subs1(both(open)));
        // During the refutation period.
        refused(open, commit, 0, err);
        vm.warp(t0 + VIRTUAL_CD - 1);
        refused(open, commit, 0, err);
        // Params of another app: another channel, without a record.
        Channel.Params memory p = pv;
        p.app = address(ticTacToe);
        Channel.State memory from = cfOpen();
        Channel.State memory to = cfCommit();
        from.channelId = cid(p);
        to.channelId = cid(p);
        vm.warp(t0 + VIRTUAL_CD);
        refused(p, from, to, 0, sigOf(ALICE_PK, to), err);
        // A state of V with another total has another record (none).
        Channel.State memory from9 = vState(0, 5, 4, open.appData, false);
        Channel.State memory to9 = vState(1, 9, 0, commit.appData, false);
        refused(from9, to9, 0, err);
        // After the timeout.
        vm.warp(t0 + 2 * VIRTUAL_CD);
        refused(open, commit, 0, err);
        vm.warp(t0 + 1000);
        refused(open, commit, 0, err);
    }

    function test_progress_refused_stateHashMismatch() public {
        inWindow();
        bytes memory err = sel(Adjudicator.StateHashMismatch.selector);
        // `from` is a later state than the registered one.
        refused(cfCommit(), cfGuess(0), 1, err);
        // `from` is the registered version with other data.
        Channel.State memory other = vState(0, 5, 5, cf(0, keccak256("x"), 0, 0, 0), false);
        Channel.State memory to = vState(1, POT, 0, cf(1, keccak256("x"), 0, 0, 0), false);
        refused(other, to, 0, err);
        // Or with another split of the same total.
        Channel.State memory split = vState(0, 6, 4, cfOpen().appData, false);
        refused(split, cfCommit(), 0, err);
    }

    function test_progress_refused_versionNotNext() public {
        Channel.State memory open = inWindow();
        bytes memory err = sel(Adjudicator.VersionNotNext.selector);
        Channel.State memory to = cfCommit();
        to.version = 2;
        refused(open, to, 0, err);
        to.version = 0;
        refused(open, to, 0, err);
        to.version = type(uint64).max;
        refused(open, to, 0, err);
    }

    function test_progress_refused_invalidSignature() public {
        Channel.State memory open = inWindow();
        Channel.State memory commit = cfCommit();
        bytes memory err0 = abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 0);
        bytes memory err1 = abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 1);
        // Alice's move signed by Bob, by Eve, malformed, or over another state.
        refused(pv, open, commit, 0, sigOf(BOB_PK, commit), err0);
        refused(pv, open, commit, 0, sigOf(EVE_PK, commit), err0);
        refused(pv, open, commit, 0, "", err0);
        bytes memory short = sigOf(ALICE_PK, commit);
        assembly {
            mstore(short, 64)
        }
        refused(pv, open, commit, 0, short, err0);
        refused(pv, open, commit, 0, sigOf(ALICE_PK, cfGuess(0)), err0);
        // Claimed as Bob's, signed by Alice.
        refused(pv, open, commit, 1, sigOf(ALICE_PK, commit), err1);
    }

    /// The check on `from` being final cannot be reached through the contract's own writes (a
    /// final state always fixes its record at once, so `progress` refuses it as not
    /// progressable first): a record is forged here, in the storage slot of V's record, to
    /// show the check itself.
    function test_progress_refused_finalState_forgedRecord() public {
        inForceExec();
        bytes32 slot = keccak256(abi.encode(vk, uint256(2)));
        bytes32 hashSlot = bytes32(uint256(slot) + 1);
        assertEq(vm.load(address(adj), hashSlot), stateHashOf(vk), "layout of the record");
        Channel.State memory fin = vState(1, POT, 0, cfCommit().appData, true);
        vm.store(address(adj), hashSlot, adj.hashState(fin));
        Channel.State memory to = vState(2, 0, POT, cfGuess(0).appData, false);
        refused(fin, to, 1, sel(Adjudicator.FinalState.selector));
    }

    function test_progress_refused_finalRecord() public {
        Channel.State memory fin = cfReveal(BIT);
        adj.register(xState(), subs1(both(fin)));
        Channel.State memory to = vState(4, 5, 5, fin.appData, true);
        refused(fin, to, 0, sel(Adjudicator.NotProgressable.selector));
        vm.warp(block.timestamp + VIRTUAL_CD);
        refused(fin, to, 0, sel(Adjudicator.NotProgressable.selector));
    }

    // ------------------------------------------------------------ coin flip: the rule

    function test_coinFlip_commit_refusals() public {
        Channel.State memory open = inWindow();
        bytes32 c = commitment();
        // Bob may not commit.
        refused(open, cfCommit(), 1, sel(AppRules.NotYourTurn.selector));
        // Not a commitment: another stage, or a guess / salt / bit set.
        bytes memory invalid = sel(AppRules.InvalidMove.selector);
        refused(open, vState(1, POT, 0, cf(2, c, 0, 0, 0), false), 0, invalid);
        refused(open, vState(1, POT, 0, cf(1, c, 1, 0, 0), false), 0, invalid);
        refused(open, vState(1, POT, 0, cf(1, c, 0, SALT, 0), false), 0, invalid);
        refused(open, vState(1, POT, 0, cf(1, c, 0, 0, 1), false), 0, invalid);
        // The pot must go to Alice, the state not be final.
        bytes memory alloc = sel(AppRules.WrongAllocation.selector);
        refused(open, vState(1, 0, POT, cf(1, c, 0, 0, 0), false), 0, alloc);
        refused(open, vState(1, 5, 5, cf(1, c, 0, 0, 0), false), 0, alloc);
        refused(
            open,
            vState(1, POT, 0, cf(1, c, 0, 0, 0), true),
            0,
            sel(AppRules.WrongFinality.selector)
        );
        // App data must be the canonical encoding.
        bytes memory err = sel(AppRules.NonCanonicalData.selector);
        refused(open, vState(1, POT, 0, bytes.concat(cf(1, c, 0, 0, 0), hex"00"), false), 0, err);
        // A stage that does not fit a uint8 (257) fails the ABI decoder (empty revert data).
        Channel.State memory dirty = cfCommit();
        dirty.appData[30] = 0x01;
        refused(open, dirty, 0, "");
        assertRec(vk, timeoutOf(vk), 0, IAdjudicator.Phase.Dispute, open, VIRTUAL_CD, 0);
    }

    function test_coinFlip_guess_refusals() public {
        Channel.State memory commit = inForceExec();
        bytes32 c = commitment();
        refused(commit, cfGuess(0), 0, sel(AppRules.NotYourTurn.selector));
        bytes memory invalid = sel(AppRules.InvalidMove.selector);
        refused(commit, vState(2, 0, POT, cf(2, c, 2, 0, 0), false), 1, invalid);
        refused(commit, vState(2, 0, POT, cf(2, keccak256("other"), 0, 0, 0), false), 1, invalid);
        refused(commit, vState(2, 0, POT, cf(3, c, 0, 0, 0), false), 1, invalid);
        refused(commit, vState(2, 0, POT, cf(2, c, 0, SALT, 0), false), 1, invalid);
        refused(commit, vState(2, 0, POT, cf(2, c, 0, 0, 1), false), 1, invalid);
        refused(
            commit,
            vState(2, POT, 0, cf(2, c, 0, 0, 0), false),
            1,
            sel(AppRules.WrongAllocation.selector)
        );
        refused(
            commit,
            vState(2, 0, POT, cf(2, c, 0, 0, 0), true),
            1,
            sel(AppRules.WrongFinality.selector)
        );
    }

    function test_coinFlip_reveal_refusals() public {
        Channel.State memory commit = inForceExec();
        Channel.State memory guess = cfGuess(0);
        move(commit, guess, 1, BOB_PK);
        bytes32 c = commitment();
        refused(guess, cfReveal(0), 1, sel(AppRules.NotYourTurn.selector));
        bytes memory invalid = sel(AppRules.InvalidMove.selector);
        // Another salt or the other bit does not open the commitment.
        refused(guess, vState(3, POT, 0, cf(3, c, 0, keccak256("x"), BIT), true), 0, invalid);
        refused(guess, vState(3, 0, POT, cf(3, c, 0, SALT, 1 - BIT), true), 0, invalid);
        refused(guess, vState(3, POT, 0, cf(3, c, 1, SALT, BIT), true), 0, invalid);
        refused(guess, vState(3, POT, 0, cf(2, c, 0, SALT, BIT), true), 0, invalid);
        // Bob guessed 0, the bit is 1: Alice wins, and the reveal is final.
        refused(
            guess,
            vState(3, 0, POT, cf(3, c, 0, SALT, BIT), true),
            0,
            sel(AppRules.WrongAllocation.selector)
        );
        refused(
            guess,
            vState(3, POT, 0, cf(3, c, 0, SALT, BIT), false),
            0,
            sel(AppRules.WrongFinality.selector)
        );
        move(guess, cfReveal(0), 0, ALICE_PK);
    }

    /// A non-final state past the game's end (both signed it) admits no move.
    function test_coinFlip_gameOver() public {
        Channel.State memory over = vState(3, POT, 0, cf(3, commitment(), 0, SALT, BIT), false);
        adj.register(xState(), subs1(both(over)));
        vm.warp(block.timestamp + VIRTUAL_CD);
        Channel.State memory to = vState(4, POT, 0, over.appData, false);
        refused(over, to, 0, sel(AppRules.GameOver.selector));
        refused(over, to, 1, sel(AppRules.GameOver.selector));
    }

    // ------------------------------------------------------------ tic-tac-toe

    function cells(uint8 a, uint8 b, uint8 c, uint8 d, uint8 e)
        internal
        pure
        returns (uint8[] memory r)
    {
        r = new uint8[](5);
        (r[0], r[1], r[2], r[3], r[4]) = (a, b, c, d, e);
    }

    /// Alice takes the top row in five forced moves, each made at the last second; the win is
    /// final and both parents conclude in its block.
    function test_ticTacToe_win_concludesAtOnce() public {
        useApp(address(ticTacToe));
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory open = tttOpen();
        registerBoth(open);
        Channel.State memory last = tttPlay(open, cells(0, 4, 1, 8, 2), true, false);
        assertTrue(last.isFinal);
        assertEq(last.outcome.balances[0][0], POT);
        assertRec(vk, uint64(block.timestamp), 5, IAdjudicator.Phase.ForceExec, last, 0, 5);
        assertEq(block.timestamp, t0 + 2 * VIRTUAL_CD - 1 + 4 * (VIRTUAL_CD - 1));
        concludeBoth(last);
        assertSettled(POT, 0);
    }

    /// Nine forced moves to a full board without a row: a draw returns the stakes.
    function test_ticTacToe_draw_returnsStakes() public {
        useApp(address(ticTacToe));
        Channel.State memory open = tttOpen();
        registerBoth(open);
        uint8[9] memory order = [0, 1, 2, 4, 3, 5, 7, 6, 8];
        uint8[] memory c = new uint8[](9);
        for (uint256 i = 0; i < 9; ++i) {
            c[i] = order[i];
        }
        Channel.State memory last = tttPlay(open, c, false, true);
        assertTrue(last.isFinal);
        assertRec(vk, uint64(block.timestamp), 9, IAdjudicator.Phase.ForceExec, last, 0, 9);
        concludeBoth(last);
        assertSettled(5, 5);
    }

    function test_ticTacToe_refusals() public {
        useApp(address(ticTacToe));
        Channel.State memory open = tttOpen();
        adj.register(xState(), subs1(both(open)));
        vm.warp(block.timestamp + VIRTUAL_CD);
        bytes memory invalid = sel(AppRules.InvalidMove.selector);

        // Bob may not open.
        uint8[9] memory b = emptyBoard();
        b[4] = 2;
        refused(open, tttNext(open, b, 1, false, false), 1, sel(AppRules.NotYourTurn.selector));
        // Alice may not play Bob's mark, nor two marks at once.
        refused(open, tttNext(open, b, 0, false, false), 0, invalid);
        b[4] = 1;
        b[5] = 1;
        refused(open, tttNext(open, b, 0, false, false), 0, invalid);
        // Nor pass (no mark at all).
        refused(open, tttNext(open, emptyBoard(), 0, false, false), 0, invalid);
        // Nor keep the pot split, nor end the game.
        b = emptyBoard();
        b[4] = 1;
        refused(open, vState(1, 5, 5, ttt(b), false), 0, sel(AppRules.WrongAllocation.selector));
        refused(open, tttNext(open, b, 0, true, false), 0, sel(AppRules.WrongFinality.selector));
        // Nor change the stakes.
        uint256[2][] memory st = stakes();
        st[0] = [uint256(10), 0];
        refused(open, vState(1, POT, 0, abi.encode(TicTacToe.Data(b, st)), false), 0, invalid);

        Channel.State memory s1 = tttNext(open, b, 0, false, false);
        move(open, s1, 0, ALICE_PK);
        // Alice may not play twice in a row.
        uint8[9] memory b2 = decodeBoard(s1);
        b2[0] = 1;
        refused(s1, tttNext(s1, b2, 0, false, false), 0, sel(AppRules.NotYourTurn.selector));
        // Bob may not overwrite Alice's cell, nor erase it.
        b2 = decodeBoard(s1);
        b2[4] = 2;
        refused(s1, tttNext(s1, b2, 1, false, false), 1, invalid);
        b2 = emptyBoard();
        b2[0] = 2;
        refused(s1, tttNext(s1, b2, 1, false, false), 1, invalid);
        // Two marks of Bob at once.
        b2 = decodeBoard(s1);
        b2[0] = 2;
        b2[1] = 2;
        refused(s1, tttNext(s1, b2, 1, false, false), 1, invalid);
        // A cell value that is no mark.
        b2 = decodeBoard(s1);
        b2[0] = 3;
        refused(s1, tttNext(s1, b2, 1, false, false), 1, invalid);
        // Bob's move must give him the pot.
        b2 = decodeBoard(s1);
        b2[0] = 2;
        refused(s1, tttNext(s1, b2, 0, false, false), 1, sel(AppRules.WrongAllocation.selector));
        move(s1, tttNext(s1, b2, 1, false, false), 1, BOB_PK);
    }

    /// The winning move must be final and give the winner the pot; the drawing move must be
    /// final and return the stakes.
    function test_ticTacToe_lastMove_refusals() public {
        useApp(address(ticTacToe));
        // Alice to move: X X . / O O . / . . .
        uint8[9] memory b = [1, 1, 0, 2, 2, 0, 0, 0, 0];
        Channel.State memory s = vState(4, 0, POT, ttt(b), false);
        adj.register(xState(), subs1(both(s)));
        vm.warp(block.timestamp + VIRTUAL_CD);
        b[2] = 1;
        refused(s, tttNext(s, b, 0, false, false), 0, sel(AppRules.WrongFinality.selector));
        refused(s, tttNext(s, b, 1, true, false), 0, sel(AppRules.WrongAllocation.selector));
        refused(s, tttNext(s, b, 0, false, true), 0, sel(AppRules.WrongAllocation.selector));
        // Bob's row is not a win for Alice.
        b[2] = 0;
        b[5] = 2;
        refused(s, tttNext(s, b, 1, true, false), 1, sel(AppRules.NotYourTurn.selector));

        // A board one move before a draw: X O X / X O O / O X .
        useApp(address(ticTacToe));
        pv.nonce = 5;
        v = cid(pv);
        vk = ethKey(v, POT);
        uint8[9] memory d = [1, 2, 1, 1, 2, 2, 2, 1, 0];
        Channel.State memory sd = vState(8, 0, POT, ttt(d), false);
        adj.register(yState(), subs1(both(sd)));
        vm.warp(block.timestamp + VIRTUAL_CD);
        d[8] = 1;
        refused(sd, tttNext(sd, d, 0, false, false), 0, sel(AppRules.WrongFinality.selector));
        refused(sd, tttNext(sd, d, 0, true, false), 0, sel(AppRules.WrongAllocation.selector));
        move(sd, tttNext(sd, d, 0, false, true), 0, ALICE_PK);
        assertEq(timeoutOf(vk), block.timestamp);
    }

    /// A non-final state with a row (or a full board) admits no move.
    function test_ticTacToe_gameOver() public {
        useApp(address(ticTacToe));
        uint8[9] memory b = [1, 1, 1, 2, 2, 0, 0, 0, 0];
        Channel.State memory s = vState(5, POT, 0, ttt(b), false);
        adj.register(xState(), subs1(both(s)));
        vm.warp(block.timestamp + VIRTUAL_CD);
        b[5] = 2;
        refused(s, tttNext(s, b, 1, false, false), 1, sel(AppRules.GameOver.selector));
    }

    // ------------------------------------------------------------ conditional payment

    /// V = Alice (payer) 7, Bob 3, nothing pending.
    function cpOpen() internal view returns (Channel.State memory) {
        return vState(0, 7, 3, cp(0, noAmounts(), ""), false);
    }

    /// Alice offers `amount` after `from` (balances unchanged).
    function cpOffer(Channel.State memory from, uint256 amount)
        internal
        view
        returns (Channel.State memory)
    {
        return vState(
            from.version + 1,
            from.outcome.balances[0][0],
            from.outcome.balances[0][1],
            cp(0, amounts1(amount), ""),
            false
        );
    }

    /// Bob claims `amount` after `from` with `preimage`.
    function cpClaim(Channel.State memory from, uint256 amount, bytes memory preimage)
        internal
        view
        returns (Channel.State memory)
    {
        return vState(
            from.version + 1,
            from.outcome.balances[0][0] - amount,
            from.outcome.balances[0][1] + amount,
            cp(0, noAmounts(), preimage),
            false
        );
    }

    function test_conditionalPayment_offerAndClaim() public {
        useApp(address(payment));
        Channel.State memory open = cpOpen();
        registerBoth(open);
        uint64 t0 = uint64(block.timestamp);
        vm.warp(t0 + VIRTUAL_CD);
        Channel.State memory offer = cpOffer(open, 4);
        move(open, offer, 0, ALICE_PK);
        vm.warp(t0 + 60);
        Channel.State memory claim = cpClaim(offer, 4, PREIMAGE);
        move(offer, claim, 1, BOB_PK);
        assertRec(vk, t0 + 110, 2, IAdjudicator.Phase.ForceExec, claim, 0, 2);
        // Not final: the record is fixed after Alice's time to answer.
        vm.warp(t0 + 109);
        Channel.State memory sx = xState().state;
        vm.expectRevert(Adjudicator.TimeoutNotPassed.selector);
        adj.conclude(px, sx, subStates1(claim));
        vm.warp(t0 + 110);
        concludeBoth(claim);
        assertSettled(3, 7);
    }

    function test_conditionalPayment_refusals() public {
        useApp(address(payment));
        Channel.State memory open = cpOpen();
        adj.register(xState(), subs1(both(open)));
        vm.warp(block.timestamp + VIRTUAL_CD);
        bytes memory invalid = sel(AppRules.InvalidMove.selector);
        bytes memory notYours = sel(AppRules.NotYourTurn.selector);

        // The payee may not offer.
        refused(open, cpOffer(open, 4), 1, notYours);
        // Nor may the payer offer more than it holds, or move coins with an offer.
        refused(open, cpOffer(open, 8), 0, invalid);
        Channel.State memory moving = cpOffer(open, 4);
        moving.outcome.balances[0] = [uint256(3), 7];
        refused(open, moving, 0, sel(AppRules.WrongAllocation.selector));
        // An offer carries one amount per asset and no preimage; the payer never changes.
        refused(open, vState(1, 7, 3, cp(0, noAmounts(), ""), false), 0, invalid);
        refused(open, vState(1, 7, 3, cp(0, amounts1(4), PREIMAGE), false), 0, invalid);
        refused(open, vState(1, 7, 3, cp(1, amounts1(1), ""), false), 1, invalid);
        Channel.State memory fin = cpOffer(open, 4);
        fin.isFinal = true;
        refused(open, fin, 0, sel(AppRules.WrongFinality.selector));

        Channel.State memory offer = cpOffer(open, 4);
        move(open, offer, 0, ALICE_PK);
        // A wrong preimage, or none, does not open the lock.
        refused(offer, cpClaim(offer, 4, "another body"), 1, invalid);
        refused(offer, cpClaim(offer, 4, ""), 1, invalid);
        // The payer may not claim its own offer, nor offer again.
        refused(offer, cpClaim(offer, 4, PREIMAGE), 0, notYours);
        refused(offer, cpOffer(offer, 1), 0, notYours);
        // The claim moves exactly the offer.
        refused(offer, cpClaim(offer, 3, PREIMAGE), 1, sel(AppRules.WrongAllocation.selector));
        refused(offer, cpClaim(offer, 5, PREIMAGE), 1, sel(AppRules.WrongAllocation.selector));
        // A claim leaves nothing pending and keeps the lock.
        Channel.State memory pending = cpClaim(offer, 4, PREIMAGE);
        pending.appData = cp(0, amounts1(4), PREIMAGE);
        refused(offer, pending, 1, invalid);
        Channel.State memory relocked = cpClaim(offer, 4, PREIMAGE);
        relocked.appData =
            abi.encode(ConditionalPayment.Data(0, keccak256("other"), noAmounts(), PREIMAGE));
        refused(offer, relocked, 1, invalid);
        Channel.State memory claimFinal = cpClaim(offer, 4, PREIMAGE);
        claimFinal.isFinal = true;
        refused(offer, claimFinal, 1, sel(AppRules.WrongFinality.selector));
        move(offer, cpClaim(offer, 4, PREIMAGE), 1, BOB_PK);
    }

    /// Alice offers 1 and Bob claims it, eight times over, each move at the last second: the
    /// sixteenth forced move is the last; the record is fixed within (2 + 16) challenge
    /// durations of its creation, and both parents conclude with it.
    function test_forcedMoves_cappedAt16() public {
        useApp(address(payment));
        uint64 t0 = uint64(block.timestamp);
        Channel.State memory s = vState(0, POT, 0, cp(0, noAmounts(), ""), false);
        registerBoth(s);
        assertEq(adj.MAX_FORCED_MOVES(), 16);
        for (uint256 i = 0; i < 16; ++i) {
            vm.warp(timeoutOf(vk) - 1);
            Channel.State memory next = i % 2 == 0 ? cpOffer(s, 1) : cpClaim(s, 1, PREIMAGE);
            move(s, next, i % 2, i % 2 == 0 ? ALICE_PK : BOB_PK);
            s = next;
            assertEq(timeoutOf(vk), block.timestamp + VIRTUAL_CD);
        }
        Rec memory r = rec(vk);
        assertEq(r.forcedMoves, 16);
        assertEq(r.version, 16);
        assertEq(uint8(r.phase), uint8(IAdjudicator.Phase.ForceExec));
        // The latest timeout a record can have: (2 + 16) challenge durations after creation.
        assertLe(r.timeout, t0 + (2 + 16) * uint256(VIRTUAL_CD));
        assertEq(r.timeout, t0 + 2 * VIRTUAL_CD - 1 + 16 * (VIRTUAL_CD - 1) + 1);

        vm.warp(r.timeout - 1);
        refused(s, cpOffer(s, 1), 0, sel(Adjudicator.ForceExecutionOver.selector));
        vm.warp(r.timeout);
        refused(s, cpOffer(s, 1), 0, sel(Adjudicator.NotProgressable.selector));
        concludeBoth(s);
        assertSettled(2, 8);
    }
}
