//! The adversarial simulation (issue 11): a seeded, reproducible run of a real hub (the
//! `ingrid` binary, Postgres, HTTP) on a real anvil with the contracts, played by honest SDK
//! clients and a coalition of colluding clients who share keys. At each step the seeded RNG
//! picks a strategy from the whole action space (see [`strategy`]); at the end everything is
//! settled on chain and the invariants are checked from the chain (see [`invariants`]).
//!
//! - `INGRID_SIM_SEEDS`: seeds to run, e.g. `1..200` (both ends included), `7`, `3,9,12`.
//!   Default `1..3`.
//! - `INGRID_SIM_STEPS`: steps per seed. Default 40.
//! - `INGRID_SIM_WEIGHTS`: strategy weights, e.g. `huge_version=0,register_own_ledger=10`.
//! - `INGRID_SIM_VERBOSE`: print the action log as it happens.
//!
//! A failing seed prints its violations, the action log and how to replay it; a summary of
//! all seeds follows. Replaying a seed repeats the same choices as long as the hub answers
//! the same way (its reactions run in real time, so a race may end differently).

mod coalition;
mod honest;
mod hubproc;
mod invariants;
mod settle;
mod strategy;
mod world;

use std::time::{Duration, Instant};

use alloy::providers::Provider;
use rand::Rng;

use strategy::{Actor, Strategy, Weights};
use world::{MAX_JUMP, Outcome, World};

/// Longest run of one action.
const ACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest run of one seed.
const SEED_TIMEOUT: Duration = Duration::from_secs(900);

fn seeds() -> anyhow::Result<Vec<u64>> {
    let spec = std::env::var("INGRID_SIM_SEEDS").unwrap_or_else(|_| "1..3".into());
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once("..") {
            Some((a, b)) => out.extend(a.trim().parse::<u64>()?..=b.trim_start_matches('=').trim().parse::<u64>()?),
            None => out.push(part.parse()?),
        }
    }
    Ok(out)
}

fn steps() -> anyhow::Result<usize> {
    Ok(std::env::var("INGRID_SIM_STEPS").map_or(Ok(40), |s| s.parse())?)
}

/// What one seed did.
struct Report {
    seed: u64,
    steps: usize,
    elapsed: Duration,
    violations: Vec<invariants::Violation>,
    log: Vec<String>,
    fired: String,
    hub_log: String,
    signatures: usize,
    diagnosis: Vec<String>,
}

