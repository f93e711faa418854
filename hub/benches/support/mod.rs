//! Shared pieces of the benchmarks: knobs, percentiles, and pgbench on the same Postgres.

use std::time::Duration;

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
