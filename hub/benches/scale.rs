//! Flat cost: the hub (the `ingrid` binary, its own process) with 1k, 100k and 1M basic
//! channels in its books and up to 100k open virtual channels among them, every policy limit
//! configured. At each size: virtual-channel open and close latency through the real hub
//! (16 concurrent pairs of clients whose channels were opened on the chain), the `/metrics`
//! scrape and the database refresh behind it, the hub's memory, and CPU per open+close cycle
//! (the hub's and Postgres's).
//!
//! The large books are real signed states (each client's and the hub's signature, real
//! virtual channels locked in both parents), made in bulk and written with a few statements
//! per ten thousand channels, not through the chain.
//!
//! `DATABASE_URL=$(scripts/test-postgres.sh) cargo bench -p ingrid-hub --bench scale`
//! Knobs: `SCALE_SIZES` (`1000,100000,1000000`), `SCALE_VIRTUALS` (100000: the most open
//! virtual channels in the books), `BENCH_PAIRS` (16), `BENCH_SECONDS` (10).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::api::StateRequest;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::state::channel_id;
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::virtual_channel::{Link, lock_in_parent};
use ingrid_client_sdk::wallet::{Deposit, Wallet};
use ingrid_client_sdk::{Allocation, Deployment, Params, State};
use ingrid_hub::core::ChannelBooks;
use ingrid_hub::dev::{deploy_stack, fresh_database, local_config, postgres_server};
use ingrid_protocol::Role;
use sqlx::PgPool;

// Each benchmark uses only some of the shared pieces.
#[allow(dead_code)]
mod support;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn milli(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(15))
}

/// One generated basic channel: its client, params and signed states (v1, and v2 locking a
/// virtual channel if it is a parent).
struct Generated {
    client: Address,
    params: Params,
    states: Vec<(State, B256, [Bytes; 2])>,
    books: ChannelBooks,
}

/// One generated open virtual channel.
struct GeneratedVirtual {
    params: Params,
    opening: State,
    sigs: [Bytes; 2],
    parents: [B256; 2],
    proposed_parent: StateRequest,
}

/// The params of a basic (or virtual) channel between `participants` and its state at
/// `version` with `each` of `eth` on both sides.
fn channel(
    participants: [Address; 2],
    nonce: U256,
    is_virtual: bool,
    version: u64,
    each: U256,
    eth: Address,
) -> (Params, State) {
    let params = Params {
        challengeDuration: if is_virtual { 600 } else { 3600 },
        nonce,
        participants,
        ledger: !is_virtual,
        isVirtual: is_virtual,
        app: Address::ZERO,
    };
    let state = State {
        channelId: channel_id(&params),
        version,
        outcome: Allocation { assets: vec![eth], balances: vec![[each, each]], locked: vec![] },
        appData: Bytes::new(),
        isFinal: false,
    };
    (params, state)
}

/// What the generated books are signed for: the deployment, the hub, the asset, and below
/// which channel index pairs of channels share a virtual channel.
#[derive(Clone, Copy)]
struct Maker<'a> {
    d: &'a Deployment,
    hub: &'a PrivateKeySigner,
    eth: Address,
    virtual_below: u64,
}

/// Makes channels `from..to` (and a virtual channel over each pair `2j, 2j+1` below
/// `maker.virtual_below`), signing on every core.
fn generate(maker: &Maker<'_>, from: u64, to: u64) -> (Vec<Generated>, Vec<GeneratedVirtual>) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    // Pairs never straddle two threads.
    let chunk = (to - from).div_ceil(threads).next_multiple_of(2).max(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (a, b) = (from + t * chunk, (from + (t + 1) * chunk).min(to));
                s.spawn(move || generate_range(maker, a, b))
            })
            .collect();
        let (mut channels, mut virtuals) = (Vec::new(), Vec::new());
        for h in handles {
            let (c, v) = h.join().expect("generator thread");
            channels.extend(c);
            virtuals.extend(v);
        }
        (channels, virtuals)
    })
}

