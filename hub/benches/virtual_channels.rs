//! Virtual channels through the real hub (HTTP, Postgres with fsync on): open+close cycles per
//! second and their latency with 16 concurrent pairs of clients, next to `pgbench -b
//! simple-update -c 16` on the same Postgres; and payments per second inside one virtual
//! channel with both ends in this process, next to the ECDSA ceiling of the same crate.
//!
//! `DATABASE_URL=$(scripts/test-postgres.sh) cargo bench -p ingrid-hub --bench virtual_channels`
//! Knobs: `BENCH_PAIRS` (16), `BENCH_SECONDS` (10), `BENCH_PAYMENTS` (2000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::wallet::{Deposit, Wallet};
use ingrid_hub::dev::{deploy_stack, fresh_database, local_config, postgres_server};

// Each benchmark uses only some of the shared pieces.
#[allow(dead_code)]
mod support;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Sign + recover pairs per second on one core: with alloy's local signer (k256), and with
/// the SDK's `sign_digest`/`recover_digest` (libsecp256k1), which the payments use.
fn ecdsa_pairs_per_second() -> (f64, f64) {
    let key = PrivateKeySigner::random();
    let n = 2000;
    let digests: Vec<_> = (0..n as u64).map(|i| alloy::primitives::keccak256(i.to_be_bytes())).collect();
    let start = Instant::now();
    for digest in &digests {
        let sig = key.sign_hash_sync(digest).expect("sign");
        let _ = sig.recover_address_from_prehash(digest).expect("recover");
    }
    let k256 = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for digest in &digests {
        let sig = ingrid_client_sdk::state::sign_digest(&key, digest).expect("sign");
        let _ = ingrid_client_sdk::state::recover_digest(digest, &sig).expect("recover");
    }
    (k256, n as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let pairs = support::knob("BENCH_PAIRS", 16) as usize;
    let seconds = support::knob("BENCH_SECONDS", 10);
    let payments = support::knob("BENCH_PAYMENTS", 2000);
    let scratch = tempfile::tempdir()?;
    let (_cluster, server) = postgres_server("bench")?;
    let database_url = fresh_database(&server, "bench").await?;
    let devnet = Devnet::start_with_accounts(2 * pairs + 1)?;
    let hub_key = devnet.key(0);
    let stack = deploy_stack(&devnet, &hub_key, scratch.path()).await?;
    let database_url_for_cpu = database_url.clone();
    let config = local_config(database_url, &devnet, &stack, "127.0.0.1:0".parse()?, 0, 100);
    let hub = ingrid_hub::server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let eth = stack.assets[0].holder;
    let milli = U256::from(10u64).pow(U256::from(15));

    let mut clients = Vec::new();
    for i in 1..=2 * pairs {
        let key = devnet.key(i);
        let store = ChannelStore::open(&scratch.path().join(format!("c{i}")))?;
        let wallet = Arc::new(Wallet::connect(&url, key.clone(), store, devnet.provider(&key)).await?);
        let ether = U256::from(1000u64) * milli;
        let id = wallet.open_channel(&[Deposit { asset: eth, mine: ether, hub: ether }], 3600).await?;
        clients.push((wallet, id));
    }
    for (wallet, id) in &clients {
        wallet.wait_until_open(*id, Duration::from_secs(60)).await?;
    }

    // Open+close cycles: pair k is clients 2k (proposer) and 2k+1 (acceptor).
    let pool = ingrid_hub::db::connect(&database_url_for_cpu, 1).await?;
    let postmaster = support::postmaster(&pool).await?;
    let me = std::process::id();
    let cpu_before = (support::cpu_seconds(me, false), support::postgres_cpu(postmaster));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let (opens, closes) = support::cycles(&clients, milli, deadline).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_cycles = (support::cpu_seconds(me, false) - cpu_before.0, support::postgres_cpu(postmaster) - cpu_before.1);
    let cycles = closes.len() as f64 / elapsed;

    // Payments inside one virtual channel, both ends here, one at a time.
    let ((alice, x), (bob, y)) = (clients[0].clone(), clients[1].clone());
    let unit = U256::from(1_000u64);
    let v = alice
        .propose_virtual(bob.address(), x, &[[U256::from(payments) * unit, U256::ZERO]], 600, now() + 3600)
        .await?;
    let view = bob.hub().virtual_channel(v).await?;
    bob.accept_virtual(&view, y).await?;
    alice.wait_virtual_open(v, Duration::from_secs(30)).await?;
    let requests_before = hub.requests();
    let cpu_before = support::cpu_seconds(me, false);
    let t = Instant::now();
    for _ in 0..payments {
        let payment = alice.pay(v, eth, unit).await?;
        let receipt = bob.receive_payment(&payment, eth, unit).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        alice.accept_receipt(&receipt).await?;
    }
    let per_second = payments as f64 / t.elapsed().as_secs_f64();
    let cpu_payments = support::cpu_seconds(me, false) - cpu_before;
    let hub_requests = hub.requests() - requests_before;
    hub.stop().await;

    let pg_db = fresh_database(&server, "pgbench").await?;
    let (tps, pg_latency) = support::pgbench(&pg_db, pairs as u64, seconds)?;
    let (k256_pairs, secp_pairs) = ecdsa_pairs_per_second();
    println!("virtual channels through the hub ({pairs} concurrent pairs, {seconds} s, Postgres fsync on):");
    println!("  open+close cycles/s       {cycles:>10.1}   (opens/s + closes/s = {:.1})", 2.0 * cycles);
    println!(
        "  open latency  p50 / p99   {:>7.2} ms / {:.2} ms",
        support::percentile(&opens, 0.5).as_secs_f64() * 1e3,
        support::percentile(&opens, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "  close latency p50 / p99   {:>7.2} ms / {:.2} ms",
        support::percentile(&closes, 0.5).as_secs_f64() * 1e3,
        support::percentile(&closes, 0.99).as_secs_f64() * 1e3
    );
    let n = closes.len().max(1) as f64;
    println!(
        "  CPU per cycle: {:.2} ms hub + clients (this process), {:.2} ms Postgres; memory of this process {:.0} MB \
         (peak {:.0} MB)",
        cpu_cycles.0 * 1e3 / n,
        cpu_cycles.1 * 1e3 / n,
        support::memory_mb(me).0,
        support::memory_mb(me).1
    );
    println!("  pgbench simple-update -c {pairs}: {tps:.1} TPS, {pg_latency:.2} ms average");
    println!("  ratio (opens+closes)/s ÷ pgbench TPS: {:.3}   (target ≥ 0.5)", 2.0 * cycles / tps);
    println!(
        "  ratio open p99 ÷ pgbench average latency: {:.1}   (target ≤ 5)",
        support::percentile(&opens, 0.99).as_secs_f64() * 1e3 / pg_latency
    );
    println!("payments inside one virtual channel (both ends in this process, one after another):");
    println!("  payments/s                {per_second:>10.1}   hub requests meanwhile: {hub_requests} (target 0)");
    println!("  CPU per payment (both ends) {:.1} µs", cpu_payments * 1e6 / payments as f64);
    println!(
        "  ECDSA ceiling ((sign+recover)/s ÷ 2) with libsecp256k1, the crate the payments use: {:.1}   ratio: {:.2} \
         (target ≥ 0.5)",
        secp_pairs / 2.0,
        per_second / (secp_pairs / 2.0)
    );
    println!("  (with alloy's k256 signer the ceiling would be {:.1})", k256_pairs / 2.0);
    Ok(())
}
