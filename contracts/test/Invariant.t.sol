// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";

import {Channel} from "../src/Channel.sol";
import {Adjudicator} from "../src/Adjudicator.sol";
import {IAdjudicator} from "../src/IAdjudicator.sol";
import {IAssetHolder} from "../src/IAssetHolder.sol";
import {AssetHolder} from "../src/AssetHolder.sol";
import {EthAssetHolder} from "../src/EthAssetHolder.sol";

/// Drives random sequences of deposit / depositStandby / register / refute (ledger and
/// virtual) / conclude / concludeFinal / withdraw / time jumps over three ledger channels that
/// all lock the same virtual channel V: X = Alice-Ingrid, Y = Ingrid-Bob, and Z = Alice-Bob (a
/// ledger channel the two ends of V control, so they can register any state of V they both
/// sign). Every state is signed by its participants: the handler plays all parties, honest or
/// not.
contract Handler is CommonBase, StdCheats, StdUtils {
    uint256 internal constant ALICE_PK = 0xA11CE;
    uint256 internal constant INGRID_PK = 0x1A6E1D;
    uint256 internal constant BOB_PK = 0xB0B;
    uint256 internal constant MAX = 1e24;

    Adjudicator public immutable adj;
    EthAssetHolder public immutable eth;

    Channel.Params[3] internal ledgers;
    bytes32[3] public ids;
    Channel.Params internal pv;
    bytes32 public v;

    /// The state of a ledger channel (or of V, with `hasLock` false) as the handler built it.
    struct Spec {
        uint64 version;
        uint256 b0;
        uint256 b1;
        bool hasLock;
        uint256 lockAmount;
        bool isFinal;
    }

    mapping(uint256 => Spec) internal registeredSpec; // ledger index => its registered state
    mapping(bytes32 => Spec) internal vSpecByHash; // hashState of a V state => its spec

    // Ghost accounting per ledger channel (`deposited` counts standby deposits too).
    uint256[3] public deposited;
    uint256[3] public withdrawn;
    mapping(uint256 => mapping(uint256 => uint256)) public depositedBy; // channel => p => amount
    bool public exactPayoutViolated;
    /// A standby deposit into a settled channel was accepted, or one into an unsettled channel
    /// refused.
    bool public standbyGateViolated;
    uint256 public standbyCount;
    /// Conclusions whose outcome was covered only with standbys drawn.
    uint256 public standbyDraws;
    uint256 public concludedCount;
    uint256 public withdrawCount;
    uint256 public lockedConclusions;
    /// A registered parent could not conclude because V's record had another total.
    bool public lockSumBlocked;
    /// `hashState` of every final state the handler built (ledger channels and V).
    mapping(bytes32 => bool) internal isFinalHash;
    /// A record holding a final state was replaced by another state.
    bool public finalReplaced;
    bytes32[6] internal finalsBefore;
    IAssetHolder.Withdrawal internal lastAuth;
    bytes internal lastSig;
    /// A used withdrawal authorisation paid out a second time.
    bool public replayed;

    constructor(Adjudicator adj_, EthAssetHolder eth_) {
        adj = adj_;
        eth = eth_;
        address alice = vm.addr(ALICE_PK);
        address ingrid = vm.addr(INGRID_PK);
        address bob = vm.addr(BOB_PK);
        address[2][3] memory parts = [[alice, ingrid], [ingrid, bob], [alice, bob]];
        for (uint256 c = 0; c < 3; ++c) {
            ledgers[c].challengeDuration = 100;
            ledgers[c].nonce = c;
            ledgers[c].participants = parts[c];
            ledgers[c].ledger = true;
            ids[c] = Channel.id(ledgers[c]);
        }
        pv.challengeDuration = 50;
        pv.nonce = 99;
        pv.participants = [alice, bob];
        pv.isVirtual = true;
        v = Channel.id(pv);
    }

    /// Participant `p` of ledger channel `c`.
    function participant(uint256 c, uint256 p) external view returns (address) {
        return ledgers[c].participants[p];
    }

    /// The record key of V worth `total` ETH (`Adjudicator.subChannelKey`).
    function vKey(uint256 total) public view returns (bytes32) {
        address[] memory assets = new address[](1);
        assets[0] = address(eth);
        uint256[] memory totals = new uint256[](1);
        totals[0] = total;
        return keccak256(abi.encode(v, assets, totals));
    }

    // ------------------------------------------------------------ building and signing

    function keyOf(address who) internal pure returns (uint256) {
        if (who == vm.addr(ALICE_PK)) return ALICE_PK;
        if (who == vm.addr(INGRID_PK)) return INGRID_PK;
        return BOB_PK;
    }

    function build(bytes32 id, Spec memory s) internal view returns (Channel.State memory st) {
        st.channelId = id;
        st.version = s.version;
        st.outcome.assets = new address[](1);
        st.outcome.assets[0] = address(eth);
        st.outcome.balances = new uint256[2][](1);
        st.outcome.balances[0] = [s.b0, s.b1];
        if (s.hasLock) {
            st.outcome.locked = new Channel.SubAlloc[](1);
            st.outcome.locked[0].id = v;
            st.outcome.locked[0].balances = new uint256[](1);
            st.outcome.locked[0].balances[0] = s.lockAmount;
            st.outcome.locked[0].indexMap = [uint16(0), uint16(1)];
        }
        st.isFinal = s.isFinal;
    }

    function sign(Channel.Params memory p, Channel.State memory st)
        internal
        returns (Channel.SignedState memory ss)
    {
        if (st.isFinal) isFinalHash[adj.hashState(st)] = true;
        ss.params = p;
        ss.state = st;
        bytes32 digest = adj.hashState(st);
        for (uint256 i = 0; i < 2; ++i) {
            (uint8 v_, bytes32 r, bytes32 s) = vm.sign(keyOf(p.participants[i]), digest);
            ss.sigs[i] = abi.encodePacked(r, s, v_);
        }
    }

    /// A V state whose total is `total`; remembered by hash for later conclusions.
    function vState(uint64 version, uint256 a, uint256 total, bool isFinal)
        internal
        returns (Channel.SignedState memory)
    {
        Spec memory s = Spec(version, a, total - a, false, 0, isFinal);
        Channel.State memory st = build(v, s);
        vSpecByHash[adj.hashState(st)] = s;
        return sign(pv, st);
    }

    /// Every record the handler can write to: the three ledger channels and V worth 1, 2 or 3
    /// ether.
    function recordKeys() internal view returns (bytes32[6] memory keys) {
        for (uint256 c = 0; c < 3; ++c) {
            keys[c] = ids[c];
            keys[3 + c] = vKey((c + 1) * 1e18);
        }
    }

    /// Remembers the state hashes of the records that hold a final state in phase `Dispute`.
    function snapshotFinals() internal {
        bytes32[6] memory keys = recordKeys();
        for (uint256 k = 0; k < 6; ++k) {
            (,, IAdjudicator.Phase phase, bytes32 h) = adj.disputes(keys[k]);
            finalsBefore[k] = phase == IAdjudicator.Phase.Dispute && isFinalHash[h] ? h : bytes32(0);
        }
    }

    /// Flags any record that held a final state at the snapshot and holds another state now.
    function checkFinalsKept() internal {
        bytes32[6] memory keys = recordKeys();
        for (uint256 k = 0; k < 6; ++k) {
            if (finalsBefore[k] == bytes32(0)) continue;
            (,,, bytes32 h) = adj.disputes(keys[k]);
            if (h != finalsBefore[k]) finalReplaced = true;
        }
    }

    // ------------------------------------------------------------ actions

    function deposit(uint256 c, uint256 p, uint256 amount) external {
        c = bound(c, 0, 2);
        p = bound(p, 0, 1);
        amount = bound(amount, 1, MAX);
        vm.deal(address(this), amount);
        eth.deposit{value: amount}(ids[c], ledgers[c].participants[p], amount);
        deposited[c] += amount;
        depositedBy[c][p] += amount;
    }

    /// Puts coins on standby; refused (`AlreadySettled`) once the channel is settled.
    function depositStandby(uint256 c, uint256 p, uint256 amount) external {
        c = bound(c, 0, 2);
        p = bound(p, 0, 1);
        amount = bound(amount, 1, MAX);
        vm.deal(address(this), amount);
        bool settled = eth.settled(ids[c]);
        try eth.depositStandby{value: amount}(ids[c], ledgers[c].participants[p], amount) {
            if (settled) standbyGateViolated = true;
            deposited[c] += amount;
            ++standbyCount;
        } catch (bytes memory err) {
            if (!settled || bytes4(err) != AssetHolder.AlreadySettled.selector) {
                standbyGateViolated = true;
            }
        }
    }

    function registerOrRefute(
        uint256 c,
        uint64 version,
        uint256 b0,
        uint256 b1,
        bool withLock,
        uint256 lockAmount,
        uint64 vVersion,
        uint256 va,
        bool isFinal
    ) external {
        c = bound(c, 0, 2);
        Spec memory s = Spec(
            uint64(bound(version, 0, 30)),
            bound(b0, 0, MAX),
            bound(b1, 0, MAX),
            withLock,
            (bound(lockAmount, 0, 2) + 1) * 1e18, // few amounts, so records and locks match
            isFinal
        );
        Channel.SignedState memory ss = sign(ledgers[c], build(ids[c], s));
        Channel.SignedState[] memory subs = new Channel.SignedState[](withLock ? 1 : 0);
        if (withLock) {
            subs[0] = vState(
                uint64(bound(vVersion, 0, 30)), bound(va, 0, s.lockAmount), s.lockAmount, false
            );
        }
        snapshotFinals();
        (,, IAdjudicator.Phase phase,) = adj.disputes(ids[c]);
        if (phase == IAdjudicator.Phase.None) {
            try adj.register(ss, subs) {
                registeredSpec[c] = s;
            } catch {}
        } else {
            try adj.refute(ss, subs) {
                registeredSpec[c] = s;
            } catch {}
        }
        checkFinalsKept();
    }

    function refuteVirtual(uint64 version, uint256 a, uint256 total, bool isFinal) external {
        total = (bound(total, 0, 2) + 1) * 1e18;
        Channel.SignedState memory sv =
            vState(uint64(bound(version, 0, 30)), bound(a, 0, total), total, isFinal);
        snapshotFinals();
        try adj.refute(sv, new Channel.SignedState[](0)) {} catch {}
        checkFinalsKept();
    }

    function warp(uint256 dt) external {
        vm.warp(block.timestamp + bound(dt, 0, 120));
    }

    function conclude(uint256 c) external {
        c = bound(c, 0, 2);
        Spec memory s = registeredSpec[c];
        Channel.State memory st = build(ids[c], s);
        Channel.State[] memory subs = new Channel.State[](s.hasLock ? 1 : 0);
        uint256[2] memory expected = [s.b0, s.b1];
        if (s.hasLock) {
            (,,, bytes32 vHash) = adj.disputes(vKey(s.lockAmount));
            Spec memory sv = vSpecByHash[vHash];
            subs[0] = build(v, sv);
            expected[0] += sv.b0;
            expected[1] += sv.b1;
        }
        uint256[4] memory before = fundsOf(c);
        try adj.conclude(ledgers[c], st, subs) {
            if (s.hasLock) ++lockedConclusions;
            checkOutcome(c, expected, before);
        } catch (bytes memory err) {
            if (bytes4(err) == Adjudicator.LockSumMismatch.selector) lockSumBlocked = true;
        }
    }

    function concludeFinal(uint256 c, uint64 version, uint256 b0, uint256 b1) external {
        c = bound(c, 0, 2);
        Spec memory s = Spec(
            uint64(bound(version, 0, 30)), bound(b0, 0, MAX), bound(b1, 0, MAX), false, 0, true
        );
        uint256[4] memory before = fundsOf(c);
        try adj.concludeFinal(sign(ledgers[c], build(ids[c], s))) {
            checkOutcome(c, [s.b0, s.b1], before);
        } catch {}
    }

    /// Withdraws part or all of a holding (`amount` bounded to at most the holding) with the
    /// funding id's next nonce; remembers the authorisation for `replay`.
    function withdraw(uint256 c, uint256 p, uint256 amount) external {
        c = bound(c, 0, 2);
        p = bound(p, 0, 1);
        address participant = ledgers[c].participants[p];
        bytes32 f = eth.fundingId(ids[c], participant);
        uint256 holding = eth.holdings(f);
        if (!eth.settled(ids[c]) || holding == 0) return;
        amount = bound(amount, 1, holding);
        address receiver = makeAddr("receiver");
        uint256 balanceBefore = receiver.balance;
        IAssetHolder.Withdrawal memory w =
            IAssetHolder.Withdrawal(ids[c], participant, receiver, amount, eth.nonces(f));
        (uint8 v_, bytes32 r, bytes32 s) = vm.sign(keyOf(participant), eth.withdrawalDigest(w));
        eth.withdraw(w, abi.encodePacked(r, s, v_));
        if (receiver.balance - balanceBefore != amount) exactPayoutViolated = true;
        withdrawn[c] += amount;
        ++withdrawCount;
        lastAuth = w;
        lastSig = abi.encodePacked(r, s, v_);
    }

    /// Submits the last used authorisation again: it must always be refused.
    function replay() external {
        if (lastSig.length == 0) return;
        try eth.withdraw(lastAuth, lastSig) {
            replayed = true;
        } catch {}
    }

    // ------------------------------------------------------------ checks

    function holdingsOf(uint256 c) internal view returns (uint256[2] memory h) {
        h[0] = eth.holdings(eth.fundingId(ids[c], ledgers[c].participants[0]));
        h[1] = eth.holdings(eth.fundingId(ids[c], ledgers[c].participants[1]));
    }

    function standbysOf(uint256 c) internal view returns (uint256[2] memory s) {
        s[0] = eth.standby(eth.fundingId(ids[c], ledgers[c].participants[0]));
        s[1] = eth.standby(eth.fundingId(ids[c], ledgers[c].participants[1]));
    }

    /// The two holdings and the two standbys of channel `c`.
    function fundsOf(uint256 c) internal view returns (uint256[4] memory f) {
        uint256[2] memory h = holdingsOf(c);
        uint256[2] memory s = standbysOf(c);
        f = [h[0], h[1], s[0], s[1]];
    }

    /// After a successful conclusion, from the holdings and standbys before it (`before` =
    /// [d0, d1, s0, s1], H = d0 + d1, B the outcome's total): funded (B <= H) -> the outcome plus each one's share of the excess (what
    /// it deposited above its balance, capped at the excess) plus its standby; covered with
    /// standbys (B <= H + s0 + s1) -> the outcome plus what is left of each standby after the
    /// shortfall is drawn in proportion (participant 0's share rounded down); underfunded ->
    /// deposits and standbys. The standbys are cleared in every case.
    function checkOutcome(uint256 c, uint256[2] memory expected, uint256[4] memory before)
        internal
    {
        ++concludedCount;
        uint256[2] memory h = holdingsOf(c);
        uint256[2] memory s = standbysOf(c);
        if (s[0] != 0 || s[1] != 0) exactPayoutViolated = true;
        uint256 held = before[0] + before[1];
        uint256 need = expected[0] + expected[1];
        uint256 c0;
        if (held >= need) {
            uint256 excess = held - need;
            uint256 above0 = before[0] > expected[0] ? before[0] - expected[0] : 0;
            c0 = expected[0] + (above0 < excess ? above0 : excess) + before[2];
        } else if (need <= held + before[2] + before[3]) {
            // Amounts stay below 2^90 here, so the product cannot overflow.
            uint256 draw0 = (need - held) * before[2] / (before[2] + before[3]);
            c0 = expected[0] + before[2] - draw0;
            ++standbyDraws;
        } else {
            c0 = before[0] + before[2];
        }
        uint256 total = held + before[2] + before[3];
        if (h[0] != c0 || h[1] != total - c0) exactPayoutViolated = true;
    }
}