fn generate_range(maker: &Maker<'_>, from: u64, to: u64) -> (Vec<Generated>, Vec<GeneratedVirtual>) {
    let Maker { d, hub, eth, virtual_below } = *maker;
    let sign = |key: &PrivateKeySigner, state: &State| -> (B256, Bytes) {
        let digest = d.state_digest(state);
        (digest, ingrid_client_sdk::state::sign_digest(key, &digest).expect("sign"))
    };
    let key = |g: u64| PrivateKeySigner::from_bytes(&keccak256(format!("ingrid-scale-{g}"))).expect("key");
    let (mut channels, mut virtuals) = (Vec::new(), Vec::new());
    let mut g = from;
    while g < to {
        let pair = g.is_multiple_of(2) && g + 1 < to && g + 1 < virtual_below;
        let members: Vec<u64> = if pair { vec![g, g + 1] } else { vec![g] };
        let mut made = Vec::new();
        for &m in &members {
            let client = key(m);
            let nonce = U256::from(m) + (U256::from(1u64) << 200);
            let (params, state) = channel([client.address(), hub.address()], nonce, false, 1, milli(1000), eth);
            let (digest, client_sig) = sign(&client, &state);
            let (_, hub_sig) = sign(hub, &state);
            made.push((client, params, vec![(state, digest, [client_sig, hub_sig])]));
        }
        let mut openings = HashMap::new();
        if pair {
            let (a, b) = (made[0].0.address(), made[1].0.address());
            let (params, opening) = channel([a, b], U256::from(g), true, 0, milli(10), eth);
            let sigs = [sign(&made[0].0, &opening).1, sign(&made[1].0, &opening).1];
            let mut parent_updates = Vec::new();
            for (owner, (client, _, states)) in [Role::First, Role::Second].into_iter().zip(made.iter_mut()) {
                let link = Link::client_parent(owner, Role::Second);
                let locked = lock_in_parent(&states[0].0, link, &opening).expect("lock");
                let (digest, client_sig) = sign(client, &locked);
                let (_, hub_sig) = sign(hub, &locked);
                parent_updates.push(StateRequest { state: locked.clone(), signature: client_sig.clone() });
                states.push((locked, digest, [client_sig, hub_sig]));
            }
            openings.insert(opening.channelId, opening.outcome.clone());
            virtuals.push(GeneratedVirtual {
                params,
                parents: [made[0].2[0].0.channelId, made[1].2[0].0.channelId],
                sigs,
                opening,
                proposed_parent: parent_updates.swap_remove(0),
            });
        }
        for (client, params, states) in made {
            let latest = &states.last().expect("a state").0;
            let books = ChannelBooks::of(&latest.outcome, Role::Second, &openings).expect("openings");
            channels.push(Generated { client: client.address(), params, states, books });
        }
        g += members.len() as u64;
    }
    (channels, virtuals)
}

