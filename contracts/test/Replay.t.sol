// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Base} from "./utils/Base.sol";
import {Channel} from "../src/Channel.sol";
import {Adjudicator} from "../src/Adjudicator.sol";
import {IAssetHolder} from "../src/IAssetHolder.sol";
import {AssetHolder} from "../src/AssetHolder.sol";
import {EthAssetHolder} from "../src/EthAssetHolder.sol";

/// A signature must never be valid for another channel, version, chain or deployment
/// (DESIGN.md section 2); the same holds for withdrawal authorisations.
contract ReplayTest is Base {
    Channel.Params internal pa;
    Channel.Params internal pb;
    bytes32 internal a;
    bytes32 internal b;

    function setUp() public override {
        super.setUp();
        // Two channels between the same participants, differing only in the nonce.
        pa = ledgerParams(ALICE_PK, INGRID_PK, 1);
        pb = ledgerParams(ALICE_PK, INGRID_PK, 2);
        a = cid(pa);
        b = cid(pb);
    }

    function invalidSig0() internal pure returns (bytes memory) {
        return abi.encodeWithSelector(Adjudicator.InvalidSignature.selector, 0);
    }

    function test_stateSignature_otherChannel() public {
        Channel.SignedState memory s = signed(pa, ethState(a, 1, 2, 3, true));
        adj.concludeFinal(s);
        // Same sigs and outcome, moved to channel b.
        s.params = pb;
        s.state.channelId = b;
        vm.expectRevert(invalidSig0());
        adj.concludeFinal(s);
        vm.expectRevert(invalidSig0());
        adj.register(s, noSubs());
    }

    function test_stateSignature_otherVersion() public {
        Channel.SignedState memory s = signed(pa, ethState(a, 1, 2, 3, false));
        adj.register(s, noSubs());
        s.state.version = 2;
        vm.expectRevert(invalidSig0());
        adj.refute(s, noSubs());
    }

    function test_stateSignature_otherChain() public {
        vm.chainId(1);
        Channel.SignedState memory s = signed(pa, ethState(a, 1, 2, 3, true));
        vm.chainId(10);
        vm.expectRevert(invalidSig0());
        adj.concludeFinal(s);
        vm.chainId(1);
        adj.concludeFinal(s);
    }

    function test_stateSignature_otherDeployment() public {
        Adjudicator adj2 = new Adjudicator();
        Channel.SignedState memory s = signed(pa, ethState(a, 1, 2, 3, false));
        vm.expectRevert(invalidSig0());
        adj2.register(s, noSubs());
        // Signed for adj2, refused by adj.
        Channel.SignedState memory s2 =
            signedBy(adj2, pa, ethState(a, 1, 2, 3, false), ALICE_PK, INGRID_PK);
        vm.expectRevert(invalidSig0());
        adj.register(s2, noSubs());
        adj2.register(s2, noSubs());
    }

    function test_subStateSignature_otherChannel() public {
        // A virtual channel state replayed as the state of another virtual channel.
        Channel.Params memory pv = virtualParams(ALICE_PK, BOB_PK, 1);
        Channel.Params memory pw = virtualParams(ALICE_PK, BOB_PK, 2);
        bytes32 w = cid(pw);
        Channel.SignedState memory sv = signed(pv, ethState(cid(pv), 1, 2, 3, false));
        Channel.SignedState memory sl =
            signed(pa, mkState(a, 1, ethOnly(), bal(0, 0), locks(lock1(w, 5, 0, 1)), false));
        sv.params = pw;
        sv.state.channelId = w;
        vm.expectRevert(invalidSig0());
        adj.register(sl, subs1(sv));
    }

    function test_stateSignature_otherOutcome() public {
        Channel.SignedState memory s = signed(pa, ethState(a, 1, 2, 3, true));
        s.state.outcome.balances[0] = [uint256(3), uint256(2)];
        vm.expectRevert(invalidSig0());
        adj.concludeFinal(s);
    }

    // ------------------------------------------------------------ withdrawals

    function settledEth(EthAssetHolder h, bytes32 channelId) internal {
        vm.deal(address(this), 5);
        h.deposit{value: 5}(channelId, alice, 5);
        vm.prank(address(adj));
        h.setOutcome(channelId, [alice, bob], [uint256(5), uint256(0)]);
    }

    function test_withdrawalSignature_otherAssetHolder() public {
        EthAssetHolder eth2 = new EthAssetHolder(address(adj));
        settledEth(eth, a);
        settledEth(eth2, a);
        IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal(a, alice, alice, 5, 0);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.expectRevert(AssetHolder.InvalidSignature.selector);
        eth2.withdraw(w, sig);
        eth.withdraw(w, sig);
        assertEq(alice.balance, 5);
    }

    function test_withdrawalSignature_otherChannel() public {
        settledEth(eth, a);
        settledEth(eth, b);
        IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal(a, alice, alice, 5, 0);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        w.channelId = b;
        vm.expectRevert(AssetHolder.InvalidSignature.selector);
        eth.withdraw(w, sig);
    }

    function test_withdrawalSignature_otherChain() public {
        settledEth(eth, a);
        vm.chainId(1);
        IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal(a, alice, alice, 5, 0);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        vm.chainId(5);
        vm.expectRevert(AssetHolder.InvalidSignature.selector);
        eth.withdraw(w, sig);
    }

    function test_withdrawalSignature_otherParticipant() public {
        vm.deal(address(this), 10);
        eth.deposit{value: 5}(a, alice, 5);
        eth.deposit{value: 5}(a, bob, 5);
        vm.prank(address(adj));
        eth.setOutcome(a, [alice, bob], [uint256(5), uint256(5)]);
        IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal(a, alice, alice, 5, 0);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        w.participant = bob;
        vm.expectRevert(AssetHolder.InvalidSignature.selector);
        eth.withdraw(w, sig);
    }

    /// An authorisation is spent when used (its nonce moves on): it can never be replayed, not
    /// even once the participant's holding is back at the signed amount (a deposit after
    /// settlement). A new authorisation with the next nonce is needed.
    function test_withdrawalSignature_neverReplayed() public {
        settledEth(eth, a);
        address wallet = makeAddr("wallet");
        IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal(a, alice, wallet, 5, 0);
        bytes memory sig = withdrawalSig(eth, ALICE_PK, w);
        eth.withdraw(w, sig);
        vm.expectRevert(abi.encodeWithSelector(AssetHolder.InvalidNonce.selector, 1));
        eth.withdraw(w, sig);
        depositEth(a, alice, 5);
        vm.expectRevert(abi.encodeWithSelector(AssetHolder.InvalidNonce.selector, 1));
        eth.withdraw(w, sig);
        assertEq(wallet.balance, 5);
        IAssetHolder.Withdrawal memory next = IAssetHolder.Withdrawal(a, alice, wallet, 5, 1);
        eth.withdraw(next, withdrawalSig(eth, ALICE_PK, next));
        assertEq(wallet.balance, 10);
        assertEq(eth.nonces(eth.fundingId(a, alice)), 2);
    }

    receive() external payable {}
}
