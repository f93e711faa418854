//! One abusive client against the limits: 16 honest clients (8 pairs) open and close virtual
//! channels through the real hub for `BENCH_SECONDS`, once alone and once while one more
//! client sends `BENCH_ABUSE_FACTOR` (10) times its request rate (`GET /v1/channels`, a
//! database read when admitted). Prints the honest open+close p99 of both runs and their
//! ratio, and what the abuser got (admitted, 429).
//!
//! `DATABASE_URL=$(scripts/test-postgres.sh) cargo bench -p ingrid-hub --bench abuse`
//! Knobs: `BENCH_PAIRS` (8), `BENCH_SECONDS` (10), `BENCH_CLIENT_RATE` (50 requests/s per
//! client), `BENCH_ABUSE_FACTOR` (10).
//!
//! Every client connects from 127.0.0.1, so the per-address rate is off here (it would
//! throttle the honest clients together); the abuser is held by its per-client rate and
//! its cap of requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use ingrid_client_sdk::client::HubClient;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::wallet::{Deposit, Wallet};
use ingrid_hub::dev::{deploy_stack, fresh_database, local_config, postgres_server};

#[allow(dead_code)] // pgbench is for the throughput benchmarks
mod support;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

type Client = (Arc<Wallet>, B256);

/// Open+close cycles of every pair until `seconds` pass; the cycles' durations, sorted.
async fn honest_cycles(clients: &[Client], seconds: u64) -> anyhow::Result<Vec<Duration>> {
    let milli = U256::from(10u64).pow(U256::from(15));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let runs = clients.chunks(2).map(|pair| {
        let ((alice, x), (bob, y)) = (pair[0].clone(), pair[1].clone());
        async move {
            let mut cycles = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let v = alice.propose_virtual(bob.address(), x, &[[milli, milli]], 600, now() + 3600).await?;
                let view = bob.hub().virtual_channel(v).await?;
                bob.accept_virtual(&view, y).await?;
                alice.wait_virtual_open(v, Duration::from_secs(30)).await?;
                let request = alice.close_request(v).await?;
                let answer = bob.answer_close(&request).await?;
                alice.finish_close(v, &request, answer).await?;
                bob.sync_channel(y).await?;
                cycles.push(t.elapsed());
            }
            anyhow::Ok(cycles)
        }
    });
    let mut all: Vec<Duration> = futures::future::try_join_all(runs).await?.into_iter().flatten().collect();
    all.sort();
    Ok(all)
}

/// Sends `rate` requests per second with `token` until `stop`; counts the answers by kind.
async fn abuse(url: String, token: String, rate: u64, stop: Arc<std::sync::atomic::AtomicBool>) -> [u64; 3] {
    let http = ingrid_client_sdk::tls::http_client();
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let (http, url, token, counts) = (http.clone(), url.clone(), token.clone(), counts.clone());
        tasks.spawn(async move {
            let kind = match http.get(format!("{url}/v1/channels")).bearer_auth(token).send().await {
                Ok(r) if r.status().is_success() => 0,
                Ok(r) if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => 1,
                _ => 2,
            };
            counts[kind].fetch_add(1, Ordering::Relaxed);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    [0, 1, 2].map(|k| counts[k].load(Ordering::Relaxed))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let pairs = support::knob("BENCH_PAIRS", 8) as usize;
    let seconds = support::knob("BENCH_SECONDS", 10);
    let rate = support::knob("BENCH_CLIENT_RATE", 50);
    let factor = support::knob("BENCH_ABUSE_FACTOR", 10);
    let scratch = tempfile::tempdir()?;
    let (_cluster, server) = postgres_server("bench")?;
    let database_url = fresh_database(&server, "abuse").await?;
    let devnet = Devnet::start_with_accounts(2 * pairs + 2)?;
    let hub_key = devnet.key(0);
    let stack = deploy_stack(&devnet, &hub_key, scratch.path()).await?;
    let mut config = local_config(database_url, &devnet, &stack, "127.0.0.1:0".parse()?, 0, 100);
    config.limits = ingrid_hub::config::LimitsConfig {
        ip_per_second: 0,
        client_per_second: rate as u32,
        client_burst: 2 * rate as u32,
        ..Default::default()
    };
    let hub = ingrid_hub::server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let eth = stack.assets[0].holder;
    let ether = U256::from(10u64).pow(U256::from(18));

    let mut clients = Vec::new();
    for i in 1..=2 * pairs {
        let key = devnet.key(i);
        let store = ChannelStore::open(&scratch.path().join(format!("c{i}")))?;
        let wallet = Arc::new(Wallet::connect(&url, key.clone(), store, devnet.provider(&key)).await?);
        let id = wallet.open_channel(&[Deposit { asset: eth, mine: ether, hub: ether }], 3600).await?;
        clients.push((wallet, id));
    }
    for (wallet, id) in &clients {
        wallet.wait_until_open(*id, Duration::from_secs(60)).await?;
    }
    let mut abuser = HubClient::new(&url);
    let token = abuser.login(&devnet.key(2 * pairs + 1)).await?.token;

    let alone = honest_cycles(&clients, seconds).await?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let abusing = tokio::spawn(abuse(url.clone(), token, factor * rate, stop.clone()));
    let attacked = honest_cycles(&clients, seconds).await?;
    stop.store(true, Ordering::Relaxed);
    let [admitted, limited, other] = abusing.await?;
    hub.stop().await;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (p99_alone, p99_attacked) = (support::percentile(&alone, 0.99), support::percentile(&attacked, 0.99));
    println!("{} honest clients open+close virtual channels, {seconds} s per run, client rate {rate}/s:", 2 * pairs);
    println!(
        "  alone:          {:>5} cycles, p50 {:>7.2} ms, p99 {:>7.2} ms",
        alone.len(),
        ms(support::percentile(&alone, 0.5)),
        ms(p99_alone)
    );
    println!(
        "  with an abuser: {:>5} cycles, p50 {:>7.2} ms, p99 {:>7.2} ms",
        attacked.len(),
        ms(support::percentile(&attacked, 0.5)),
        ms(p99_attacked)
    );
    println!("  p99 ratio (with ÷ alone): {:.2}", ms(p99_attacked) / ms(p99_alone));
    println!(
        "  abuser: {} requests/s asked ({factor}× its rate): {admitted} admitted, {limited} refused 429, {other} other",
        factor * rate
    );
    Ok(())
}
