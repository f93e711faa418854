//! The seed's worked example (figures 4–9), settled through the contracts on a local chain.
//!
//! Alice–Ingrid channel X = (3, 3) and Ingrid–Bob channel Y = (4, 5). Alice and Bob open a
//! virtual channel V with deposits (2, 3), locking 5 in each of X and Y; Bob pays Alice 2, so
//! V ends at (4, 1). X is then closed cooperatively (a final state, concluded at once) and Y
//! through a dispute (registered with V's final state, concluded after the timeout): X pays
//! out (5, 1), Y pays out (6, 3), and Ingrid holds 7 before and after.

use std::io::Write;

use alloy::primitives::{Address, B256, Bytes, U256, utils::format_ether};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, ensure};
use ingrid_client_sdk::chain::{self, Contracts};
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::state::channel_id;
use ingrid_client_sdk::validate::{UpdateKind, validate_initial, validate_update};
use ingrid_client_sdk::{Allocation, Params, State, SubAlloc};

/// Challenge duration of the basic channels X and Y, seconds.
const LEDGER_CHALLENGE: u64 = 600;
/// Challenge duration of the virtual channel V (at most its parents'), seconds.
const VIRTUAL_CHALLENGE: u64 = 300;

/// Balances read back from the chain after settlement, in wei.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// X's payouts (Alice, Ingrid).
    pub x: [U256; 2],
    /// Y's payouts (Ingrid, Bob).
    pub y: [U256; 2],
    /// Ingrid's deposits in X and Y before.
    pub ingrid_before: U256,
    /// Ingrid's payouts from X and Y after.
    pub ingrid_after: U256,
}

impl SeedReport {
    /// Checks the figures the seed gives: X = (5, 1), Y = (6, 3), Ingrid unchanged.
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(self.x == [eth(5), eth(1)], "X settled at {:?}, expected (5, 1)", self.x);
        ensure!(self.y == [eth(6), eth(3)], "Y settled at {:?}, expected (6, 3)", self.y);
        ensure!(self.ingrid_before == self.ingrid_after, "Ingrid's total changed");
        Ok(())
    }
}

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// `n` thousandths of an ether, in wei.
pub fn milli(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(15))
}

