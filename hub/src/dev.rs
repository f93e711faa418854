//! `ingrid dev`: the embedded local stack. A private Postgres cluster in a data directory
//! (Debian's binaries, run as an unprivileged user), a local anvil chain with the contracts
//! and a test token deployed, the migrations, and the hub serving; all stopped on exit.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail, ensure};
use ingrid_client_sdk::chain;
use ingrid_client_sdk::devnet::Devnet;

use crate::config::{AssetConfig, AuthConfig, ChainConfig, ChannelConfig, Config};
use crate::server;

/// Where Debian installs the Postgres server binaries.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn pg_bin(name: &str) -> PathBuf {
    let bin = std::env::var_os("INGRID_PG_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(PG_BIN));
    bin.join(name)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// Postgres refuses to run as root: as root, run its commands as the `postgres` user.
fn pg_command(name: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(name));
        c
    } else {
        Command::new(pg_bin(name))
    }
}

fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let out = command
        .output()
        .with_context(|| format!("{what}: could not start (is PostgreSQL installed? run scripts/setup.sh)"))?;
    ensure!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A private Postgres cluster listening on loopback only; stopped on drop.
pub struct LocalPostgres {
    dir: PathBuf,
    port: u16,
}

impl LocalPostgres {
    /// Creates the cluster in `dir` if needed and starts it on a free port.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        if is_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(&dir);
            run(chown, "chown of the data directory")?;
        }
        if !dir.join("PG_VERSION").exists() {
            let mut initdb = pg_command("initdb");
            initdb.arg("-D").arg(&dir).args(["-A", "trust", "-U", "postgres", "--no-instructions", "-E", "UTF8"]);
            run(initdb, "initdb")?;
        }
        let port = free_port()?;
        let mut start = pg_command("pg_ctl");
        start
            .arg("-D")
            .arg(&dir)
            .arg("-l")
            .arg(dir.join("server.log"))
            .arg("-o")
            .arg(format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.display()))
            .args(["-w", "start"]);
        run(start, "pg_ctl start")?;
        Ok(Self { dir, port })
    }

    /// URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` unless it exists.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres")).await?;
        if !crate::db::database_exists(&mut conn, name).await? {
            crate::db::create_database(&mut conn, name).await?;
        }
        Ok(())
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        let mut stop = pg_command("pg_ctl");
        stop.arg("-D").arg(&self.dir).args(["-m", "fast", "-w", "stop"]);
        if let Err(e) = run(stop, "pg_ctl stop") {
            tracing::warn!(error = ?e, "stopping the local Postgres failed");
        }
    }
}

/// Where `ingrid dev` keeps its cluster: in the data directory, or, when running as root
/// (Postgres then runs as the `postgres` user, who may not reach the data directory), in a
/// directory of the system's temp dir named after the data directory.
fn cluster_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    if !is_root() {
        return Ok(data_dir.join("postgres"));
    }
    std::fs::create_dir_all(data_dir)?;
    let tag = alloy::primitives::keccak256(data_dir.canonicalize()?.to_string_lossy().as_bytes());
    Ok(std::env::temp_dir().join(format!("ingrid-pg-{}", hex::encode(&tag[..6]))))
}

/// A Postgres server for demos, tests and benchmarks: `$DATABASE_URL`'s, or else a private
/// cluster in the temp dir (stopped when the returned handle drops). Returns the handle (if
/// a cluster was started) and a URL of the server.
pub fn postgres_server(tag: &str) -> anyhow::Result<(Option<LocalPostgres>, String)> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok((None, url));
    }
    let dir = std::env::temp_dir().join(format!("ingrid-{tag}-pg-{}-{}", std::process::id(), rand::random::<u32>()));
    let cluster = LocalPostgres::start(&dir)?;
    let url = cluster.url("postgres");
    Ok((Some(cluster), url))
}

