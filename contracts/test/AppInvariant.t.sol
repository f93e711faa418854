// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";

import {Channel} from "../src/Channel.sol";
import {Adjudicator} from "../src/Adjudicator.sol";
import {IAdjudicator} from "../src/IAdjudicator.sol";
import {EthAssetHolder} from "../src/EthAssetHolder.sol";
import {CoinFlip} from "../src/apps/CoinFlip.sol";
import {TicTacToe} from "../src/apps/TicTacToe.sol";

/// Drives random disputes of an app virtual channel V = Alice (0) - Bob (1), worth `TOTAL`,
/// locked with the same amount in X = Alice-Ingrid (index map [0, 1]: V's Alice -> Alice, V's
/// Bob -> Ingrid) and Y = Ingrid-Bob ([0, 1]: V's Alice -> Ingrid, V's Bob -> Bob). The handler
/// plays everyone, honest or not: Alice and Bob play V's game off chain (every state both
/// signed, kept in `history`) and may also both sign any state at all; any of them registers
/// X or Y with any state of that history, refutes V's record with one, force-executes moves
/// (valid ones generated from the game, and invalid ones: wrong signer, wrong actor, tampered
/// state), lets time pass and concludes X or Y. The ledger states are funded exactly, so the
/// holdings after a conclusion are the outcome.
contract AppHandler is CommonBase, StdCheats, StdUtils {
    uint256 internal constant ALICE_PK = 0xA11CE;
    uint256 internal constant INGRID_PK = 0x1A6E1D;
    uint256 internal constant BOB_PK = 0xB0B;
    uint256 internal constant EVE_PK = 0xE7E;

    uint64 public constant LEDGER_CD = 100;
    uint64 public constant VIRTUAL_CD = 50;
    uint256 public constant TOTAL = 10;
    /// What Alice and Bob put into V (Ingrid puts up the other side in each parent).
    uint256 internal constant STAKE_A = 6;
    uint256 internal constant STAKE_B = 4;
    /// Free balances of the registered ledger states: X = (XA, XI), Y = (YI, YB).
    uint256 public constant XA = 3;
    uint256 public constant XI = 1;
    uint256 public constant YI = 2;
    uint256 public constant YB = 5;

    uint8 internal constant COIN_FLIP = 0;
    uint8 internal constant TIC_TAC_TOE = 1;

    Adjudicator public immutable adj;
    EthAssetHolder public immutable eth;
    uint8 public immutable kind;

    /// X (index 0) and Y (index 1).
    Channel.Params[2] internal parents;
    bytes32[2] public parentIds;
    Channel.Params internal pv;
    bytes32 public v;
    /// V's record key (worth `TOTAL` ETH).
    bytes32 public vk;

    /// A state of V as the handler built it.
    struct Spec {
        uint64 version;
        uint256 a;
        uint256 b;
        bytes appData;
        bool isFinal;
    }

    /// The states of V that Alice and Bob both signed, in order (version i at index i).
    Spec[] internal history;
    /// Every state of V the handler built, by `hashState`.
    mapping(bytes32 => Spec) internal specOf;
    mapping(bytes32 => bool) internal known;
    /// The coin flip's secrets, by commitment.
    mapping(bytes32 => bytes32) internal saltOf;
    mapping(bytes32 => uint8) internal bitOf;

    bool[2] public registered;
    bool[2] public concluded;
    /// The hash of the V state each parent concluded with.
    bytes32[2] public concludedWith;
    /// When V's record was created (zero before).
    uint64 public createdAt;

    // Violations.
    bool public refusedCallChangedRecord;
    bool public invalidMoveAccepted;
    bool public validMoveRefused;
    bool public wrongAdvance;
    /// A registration or refute of V's record did not create, update or keep it as the spec
    /// says (refutable only in phase Dispute before the window, with a higher version).
    bool public recordMisjudged;
    bool public fixedRecordChanged;
    bool public finalReplaced;
    bool public registerRefused;
    bool public concludeRefused;
    /// A parent concluded before its own record or V's was fixed.
    bool public concludedEarly;

    // Coverage.
    uint256 public forcedMoves;
    uint256 public forcedFinals;
    uint256 public refusedMoves;
    uint256 public refutes;
    uint256 public bothConcluded;
    uint256 public concludedAfterForcedMoves;

    /// A dispute record with its force-execution fields.
    struct Rec {
        uint64 timeout;
        uint64 version;
        IAdjudicator.Phase phase;
        bytes32 stateHash;
        uint64 window;
        uint8 forcedMoves;
    }

    constructor(Adjudicator adj_, EthAssetHolder eth_, uint8 kind_, address app) {
        adj = adj_;
        eth = eth_;
        kind = kind_;
        address alice = vm.addr(ALICE_PK);
        address ingrid = vm.addr(INGRID_PK);
        address bob = vm.addr(BOB_PK);
        address[2][2] memory parts = [[alice, ingrid], [ingrid, bob]];
        for (uint256 c = 0; c < 2; ++c) {
            parents[c].challengeDuration = LEDGER_CD;
            parents[c].nonce = c + 1;
            parents[c].participants = parts[c];
            parents[c].ledger = true;
            parentIds[c] = Channel.id(parents[c]);
        }
        pv.challengeDuration = VIRTUAL_CD;
        pv.nonce = 3;
        pv.participants = [alice, bob];
        pv.isVirtual = true;
        pv.app = app;
        v = Channel.id(pv);
        address[] memory assets = new address[](1);
        assets[0] = address(eth_);
        uint256[] memory totals = new uint256[](1);
        totals[0] = TOTAL;
        vk = keccak256(abi.encode(v, assets, totals));

        // Exact funding: X = XA + XI + TOTAL, Y = YI + YB + TOTAL.
        fund(0, alice, XA + STAKE_A);
        fund(0, ingrid, XI + STAKE_B);
        fund(1, ingrid, YI + STAKE_A);
        fund(1, bob, YB + STAKE_B);

        // V's opening state, both signed.
        bytes memory data;
        if (kind_ == COIN_FLIP) {
            data = abi.encode(CoinFlip.Data(0, 0, 0, 0, 0));
        } else {
            uint8[9] memory board;
            data = abi.encode(TicTacToe.Data(board, stakes()));
        }
        remember(Spec(0, STAKE_A, STAKE_B, data, false));
        history.push(Spec(0, STAKE_A, STAKE_B, data, false));
    }

    function fund(uint256 c, address who, uint256 amount) internal {
        vm.deal(address(this), amount);
        eth.deposit{value: amount}(parentIds[c], who, amount);
    }

    function stakes() internal pure returns (uint256[2][] memory s) {
        s = new uint256[2][](1);
        s[0] = [STAKE_A, STAKE_B];
    }

    // ------------------------------------------------------------ states

    function build(Spec memory s) public view returns (Channel.State memory st) {
        st.channelId = v;
        st.version = s.version;
        st.outcome.assets = new address[](1);
        st.outcome.assets[0] = address(eth);
        st.outcome.balances = new uint256[2][](1);
        st.outcome.balances[0] = [s.a, s.b];
        st.appData = s.appData;
        st.isFinal = s.isFinal;
    }

    function remember(Spec memory s) internal returns (bytes32 h) {
        h = adj.hashState(build(s));
        specOf[h] = s;
        known[h] = true;
    }

    /// Parent `c`'s registered state: X = (XA, XI) + lock, Y = (YI, YB) + lock.
    function parentState(uint256 c) internal view returns (Channel.State memory st) {
        st.channelId = parentIds[c];
        st.version = 1;
        st.outcome.assets = new address[](1);
        st.outcome.assets[0] = address(eth);
        st.outcome.balances = new uint256[2][](1);
        st.outcome.balances[0] = c == 0 ? [XA, XI] : [YI, YB];
        st.outcome.locked = new Channel.SubAlloc[](1);
        st.outcome.locked[0].id = v;
        st.outcome.locked[0].balances = new uint256[](1);
        st.outcome.locked[0].balances[0] = TOTAL;
        st.outcome.locked[0].indexMap = [uint16(0), uint16(1)];
    }

    function sig(uint256 pk, Channel.State memory st) internal view returns (bytes memory) {
        (uint8 v_, bytes32 r, bytes32 s) = vm.sign(pk, adj.hashState(st));
        return abi.encodePacked(r, s, v_);
    }

    function signedBoth(Channel.Params memory p, Channel.State memory st, uint256[2] memory pks)
        internal
        view
        returns (Channel.SignedState memory ss)
    {
        ss.params = p;
        ss.state = st;
        ss.sigs = [sig(pks[0], st), sig(pks[1], st)];
    }

    function signedV(Spec memory s) internal view returns (Channel.SignedState memory) {
        return signedBoth(pv, build(s), [ALICE_PK, BOB_PK]);
    }

    function historyAt(uint256 i) internal view returns (Spec memory) {
        return history[_bound(i, 0, history.length - 1)];
    }

    // ------------------------------------------------------------ the games' moves

    /// A valid move from `f` generated from `seed`: the next state and its mover; `ok` is
    /// false when the game admits none (it is over, or the commitment's secret is unknown).
    function nextMove(Spec memory f, uint256 seed)
        internal
        returns (Spec memory t, uint256 actor, bool ok)
    {
        if (f.isFinal) return (t, 0, false);
        t.version = f.version + 1;
        if (kind == COIN_FLIP) return nextCoinFlip(f, t, seed);
        return nextTicTacToe(f, t, seed);
    }

    function potTo(Spec memory f, Spec memory t, uint256 p) internal pure {
        uint256 total = f.a + f.b;
        (t.a, t.b) = p == 0 ? (total, uint256(0)) : (uint256(0), total);
    }

    function nextCoinFlip(Spec memory f, Spec memory t, uint256 seed)
        internal
        returns (Spec memory, uint256, bool)
    {
        CoinFlip.Data memory d = abi.decode(f.appData, (CoinFlip.Data));
        if (d.stage == 0) {
            bytes32 salt = keccak256(abi.encode(seed));
            uint8 bit = uint8(seed & 1);
            bytes32 c = keccak256(abi.encode(salt, bit));
            saltOf[c] = salt;
            bitOf[c] = bit;
            t.appData = abi.encode(CoinFlip.Data(1, c, 0, 0, 0));
            potTo(f, t, 0);
            return (t, 0, true);
        }
        if (d.stage == 1) {
            uint8 g = uint8((seed >> 1) & 1);
            t.appData = abi.encode(CoinFlip.Data(2, d.commitment, g, 0, 0));
            potTo(f, t, 1);
            return (t, 1, true);
        }
        if (d.stage == 2 && saltOf[d.commitment] != 0) {
            uint8 bit = bitOf[d.commitment];
            t.appData =
                abi.encode(CoinFlip.Data(3, d.commitment, d.guess, saltOf[d.commitment], bit));
            t.isFinal = true;
            potTo(f, t, bit == d.guess ? 1 : 0);
            return (t, 0, true);
        }
        return (t, 0, false);
    }

    function nextTicTacToe(Spec memory f, Spec memory t, uint256 seed)
        internal
        pure
        returns (Spec memory, uint256, bool)
    {
        TicTacToe.Data memory d = abi.decode(f.appData, (TicTacToe.Data));
        uint8[9] memory b = d.board;
        if (winner(b) != 0) return (t, 0, false);
        uint256 ones;
        uint256 twos;
        uint256 empty;
        for (uint256 i = 0; i < 9; ++i) {
            if (b[i] == 1) ++ones;
            else if (b[i] == 2) ++twos;
            else ++empty;
        }
        if (empty == 0) return (t, 0, false);
        uint256 actor = ones == twos ? 0 : 1;
        uint256 pick = seed % empty;
        for (uint256 i = 0; i < 9; ++i) {
            if (b[i] != 0) continue;
            if (pick == 0) {
                b[i] = uint8(actor + 1);
                break;
            }
            --pick;
        }
        t.appData = abi.encode(TicTacToe.Data(b, d.stakes));
        if (winner(b) != 0) {
            t.isFinal = true;
            potTo(f, t, actor);
        } else if (empty == 1) {
            t.isFinal = true;
            (t.a, t.b) = (d.stakes[0][0], d.stakes[0][1]);
        } else {
            potTo(f, t, actor);
        }
        return (t, actor, true);
    }

    function winner(uint8[9] memory b) internal pure returns (uint8) {
        uint8[24] memory lines =
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 3, 6, 1, 4, 7, 2, 5, 8, 0, 4, 8, 2, 4, 6];
        for (uint256 l = 0; l < 24; l += 3) {
            uint8 m = b[lines[l]];
            if (m != 0 && m == b[lines[l + 1]] && m == b[lines[l + 2]]) return m;
        }
        return 0;
    }

    // ------------------------------------------------------------ records

    function rec() public view returns (Rec memory r) {
        (r.timeout, r.version, r.phase, r.stateHash) = adj.disputes(vk);
        (r.window, r.forcedMoves) = adj.forceExecution(vk);
    }

    function same(Rec memory a, Rec memory b) internal pure returns (bool) {
        return a.timeout == b.timeout && a.version == b.version && a.phase == b.phase
            && a.stateHash == b.stateHash && a.window == b.window && a.forcedMoves == b.forcedMoves;
    }

    /// Around every action: a record that was fixed (its timeout passed, which a final state
    /// makes at once) must not change.
    modifier watched() {
        Rec memory before = rec();
        bool wasFixed = before.phase != IAdjudicator.Phase.None && block.timestamp >= before.timeout;
        bool wasFinal = known[before.stateHash] && specOf[before.stateHash].isFinal;
        _;
        Rec memory after_ = rec();
        if (wasFixed && !same(before, after_)) fixedRecordChanged = true;
        if (wasFinal && after_.stateHash != before.stateHash) finalReplaced = true;
    }

    // ------------------------------------------------------------ actions

    /// Alice and Bob play the next move of the game off chain, both signing it.
    function playOffChain(uint256 seed) external watched {
        Spec memory last = history[history.length - 1];
        (Spec memory t,, bool ok) = nextMove(last, seed);
        if (!ok) return;
        remember(t);
        history.push(t);
    }

    /// Alice and Bob, colluding, both sign any split of V at the next version, final or not.
    function signAnything(uint256 a, bool isFinal) external watched {
        Spec memory last = history[history.length - 1];
        if (last.version == type(uint64).max) return;
        Spec memory t = Spec(last.version + 1, _bound(a, 0, TOTAL), 0, last.appData, isFinal);
        t.b = TOTAL - t.a;
        remember(t);
        history.push(t);
    }

    /// Registers X (`c` even) or Y with V's state `history[i]` (the other parent if that one
    /// is registered already).
    function registerParent(uint256 c, uint256 i) external watched {
        c = registered[c % 2] ? 1 - c % 2 : c % 2;
        if (registered[c]) return;
        Rec memory before = rec();
        Spec memory sv = historyAt(i);
        Channel.SignedState[] memory subs = new Channel.SignedState[](1);
        subs[0] = signedV(sv);
        uint256[2] memory pks = c == 0 ? [ALICE_PK, INGRID_PK] : [INGRID_PK, BOB_PK];
        try adj.register(signedBoth(parents[c], parentState(c), pks), subs) {
            registered[c] = true;
            if (before.phase == IAdjudicator.Phase.None) {
                createdAt = uint64(block.timestamp);
                // A new app record: refutable for a challenge duration, then the window.
                Rec memory want = Rec(
                    uint64(block.timestamp + (sv.isFinal ? 0 : 2 * uint256(VIRTUAL_CD))),
                    sv.version,
                    IAdjudicator.Phase.Dispute,
                    adj.hashState(build(sv)),
                    sv.isFinal ? 0 : VIRTUAL_CD,
                    0
                );
                if (!same(rec(), want)) recordMisjudged = true;
            } else {
                // The shared record is updated exactly when `refute` would accept the state.
                bool accept = refutable(before, sv);
                checkRefuted(before, sv, accept, accept);
            }
        } catch {
            registerRefused = true;
        }
    }

    /// Whether `refute` must accept `sv` on record `r`: in phase Dispute, before the window,
    /// with a higher version.
    function refutable(Rec memory r, Spec memory sv) internal view returns (bool) {
        return r.phase == IAdjudicator.Phase.Dispute && block.timestamp + r.window < r.timeout
            && sv.version > r.version;
    }

    /// After `sv` was offered to record `before` (by `refute` or a parent's `register`): the
    /// record holds `sv` if `accepted` (fixed now if final, the timeout and window kept
    /// otherwise), and is unchanged if not.
    function checkRefuted(Rec memory before, Spec memory sv, bool accepted, bool succeeded)
        internal
    {
        Rec memory want = before;
        if (accepted) {
            want.version = sv.version;
            want.stateHash = adj.hashState(build(sv));
            if (sv.isFinal) {
                want.timeout = uint64(block.timestamp);
                want.window = 0;
            }
        }
        if (!same(rec(), want) || accepted != succeeded) recordMisjudged = true;
    }

    /// Refutes V's record with `history[i]` (refused unless it is refutable and newer).
    function refuteV(uint256 i) external watched {
        Rec memory before = rec();
        Spec memory sv = historyAt(i);
        bool accept = refutable(before, sv);
        try adj.refute(signedV(sv), new Channel.SignedState[](0)) {
            ++refutes;
            checkRefuted(before, sv, accept, true);
        } catch {
            if (!same(before, rec())) refusedCallChangedRecord = true;
            checkRefuted(before, sv, accept, false);
        }
    }

    /// Force-executes a move from V's registered state: a valid one (`mode` 0-4), one signed
    /// by the wrong key (5), one claimed by the wrong participant (6) or a tampered one (7).
    function progress(uint256 seed, uint256 mode) external watched {
        Rec memory before = rec();
        Spec memory f = known[before.stateHash] ? specOf[before.stateHash] : history[0];
        (Spec memory t, uint256 actor, bool ok) = nextMove(f, seed);
        if (!ok) {
            // No valid move: try a state at the next version anyway, which must be refused.
            t = Spec(f.version + 1, f.b, f.a, f.appData, f.isFinal);
            actor = seed % 2;
        }
        mode = mode % 8;
        uint256 pk = actor == 0 ? ALICE_PK : BOB_PK;
        bool mustFail = !ok || mode >= 5;
        if (mode == 5) {
            pk = seed % 3 == 0 ? EVE_PK : (actor == 0 ? BOB_PK : ALICE_PK);
        } else if (mode == 6) {
            actor = 1 - actor;
            pk = actor == 0 ? ALICE_PK : BOB_PK;
        } else if (mode == 7) {
            tamper(t, seed);
        }
        remember(t);
        Channel.State memory from = build(f);
        Channel.State memory to = build(t);
        bytes memory s = sig(pk, to);
        bool progressable = isProgressable(before);
        try adj.progress(pv, from, to, actor, s) {
            if (mustFail || !progressable) invalidMoveAccepted = true;
            checkAdvance(before, to);
        } catch {
            ++refusedMoves;
            if (!same(before, rec())) refusedCallChangedRecord = true;
            if (!mustFail && progressable) validMoveRefused = true;
        }
    }

    /// Makes a valid move invalid: the other finality, the pot to the other participant, a
    /// version skipped, or a coin more or less.
    function tamper(Spec memory t, uint256 seed) internal pure {
        uint256 how = (seed >> 8) % 4;
        if (how == 0) {
            t.isFinal = !t.isFinal;
        } else if (how == 1 && t.a != t.b) {
            (t.a, t.b) = (t.b, t.a);
        } else if (how == 2) {
            t.version += 1;
        } else {
            t.a += 1;
        }
    }

    /// Whether the record accepts a valid move now (phase, time, cap, state not final).
    function isProgressable(Rec memory r) internal view returns (bool) {
        if (!known[r.stateHash] || specOf[r.stateHash].isFinal) return false;
        if (r.forcedMoves >= 16 || block.timestamp >= r.timeout) return false;
        if (r.phase == IAdjudicator.Phase.ForceExec) return true;
        return r.phase == IAdjudicator.Phase.Dispute && block.timestamp + r.window >= r.timeout;
    }

    /// After a forced move: the record holds `to` in phase ForceExec, one more forced move,
    /// no window, fixed now if `to` is final and after V's challenge duration otherwise.
    function checkAdvance(Rec memory before, Channel.State memory to) internal {
        ++forcedMoves;
        if (to.isFinal) ++forcedFinals;
        Rec memory r = rec();
        uint256 timeout = block.timestamp + (to.isFinal ? 0 : VIRTUAL_CD);
        if (
            r.stateHash != adj.hashState(to) || r.version != to.version
                || r.phase != IAdjudicator.Phase.ForceExec || r.window != 0
                || r.forcedMoves != before.forcedMoves + 1 || r.timeout != timeout
        ) wrongAdvance = true;
    }

    /// Lets time pass, by a random amount or to a random point of interest of V's record:
    /// within its window or its answer period, its last second, its timeout.
    function warp(uint256 dt) external watched {
        Rec memory r = rec();
        uint256 how = dt % 5;
        dt >>= 3;
        uint256 to = block.timestamp;
        if (r.phase == IAdjudicator.Phase.None || how == 0) {
            to += _bound(dt, 0, 2 * uint256(LEDGER_CD));
        } else if (how == 1) {
            to += _bound(dt, 0, 10);
        } else if (how == 2) {
            // Somewhere in the period where a move is possible (if it is still ahead).
            uint256 start = r.timeout - (r.window != 0 ? r.window : VIRTUAL_CD);
            if (to < start) to = start + _bound(dt, 0, VIRTUAL_CD - 1);
        } else if (how == 3) {
            if (to + 1 < r.timeout) to = r.timeout - 1;
        } else if (to < r.timeout) {
            to = r.timeout;
        }
        vm.warp(to);
    }

    /// Concludes X (`c` even) or Y (the other parent if that one concluded already) with V's
    /// registered state. Must succeed once the parent's and V's records are fixed.
    function concludeParent(uint256 c) external watched {
        c = concluded[c % 2] ? 1 - c % 2 : c % 2;
        if (concluded[c]) return;
        Rec memory r = rec();
        Channel.State[] memory subs = new Channel.State[](1);
        subs[0] = build(specOf[r.stateHash]);
        (uint64 parentTimeout,,,) = adj.disputes(parentIds[c]);
        bool due = registered[c] && block.timestamp >= parentTimeout && block.timestamp >= r.timeout
            && known[r.stateHash];
        try adj.conclude(parents[c], parentState(c), subs) {
            if (!due) concludedEarly = true;
            concluded[c] = true;
            concludedWith[c] = r.stateHash;
            if (concluded[0] && concluded[1]) {
                ++bothConcluded;
                if (r.forcedMoves > 0) ++concludedAfterForcedMoves;
            }
        } catch {
            if (due) concludeRefused = true;
        }
    }

    // ------------------------------------------------------------ reading

    function ingridHolds() external view returns (uint256) {
        address ingrid = vm.addr(INGRID_PK);
        return eth.holdings(eth.fundingId(parentIds[0], ingrid))
            + eth.holdings(eth.fundingId(parentIds[1], ingrid));
    }

    /// V's state that both parents concluded with.
    function concludedSpec() external view returns (uint256 a, uint256 b) {
        Spec memory s = specOf[concludedWith[0]];
        return (s.a, s.b);
    }

    function historyLength() external view returns (uint256) {
        return history.length;
    }
}

