// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";

import {Adjudicator} from "../../src/Adjudicator.sol";
import {Channel} from "../../src/Channel.sol";
import {IAdjudicator} from "../../src/IAdjudicator.sol";
import {IAssetHolder} from "../../src/IAssetHolder.sol";
import {AssetHolder} from "../../src/AssetHolder.sol";
import {EthAssetHolder} from "../../src/EthAssetHolder.sol";
import {Erc20AssetHolder} from "../../src/Erc20AssetHolder.sol";
import {TestToken} from "../../src/dev/TestToken.sol";

/// Shared fixtures: one adjudicator, an ETH holder and a tUSD holder, three keys (Alice, Ingrid,
/// Bob) and builders for params, states, locks and signatures.
abstract contract Base is Test {
    uint64 internal constant LEDGER_CD = 100;
    uint64 internal constant VIRTUAL_CD = 50;

    uint256 internal constant ALICE_PK = 0xA11CE;
    uint256 internal constant INGRID_PK = 0x1A6E1D;
    uint256 internal constant BOB_PK = 0xB0B;
    uint256 internal constant EVE_PK = 0xE7E;

    address internal alice;
    address internal ingrid;
    address internal bob;
    address internal eve;

    Adjudicator internal adj;
    EthAssetHolder internal eth;
    TestToken internal token;
    Erc20AssetHolder internal erc;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        alice = vm.addr(ALICE_PK);
        ingrid = vm.addr(INGRID_PK);
        bob = vm.addr(BOB_PK);
        eve = vm.addr(EVE_PK);
        vm.label(alice, "alice");
        vm.label(ingrid, "ingrid");
        vm.label(bob, "bob");
        vm.label(eve, "eve");
        adj = new Adjudicator();
        eth = new EthAssetHolder(address(adj));
        token = new TestToken();
        erc = new Erc20AssetHolder(address(adj), token);
    }

    // ------------------------------------------------------------ params

    function ledgerParams(uint256 pk0, uint256 pk1, uint256 nonce)
        internal
        pure
        returns (Channel.Params memory p)
    {
        p.challengeDuration = LEDGER_CD;
        p.nonce = nonce;
        p.participants = [vm.addr(pk0), vm.addr(pk1)];
        p.ledger = true;
    }

    function virtualParams(uint256 pk0, uint256 pk1, uint256 nonce)
        internal
        pure
        returns (Channel.Params memory p)
    {
        p.challengeDuration = VIRTUAL_CD;
        p.nonce = nonce;
        p.participants = [vm.addr(pk0), vm.addr(pk1)];
        p.isVirtual = true;
    }

    function cid(Channel.Params memory p) internal pure returns (bytes32) {
        return Channel.id(p);
    }

    // ------------------------------------------------------------ outcomes

    function ethOnly() internal view returns (address[] memory a) {
        a = new address[](1);
        a[0] = address(eth);
    }

    function ethAndErc() internal view returns (address[] memory a) {
        a = new address[](2);
        a[0] = address(eth);
        a[1] = address(erc);
    }

    function bal(uint256 b0, uint256 b1) internal pure returns (uint256[2][] memory b) {
        b = new uint256[2][](1);
        b[0] = [b0, b1];
    }

    function bal2(uint256 e0, uint256 e1, uint256 t0, uint256 t1)
        internal
        pure
        returns (uint256[2][] memory b)
    {
        b = new uint256[2][](2);
        b[0] = [e0, e1];
        b[1] = [t0, t1];
    }

    function noLocks() internal pure returns (Channel.SubAlloc[] memory) {
        return new Channel.SubAlloc[](0);
    }

    function lock1(bytes32 id, uint256 amount, uint16 i0, uint16 i1)
        internal
        pure
        returns (Channel.SubAlloc memory l)
    {
        l.id = id;
        l.balances = new uint256[](1);
        l.balances[0] = amount;
        l.indexMap = [i0, i1];
    }

    function locks(Channel.SubAlloc memory l) internal pure returns (Channel.SubAlloc[] memory a) {
        a = new Channel.SubAlloc[](1);
        a[0] = l;
    }

    function mkState(
        bytes32 id,
        uint64 version,
        address[] memory assets,
        uint256[2][] memory balances,
        Channel.SubAlloc[] memory locked,
        bool isFinal
    ) internal pure returns (Channel.State memory s) {
        s.channelId = id;
        s.version = version;
        s.outcome.assets = assets;
        s.outcome.balances = balances;
        s.outcome.locked = locked;
        s.isFinal = isFinal;
    }

    /// A single-asset (ETH) state.
    function ethState(bytes32 id, uint64 version, uint256 b0, uint256 b1, bool isFinal)
        internal
        view
        returns (Channel.State memory)
    {
        return mkState(id, version, ethOnly(), bal(b0, b1), noLocks(), isFinal);
    }

    // ------------------------------------------------------------ signatures

    function signDigest(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function signState(Adjudicator a, uint256 pk, Channel.State memory s)
        internal
        view
        returns (bytes memory)
    {
        return signDigest(pk, a.hashState(s));
    }

    function signedBy(
        Adjudicator a,
        Channel.Params memory p,
        Channel.State memory s,
        uint256 pk0,
        uint256 pk1
    ) internal view returns (Channel.SignedState memory ss) {
        ss.params = p;
        ss.state = s;
        ss.sigs = [signState(a, pk0, s), signState(a, pk1, s)];
    }

    /// Signed by both participants, whose keys are looked up from the params.
    function signed(Channel.Params memory p, Channel.State memory s)
        internal
        view
        returns (Channel.SignedState memory)
    {
        return signedBy(adj, p, s, keyOf(p.participants[0]), keyOf(p.participants[1]));
    }

    function keyOf(address who) internal view returns (uint256) {
        if (who == alice) return ALICE_PK;
        if (who == ingrid) return INGRID_PK;
        if (who == bob) return BOB_PK;
        if (who == eve) return EVE_PK;
        revert("unknown key");
    }

    function noSubs() internal pure returns (Channel.SignedState[] memory) {
        return new Channel.SignedState[](0);
    }

    function subs1(Channel.SignedState memory s)
        internal
        pure
        returns (Channel.SignedState[] memory a)
    {
        a = new Channel.SignedState[](1);
        a[0] = s;
    }

    function noSubStates() internal pure returns (Channel.State[] memory) {
        return new Channel.State[](0);
    }

    function subStates1(Channel.State memory s) internal pure returns (Channel.State[] memory a) {
        a = new Channel.State[](1);
        a[0] = s;
    }

    // ------------------------------------------------------------ asset holders

    function depositEth(bytes32 channelId, address participant, uint256 amount) internal {
        address payer = makeAddr("payer");
        vm.deal(payer, amount);
        vm.prank(payer);
        eth.deposit{value: amount}(channelId, participant, amount);
    }

    function depositErc(bytes32 channelId, address participant, uint256 amount) internal {
        address payer = makeAddr("payer");
        token.mint(payer, amount);
        vm.startPrank(payer);
        token.approve(address(erc), amount);
        erc.deposit(channelId, participant, amount);
        vm.stopPrank();
    }

    function withdrawalSig(AssetHolder h, uint256 pk, IAssetHolder.Withdrawal memory w)
        internal
        view
        returns (bytes memory)
    {
        return signDigest(pk, h.withdrawalDigest(w));
    }

    /// Withdraws the whole holding of `pk`'s participant to `receiver` with the funding id's
    /// next nonce; returns the amount.
    function withdrawAll(AssetHolder h, bytes32 channelId, uint256 pk, address receiver)
        internal
        returns (uint256 amount)
    {
        address participant = vm.addr(pk);
        bytes32 f = h.fundingId(channelId, participant);
        amount = h.holdings(f);
        IAssetHolder.Withdrawal memory w = IAssetHolder.Withdrawal({
            channelId: channelId,
            participant: participant,
            receiver: receiver,
            amount: amount,
            nonce: h.nonces(f)
        });
        h.withdraw(w, withdrawalSig(h, pk, w));
    }

    /// The record key of the sub-channel `id` whose whole value per asset of `assets` is
    /// `totals` (what `Adjudicator.subChannelKey` computes).
    function subKey(bytes32 id, address[] memory assets, uint256[] memory totals)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(id, assets, totals));
    }

    /// The record key of the ETH-only sub-channel `id` worth `total`.
    function ethKey(bytes32 id, uint256 total) internal view returns (bytes32) {
        uint256[] memory totals = new uint256[](1);
        totals[0] = total;
        return subKey(id, ethOnly(), totals);
    }

    // The record under `key`: a ledger channel's id, or `subKey` / `ethKey` of a sub-channel.

    function record(bytes32 key)
        internal
        view
        returns (uint64, uint64, IAdjudicator.Phase, bytes32)
    {
        return adj.disputes(key);
    }

    function phaseOf(bytes32 key) internal view returns (IAdjudicator.Phase phase) {
        (,, phase,) = adj.disputes(key);
    }

    function versionOf(bytes32 key) internal view returns (uint64 version) {
        (, version,,) = adj.disputes(key);
    }

    function timeoutOf(bytes32 key) internal view returns (uint64 timeout) {
        (timeout,,,) = adj.disputes(key);
    }

    function stateHashOf(bytes32 key) internal view returns (bytes32 h) {
        (,,, h) = adj.disputes(key);
    }
}
