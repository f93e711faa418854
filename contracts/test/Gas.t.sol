// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Base} from "./utils/Base.sol";
import {Channel} from "../src/Channel.sol";
import {IAssetHolder} from "../src/IAssetHolder.sol";
import {IAdjudicator} from "../src/IAdjudicator.sol";
import {CoinFlip} from "../src/apps/CoinFlip.sol";
import {TicTacToe} from "../src/apps/TicTacToe.sol";
import {ConditionalPayment} from "../src/apps/ConditionalPayment.sol";

/// One measured call per test, for contracts/GAS.md:
///   forge test --match-contract GasTest --isolate -vv
/// With `--isolate` every top-level call is its own transaction (cold storage, as on chain)
/// and `vm.lastCallGas` is the whole transaction's gas: 21,000 + calldata + execution. Each test
/// logs that, the calldata part (EIP-2028: 16 per non-zero byte, 4 per zero byte) and the
/// execution part, and checks the total stays under a budget (a regression guard; without
/// `--isolate` the numbers are lower: execution only, warm storage).
contract GasTest is Base {
    Channel.Params internal pl;
    bytes32 internal l;

    function setUp() public override {
        super.setUp();
        pl = ledgerParams(ALICE_PK, INGRID_PK, 1);
        l = cid(pl);
    }

    // ------------------------------------------------------------ measuring

    function calldataGas(bytes memory data) internal pure returns (uint256 g) {
        for (uint256 i = 0; i < data.length; ++i) {
            g += data[i] == 0 ? 4 : 16;
        }
    }

    function report(string memory name, bytes memory data, uint256 budget) internal {
        uint256 total = vm.lastCallGas().gasTotalUsed;
        uint256 cd = calldataGas(data);
        emit log_named_uint(string.concat("gas | ", name, " | total"), total);
        emit log_named_uint(string.concat("gas | ", name, " | calldata"), cd);
        if (total > 21_000 + cd) {
            emit log_named_uint(string.concat("gas | ", name, " | execution"), total - 21_000 - cd);
        }
        assertGt(total, 0);
        assertLe(total, budget, "gas budget exceeded");
    }

    // ------------------------------------------------------------ fixtures

    /// L with `n` locks of 1 each on virtual channels V_0..V_{n-1}, and their signed states.
    function withLocks(uint256 n)
        internal
        view
        returns (Channel.SignedState memory sl, Channel.SignedState[] memory subs)
    {
        Channel.SubAlloc[] memory lk = new Channel.SubAlloc[](n);
        subs = new Channel.SignedState[](n);
        for (uint256 i = 0; i < n; ++i) {
            Channel.Params memory pv = virtualParams(ALICE_PK, BOB_PK, 1000 + i);
            bytes32 v = cid(pv);
            lk[i] = lock1(v, 2, 0, 1);
            subs[i] = signed(pv, ethState(v, 3, 1, 1, false));
        }
        sl = signed(pl, mkState(l, 5, ethOnly(), bal(10, 10), lk, false));
    }

    function subStatesOf(Channel.SignedState[] memory subs)
        internal
        pure
        returns (Channel.State[] memory st)
    {
        st = new Channel.State[](subs.length);
        for (uint256 i = 0; i < subs.length; ++i) {
            st[i] = subs[i].state;
        }
    }

    // ------------------------------------------------------------ asset holders

    function test_gas_deposit_eth() public {
        vm.deal(alice, 1 ether);
        vm.prank(alice);
        eth.deposit{value: 1 ether}(l, alice, 1 ether);
        report("deposit ETH", abi.encodeCall(IAssetHolder.deposit, (l, alice, 1 ether)), 60_000);
    }

    function test_gas_deposit_erc20() public {
        token.mint(alice, 1e6);
        vm.prank(alice);
        token.approve(address(erc), 1e6);
        vm.prank(alice);
        erc.deposit(l, alice, 1e6);
        report("deposit ERC20", abi.encodeCall(IAssetHolder.deposit, (l, alice, 1e6)), 95_000);
    }

    function test_gas_depositStandby_eth() public {
        vm.deal(ingrid, 1 ether);
        vm.prank(ingrid);
        eth.depositStandby{value: 1 ether}(l, ingrid, 1 ether);
        report(
            "depositStandby ETH",
            abi.encodeCall(IAssetHolder.depositStandby, (l, ingrid, 1 ether)),
            62_000
        );
    }

    function test_gas_depositStandby_erc20() public {
        token.mint(ingrid, 1e6);
        vm.prank(ingrid);
        token.approve(address(erc), 1e6);
        vm.prank(ingrid);
        erc.depositStandby(l, ingrid, 1e6);
        report(
            "depositStandby ERC20",
            abi.encodeCall(IAssetHolder.depositStandby, (l, ingrid, 1e6)),
            98_000
        );
    }

    function settledFor(uint256 amount) internal {
        depositEth(l, alice, amount);
        depositErc(l, alice, amount);
        vm.startPrank(address(adj));
        eth.setOutcome(l, [alice, ingrid], [amount, 0]);
        erc.setOutcome(l, [alice, ingrid], [amount, 0]);
        vm.stopPrank();
    }

    function test_gas_withdraw_eth() public {
        settledFor(1 ether);
        IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal(l, alice, bob, 1 ether, 0);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        eth.withdraw(w, sig);
        report("withdraw ETH", abi.encodeCall(IAssetHolder.withdraw, (w, sig)), 90_000);
        assertEq(bob.balance, 1 ether);
    }

    function test_gas_withdraw_erc20() public {
        settledFor(1 ether);
        IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal(l, alice, bob, 1 ether, 0);
        bytes memory sig = withdrawalSig(erc, ALICE_PK, w);
        erc.withdraw(w, sig);
        report("withdraw ERC20", abi.encodeCall(IAssetHolder.withdraw, (w, sig)), 85_000);
        assertEq(token.balanceOf(bob), 1 ether);
    }

    // ------------------------------------------------------------ register / refute

    function measureRegister(uint256 n, uint256 budget) internal {
        (Channel.SignedState memory sl, Channel.SignedState[] memory subs) = withLocks(n);
        adj.register(sl, subs);
        report(
            string.concat("register ", vm.toString(n), " locks"),
            abi.encodeCall(IAdjudicator.register, (sl, subs)),
            budget
        );
        assertEq(uint8(phaseOf(l)), uint8(IAdjudicator.Phase.Dispute));
    }

    function test_gas_register_ledger_alone() public {
        measureRegister(0, 115_000);
    }

    function test_gas_register_1_lock() public {
        measureRegister(1, 210_000);
    }

    function test_gas_register_10_locks() public {
        measureRegister(10, 1_100_000);
    }

    function test_gas_refute() public {
        adj.register(signed(pl, ethState(l, 1, 10, 10, false)), noSubs());
        Channel.SignedState memory s = signed(pl, ethState(l, 2, 15, 5, false));
        Channel.SignedState[] memory none = noSubs();
        adj.refute(s, none);
        report("refute", abi.encodeCall(IAdjudicator.refute, (s, none)), 75_000);
        assertEq(versionOf(l), 2);
    }

    /// A virtual channel's record refuted directly (the sub-channel's state, no locks).
    function test_gas_refute_subchannel() public {
        (Channel.SignedState memory sl, Channel.SignedState[] memory subs) = withLocks(1);
        adj.register(sl, subs);
        Channel.State memory st = subs[0].state;
        st.version = 4;
        st.outcome.balances[0] = [uint256(2), 0];
        Channel.SignedState memory s = signed(subs[0].params, st);
        Channel.SignedState[] memory none = noSubs();
        adj.refute(s, none);
        report("refute sub-channel", abi.encodeCall(IAdjudicator.refute, (s, none)), 85_000);
        assertEq(versionOf(ethKey(st.channelId, 2)), 4);
    }

    // ------------------------------------------------------------ conclude

    function measureConclude(uint256 n, uint256 budget) internal {
        (Channel.SignedState memory sl, Channel.SignedState[] memory subs) = withLocks(n);
        adj.register(sl, subs);
        vm.warp(block.timestamp + LEDGER_CD);
        Channel.State[] memory st = subStatesOf(subs);
        adj.conclude(pl, sl.state, st);
        report(
            string.concat("conclude ", vm.toString(n), " locks"),
            abi.encodeCall(IAdjudicator.conclude, (pl, sl.state, st)),
            budget
        );
        assertTrue(eth.settled(l));
    }

    function test_gas_conclude_0_locks() public {
        measureConclude(0, 100_000);
    }

    function test_gas_conclude_1_lock() public {
        measureConclude(1, 120_000);
    }

    function test_gas_conclude_10_locks() public {
        measureConclude(10, 320_000);
    }

    /// L funded with 10 by Alice and 10 on standby by Ingrid, concluded with (10, 10): the
    /// holder draws the shortfall from the standby and clears it (the top-up case).
    function test_gas_conclude_standbyDrawn() public {
        depositEth(l, alice, 10);
        vm.deal(ingrid, 10);
        vm.prank(ingrid);
        eth.depositStandby{value: 10}(l, ingrid, 10);
        Channel.State memory st = ethState(l, 5, 10, 10, false);
        adj.register(signed(pl, st), noSubs());
        vm.warp(block.timestamp + LEDGER_CD);
        Channel.State[] memory none = noSubStates();
        adj.conclude(pl, st, none);
        // Clearing the standby slot earns a refund, which `gasTotalUsed` does not subtract.
        emit log_named_int("gas | conclude, standby drawn | refund", vm.lastCallGas().gasRefunded);
        report(
            "conclude, standby drawn",
            abi.encodeCall(IAdjudicator.conclude, (pl, st, none)),
            120_000
        );
        assertEq(eth.holdings(eth.fundingId(l, ingrid)), 10);
        assertEq(eth.standby(eth.fundingId(l, ingrid)), 0);
    }

    function test_gas_concludeFinal() public {
        Channel.SignedState memory s = signed(pl, ethState(l, 9, 12, 8, true));
        adj.concludeFinal(s);
        report("concludeFinal", abi.encodeCall(IAdjudicator.concludeFinal, (s)), 155_000);
        assertTrue(eth.settled(l));
    }

    // ------------------------------------------------------------ apps

    /// V = Alice-Bob running `app` (nonce 2000), and L = (10, 10) + a lock of 2 on V.
    function appChannel(address app)
        internal
        view
        returns (Channel.Params memory pv, Channel.SignedState memory sl)
    {
        pv = virtualParams(ALICE_PK, BOB_PK, 2000);
        pv.app = app;
        sl = signed(
            pl, mkState(l, 5, ethOnly(), bal(10, 10), locks(lock1(cid(pv), 2, 0, 1)), false)
        );
    }

    function appState(
        Channel.Params memory pv,
        uint64 version,
        uint256 a,
        uint256 b,
        bytes memory appData,
        bool isFinal
    ) internal view returns (Channel.State memory s) {
        s = ethState(cid(pv), version, a, b, isFinal);
        s.appData = appData;
    }

    function cf(uint8 stage, uint8 guess, bytes32 salt, uint8 bit)
        internal
        pure
        returns (bytes memory)
    {
        bytes32 c = keccak256(abi.encode(keccak256("salt"), uint8(1)));
        return abi.encode(CoinFlip.Data(stage, stage == 0 ? bytes32(0) : c, guess, salt, bit));
    }

    /// The coin flip's states: opening (1, 1), Alice's commitment, Bob's guess 0, Alice's
    /// reveal of 1 (final, Alice wins).
    function coinFlipStates(Channel.Params memory pv)
        internal
        view
        returns (Channel.State[4] memory st)
    {
        st[0] = appState(pv, 0, 1, 1, cf(0, 0, 0, 0), false);
        st[1] = appState(pv, 1, 2, 0, cf(1, 0, 0, 0), false);
        st[2] = appState(pv, 2, 0, 2, cf(2, 0, 0, 0), false);
        st[3] = appState(pv, 3, 2, 0, cf(3, 0, keccak256("salt"), 1), true);
    }

    /// Registers L with the coin flip's opening state, moves to the window, and force-executes
    /// the first `moves` moves; returns the params and the states.
    function coinFlipUpTo(uint256 moves)
        internal
        returns (
            Channel.Params memory pv,
            Channel.SignedState memory sl,
            Channel.State[4] memory st
        )
    {
        (pv, sl) = appChannel(address(new CoinFlip()));
        st = coinFlipStates(pv);
        adj.register(sl, subs1(signed(pv, st[0])));
        vm.warp(block.timestamp + VIRTUAL_CD);
        for (uint256 i = 0; i < moves; ++i) {
            forcedMove(pv, st[i], st[i + 1], i % 2);
        }
    }

    function forcedMove(
        Channel.Params memory pv,
        Channel.State memory from,
        Channel.State memory to,
        uint256 actor
    ) internal returns (bytes memory data) {
        bytes memory sig = signState(adj, actor == 0 ? ALICE_PK : BOB_PK, to);
        adj.progress(pv, from, to, actor, sig);
        data = abi.encodeCall(IAdjudicator.progress, (pv, from, to, actor, sig));
    }

    function test_gas_register_1_app_lock() public {
        (Channel.Params memory pv, Channel.SignedState memory sl) =
            appChannel(address(new CoinFlip()));
        Channel.SignedState[] memory subs = subs1(signed(pv, coinFlipStates(pv)[0]));
        adj.register(sl, subs);
        report(
            "register 1 app lock (coin flip)",
            abi.encodeCall(IAdjudicator.register, (sl, subs)),
            230_000
        );
        (uint64 window,) = adj.forceExecution(ethKey(cid(pv), 2));
        assertEq(window, VIRTUAL_CD);
    }

    function measureCoinFlipMove(uint256 i, string memory name, uint256 budget) internal {
        (Channel.Params memory pv,, Channel.State[4] memory st) = coinFlipUpTo(i);
        bytes memory data = forcedMove(pv, st[i], st[i + 1], i % 2);
        report(name, data, budget);
        (, uint8 moves) = adj.forceExecution(ethKey(cid(pv), 2));
        assertEq(moves, i + 1);
    }

    function test_gas_progress_coinFlip_commit() public {
        measureCoinFlipMove(0, "progress, coin flip commit", 107_000);
    }

    function test_gas_progress_coinFlip_guess() public {
        measureCoinFlipMove(1, "progress, coin flip guess", 107_000);
    }

    function test_gas_progress_coinFlip_reveal() public {
        measureCoinFlipMove(2, "progress, coin flip reveal (final)", 108_000);
    }

    function test_gas_progress_ticTacToe() public {
        (Channel.Params memory pv, Channel.SignedState memory sl) =
            appChannel(address(new TicTacToe()));
        uint256[2][] memory stakes = new uint256[2][](1);
        stakes[0] = [uint256(1), 1];
        uint8[9] memory board;
        Channel.State memory open =
            appState(pv, 0, 1, 1, abi.encode(TicTacToe.Data(board, stakes)), false);
        board[4] = 1;
        Channel.State memory next =
            appState(pv, 1, 2, 0, abi.encode(TicTacToe.Data(board, stakes)), false);
        adj.register(sl, subs1(signed(pv, open)));
        vm.warp(block.timestamp + VIRTUAL_CD);
        report("progress, tic-tac-toe move", forcedMove(pv, open, next, 0), 134_000);
    }

    function test_gas_progress_conditionalPayment_claim() public {
        bytes memory preimage = abi.encode(keccak256("the response body"));
        assertEq(preimage.length, 32);
        forcedClaim(preimage, "progress, conditional payment claim", 114_000);
    }

    /// The longest claim: an 800-byte preimage (a chunk sold on delivery over HTTP), whose
    /// app data is exactly the adjudicator's 1,024-byte bound.
    function test_gas_progress_conditionalPayment_claim_800() public {
        bytes memory preimage = new bytes(800);
        for (uint256 i = 0; i < 800; ++i) {
            preimage[i] = bytes1(uint8(i));
        }
        forcedClaim(preimage, "progress, conditional payment claim (800-byte preimage)", 130_000);
    }

    /// Registers an offer of 1 against `keccak256(preimage)` and forces the claim with it.
    function forcedClaim(bytes memory preimage, string memory label, uint256 cap) internal {
        (Channel.Params memory pv, Channel.SignedState memory sl) =
            appChannel(address(new ConditionalPayment()));
        uint256[] memory amounts = new uint256[](1);
        amounts[0] = 1;
        Channel.State memory offer = appState(
            pv,
            1,
            2,
            0,
            abi.encode(ConditionalPayment.Data(0, keccak256(preimage), amounts, "")),
            false
        );
        bytes memory claimData =
            abi.encode(ConditionalPayment.Data(0, keccak256(preimage), new uint256[](0), preimage));
        assertLe(claimData.length, 1024);
        Channel.State memory claim = appState(pv, 2, 1, 1, claimData, false);
        adj.register(sl, subs1(signed(pv, offer)));
        vm.warp(block.timestamp + VIRTUAL_CD);
        report(label, forcedMove(pv, offer, claim, 1), cap);
    }

    /// L concluded once its lock's coin flip was force-executed to its final reveal.
    function test_gas_conclude_afterForcedFinal() public {
        (, Channel.SignedState memory sl, Channel.State[4] memory st) = coinFlipUpTo(3);
        vm.warp(block.timestamp + LEDGER_CD);
        Channel.State[] memory subStates = subStates1(st[3]);
        adj.conclude(pl, sl.state, subStates);
        report(
            "conclude 1 app lock, forced final",
            abi.encodeCall(IAdjudicator.conclude, (pl, sl.state, subStates)),
            128_000
        );
        assertTrue(eth.settled(l));
    }
}
