//! The hub under test as an `ingrid serve` child process: started from a config file,
//! killed with SIGKILL at any point, started again on the same port and database. Its
//! stderr goes to a log file (its tail is printed when a seed fails).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ingrid_hub::config::Config;

use crate::harness::{ingrid_binary, wait_until};

/// Starts hub processes from one config file.
#[derive(Clone)]
pub struct Spawner {
    config_file: PathBuf,
    log_file: PathBuf,
    url: String,
}

impl Spawner {
    /// Starts a process and waits until it answers.
    pub async fn spawn(&self) -> anyhow::Result<tokio::process::Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_file)?;
        let mut command = tokio::process::Command::new(ingrid_binary());
        // The hub reads `INGRID_*` as configuration: the simulation's own settings are not.
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("INGRID_SIM_")) {
            command.env_remove(name);
        }
        let child = command
            .args(["serve", "--config"])
            .arg(&self.config_file)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()?;
        let http = ingrid_client_sdk::tls::http_client();
        let url = self.url.clone();
        let answered = wait_until(Duration::from_secs(30), "the hub to answer", || async {
            Ok(http.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()))
        })
        .await;
        if let Err(e) = answered {
            let mut child = child;
            let status = child.try_wait()?;
            let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .filter(|l| {
                    !l.trim_start().starts_with("at ")
                        && !l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit())
                })
                .take(20)
                .collect();
            anyhow::bail!(
                "{e} (exit status {status:?}, config {}); the hub's log ends with:\n{}",
                self.config_file.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(child)
    }
}

/// One hub process (or none, while it is down).
pub struct HubProc {
    spawner: Spawner,
    /// Where it answers.
    pub url: String,
    child: Option<tokio::process::Child>,
}

impl HubProc {
    /// Writes `config` (listening on a free loopback port) into `dir`; does not start it.
    pub fn new(dir: &Path, mut config: Config) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        config.listen = format!("127.0.0.1:{port}").parse()?;
        let config_file = dir.join("sim-hub.toml");
        std::fs::write(&config_file, toml::to_string(&config)?)?;
        let url = format!("http://127.0.0.1:{port}");
        Ok(Self {
            spawner: Spawner { config_file, log_file: dir.join("sim-hub.log"), url: url.clone() },
            url,
            child: None,
        })
    }

    /// Whether the process runs (it is only ever killed by this test).
    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process unless it runs, and waits until it answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.child.is_none() {
            self.child = Some(self.spawner.spawn().await?);
        }
        Ok(())
    }

    /// SIGKILL, then waits for the process to be gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// A starter of new processes of this hub.
    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }

    /// Takes the process started after a crash (the old one is reaped).
    pub async fn restarted(&mut self, new: anyhow::Result<tokio::process::Child>) -> anyhow::Result<()> {
        self.kill().await?;
        self.child = Some(new?);
        Ok(())
    }

    /// The last `lines` lines of the hub's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.spawner.log_file).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// The hub's Prometheus metrics without labels, by name.
pub async fn metrics(url: &str) -> anyhow::Result<std::collections::HashMap<String, f64>> {
    let text = ingrid_client_sdk::tls::http_client()
        .get(format!("{url}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect())
}
