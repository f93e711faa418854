// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

import {Base} from "./utils/Base.sol";
import {IAssetHolder} from "../src/IAssetHolder.sol";
import {AssetHolder} from "../src/AssetHolder.sol";
import {EthAssetHolder} from "../src/EthAssetHolder.sol";
import {Erc20AssetHolder} from "../src/Erc20AssetHolder.sol";
import {TestToken} from "../src/dev/TestToken.sol";
import {NoBoolToken, FeeToken, FalseToken} from "./mocks/Tokens.sol";
import {RejectingReceiver, ExpensiveReceiver, ReentrantReceiver} from "./mocks/Receivers.sol";

/// Unit tests of the asset holders (ETH and ERC20), with the adjudicator impersonated.
contract AssetHolderTest is Base {
    bytes32 internal constant C = keccak256("channel");

    function setOutcome(AssetHolder h, bytes32 channelId, uint256 b0, uint256 b1) internal {
        vm.prank(address(adj));
        h.setOutcome(channelId, [alice, bob], [b0, b1]);
    }

    /// An authorisation with nonce 0 (the first withdrawal of the funding id).
    function auth(bytes32 channelId, address participant, address receiver, uint256 amount)
        internal
        pure
        returns (IAssetHolder.Withdrawal memory)
    {
        return authN(channelId, participant, receiver, amount, 0);
    }

    function authN(
        bytes32 channelId,
        address participant,
        address receiver,
        uint256 amount,
        uint256 nonce
    ) internal pure returns (IAssetHolder.Withdrawal memory) {
        return IAssetHolder.Withdrawal({
            channelId: channelId,
            participant: participant,
            receiver: receiver,
            amount: amount,
            nonce: nonce
        });
    }

    function holdingOf(AssetHolder h, bytes32 channelId, address who)
        internal
        view
        returns (uint256)
    {
        return h.holdings(h.fundingId(channelId, who));
    }

    // ------------------------------------------------------------ construction and views

    function test_constructor() public view {
        assertEq(eth.adjudicator(), address(adj));
        assertEq(erc.adjudicator(), address(adj));
        assertEq(address(erc.token()), address(token));
    }

    function test_constructor_revert_zeroAdjudicator() public {
        vm.expectRevert(AssetHolder.ZeroAdjudicator.selector);
        new EthAssetHolder(address(0));
        vm.expectRevert(AssetHolder.ZeroAdjudicator.selector);
        new Erc20AssetHolder(address(0), token);
    }

    function test_constructor_revert_zeroToken() public {
        vm.expectRevert(Erc20AssetHolder.ZeroToken.selector);
        new Erc20AssetHolder(address(adj), IERC20(address(0)));
    }

    function test_fundingId() public view {
        assertEq(eth.fundingId(C, alice), keccak256(abi.encode(C, alice)));
        assertTrue(eth.fundingId(C, alice) != eth.fundingId(C, bob));
    }

    function test_withdrawalDigest_isEip712() public view {
        IAssetHolder.Withdrawal memory w = auth(C, alice, bob, 5);
        bytes32 domain = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("IngridAssetHolder"),
                keccak256("1"),
                block.chainid,
                address(eth)
            )
        );
        assertEq(eth.domainSeparator(), domain);
        bytes32 typeHash = keccak256(
            "Withdrawal(bytes32 channelId,address participant,address receiver,uint256 amount,uint256 nonce)"
        );
        bytes32 structHash = keccak256(abi.encode(typeHash, C, alice, bob, uint256(5), uint256(0)));
        assertEq(eth.WITHDRAWAL_TYPEHASH(), typeHash);
        assertEq(eth.withdrawalDigest(w), MessageHashUtils.toTypedDataHash(domain, structHash));
        // The nonce is part of what is signed.
        assertTrue(eth.withdrawalDigest(authN(C, alice, bob, 5, 1)) != eth.withdrawalDigest(w));
        (, string memory name, string memory version,,,,) = erc.eip712Domain();
        assertEq(name, "IngridAssetHolder");
        assertEq(version, "1");
    }

    function test_testToken() public {
        assertEq(token.name(), "Ingrid Test USD");
        assertEq(token.symbol(), "tUSD");
        assertEq(token.decimals(), 6);
        vm.prank(eve);
        token.mint(bob, 42);
        assertEq(token.balanceOf(bob), 42);
        assertEq(token.totalSupply(), 42);
    }

    // ------------------------------------------------------------ ETH deposit

    function test_ethDeposit() public {
        vm.deal(eve, 10);
        vm.expectEmit(address(eth));
        emit IAssetHolder.Deposited(C, alice, 3, 3);
        vm.prank(eve);
        eth.deposit{value: 3}(C, alice, 3);
        vm.expectEmit(address(eth));
        emit IAssetHolder.Deposited(C, alice, 4, 7);
        vm.prank(eve);
        eth.deposit{value: 4}(C, alice, 4);
        assertEq(holdingOf(eth, C, alice), 7);
        assertEq(holdingOf(eth, C, bob), 0);
        assertEq(address(eth).balance, 7);
    }

    function test_ethDeposit_revert_wrongValue() public {
        vm.deal(eve, 10);
        vm.prank(eve);
        vm.expectRevert(abi.encodeWithSelector(EthAssetHolder.WrongValue.selector, 2, 3));
        eth.deposit{value: 2}(C, alice, 3);
        vm.prank(eve);
        vm.expectRevert(abi.encodeWithSelector(EthAssetHolder.WrongValue.selector, 4, 3));
        eth.deposit{value: 4}(C, alice, 3);
    }

    function test_deposit_revert_zeroParticipant() public {
        vm.deal(eve, 10);
        vm.prank(eve);
        vm.expectRevert(AssetHolder.ZeroParticipant.selector);
        eth.deposit{value: 1}(C, address(0), 1);
        vm.expectRevert(AssetHolder.ZeroParticipant.selector);
        erc.deposit(C, address(0), 1);
    }

    function test_ethDeposit_afterSettlement() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        depositEth(C, alice, 2);
        assertEq(holdingOf(eth, C, alice), 7);
        assertEq(withdrawAll(eth, C, ALICE_PK, alice), 7);
        assertEq(alice.balance, 7);
    }

    // ------------------------------------------------------------ ERC20 deposit

    function test_ercDeposit() public {
        token.mint(eve, 100);
        vm.startPrank(eve);
        token.approve(address(erc), 100);
        vm.expectEmit(address(erc));
        emit IAssetHolder.Deposited(C, bob, 60, 60);
        erc.deposit(C, bob, 60);
        vm.stopPrank();
        assertEq(holdingOf(erc, C, bob), 60);
        assertEq(token.balanceOf(address(erc)), 60);
        assertEq(token.balanceOf(eve), 40);
    }

    function test_ercDeposit_revert_ether() public {
        token.mint(eve, 100);
        vm.deal(eve, 1);
        vm.startPrank(eve);
        token.approve(address(erc), 100);
        vm.expectRevert(Erc20AssetHolder.EtherNotAccepted.selector);
        erc.deposit{value: 1}(C, bob, 60);
        vm.stopPrank();
    }

    function test_ercDeposit_revert_noAllowance() public {
        token.mint(eve, 100);
        vm.prank(eve);
        vm.expectRevert();
        erc.deposit(C, bob, 60);
        assertEq(holdingOf(erc, C, bob), 0);
    }

    function test_ercDeposit_revert_falseReturningToken() public {
        FalseToken ft = new FalseToken();
        Erc20AssetHolder h = new Erc20AssetHolder(address(adj), IERC20(address(ft)));
        vm.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, ft));
        h.deposit(C, bob, 1);
    }

    function test_ercNoBoolToken_depositAndWithdraw() public {
        NoBoolToken nb = new NoBoolToken();
        Erc20AssetHolder h = new Erc20AssetHolder(address(adj), IERC20(address(nb)));
        nb.mint(eve, 50);
        vm.startPrank(eve);
        nb.approve(address(h), 50);
        h.deposit(C, alice, 30);
        h.deposit(C, bob, 20);
        vm.stopPrank();
        assertEq(holdingOf(h, C, alice), 30);
        vm.prank(address(adj));
        h.setOutcome(C, [alice, bob], [uint256(10), uint256(40)]);
        assertEq(withdrawAll(h, C, ALICE_PK, alice), 10);
        assertEq(withdrawAll(h, C, BOB_PK, bob), 40);
        assertEq(nb.balanceOf(alice), 10);
        assertEq(nb.balanceOf(bob), 40);
        assertEq(nb.balanceOf(address(h)), 0);
    }

    function test_ercNoBoolToken_revert_insufficient() public {
        NoBoolToken nb = new NoBoolToken();
        Erc20AssetHolder h = new Erc20AssetHolder(address(adj), IERC20(address(nb)));
        vm.prank(eve);
        vm.expectRevert("allowance");
        h.deposit(C, alice, 30);
    }

    function test_ercFeeToken_creditsWhatArrived() public {
        FeeToken ft = new FeeToken();
        Erc20AssetHolder h = new Erc20AssetHolder(address(adj), IERC20(address(ft)));
        ft.mint(eve, 1000);
        vm.startPrank(eve);
        ft.approve(address(h), 1000);
        vm.expectEmit(address(h));
        emit IAssetHolder.Deposited(C, alice, 495, 495);
        h.deposit(C, alice, 500);
        h.deposit(C, bob, 500);
        vm.stopPrank();
        assertEq(holdingOf(h, C, alice), 495);
        assertEq(holdingOf(h, C, bob), 495);
        assertEq(ft.balanceOf(address(h)), 990);
        // An outcome computed from the nominal 1000 is underfunded: deposits are refunded.
        vm.prank(address(adj));
        h.setOutcome(C, [alice, bob], [uint256(600), uint256(400)]);
        assertEq(withdrawAll(h, C, ALICE_PK, alice), 495);
        assertEq(withdrawAll(h, C, BOB_PK, bob), 495);
        assertEq(ft.balanceOf(address(h)), 0, "the holder never owes more than it holds");
    }

    // ------------------------------------------------------------ setOutcome

    function test_setOutcome_funded() public {
        depositEth(C, alice, 6);
        depositEth(C, bob, 4);
        vm.expectEmit(address(eth));
        emit IAssetHolder.OutcomeSet(C, [uint256(9), uint256(1)], [uint256(9), uint256(1)], false);
        setOutcome(eth, C, 9, 1);
        assertTrue(eth.settled(C));
        assertEq(holdingOf(eth, C, alice), 9);
        assertEq(holdingOf(eth, C, bob), 1);
    }

    /// Issue 11, flaw 3: the hub tops up a channel in which it paid the client (5, 5) -> (9, 1)
    /// by depositing 3 more, and the client never signs the raised state but concludes with
    /// (9, 1). The hub's 3 are credited back to the hub, not destroyed.
    function test_setOutcome_overfunded_topUpCreditedToDepositor() public {
        depositEth(C, alice, 5);
        depositEth(C, bob, 5);
        depositEth(C, bob, 3);
        vm.expectEmit(address(eth));
        emit IAssetHolder.OutcomeSet(C, [uint256(9), uint256(1)], [uint256(9), uint256(4)], false);
        setOutcome(eth, C, 9, 1);
        assertEq(holdingOf(eth, C, alice), 9);
        assertEq(holdingOf(eth, C, bob), 4);
        assertEq(withdrawAll(eth, C, ALICE_PK, alice), 9);
        assertEq(withdrawAll(eth, C, BOB_PK, bob), 4);
        assertEq(address(eth).balance, 0, "nothing stays in the holder");
    }

    /// Without payments, each gets back exactly what it deposited above its balance.
    function test_setOutcome_overfunded_bothOverDeposited_noPayments() public {
        depositErc(C, alice, 7);
        depositErc(C, bob, 6);
        setOutcome(erc, C, 5, 5);
        assertEq(holdingOf(erc, C, alice), 7);
        assertEq(holdingOf(erc, C, bob), 6);
    }

    /// From the deposits and balances alone the depositor of an excess is not always known:
    /// Alice 6 and Bob 6 with outcome (9, 1) could be Alice over-funding by 2 and Bob paying 3,
    /// or Bob over-funding by 2 and paying 5. The rule credits the excess to whoever
    /// deposited more than its final balance (Bob, by 5, capped at the excess 2).
    function test_setOutcome_overfunded_excessToWhoeverDepositedAboveBalance() public {
        depositEth(C, alice, 6);
        depositEth(C, bob, 6);
        setOutcome(eth, C, 9, 1);
        assertEq(withdrawAll(eth, C, ALICE_PK, alice), 9);
        assertEq(withdrawAll(eth, C, BOB_PK, bob), 3);
        assertEq(address(eth).balance, 0, "nothing stays in the holder");
    }

    /// Only one participant deposited: the whole excess is its own.
    function test_setOutcome_overfunded_singleDepositor() public {
        depositEth(C, alice, 10);
        setOutcome(eth, C, 2, 5);
        assertEq(holdingOf(eth, C, alice), 5);
        assertEq(holdingOf(eth, C, bob), 5);
    }

    /// Funded case: the two holdings add up to everything held for the channel, each at least
    /// its final balance, following the documented rule; the holder is drained by withdrawals.
    function testFuzz_setOutcome_keepsEverythingHeld(uint256 d0, uint256 d1, uint256 b0, uint256 b1)
        public
    {
        d0 = bound(d0, 0, 1e30);
        d1 = bound(d1, 0, 1e30);
        b0 = bound(b0, 0, 1e30);
        b1 = bound(b1, 0, 1e30);
        if (d0 > 0) depositEth(C, alice, d0);
        if (d1 > 0) depositEth(C, bob, d1);
        setOutcome(eth, C, b0, b1);
        uint256 h0 = holdingOf(eth, C, alice);
        uint256 h1 = holdingOf(eth, C, bob);
        assertEq(h0 + h1, d0 + d1, "sum of holdings == sum of deposits");
        if (d0 + d1 >= b0 + b1) {
            assertGe(h0, b0);
            assertGe(h1, b1);
            uint256 excess = d0 + d1 - b0 - b1;
            uint256 above0 = d0 > b0 ? d0 - b0 : 0;
            assertEq(h0, b0 + (above0 < excess ? above0 : excess), "rule for participant 0");
        } else {
            assertEq(h0, d0);
            assertEq(h1, d1);
        }
        if (h0 > 0) withdrawAll(eth, C, ALICE_PK, alice);
        if (h1 > 0) withdrawAll(eth, C, BOB_PK, bob);
        assertEq(address(eth).balance, 0, "nothing is stuck");
    }

    function test_setOutcome_underfunded_refunds() public {
        depositEth(C, alice, 6);
        depositEth(C, bob, 3);
        vm.expectEmit(address(eth));
        emit IAssetHolder.OutcomeSet(C, [uint256(9), uint256(1)], [uint256(6), uint256(3)], true);
        setOutcome(eth, C, 9, 1);
        assertTrue(eth.settled(C));
        assertEq(holdingOf(eth, C, alice), 6);
        assertEq(holdingOf(eth, C, bob), 3);
        assertEq(withdrawAll(eth, C, ALICE_PK, alice), 6);
        assertEq(withdrawAll(eth, C, BOB_PK, bob), 3);
    }

    function test_setOutcome_zeroOutcome() public {
        setOutcome(eth, C, 0, 0);
        assertTrue(eth.settled(C));
    }

    function test_setOutcome_revert_notAdjudicator() public {
        vm.prank(eve);
        vm.expectRevert(AssetHolder.NotAdjudicator.selector);
        eth.setOutcome(C, [alice, bob], [uint256(1), uint256(1)]);
        vm.expectRevert(AssetHolder.NotAdjudicator.selector);
        erc.setOutcome(C, [alice, bob], [uint256(1), uint256(1)]);
    }

    function test_setOutcome_revert_twice() public {
        setOutcome(eth, C, 0, 0);
        vm.prank(address(adj));
        vm.expectRevert(AssetHolder.AlreadySettled.selector);
        eth.setOutcome(C, [alice, bob], [uint256(0), uint256(0)]);
    }

    function test_setOutcome_revert_sameParticipants() public {
        vm.prank(address(adj));
        vm.expectRevert(AssetHolder.InvalidParticipants.selector);
        eth.setOutcome(C, [alice, alice], [uint256(0), uint256(0)]);
    }

    // ------------------------------------------------------------ withdraw

    function test_ethWithdraw_byRelayer() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        address wallet = makeAddr("wallet");
        IAssetHolder.Withdrawal memory w = auth(C, alice, wallet, 5);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.expectEmit(address(eth));
        emit IAssetHolder.Withdrawn(C, alice, wallet, 5, 0);
        vm.prank(eve); // anyone may submit
        eth.withdraw(w, sig);
        assertEq(wallet.balance, 5);
        assertEq(holdingOf(eth, C, alice), 0);
        assertEq(eve.balance, 0);
    }

    function test_ercWithdraw() public {
        depositErc(C, alice, 70);
        depositErc(C, bob, 30);
        setOutcome(erc, C, 20, 80);
        vm.expectEmit(address(erc));
        emit IAssetHolder.Withdrawn(C, bob, bob, 80, 0);
        assertEq(withdrawAll(erc, C, BOB_PK, bob), 80);
        assertEq(withdrawAll(erc, C, ALICE_PK, alice), 20);
        assertEq(token.balanceOf(bob), 80);
        assertEq(token.balanceOf(alice), 20);
        assertEq(token.balanceOf(address(erc)), 0);
    }

    function test_withdraw_revert_notSettled() public {
        depositEth(C, alice, 5);
        IAssetHolder.Withdrawal memory w = auth(C, alice, alice, 5);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.expectRevert(AssetHolder.NotSettled.selector);
        eth.withdraw(w, sig);
    }

    function test_withdraw_revert_zeroReceiver() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        IAssetHolder.Withdrawal memory w = auth(C, alice, address(0), 5);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.expectRevert(AssetHolder.ZeroReceiver.selector);
        eth.withdraw(w, sig);
    }

    function test_withdraw_revert_wrongSigner() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        IAssetHolder.Withdrawal memory w = auth(C, alice, bob, 5);
        bytes memory sig = withdrawalSig(eth, BOB_PK, w);
        vm.expectRevert(AssetHolder.InvalidSignature.selector);
        eth.withdraw(w, sig);
    }

    function test_withdraw_revert_malformedSignature() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        IAssetHolder.Withdrawal memory w = auth(C, alice, bob, 5);
        vm.expectRevert(AssetHolder.InvalidSignature.selector);
        eth.withdraw(w, hex"00");
        vm.expectRevert(AssetHolder.InvalidSignature.selector);
        eth.withdraw(w, new bytes(65));
    }

    function test_withdraw_revert_tamperedReceiver() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        IAssetHolder.Withdrawal memory w = auth(C, alice, alice, 5);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        w.receiver = eve;
        vm.expectRevert(AssetHolder.InvalidSignature.selector);
        eth.withdraw(w, sig);
    }

    function test_withdraw_revert_zeroAmount() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        IAssetHolder.Withdrawal memory w = auth(C, alice, alice, 0);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.expectRevert(AssetHolder.NothingToWithdraw.selector);
        eth.withdraw(w, sig);
        assertEq(eth.nonces(eth.fundingId(C, alice)), 0, "no nonce spent");
    }

    function test_withdraw_revert_nothingHeld() public {
        setOutcome(eth, C, 0, 0);
        IAssetHolder.Withdrawal memory w = auth(C, alice, alice, 1);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.expectRevert(abi.encodeWithSelector(AssetHolder.InsufficientHolding.selector, 0));
        eth.withdraw(w, sig);
    }

    function test_withdraw_revert_twice() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        IAssetHolder.Withdrawal memory w = auth(C, alice, alice, 5);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        eth.withdraw(w, sig);
        vm.expectRevert(abi.encodeWithSelector(AssetHolder.InvalidNonce.selector, 1));
        eth.withdraw(w, sig);
    }

    function test_withdraw_revert_amountAboveHolding() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        IAssetHolder.Withdrawal memory more = auth(C, alice, alice, 6);
        bytes memory sigMore = withdrawalSig(eth, ALICE_PK, more);
        vm.expectRevert(abi.encodeWithSelector(AssetHolder.InsufficientHolding.selector, 5));
        eth.withdraw(more, sigMore);
    }

    /// An authorisation pays exactly its amount; the rest waits for one with the next nonce.
    function test_withdraw_partialThenRest() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        address wallet = makeAddr("wallet");
        IAssetHolder.Withdrawal memory first = auth(C, alice, wallet, 4);
        vm.expectEmit(address(eth));
        emit IAssetHolder.Withdrawn(C, alice, wallet, 4, 0);
        eth.withdraw(first, withdrawalSig(eth, ALICE_PK, first));
        assertEq(holdingOf(eth, C, alice), 1);
        assertEq(eth.nonces(eth.fundingId(C, alice)), 1);
        IAssetHolder.Withdrawal memory rest = authN(C, alice, wallet, 1, 1);
        vm.expectEmit(address(eth));
        emit IAssetHolder.Withdrawn(C, alice, wallet, 1, 1);
        eth.withdraw(rest, withdrawalSig(eth, ALICE_PK, rest));
        assertEq(wallet.balance, 5);
        assertEq(holdingOf(eth, C, alice), 0);
    }

    /// Authorisations are used in nonce order: one signed ahead of time waits for its turn.
    function test_withdraw_revert_futureNonce() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        IAssetHolder.Withdrawal memory w = authN(C, alice, alice, 2, 1);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.expectRevert(abi.encodeWithSelector(AssetHolder.InvalidNonce.selector, 0));
        eth.withdraw(w, sig);
        withdrawAll(eth, C, ALICE_PK, bob); // nonce 0 pays all 5
        vm.expectRevert(abi.encodeWithSelector(AssetHolder.InsufficientHolding.selector, 0));
        eth.withdraw(w, sig);
    }

    /// The nonce is per funding id: Bob's withdrawals do not move Alice's.
    function test_withdraw_noncePerFundingId() public {
        depositEth(C, alice, 5);
        depositEth(C, bob, 5);
        setOutcome(eth, C, 5, 5);
        withdrawAll(eth, C, BOB_PK, bob);
        assertEq(eth.nonces(eth.fundingId(C, bob)), 1);
        assertEq(eth.nonces(eth.fundingId(C, alice)), 0);
        assertEq(withdrawAll(eth, C, ALICE_PK, alice), 5);
    }

    function test_deposit_revert_holdingOverflow() public {
        uint256 max = type(uint192).max;
        depositErc(C, alice, max);
        token.mint(eve, 1);
        vm.startPrank(eve);
        token.approve(address(erc), 1);
        vm.expectRevert(AssetHolder.HoldingOverflow.selector);
        erc.deposit(C, alice, 1);
        vm.stopPrank();
        assertEq(holdingOf(erc, C, alice), max);
    }

    /// Credits that cannot be held (above 2^192 - 1, only with absurd token supplies and
    /// balances both signed) leave the deposits where they are instead of blocking the
    /// conclusion.
    function test_setOutcome_creditAboveMaxHolding_refunds() public {
        uint256 max = type(uint192).max;
        depositErc(C, alice, max);
        depositErc(C, bob, max);
        vm.expectEmit(address(erc));
        emit IAssetHolder.OutcomeSet(C, [2 * max, uint256(0)], [max, max], true);
        setOutcome(erc, C, 2 * max, 0);
        assertEq(holdingOf(erc, C, alice), max);
        assertEq(holdingOf(erc, C, bob), max);
    }

    /// Issue 11, flaw 6: anyone could make a withdrawal revert by depositing 1 wei to the
    /// participant's funding id first. The authorised amount is now paid out as long as the
    /// holding covers it; the wei stays withdrawable.
    function test_withdraw_griefingDepositDoesNotBlock() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        address wallet = makeAddr("wallet");
        IAssetHolder.Withdrawal memory w = auth(C, alice, wallet, 5);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.deal(eve, 1);
        vm.prank(eve);
        eth.deposit{value: 1}(C, alice, 1);
        eth.withdraw(w, sig);
        assertEq(wallet.balance, 5);
        assertEq(holdingOf(eth, C, alice), 1, "the griefer's wei stays withdrawable");
    }

    /// Issue 11, flaw 6: an authorisation carried no nonce, so once the holding was back at the
    /// signed amount (a later deposit) anyone could replay it. Now it is spent when used.
    function test_withdraw_revert_replayedAuthorisation() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        address wallet = makeAddr("wallet");
        IAssetHolder.Withdrawal memory w = auth(C, alice, wallet, 5);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        eth.withdraw(w, sig);
        depositEth(C, alice, 5);
        vm.expectRevert(abi.encodeWithSelector(AssetHolder.InvalidNonce.selector, 1));
        eth.withdraw(w, sig);
        assertEq(wallet.balance, 5, "paid once");
        assertEq(holdingOf(eth, C, alice), 5);
    }

    function test_ethWithdraw_revert_receiverRejects() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        RejectingReceiver r = new RejectingReceiver();
        IAssetHolder.Withdrawal memory w = auth(C, alice, address(r), 5);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.expectRevert(abi.encodeWithSelector(EthAssetHolder.PaymentFailed.selector, r));
        eth.withdraw(w, sig);
        assertEq(holdingOf(eth, C, alice), 5, "holding kept when the payment fails");
    }

    function test_ethWithdraw_toContractWalletNeedingGas() public {
        depositEth(C, alice, 5);
        setOutcome(eth, C, 5, 0);
        ExpensiveReceiver r = new ExpensiveReceiver();
        assertEq(withdrawAll(eth, C, ALICE_PK, address(r)), 5);
        assertEq(address(r).balance, 5);
        assertEq(r.entries(), 5);
    }

    function test_ethWithdraw_reentrancyBlocked() public {
        depositEth(C, alice, 5);
        depositEth(C, bob, 5);
        setOutcome(eth, C, 5, 5);
        ReentrantReceiver r = new ReentrantReceiver();
        IAssetHolder.Withdrawal memory second = auth(C, bob, address(r), 5);
        r.arm(eth, second, withdrawalSig(eth, BOB_PK, second));
        assertEq(withdrawAll(eth, C, ALICE_PK, address(r)), 5);
        assertEq(
            r.reentryError(),
            abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector)
        );
        assertEq(holdingOf(eth, C, bob), 5, "Bob's holding untouched");
        assertEq(address(r).balance, 5);
    }

    function test_withdraw_otherChannelUnaffected() public {
        bytes32 d = keccak256("other");
        depositEth(C, alice, 5);
        depositEth(d, alice, 7);
        setOutcome(eth, C, 5, 0);
        assertEq(withdrawAll(eth, C, ALICE_PK, alice), 5);
        assertEq(holdingOf(eth, d, alice), 7);
        assertFalse(eth.settled(d));
    }
}