/// Writes generated channels and virtual channels, ten thousand rows per statement.
async fn write(pool: &PgPool, channels: &[Generated], virtuals: &[GeneratedVirtual]) -> anyhow::Result<()> {
    for part in channels.chunks(10_000) {
        let mut tx = pool.begin().await?;
        let clients: Vec<&[u8]> = part.iter().map(|c| c.client.as_slice()).collect();
        sqlx::query("INSERT INTO clients (address) SELECT * FROM unnest($1::bytea[])")
            .bind(&clients)
            .execute(&mut *tx)
            .await?;
        let ids: Vec<&[u8]> = part.iter().map(|c| c.states[0].0.channelId.as_slice()).collect();
        let params: Vec<String> = part.iter().map(|c| json(&c.params)).collect();
        let latest: Vec<i64> = part.iter().map(|c| c.states.len() as i64).collect();
        let free: Vec<String> = part.iter().map(|c| c.books.hub_free[0].to_string()).collect();
        let locked: Vec<String> = part.iter().map(|c| c.books.hub_locked[0].to_string()).collect();
        let total: Vec<String> = part.iter().map(|c| c.books.locked_total[0].to_string()).collect();
        let asset = part[0].books.assets[0];
        sqlx::query(
            "INSERT INTO basic_channels (id, client, hub_index, params, status, latest_version, assets, hub_free,
                 hub_locked, locked_total, books_version)
             SELECT id, client, 1, params::jsonb, 'open', v, ARRAY[$7::bytea], ARRAY[f::numeric], ARRAY[l::numeric],
                 ARRAY[t::numeric], v
             FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::bigint[], $5::text[], $6::text[], $8::text[])
                 AS u (id, client, params, v, f, l, t)",
        )
        .bind(&ids)
        .bind(&clients)
        .bind(&params)
        .bind(&latest)
        .bind(&free)
        .bind(&locked)
        .bind(asset.as_slice())
        .bind(&total)
        .execute(&mut *tx)
        .await?;
        let states: Vec<_> = part.iter().flat_map(|c| c.states.iter()).collect();
        sqlx::query(
            "INSERT INTO channel_states (channel_id, version, state, digest, sig0, sig1)
             SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::text[]::jsonb[], $4::bytea[], $5::bytea[], $6::bytea[])",
        )
        .bind(states.iter().map(|s| s.0.channelId.as_slice()).collect::<Vec<_>>())
        .bind(states.iter().map(|s| s.0.version as i64).collect::<Vec<_>>())
        .bind(states.iter().map(|s| json(&s.0)).collect::<Vec<_>>())
        .bind(states.iter().map(|s| s.1.as_slice()).collect::<Vec<_>>())
        .bind(states.iter().map(|s| s.2[0].as_ref()).collect::<Vec<_>>())
        .bind(states.iter().map(|s| s.2[1].as_ref()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        let required = milli(1000).to_string();
        sqlx::query(
            "INSERT INTO channel_funding (channel_id, asset, participant, required, deposited)
             SELECT id, $3, who, $4::numeric, $4::numeric FROM unnest($1::bytea[], $2::bytea[]) AS u (id, client),
                 LATERAL (VALUES (client), ($5::bytea)) AS p (who)",
        )
        .bind(&ids)
        .bind(&clients)
        .bind(asset.as_slice())
        .bind(&required)
        .bind(part[0].params.participants[1].as_slice())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    let until = (now() + 30 * 86_400) as i64;
    for part in virtuals.chunks(10_000) {
        sqlx::query(
            "INSERT INTO virtual_channels (id, params, app, participants, parents, initial, initial_sigs, settled,
                 proposed_parent, valid_until, fees, status)
             SELECT id, params::jsonb, $11, ARRAY[a, b], ARRAY[pa, pb], initial::jsonb, ARRAY[sa, sb],
                 ARRAY[false, false], proposed::jsonb, $10, '[]', 'open'
             FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[], $7::text[],
                 $8::bytea[], $9::bytea[], $12::text[]) AS u (id, params, a, b, pa, pb, initial, sa, sb, proposed)",
        )
        .bind(part.iter().map(|v| v.opening.channelId.as_slice()).collect::<Vec<_>>())
        .bind(part.iter().map(|v| json(&v.params)).collect::<Vec<_>>())
        .bind(part.iter().map(|v| v.params.participants[0].as_slice()).collect::<Vec<_>>())
        .bind(part.iter().map(|v| v.params.participants[1].as_slice()).collect::<Vec<_>>())
        .bind(part.iter().map(|v| v.parents[0].as_slice()).collect::<Vec<_>>())
        .bind(part.iter().map(|v| v.parents[1].as_slice()).collect::<Vec<_>>())
        .bind(part.iter().map(|v| json(&v.opening)).collect::<Vec<_>>())
        .bind(part.iter().map(|v| v.sigs[0].as_ref()).collect::<Vec<_>>())
        .bind(part.iter().map(|v| v.sigs[1].as_ref()).collect::<Vec<_>>())
        .bind(until)
        .bind(Address::ZERO.as_slice())
        .bind(part.iter().map(|v| json(&v.proposed_parent)).collect::<Vec<_>>())
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// A value as JSON text (as the hub stores it).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("json")
}