/// An amount of wei in ether, without trailing zeros ("5", "0.25").
pub fn ether_text(wei: U256) -> String {
    let s = format_ether(wei);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A pair of amounts in ether: "(5, 0.25)".
pub fn ether_pair(pair: [U256; 2]) -> String {
    format!("({}, {})", ether_text(pair[0]), ether_text(pair[1]))
}

/// The first asset's balances of `wallet`'s basic channel `id`, as stored.
pub fn first_asset(wallet: &ingrid_client_sdk::wallet::Wallet, id: B256) -> anyhow::Result<[U256; 2]> {
    Ok(wallet.store().load(id)?.context("channel not stored")?.latest.state.outcome.balances[0])
}

/// The wallet of dev account `i` logged in to the hub at `hub_url`, its store in `dir/name`.
pub async fn dev_wallet(
    devnet: &Devnet,
    hub_url: &str,
    dir: &std::path::Path,
    i: usize,
    name: &str,
) -> anyhow::Result<ingrid_client_sdk::wallet::Wallet> {
    let key = devnet.key(i);
    let store = ingrid_client_sdk::store::ChannelStore::open(&dir.join(name))?;
    let provider = devnet.provider(&key);
    Ok(ingrid_client_sdk::wallet::Wallet::connect(hub_url, key, store, provider).await?)
}

fn ledger_params(a: Address, b: Address, nonce: u64) -> Params {
    Params {
        challengeDuration: LEDGER_CHALLENGE,
        nonce: U256::from(nonce),
        participants: [a, b],
        ledger: true,
        isVirtual: false,
        app: Address::ZERO,
    }
}

fn state(
    channel: B256,
    version: u64,
    asset: Address,
    balances: [U256; 2],
    locked: Vec<SubAlloc>,
    is_final: bool,
) -> State {
    State {
        channelId: channel,
        version,
        outcome: Allocation { assets: vec![asset], balances: vec![balances], locked },
        appData: Bytes::new(),
        isFinal: is_final,
    }
}

/// Starts a fresh anvil, deploys the contracts and runs [`run`] with its first three accounts
/// as Alice, Ingrid and Bob.
pub async fn run_on_fresh_devnet(out: &mut impl Write) -> anyhow::Result<SeedReport> {
    let devnet = Devnet::start().context("starting anvil (run scripts/setup.sh first)")?;
    writeln!(out, "anvil running at {}", devnet.anvil.endpoint_url())?;
    run(&devnet, [devnet.key(0), devnet.key(1), devnet.key(2)], out).await
}

/// Runs the worked example on `devnet` with keys `[alice, ingrid, bob]`, printing each step.
pub async fn run(
    devnet: &Devnet,
    [alice, ingrid, bob]: [PrivateKeySigner; 3],
    out: &mut impl Write,
) -> anyhow::Result<SeedReport> {
    let (pa, pi, pb) = (devnet.provider(&alice), devnet.provider(&ingrid), devnet.provider(&bob));
    let contracts: Contracts = chain::deploy(&pi).await?;
    let d = contracts.deployment;
    let asset = contracts.eth_holder;
    writeln!(out, "contracts: adjudicator {}, ETH holder {}", d.adjudicator, asset)?;

    let nonce = pi.get_block_number().await?;
    let xp = ledger_params(alice.address(), ingrid.address(), nonce);
    let yp = ledger_params(ingrid.address(), bob.address(), nonce);
    let (x, y) = (channel_id(&xp), channel_id(&yp));

    // Basic channels X = (3, 3) and Y = (4, 5), funded on chain.
    let x0 = state(x, 0, asset, [eth(3), eth(3)], vec![], false);
    let y0 = state(y, 0, asset, [eth(4), eth(5)], vec![], false);
    validate_initial(&xp, &x0)?;
    validate_initial(&yp, &y0)?;
    chain::deposit(&pa, &contracts.eth(), x, alice.address(), eth(3)).await?;
    chain::deposit(&pi, &contracts.eth(), x, ingrid.address(), eth(3)).await?;
    chain::deposit(&pi, &contracts.eth(), y, ingrid.address(), eth(4)).await?;
    chain::deposit(&pb, &contracts.eth(), y, bob.address(), eth(5)).await?;
    let ingrid_before = chain::holdings(&pi, asset, x, ingrid.address()).await?
        + chain::holdings(&pi, asset, y, ingrid.address()).await?;
    writeln!(
        out,
        "funded:  X (Alice, Ingrid) = {}   Y (Ingrid, Bob) = {}",
        ether_pair([eth(3), eth(3)]),
        ether_pair([eth(4), eth(5)])
    )?;

    // Virtual channel V = (2, 3) between Alice and Bob, locked as 5 in X and in Y.
    let vp = Params {
        challengeDuration: VIRTUAL_CHALLENGE,
        nonce: U256::from(nonce),
        participants: [alice.address(), bob.address()],
        ledger: false,
        isVirtual: true,
        app: Address::ZERO,
    };
    let v = channel_id(&vp);
    let v0 = state(v, 0, asset, [eth(2), eth(3)], vec![], false);
    validate_initial(&vp, &v0)?;
    // In X, V's Alice is Alice (0) and V's Bob is Ingrid (1); in Y, V's Alice is Ingrid (0)
    // and V's Bob is Bob (1).
    let lock = SubAlloc { id: v, balances: vec![eth(5)], indexMap: [0, 1] };
    let x1 = state(x, 1, asset, [eth(1), eth(0)], vec![lock.clone()], false);
    let y1 = state(y, 1, asset, [eth(2), eth(2)], vec![lock], false);
    validate_update(&x0, &x1, UpdateKind::OpenLock(v))?;
    validate_update(&y0, &y1, UpdateKind::OpenLock(v))?;
    writeln!(
        out,
        "open V:  X = {} + lock 5   Y = {} + lock 5   V = {}",
        ether_pair([eth(1), eth(0)]),
        ether_pair([eth(2), eth(2)]),
        ether_pair([eth(2), eth(3)])
    )?;

    // Bob pays Alice 2 inside V, directly; the final state of V is signed by both.
    let v1 = state(v, 1, asset, [eth(4), eth(1)], vec![], true);
    validate_update(&v0, &v1, UpdateKind::Transfer)?;
    let v1_signed = chain::sign_both(&d, &vp, &v1, [&alice, &bob])?;
    writeln!(out, "pay:     V = {} (final, signed by Alice and Bob)", ether_pair([eth(4), eth(1)]))?;

    // Close X cooperatively: V's final balances go back into X and X concludes at once.
    let x2 = state(x, 2, asset, [eth(5), eth(1)], vec![], true);
    validate_update(&x1, &x2, UpdateKind::CloseLock(v))?;
    chain::conclude_final(&pa, &d, chain::sign_both(&d, &xp, &x2, [&alice, &ingrid])?).await?;
    writeln!(out, "close X: cooperatively, final state concluded at once")?;

    // Settle Y through a dispute: Ingrid registers Y with the lock and V's final state,
    // waits out the challenge period and concludes; the adjudicator credits V to Y.
    let y1_signed = chain::sign_both(&d, &yp, &y1, [&ingrid, &bob])?;
    chain::register(&pi, &d, y1_signed, vec![v1_signed]).await?;
    pi.anvil_increase_time(LEDGER_CHALLENGE).await?;
    pi.anvil_mine(Some(1), None).await?;
    chain::conclude(&pi, &d, yp, y1, vec![v1]).await?;
    writeln!(out, "close Y: through a dispute, registered with V's final state, concluded after the timeout")?;

    let report = SeedReport {
        x: [
            chain::holdings(&pi, asset, x, alice.address()).await?,
            chain::holdings(&pi, asset, x, ingrid.address()).await?,
        ],
        y: [
            chain::holdings(&pi, asset, y, ingrid.address()).await?,
            chain::holdings(&pi, asset, y, bob.address()).await?,
        ],
        ingrid_before,
        ingrid_after: U256::ZERO,
    };
    let report = SeedReport { ingrid_after: report.x[1] + report.y[0], ..report };
    writeln!(
        out,
        "settled on chain: X (Alice, Ingrid) = {}   Y (Ingrid, Bob) = {}",
        ether_pair(report.x),
        ether_pair(report.y)
    )?;
    writeln!(out, "Ingrid: {} before, {} after", ether_text(report.ingrid_before), ether_text(report.ingrid_after))?;

    // Everyone withdraws its payout.
    let withdrawn = [
        chain::withdraw(&pa, &d, asset, &alice, x, alice.address()).await?,
        chain::withdraw(&pi, &d, asset, &ingrid, x, ingrid.address()).await?,
        chain::withdraw(&pi, &d, asset, &ingrid, y, ingrid.address()).await?,
        chain::withdraw(&pb, &d, asset, &bob, y, bob.address()).await?,
    ];
    ensure!(
        withdrawn == [report.x[0], report.x[1], report.y[0], report.y[1]],
        "withdrawals differ from the settled balances"
    );
    writeln!(
        out,
        "withdrawn: Alice {}, Ingrid {} + {}, Bob {}",
        ether_text(withdrawn[0]),
        ether_text(withdrawn[1]),
        ether_text(withdrawn[2]),
        ether_text(withdrawn[3])
    )?;
    Ok(report)
}