impl World {
    /// Runs strategy `s`.
    async fn execute(&mut self, s: Strategy) -> anyhow::Result<Outcome> {
        use Strategy::*;
        if s.actor() == Actor::Honest && !self.hub.is_up() && !matches!(s, HWatch | HWithdraw) {
            return Ok(Outcome::Skipped);
        }
        match s {
            OpenChannel => self.co_open_channel(true).await,
            OpenUnfunded => self.co_open_channel(false).await,
            FundChannel => self.co_fund_channel().await,
            Standby => self.co_standby().await,
            PayHub => self.co_pay_hub().await,
            PlanVirtual => self.co_plan_virtual().await,
            OpenVirtual => self.co_open_virtual().await,
            AcceptVirtual => self.co_accept_virtual().await,
            PayVirtual => self.co_pay_virtual(),
            RegisterParent => self.co_register_parent(false).await,
            RegisterParentStale => self.co_register_parent(true).await,
            RegisterOwnLedger => self.co_register_own_ledger().await,
            PreregisterVirtual => self.co_preregister_virtual().await,
            RefuteVirtualFinal => self.co_refute_virtual(true).await,
            RefuteVirtual => self.co_refute_virtual(false).await,
            RefuteParent => self.co_refute_parent().await,
            ForceMove => self.co_force_move().await,
            HugeVersion => self.co_huge_version().await,
            CloseVirtualAtHub => self.co_close_virtual_at_hub().await,
            CloseChannel => self.co_close_channel(false).await,
            CloseIgnoringTopUp => self.co_close_channel(true).await,
            AcceptTopUp => self.co_accept_top_up().await,
            Conclude => self.co_conclude().await,
            ConcludeFinal => self.co_conclude_final().await,
            Withdraw => self.co_withdraw().await,
            BadRequest => self.co_bad_request().await,
            Silence => Ok(Outcome::Done(String::new())),
            TimePasses => {
                let secs = match self.rng.random_range(0..10) {
                    0..=3 => self.rng.random_range(1..60),
                    4..=7 => self.rng.random_range(60..300),
                    _ => self.rng.random_range(300..=MAX_JUMP),
                };
                let notes = self.pass_time(secs).await?;
                Ok(Outcome::Done(format!(
                    "{secs}s pass{}",
                    if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) }
                )))
            }
            MineBlock => {
                use alloy::providers::ext::AnvilApi;
                self.reader().evm_mine(None).await?;
                Ok(Outcome::Done(format!("block {}", self.reader().get_block_number().await?)))
            }
            KillHub => {
                if !self.hub.is_up() {
                    return Ok(Outcome::Skipped);
                }
                self.hub.kill().await?;
                Ok(Outcome::Done("SIGKILL: the hub is down".into()))
            }
            RestartHub => {
                if self.hub.is_up() {
                    return Ok(Outcome::Skipped);
                }
                self.hub.start().await?;
                Ok(Outcome::Done("the hub is up again".into()))
            }
            CrashDuringNext => {
                if !self.hub.is_up() || self.crash_next.is_some() {
                    return Ok(Outcome::Skipped);
                }
                let ms = self.rng.random_range(0..400);
                self.crash_next = Some(Duration::from_millis(ms));
                Ok(Outcome::Done(format!("the hub will be killed {ms}ms into the next action")))
            }
            HOpenChannel => self.h_open_channel().await,
            HPayHub => self.h_pay_hub().await,
            HOpenVirtual => self.h_open_virtual().await,
            HPayVirtual => self.h_pay_virtual().await,
            HCloseVirtual => self.h_close_virtual().await,
            HAcceptTopUp => self.h_accept_top_up().await,
            HCloseChannel => self.h_close_channel().await,
            HSync => self.h_sync().await,
            HWatch => self.h_watch().await,
            HWithdraw => self.h_withdraw().await,
        }
    }

    /// Runs `s`; a failure of the infrastructure (an RPC error) is logged as a refusal, and
    /// no action runs longer than [`ACTION_TIMEOUT`].
    async fn attempt(&mut self, s: Strategy) -> Outcome {
        match tokio::time::timeout(ACTION_TIMEOUT, self.execute(s)).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => Outcome::Refused(format!("error: {e:#}").chars().take(300).collect()),
            Err(_) => Outcome::Refused(format!("timed out after {ACTION_TIMEOUT:?}")),
        }
    }

    /// One step: a strategy picked by weight until one applies (at most a few tries).
    async fn step(&mut self) -> anyhow::Result<()> {
        let n = self.steps;
        self.steps += 1;
        for _ in 0..16 {
            let s = self.weights.pick(&mut self.rng);
            let crash = if s.actor() == Actor::Environment { None } else { self.crash_next.take() };
            let outcome = match crash {
                None => self.attempt(s).await,
                Some(delay) => {
                    let killer = self.hub.crasher(delay);
                    let (outcome, restarted) = tokio::join!(self.attempt(s), killer);
                    self.hub.restarted(restarted).await?;
                    self.note(format!(
                        "#{n:03} hub SIGKILLed {}ms into {} and started again",
                        delay.as_millis(),
                        s.name()
                    ));
                    outcome
                }
            };
            let actor = match s.actor() {
                Actor::Coalition => "coalition",
                Actor::Honest => "honest",
                Actor::Environment => "world",
            };
            let line = match outcome {
                Outcome::Skipped if crash.is_none() => continue,
                Outcome::Skipped => format!("#{n:03} {actor} {}: (not applicable)", s.name()),
                Outcome::Done(what) => format!("#{n:03} {actor} {}: {what}", s.name()),
                Outcome::Refused(why) => format!("#{n:03} {actor} {}: refused: {why}", s.name()),
            };
            *self.fired.entry(s.name()).or_default() += 1;
            self.note(line);
            self.collect_honest_sigs();
            if self.wait_ingested(Duration::from_secs(1)).await? || !self.hub.is_up() {
                self.behind_since = None;
            } else if self.behind_since.is_none() {
                self.behind_since = Some(n);
            }
            return Ok(());
        }
        self.note(format!("#{n:03} nothing applicable"));
        Ok(())
    }
}