contract InvariantTest is Test {
    Adjudicator internal adj;
    EthAssetHolder internal eth;
    Handler internal handler;

    function setUp() public {
        vm.warp(1_700_000_000);
        adj = new Adjudicator();
        eth = new EthAssetHolder(address(adj));
        handler = new Handler(adj, eth);
        targetContract(address(handler));
    }

    /// No channel ever pays out more than was deposited into it.
    function invariant_noChannelPaysMoreThanDeposited() public view {
        for (uint256 c = 0; c < 3; ++c) {
            assertLe(handler.withdrawn(c), handler.deposited(c));
        }
    }

    /// The holder's ether is exactly what came in (deposits and standbys) minus what went out,
    /// and exactly what it owes: every holding plus every standby.
    function invariant_holderBalanceAccountsForEverything() public view {
        uint256 inflow;
        uint256 outflow;
        uint256 owed;
        for (uint256 c = 0; c < 3; ++c) {
            inflow += handler.deposited(c);
            outflow += handler.withdrawn(c);
        }
        assertEq(address(eth).balance, inflow - outflow);
        owed = totalOwed();
        assertEq(owed, address(eth).balance, "the holder owes exactly what it holds");
    }

    /// What each channel's two participants hold, plus what is on standby for them, is
    /// exactly what was deposited (or put on standby) for them minus what they withdrew,
    /// across settlement: no deposit is ever destroyed, and after settlement nothing is left
    /// on standby.
    function invariant_holdingsEqualDepositsMinusWithdrawals() public view {
        for (uint256 c = 0; c < 3; ++c) {
            bytes32 f0 = eth.fundingId(handler.ids(c), handler.participant(c, 0));
            bytes32 f1 = eth.fundingId(handler.ids(c), handler.participant(c, 1));
            uint256 onStandby = eth.standby(f0) + eth.standby(f1);
            assertEq(
                eth.holdings(f0) + eth.holdings(f1) + onStandby,
                handler.deposited(c) - handler.withdrawn(c)
            );
            if (eth.settled(handler.ids(c))) assertEq(onStandby, 0, "standby after settlement");
        }
    }

    /// A standby deposit is accepted exactly until its channel is settled, then refused with
    /// `AlreadySettled`.
    function invariant_standbyRefusedExactlyAfterSettlement() public view {
        assertFalse(handler.standbyGateViolated());
    }

    /// Every conclusion credited the final balances plus the excess and the standbys by the
    /// holder's rule (funded), drew the shortfall from the standbys in proportion (covered by
    /// standbys) or left the deposits and standbys (underfunded), and cleared the standbys;
    /// every withdrawal paid exactly the amount authorised.
    function invariant_exactPayouts() public view {
        assertFalse(handler.exactPayoutViolated());
    }

    /// Sub-channel records are never concluded (V is locked with 1, 2 or 3 ether), and V's
    /// plain id never has a record.
    function invariant_virtualRecordNeverConcluded() public view {
        for (uint256 k = 1; k <= 3; ++k) {
            (,, IAdjudicator.Phase phase,) = adj.disputes(handler.vKey(k * 1e18));
            assertTrue(phase != IAdjudicator.Phase.Concluded);
        }
        (,, IAdjudicator.Phase none,) = adj.disputes(handler.v());
        assertEq(uint8(none), uint8(IAdjudicator.Phase.None));
    }

    /// A V state with another total (registered through any ledger channel, Z included) never
    /// stops a parent from concluding with `LockSumMismatch`.
    function invariant_otherTotalsNeverBlockAParent() public view {
        assertFalse(handler.lockSumBlocked());
    }

    /// A withdrawal authorisation is never used twice.
    function invariant_withdrawalNeverReplayed() public view {
        assertFalse(handler.replayed());
    }

    /// A record that holds a final state (of a ledger channel or of V) is never replaced by
    /// `register` or `refute`, not even with a higher final state.
    function invariant_finalStateNeverReplaced() public view {
        assertFalse(handler.finalReplaced());
    }

    /// How much each run exercised (visible with -vv).
    function afterInvariant() public {
        emit log_named_uint("conclusions", handler.concludedCount());
        emit log_named_uint("conclusions with a lock", handler.lockedConclusions());
        emit log_named_uint("withdrawals", handler.withdrawCount());
        emit log_named_uint("standby deposits", handler.standbyCount());
        emit log_named_uint("conclusions drawing standbys", handler.standbyDraws());
    }

    /// Every holding and standby of the three channels, for any of the three people.
    function totalOwed() internal view returns (uint256 sum) {
        address[3] memory people = [vm.addr(0xA11CE), vm.addr(0x1A6E1D), vm.addr(0xB0B)];
        for (uint256 c = 0; c < 3; ++c) {
            for (uint256 p = 0; p < 3; ++p) {
                bytes32 f = eth.fundingId(handler.ids(c), people[p]);
                sum += eth.holdings(f) + eth.standby(f);
            }
        }
    }
}