/// Hub neutrality with apps: whatever Alice and Bob do with V (play, stall, cheat, collude),
/// Ingrid's outcome over X and Y is her free balances plus V's total.
abstract contract AppInvariantBase is Test {
    Adjudicator internal adj;
    EthAssetHolder internal eth;
    AppHandler internal handler;

    function appKind() internal virtual returns (uint8 kind, address app);

    function setUp() public {
        vm.warp(1_700_000_000);
        adj = new Adjudicator();
        eth = new EthAssetHolder(address(adj));
        (uint8 kind, address app) = appKind();
        handler = new AppHandler(adj, eth, kind, app);
        bytes4[] memory selectors = new bytes4[](7);
        selectors[0] = AppHandler.playOffChain.selector;
        selectors[1] = AppHandler.signAnything.selector;
        selectors[2] = AppHandler.registerParent.selector;
        selectors[3] = AppHandler.refuteV.selector;
        selectors[4] = AppHandler.progress.selector;
        selectors[5] = AppHandler.warp.selector;
        selectors[6] = AppHandler.concludeParent.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    /// Once X and Y both concluded, they did so with the same state of V, and Ingrid holds
    /// her free balances in X and Y plus V's total, whatever V's distribution; each parent
    /// holds exactly its deposits.
    function invariant_hubNeutral() public view {
        if (!(handler.concluded(0) && handler.concluded(1))) return;
        assertEq(handler.concludedWith(0), handler.concludedWith(1), "same state of V");
        assertEq(
            handler.ingridHolds(),
            handler.XI() + handler.YI() + handler.TOTAL(),
            "Ingrid's total over X and Y"
        );
        (uint256 a, uint256 b) = handler.concludedSpec();
        assertEq(a + b, handler.TOTAL());
        address alice = vm.addr(0xA11CE);
        address bob = vm.addr(0xB0B);
        assertEq(eth.holdings(eth.fundingId(handler.parentIds(0), alice)), handler.XA() + a);
        assertEq(eth.holdings(eth.fundingId(handler.parentIds(1), bob)), handler.YB() + b);
    }

    /// V's record is fixed at most (2 + 16) challenge durations after its creation, with at
    /// most 16 forced moves; once fixed (a final state fixes it at once) it never changes.
    function invariant_recordFixedInTime() public view {
        AppHandler.Rec memory r = handler.rec();
        if (r.phase != IAdjudicator.Phase.None) {
            assertGt(handler.createdAt(), 0);
            assertLe(
                r.timeout,
                uint256(handler.createdAt()) + (2 + 16) * uint256(handler.VIRTUAL_CD()),
                "fixed in time"
            );
            assertLe(r.forcedMoves, 16);
        }
        assertFalse(handler.fixedRecordChanged(), "a fixed record changed");
        assertFalse(handler.finalReplaced(), "a final state was replaced");
    }

    /// Every refused call left the record as it was; every invalid move was refused and
    /// every valid one accepted when due; forced moves, registrations and refutes wrote what
    /// the spec says; registering and concluding (when due) never failed, and a parent
    /// concluded only once its record and V's were fixed.
    function invariant_movesJudgedRight() public view {
        assertFalse(handler.refusedCallChangedRecord(), "a refused call changed the record");
        assertFalse(handler.invalidMoveAccepted(), "an invalid move was accepted");
        assertFalse(handler.validMoveRefused(), "a valid move was refused");
        assertFalse(handler.wrongAdvance(), "a forced move wrote the wrong record");
        assertFalse(handler.recordMisjudged(), "a register or refute misjudged V's record");
        assertFalse(handler.registerRefused(), "a registration was refused");
        assertFalse(handler.concludeRefused(), "a due conclusion was refused");
        assertFalse(handler.concludedEarly(), "a parent concluded before V was fixed");
    }

    function afterInvariant() public {
        emit log_named_uint("off-chain states", handler.historyLength());
        emit log_named_uint("forced moves", handler.forcedMoves());
        emit log_named_uint("forced final states", handler.forcedFinals());
        emit log_named_uint("refused moves", handler.refusedMoves());
        emit log_named_uint("refutes", handler.refutes());
        emit log_named_uint("both parents concluded", handler.bothConcluded());
        emit log_named_uint("... after forced moves", handler.concludedAfterForcedMoves());
    }
}

contract AppInvariantCoinFlipTest is AppInvariantBase {
    function appKind() internal override returns (uint8, address) {
        return (0, address(new CoinFlip()));
    }
}

contract AppInvariantTicTacToeTest is AppInvariantBase {
    function appKind() internal override returns (uint8, address) {
        return (1, address(new TicTacToe()));
    }
}