struct Row {
    channels: u64,
    virtuals: u64,
    open: (Duration, Duration),
    close: (Duration, Duration),
    cycles: usize,
    metrics: (Duration, Duration),
    refresh: f64,
    memory: (f64, f64),
    cpu_hub_ms: f64,
    cpu_pg_ms: f64,
    cpu_bench_ms: f64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<u64> = std::env::var("SCALE_SIZES")
        .unwrap_or_else(|_| "1000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let max_virtuals = support::knob("SCALE_VIRTUALS", 100_000);
    let pairs = support::knob("BENCH_PAIRS", 16) as usize;
    let seconds = support::knob("BENCH_SECONDS", 10);
    let scratch = tempfile::tempdir()?;
    let (_cluster, server) = postgres_server("scale")?;
    let database_url = fresh_database(&server, "scale").await?;
    let devnet = Devnet::start_with_accounts(2 * pairs + 1)?;
    let hub_key = devnet.key(0);
    let stack = deploy_stack(&devnet, &hub_key, scratch.path()).await?;
    let mut config = local_config(database_url.clone(), &devnet, &stack, "127.0.0.1:0".parse()?, 0, 100);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    config.listen = format!("127.0.0.1:{port}").parse()?;
    config.metrics_refresh_ms = 1000;
    // Every limit an operator sets, none of them reached by the load.
    config.channels.max_virtual_per_client = Some(100);
    for asset in &mut config.assets {
        let p = &mut asset.virtual_policy;
        p.min_virtual_amount = Some(U256::from(1u64));
        p.max_virtual_amount = Some(milli(100_000));
        p.max_locked_per_client = Some(milli(100_000));
        p.max_locked_total = Some(milli(1_000_000_000_000));
        p.max_locked_fraction_bps = Some(9_000);
    }
    let config_file = scratch.path().join("hub.toml");
    std::fs::write(&config_file, toml::to_string(&config)?)?;
    let mut hub = tokio::process::Command::new(env!("CARGO_BIN_EXE_ingrid"))
        .args(["serve", "--config"])
        .arg(&config_file)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let hub_pid = hub.id().ok_or_else(|| anyhow::anyhow!("the hub exited"))?;
    let url = format!("http://127.0.0.1:{port}");
    let http = ingrid_client_sdk::tls::http_client();
    let started = Instant::now();
    while !http.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "the hub did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let eth = stack.assets[0].holder;
    let pool = ingrid_hub::db::connect(&database_url, 4).await?;
    let postmaster = support::postmaster(&pool).await?;

    let mut clients = Vec::new();
    for i in 1..=2 * pairs {
        let key = devnet.key(i);
        let store = ChannelStore::open(&scratch.path().join(format!("c{i}")))?;
        let wallet = Arc::new(Wallet::connect(&url, key.clone(), store, devnet.provider(&key)).await?);
        let id = wallet.open_channel(&[Deposit { asset: eth, mine: milli(50_000), hub: milli(50_000) }], 3600).await?;
        clients.push((wallet, id));
    }
    for (wallet, id) in &clients {
        wallet.wait_until_open(*id, Duration::from_secs(60)).await?;
    }

    let deployment = stack.contracts.deployment;
    let mut rows = Vec::new();
    let mut have = 0u64;
    for &size in &sizes {
        let target = size.saturating_sub(2 * pairs as u64);
        if target > have {
            let t = Instant::now();
            let maker = Maker { d: &deployment, hub: &hub_key, eth, virtual_below: 2 * max_virtuals };
            let (channels, virtuals) = generate(&maker, have, target);
            let signed = t.elapsed();
            write(&pool, &channels, &virtuals).await?;
            // Steady state: vacuum and analyze what the bulk load wrote, so autovacuum does not
            // run through the measurement.
            sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
            println!(
                "books: +{} basic and +{} virtual channels (signed in {:.1} s, written in {:.1} s)",
                channels.len(),
                virtuals.len(),
                signed.as_secs_f64(),
                (t.elapsed() - signed).as_secs_f64()
            );
            have = target;
        }
        let channels: i64 = sqlx::query_scalar("SELECT count(*) FROM basic_channels").fetch_one(&pool).await?;
        let virtuals: i64 =
            sqlx::query_scalar("SELECT count(*) FROM virtual_channels WHERE status = 'open'").fetch_one(&pool).await?;
        // Let a refresh of the metrics run on the new books first.
        tokio::time::sleep(Duration::from_millis(2_500)).await;

        let cpu = (
            support::cpu_seconds(hub_pid, false),
            support::postgres_cpu(postmaster),
            support::cpu_seconds(std::process::id(), false),
        );
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let (opens, closes) = support::cycles(&clients, milli(1), deadline).await?;
        let cpu_after = (
            support::cpu_seconds(hub_pid, false),
            support::postgres_cpu(postmaster),
            support::cpu_seconds(std::process::id(), false),
        );
        let cycles = closes.len().max(1);

        let mut scrapes = Vec::new();
        let mut text = String::new();
        for _ in 0..20 {
            let t = Instant::now();
            text = http.get(format!("{url}/metrics")).send().await?.error_for_status()?.text().await?;
            scrapes.push(t.elapsed());
        }
        scrapes.sort();
        let refresh = text
            .lines()
            .find_map(|l| l.strip_prefix("ingrid_metrics_refresh_seconds "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        rows.push(Row {
            channels: channels as u64,
            virtuals: virtuals as u64,
            open: (support::percentile(&opens, 0.5), support::percentile(&opens, 0.99)),
            close: (support::percentile(&closes, 0.5), support::percentile(&closes, 0.99)),
            cycles: closes.len(),
            metrics: (support::percentile(&scrapes, 0.5), support::percentile(&scrapes, 1.0)),
            refresh,
            memory: support::memory_mb(hub_pid),
            cpu_hub_ms: (cpu_after.0 - cpu.0) * 1e3 / cycles as f64,
            cpu_pg_ms: (cpu_after.1 - cpu.1) * 1e3 / cycles as f64,
            cpu_bench_ms: (cpu_after.2 - cpu.2) * 1e3 / cycles as f64,
        });
    }
    hub.kill().await?;
    let pg_db = fresh_database(&server, "pgbench").await?;
    let (tps, pg_latency) = support::pgbench(&pg_db, pairs as u64, seconds)?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "\nflat cost ({pairs} concurrent pairs, {seconds} s per size, every policy limit set, Postgres fsync on):"
    );
    println!(
        "{:>9} {:>8} | {:>17} {:>17} | {:>6} | {:>15} {:>8} | {:>13} | {:>21}",
        "basic",
        "virtual",
        "open p50/p99 ms",
        "close p50/p99 ms",
        "cycles",
        "/metrics p50/max",
        "refresh",
        "hub MB rss/peak",
        "CPU ms/cycle hub/pg/clients"
    );
    for r in &rows {
        println!(
            "{:>9} {:>8} | {:>8.1} {:>8.1} {:>8.1} {:>8.1} | {:>6} | {:>6.2} ms {:>5.2} ms {:>6.1} ms | {:>6.1} {:>6.1} | {:>6.2} {:>6.2} {:>6.2}",
            r.channels,
            r.virtuals,
            ms(r.open.0),
            ms(r.open.1),
            ms(r.close.0),
            ms(r.close.1),
            r.cycles,
            ms(r.metrics.0),
            ms(r.metrics.1),
            r.refresh * 1e3,
            r.memory.0,
            r.memory.1,
            r.cpu_hub_ms,
            r.cpu_pg_ms,
            r.cpu_bench_ms
        );
    }
    println!("pgbench simple-update -c {pairs} on the same Postgres: {tps:.1} TPS, {pg_latency:.2} ms average");
    // The smallest book is the baseline; every larger one is compared with it.
    if let Some((first, larger)) = rows.split_first() {
        println!("\ntargets against the first size ({} basic channels):", first.channels);
        for r in larger {
            let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
            println!(
                "  {:>9} basic: open p50 {:.2}x p99 {:.2}x, close p50 {:.2}x p99 {:.2}x (limit 1.2x); /metrics max {:.1} ms \
                 (limit 50 ms); hub memory {:.0} MB (limit 150 MB)",
                r.channels,
                ratio(r.open.0, first.open.0),
                ratio(r.open.1, first.open.1),
                ratio(r.close.0, first.close.0),
                ratio(r.close.1, first.close.1),
                ms(r.metrics.1),
                r.memory.1
            );
        }
    }
    Ok(())
}