impl hubproc::HubProc {
    /// Kills the process `delay` from now (SIGKILL) and starts a new one; returns it.
    fn crasher(
        &self,
        delay: Duration,
    ) -> impl std::future::Future<Output = anyhow::Result<tokio::process::Child>> + use<> {
        let pid = self.pid();
        let spawner = self.spawner();
        async move {
            tokio::time::sleep(delay).await;
            if let Some(pid) = pid {
                tokio::process::Command::new("kill").args(["-9", &pid.to_string()]).status().await?;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            spawner.spawn().await
        }
    }
}

async fn run_seed(seed: u64, steps: usize, weights: Weights) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut w = World::new(seed, weights).await?;
    for _ in 0..steps {
        w.step().await?;
    }
    let behind_since = w.behind_since;
    let mut books = w.books("after the steps").await?;
    let unsettled = w.settle().await?;
    let mut violations = w.check(unsettled).await?;
    violations.append(&mut books);
    violations.extend(w.books("after the settlement").await?);
    if let Some(n) = behind_since
        && violations.iter().any(|v| v.invariant == "watcher")
    {
        w.diagnosis.push(format!("the watcher fell behind for good at step #{n:03}"));
    }
    let hub_log = w.hub.log_tail(40);
    Ok(Report {
        seed,
        steps,
        elapsed: started.elapsed(),
        violations,
        fired: w.fired.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
        log: std::mem::take(&mut w.log),
        hub_log,
        signatures: w.sigs.count,
        diagnosis: std::mem::take(&mut w.diagnosis),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_simulation() -> anyhow::Result<()> {
    let seeds = seeds()?;
    let steps = steps()?;
    let weights = Weights::from_env()?;
    println!("sim: seeds {seeds:?}, {steps} steps each, weights: {}", weights.overrides());
    if std::env::var_os("INGRID_SIM_VERBOSE").is_some() {
        for (s, w) in &weights.0 {
            println!("  {:<24} {w:>3}  {}", s.name(), s.doc());
        }
    }
    let mut summary = Vec::new();
    let mut failed = Vec::new();
    for seed in seeds {
        let result = tokio::time::timeout(SEED_TIMEOUT, run_seed(seed, steps, weights.clone())).await;
        let report = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                summary.push(format!("seed {seed}: ERROR {e:#}"));
                failed.push(seed);
                continue;
            }
            Err(_) => {
                summary.push(format!("seed {seed}: timed out after {SEED_TIMEOUT:?}"));
                failed.push(seed);
                continue;
            }
        };
        let kinds: Vec<&str> = report.violations.iter().map(|v| v.invariant).collect();
        let books = report.log.iter().find(|l| l.starts_with("check:")).map_or("", |l| &l["check: ".len()..]);
        summary.push(format!(
            "seed {seed}: {} in {:.1}s, {} steps, {} hub signatures checked; {books}{}",
            if kinds.is_empty() { "ok".to_string() } else { format!("FAILED [{}]", kinds.join(", ")) },
            report.elapsed.as_secs_f64(),
            report.steps,
            report.signatures,
            if kinds.is_empty() {
                String::new()
            } else {
                format!("\n    diagnosis: {}\n    strategies run: {}", report.diagnosis.join("; "), report.fired)
            }
        ));
        if std::env::var_os("INGRID_SIM_VERBOSE").is_none() && !report.violations.is_empty() {
            println!("\n======== seed {seed}: action log");
            for line in &report.log {
                println!("{line}");
            }
        }
        if !report.violations.is_empty() {
            failed.push(seed);
            println!(
                "\n======== seed {} FAILED after {} steps ({:.1}s)",
                report.seed,
                report.steps,
                report.elapsed.as_secs_f64()
            );
            for v in &report.violations {
                println!("-- invariant {}: {}", v.invariant, v.message);
            }
            println!("-- hub log (tail):\n{}", report.hub_log);
            println!(
                "-- replay: INGRID_SIM_SEEDS={seed} INGRID_SIM_STEPS={steps} INGRID_SIM_WEIGHTS='{}' cargo nextest run -p ingrid-hub --test it sim --no-capture",
                std::env::var("INGRID_SIM_WEIGHTS").unwrap_or_default()
            );
        }
    }
    println!("\n======== sim summary");
    for line in &summary {
        println!("{line}");
    }
    anyhow::ensure!(failed.is_empty(), "the simulation broke invariants with seeds {failed:?} (see above)");
    Ok(())
}
