// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Base} from "./utils/Base.sol";
import {Channel} from "../src/Channel.sol";

/// Property tests: a channel pays out exactly what was deposited into it; when funded, each
/// participant gets its final balance plus its share of any excess; when underfunded, its own
/// deposits.
contract FuzzTest is Base {
    uint256 internal constant MAX = 1e30;

    Channel.Params internal pl;
    bytes32 internal l;

    function setUp() public override {
        super.setUp();
        pl = ledgerParams(ALICE_PK, BOB_PK, 1);
        l = cid(pl);
    }

    function settle(uint256 b0, uint256 b1, bool cooperative) internal {
        if (cooperative) {
            adj.concludeFinal(signed(pl, ethState(l, 9, b0, b1, true)));
        } else {
            // A stale state is registered first and refuted with the final one.
            adj.register(signed(pl, ethState(l, 3, b1, b0, false)), noSubs());
            vm.warp(block.timestamp + 1);
            Channel.SignedState memory latest = signed(pl, ethState(l, 9, b0, b1, false));
            adj.refute(latest, noSubs());
            vm.warp(block.timestamp + LEDGER_CD);
            adj.conclude(pl, latest.state, noSubStates());
        }
    }

    function payOut() internal returns (uint256 p0, uint256 p1) {
        address w0 = makeAddr("w0");
        address w1 = makeAddr("w1");
        if (eth.holdings(eth.fundingId(l, alice)) > 0) withdrawAll(eth, l, ALICE_PK, w0);
        if (eth.holdings(eth.fundingId(l, bob)) > 0) withdrawAll(eth, l, BOB_PK, w1);
        return (w0.balance, w1.balance);
    }

    function testFuzz_ledger_payoutMatchesFundingRule(
        uint256 d0,
        uint256 d1,
        uint256 b0,
        uint256 b1,
        bool cooperative
    ) public {
        d0 = bound(d0, 0, MAX);
        d1 = bound(d1, 0, MAX);
        b0 = bound(b0, 0, MAX);
        b1 = bound(b1, 0, MAX);
        if (d0 > 0) depositEth(l, alice, d0);
        if (d1 > 0) depositEth(l, bob, d1);
        settle(b0, b1, cooperative);
        (uint256 p0, uint256 p1) = payOut();

        assertEq(p0 + p1, d0 + d1, "everything deposited is paid out");
        assertEq(address(eth).balance, 0, "nothing stays in the holder");
        if (d0 + d1 >= b0 + b1) {
            // The excess goes to whoever deposited more than its final balance (AssetHolder).
            uint256 excess = d0 + d1 - b0 - b1;
            uint256 share0 = d0 > b0 ? d0 - b0 : 0;
            assertEq(p0, b0 + (share0 < excess ? share0 : excess), "funded: balance 0 + share");
            assertGe(p0, b0, "funded: at least final balance 0");
            assertGe(p1, b1, "funded: at least final balance 1");
        } else {
            assertEq(p0, d0, "underfunded: own deposit 0");
            assertEq(p1, d1, "underfunded: own deposit 1");
            assertEq(address(eth).balance, 0);
        }
    }

    function testFuzz_ledger_depositsAfterSettlementAreWithdrawable(
        uint256 d0,
        uint256 b0,
        uint256 late
    ) public {
        d0 = bound(d0, 1, MAX);
        b0 = bound(b0, 0, d0);
        late = bound(late, 1, MAX);
        depositEth(l, alice, d0);
        settle(b0, d0 - b0, true);
        depositEth(l, bob, late);
        (uint256 p0, uint256 p1) = payOut();
        assertEq(p0, b0);
        assertEq(p1, d0 - b0 + late);
        assertEq(address(eth).balance, 0);
    }

    /// The seed's example with random amounts: X = Alice-Ingrid, Y = Ingrid-Bob, V = Alice-Bob
    /// opened with (va, vb) and paid to (fa, fb). Whatever the settlement path, Alice gets
    /// xa - va + fa, Bob yb - vb + fb and Ingrid exactly what she deposited.
    function testFuzz_virtual_everyPathPaysLatestBalances(
        uint256 xa,
        uint256 xi,
        uint256 yi,
        uint256 yb,
        uint256 va,
        uint256 vb,
        uint256 fa,
        uint8 path
    ) public {
        xa = bound(xa, 0, MAX);
        xi = bound(xi, 0, MAX);
        yi = bound(yi, 0, MAX);
        yb = bound(yb, 0, MAX);
        va = bound(va, 0, xa < yi ? xa : yi);
        vb = bound(vb, 0, xi < yb ? xi : yb);
        fa = bound(fa, 0, va + vb);
        V memory c = V(xa, xi, yi, yb, va, vb, fa, va + vb - fa);
        Setup memory s = setupVirtual(c);

        path = uint8(bound(path, 0, 4));
        if (path == 0) {
            // Cooperative close of both parents.
            adj.concludeFinal(
                signed(s.px, ethState(s.x, 2, c.xa - c.va + c.fa, c.xi - c.vb + c.fb, true))
            );
            adj.concludeFinal(
                signed(s.py, ethState(s.y, 2, c.yi - c.va + c.fa, c.yb - c.vb + c.fb, true))
            );
        } else {
            Channel.SignedState memory vOld = signed(s.pv, ethState(s.v, 0, c.va, c.vb, false));
            Channel.SignedState memory vNew = signed(s.pv, ethState(s.v, 1, c.fa, c.fb, false));
            if (path == 1) {
                adj.register(s.x1, subs1(vNew));
                adj.register(s.y1, subs1(vNew));
            } else if (path == 2) {
                // Bob registers Y with V's opening state; Alice refutes V directly.
                adj.register(s.y1, subs1(vOld));
                adj.refute(vNew, noSubs());
                adj.register(s.x1, subs1(vNew));
            } else if (path == 3) {
                // Alice registers X with V's opening state; the hub registers Y with the newer.
                adj.register(s.x1, subs1(vOld));
                adj.register(s.y1, subs1(vNew));
            } else {
                // The hub registers X's stale opening state; Alice refutes with X1.
                adj.register(signed(s.px, ethState(s.x, 0, c.xa, c.xi, false)), noSubs());
                adj.refute(s.x1, subs1(vNew));
                adj.register(s.y1, subs1(vNew));
            }
            vm.warp(block.timestamp + LEDGER_CD);
            adj.conclude(s.px, s.x1.state, subStates1(vNew.state));
            adj.conclude(s.py, s.y1.state, subStates1(vNew.state));
        }

        address wa = makeAddr("wa");
        address wi = makeAddr("wi");
        address wb = makeAddr("wb");
        drain(s.x, ALICE_PK, wa);
        drain(s.x, INGRID_PK, wi);
        drain(s.y, INGRID_PK, wi);
        drain(s.y, BOB_PK, wb);
        assertEq(wa.balance, c.xa - c.va + c.fa, "Alice");
        assertEq(wb.balance, c.yb - c.vb + c.fb, "Bob");
        assertEq(wi.balance, c.xi + c.yi, "Ingrid neutral");
        assertEq(address(eth).balance, 0, "exactly the deposits were paid out");
    }

    struct V {
        uint256 xa;
        uint256 xi;
        uint256 yi;
        uint256 yb;
        uint256 va;
        uint256 vb;
        uint256 fa;
        uint256 fb;
    }

    struct Setup {
        Channel.Params px;
        Channel.Params py;
        Channel.Params pv;
        bytes32 x;
        bytes32 y;
        bytes32 v;
        Channel.SignedState x1;
        Channel.SignedState y1;
    }

    function setupVirtual(V memory c) internal returns (Setup memory s) {
        s.px = ledgerParams(ALICE_PK, INGRID_PK, 11);
        s.py = ledgerParams(INGRID_PK, BOB_PK, 12);
        s.pv = virtualParams(ALICE_PK, BOB_PK, 13);
        s.x = cid(s.px);
        s.y = cid(s.py);
        s.v = cid(s.pv);
        if (c.xa > 0) depositEth(s.x, alice, c.xa);
        if (c.xi > 0) depositEth(s.x, ingrid, c.xi);
        if (c.yi > 0) depositEth(s.y, ingrid, c.yi);
        if (c.yb > 0) depositEth(s.y, bob, c.yb);
        uint256 total = c.va + c.vb;
        s.x1 = signed(
            s.px,
            mkState(
                s.x,
                1,
                ethOnly(),
                bal(c.xa - c.va, c.xi - c.vb),
                locks(lock1(s.v, total, 0, 1)),
                false
            )
        );
        s.y1 = signed(
            s.py,
            mkState(
                s.y,
                1,
                ethOnly(),
                bal(c.yi - c.va, c.yb - c.vb),
                locks(lock1(s.v, total, 0, 1)),
                false
            )
        );
    }

    function drain(bytes32 id, uint256 pk, address to) internal {
        if (eth.holdings(eth.fundingId(id, vm.addr(pk))) > 0) withdrawAll(eth, id, pk, to);
    }
}
