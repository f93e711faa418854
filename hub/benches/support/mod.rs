//! Shared pieces of the benchmarks: knobs, percentiles, pgbench on the same Postgres, and the
//! CPU and memory of processes, the open+close cycles. (Each benchmark uses some of them.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use ingrid_client_sdk::wallet::Wallet;

use anyhow::Context;

/// An integer knob from the environment.
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `p` percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `pgbench -b simple-update` for `seconds` with `clients`; returns (TPS, mean latency ms).
pub fn pgbench(database_url: &str, clients: u64, seconds: u64) -> anyhow::Result<(f64, f64)> {
    let bin = std::path::Path::new("/usr/lib/postgresql/15/bin/pgbench");
    let init = std::process::Command::new(bin).args(["-i", "-q", "-s", "1", database_url]).output()?;
    anyhow::ensure!(init.status.success(), "pgbench -i: {}", String::from_utf8_lossy(&init.stderr));
    let run = std::process::Command::new(bin)
        .args(["-b", "simple-update", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), database_url])
        .output()?;
    anyhow::ensure!(run.status.success(), "pgbench: {}", String::from_utf8_lossy(&run.stderr));
    let out = String::from_utf8_lossy(&run.stdout);
    let field = |prefix: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Ok((field("tps = ").context("pgbench printed no tps")?, field("latency average = ").context("no latency")?))
}

/// CPU seconds (user + system) of process `pid`, with its reaped children if `children`.
pub fn cpu_seconds(pid: u32, children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    // Fields 14-17 (utime, stime, cutime, cstime) are 11-14 after the command.
    let ticks = if children { f[11] + f[12] + f[13] + f[14] } else { f[11] + f[12] };
    ticks / 100.0
}

/// CPU seconds of the whole Postgres server: the postmaster (with the backends it reaped)
/// and its live children.
pub fn postgres_cpu(postmaster: u32) -> f64 {
    let mut total = cpu_seconds(postmaster, true);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let ppid = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            total += cpu_seconds(pid, false);
        }
    }
    total
}

/// Resident and peak memory of `pid`, MB.
pub fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The pid of the Postgres server (the postmaster) that `pool` is connected to: the parent of
/// one of its backends.
pub async fn postmaster(pool: &sqlx::PgPool) -> anyhow::Result<u32> {
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(pool).await?;
    std::fs::read_to_string(format!("/proc/{backend}/stat"))?
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok())
        .context("no postmaster")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Virtual-channel open+close cycles until `deadline`, concurrently by each pair of `clients`
/// (client 2k proposes to client 2k+1, from their basic channels), each virtual channel with
/// `deposit` on both sides: the open latencies (proposal to the proposer seeing it open) and
/// the close latencies (the close request to both parents settled), each sorted.
pub async fn cycles(
    clients: &[(Arc<Wallet>, B256)],
    deposit: U256,
    deadline: Instant,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let runs = clients.chunks(2).map(|pair| {
        let ((alice, x), (bob, y)) = (pair[0].clone(), pair[1].clone());
        async move {
            let (mut opens, mut closes) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                let t = Instant::now();
                let v = alice.propose_virtual(bob.address(), x, &[[deposit, deposit]], 600, now() + 3600).await?;
                let view = bob.hub().virtual_channel(v).await?;
                bob.accept_virtual(&view, y).await?;
                alice.wait_virtual_open(v, Duration::from_secs(30)).await?;
                opens.push(t.elapsed());
                let t = Instant::now();
                let request = alice.close_request(v).await?;
                let answer = bob.answer_close(&request).await?;
                alice.finish_close(v, &request, answer).await?;
                bob.sync_channel(y).await?;
                closes.push(t.elapsed());
            }
            anyhow::Ok((opens, closes))
        }
    });
    let (mut opens, mut closes) = (Vec::new(), Vec::new());
    for (o, c) in futures::future::try_join_all(runs).await? {
        opens.extend(o);
        closes.extend(c);
    }
    opens.sort();
    closes.sort();
    Ok((opens, closes))
}