/// Creates a database named `prefix` plus a random suffix on the server of `server_url`
/// (any database URL of it) and returns the new database's URL.
pub async fn fresh_database(server_url: &str, prefix: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let name = format!("{prefix}_{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut conn = sqlx::PgConnection::connect(server_url).await.context("connecting to the Postgres server")?;
    crate::db::create_database(&mut conn, &name).await?;
    let base = server_url.rsplit_once('/').map_or(server_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// Options of `ingrid dev`.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Where the cluster and the generated files live.
    pub data_dir: PathBuf,
    /// Where the hub listens.
    pub listen: SocketAddr,
}

/// Runs the local stack until Ctrl-C.
pub async fn run_dev(options: DevOptions) -> anyhow::Result<()> {
    let postgres = LocalPostgres::start(&cluster_dir(&options.data_dir)?)?;
    postgres.create_database("ingrid").await?;
    let devnet = Devnet::start_with_block_time(1).context("starting anvil (run scripts/setup.sh first)")?;
    let hub_key = devnet.key(0);
    let stack = deploy_stack(&devnet, &hub_key, &options.data_dir).await?;
    let mut config = local_config(postgres.url("ingrid"), &devnet, &stack, options.listen, 1, 500);
    config.validate()?;
    let config_file = options.data_dir.join("ingrid.toml");
    std::fs::write(&config_file, toml_of(&config)?)?;
    // A reload (`POST /v1/admin/reload`, SIGHUP) reads this file again.
    config.source = Some(config_file.clone());
    let operator_token = config.operator_token.clone().unwrap_or_default();
    let running = server::start(config).await?;
    println!("ingrid dev: hub {} serving on http://{}", hub_key.address(), running.addr);
    println!("  chain      {} (chain id {})", devnet.anvil.endpoint_url(), stack.contracts.deployment.chain_id);
    println!("  adjudicator {}", stack.contracts.deployment.adjudicator);
    for a in &stack.assets {
        println!(
            "  asset {:<5} holder {}{}",
            a.symbol,
            a.holder,
            a.token.map(|t| format!(", token {t}")).unwrap_or_default()
        );
    }
    println!("  postgres   {}", postgres.url("ingrid"));
    println!("  config     {}", config_file.display());
    println!("  operator token: {operator_token}");
    println!("  funded client keys: anvil dev accounts 1..9 (e.g. {:#x})", devnet.anvil.keys()[1].to_bytes());
    println!("Ctrl-C stops the hub, the chain and the database.");
    running.run_until_signal().await;
    Ok(())
}

/// A configuration for a hub on `devnet` with `stack`, its database at `database_url`,
/// acting on events `confirmations` blocks deep and polling every `poll_ms`.
pub fn local_config(
    database_url: String,
    devnet: &Devnet,
    stack: &Stack,
    listen: SocketAddr,
    confirmations: u64,
    poll_ms: u64,
) -> Config {
    Config {
        database_url,
        listen,
        hub_key_file: stack.key_file.clone(),
        operator_token: Some(hex::encode(rand::random::<[u8; 32]>())),
        operator_listen: None,
        metrics_listen: None,
        metrics_refresh_ms: 200,
        insecure_key_file: false,
        tls: None,
        db_max_connections: 16,
        chain: ChainConfig {
            rpc_url: devnet.anvil.endpoint_url().to_string(),
            chain_id: stack.contracts.deployment.chain_id,
            adjudicator: stack.contracts.deployment.adjudicator,
            confirmations,
            start_block: 0,
            poll_interval_ms: poll_ms,
            fee_bump_after_secs: 5,
        },
        assets: stack.assets.clone(),
        // A local chain: disputes of a minute are enough (production: a day at least).
        channels: ChannelConfig { min_challenge_duration: 60, ..ChannelConfig::default() },
        // The local stack allows the apps it deployed.
        apps: stack.contracts.apps,
        auth: AuthConfig::default(),
        // Every client of a local stack comes from 127.0.0.1.
        limits: crate::config::LimitsConfig::generous(),
        source: None,
    }
}

/// What [`deploy_stack`] deployed.
pub struct Stack {
    /// The contracts.
    pub contracts: chain::Contracts,
    /// The assets, ETH first, then the test token.
    pub assets: Vec<AssetConfig>,
    /// The hub key file written.
    pub key_file: PathBuf,
}

/// Deploys the contracts and a test token from `hub_key`, mints test tokens to the dev
/// accounts, and writes the hub key file into `dir`.
pub async fn deploy_stack(devnet: &Devnet, hub_key: &PrivateKeySigner, dir: &Path) -> anyhow::Result<Stack> {
    let provider = devnet.provider(hub_key);
    let contracts = chain::deploy(&provider).await?;
    let token = chain::deploy_test_token(&provider, &contracts).await?;
    let Some(token_address) = token.token else { bail!("the test token has no address") };
    let million = U256::from(1_000_000u64) * U256::from(1_000_000u64); // 6 decimals
    for address in devnet.anvil.addresses() {
        chain::mint_test_token(&provider, token_address, *address, million).await?;
    }
    std::fs::create_dir_all(dir)?;
    let key_file = dir.join("hub.key");
    crate::config::write_key_file(&key_file, hub_key)?;
    let ether = U256::from(10u64).pow(U256::from(18));
    let assets = vec![
        AssetConfig {
            symbol: "ETH".into(),
            holder: contracts.eth_holder,
            token: None,
            max_hub_deposit: U256::from(100u64) * ether,
            collateral_ratio_bps: 10_000,
            min_hub_deposit: U256::ZERO,
            top_up_below: None,
            top_up_amount: U256::ZERO,
            virtual_policy: Default::default(),
        },
        AssetConfig {
            symbol: "tUSD".into(),
            holder: token.holder,
            token: Some(token_address),
            max_hub_deposit: million,
            collateral_ratio_bps: 10_000,
            min_hub_deposit: U256::ZERO,
            top_up_below: None,
            top_up_amount: U256::ZERO,
            virtual_policy: Default::default(),
        },
    ];
    Ok(Stack { contracts, assets, key_file })
}

fn toml_of(config: &Config) -> anyhow::Result<String> {
    let body = toml::to_string_pretty(config)?;
    Ok(format!("# Written by `ingrid dev`; deploy/ingrid.example.toml documents every key.\n{body}"))
}
