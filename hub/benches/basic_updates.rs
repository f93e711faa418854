//! How many basic-channel updates per second the real hub sustains (HTTP, Postgres with
//! fsync on, the hub's and the clients' ECDSA in this process), next to `pgbench
//! simple-update` on the same Postgres at the same concurrency, in the same run.
//!
//! `cargo bench -p ingrid-hub --bench basic_updates` (uses `$DATABASE_URL`'s server, e.g.
//! from `scripts/test-postgres.sh`, or starts a private cluster). Knobs: `BENCH_CLIENTS`
//! (16), `BENCH_SECONDS` (10).

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::wallet::{Deposit, Wallet};
use ingrid_hub::dev::{deploy_stack, fresh_database, local_config, postgres_server};

// Each benchmark uses only some of the shared pieces.
#[allow(dead_code)]
mod support;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let clients = support::knob("BENCH_CLIENTS", 16) as usize;
    let seconds = support::knob("BENCH_SECONDS", 10);
    let scratch = tempfile::tempdir()?;
    let (_cluster, server) = postgres_server("bench")?;
    let database_url = fresh_database(&server, "bench").await?;
    let devnet = Devnet::start_with_accounts(clients + 1)?;
    let hub_key = devnet.key(0);
    let stack = deploy_stack(&devnet, &hub_key, scratch.path()).await?;
    let config = local_config(database_url, &devnet, &stack, "127.0.0.1:0".parse()?, 0, 100);
    let hub = ingrid_hub::server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let eth = stack.assets[0].holder;
    let ether = U256::from(10u64).pow(U256::from(18));

    let mut wallets = Vec::new();
    for i in 1..=clients {
        let key = devnet.key(i);
        let store = ChannelStore::open(&scratch.path().join(format!("c{i}")))?;
        let wallet = Wallet::connect(&url, key.clone(), store, devnet.provider(&key)).await?;
        let id = wallet.open_channel(&[Deposit { asset: eth, mine: ether, hub: ether }], 3600).await?;
        wallets.push((wallet, id));
    }
    for (wallet, id) in &wallets {
        wallet.wait_until_open(*id, Duration::from_secs(60)).await?;
    }

    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let runs = wallets.iter().map(|(wallet, id)| async move {
        let mut latencies = Vec::new();
        while Instant::now() < deadline {
            let t = Instant::now();
            wallet.pay_hub(*id, eth, U256::from(1)).await?;
            latencies.push(t.elapsed());
        }
        anyhow::Ok(latencies)
    });
    let mut latencies: Vec<Duration> = futures::future::try_join_all(runs).await?.into_iter().flatten().collect();
    let elapsed = start.elapsed().as_secs_f64();
    hub.stop().await;
    latencies.sort();
    let per_second = latencies.len() as f64 / elapsed;

    let pg_db = fresh_database(&server, "pgbench").await?;
    let (tps, pg_latency) = support::pgbench(&pg_db, clients as u64, seconds)?;
    println!("basic-channel updates through the hub ({clients} concurrent clients, {seconds} s, fsync on):");
    println!("  updates/s            {per_second:>10.1}");
    println!(
        "  latency p50 / p99    {:>7.2} ms / {:.2} ms",
        support::percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        support::percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!("  pgbench simple-update, same Postgres, -c {clients}: {tps:.1} TPS, {pg_latency:.2} ms average");
    println!("  ratio updates/s ÷ pgbench TPS: {:.2}", per_second / tps);
    Ok(())
}
