//! Test environment: a fresh Postgres database (on `$DATABASE_URL`'s server, or on a
//! private cluster started for this test process), a fresh anvil with the contracts, and
//! hubs started in-process or as `ingrid` child processes.

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::chain::Asset;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::wallet::Wallet;
use ingrid_hub::config::Config;
use ingrid_hub::dev::{LocalPostgres, Stack, deploy_stack, fresh_database, local_config, postgres_server};
use ingrid_hub::server::{self, Running};
use sqlx::PgPool;
use tempfile::TempDir;

/// The operator token of test hubs.
pub const OPERATOR_TOKEN: &str = "5d0f3b8e91c7a24f6e0b1d9c3a7f52e8";

/// One test's world.
pub struct Env {
    /// The chain.
    pub devnet: Devnet,
    /// Contracts and assets.
    pub stack: Stack,
    /// The hub's key (anvil account 0).
    pub hub_key: PrivateKeySigner,
    /// This test's database.
    pub database_url: String,
    /// A pool on it, for assertions.
    pub pool: PgPool,
    /// Scratch space (client stores, config files).
    pub dir: TempDir,
    _postgres: Option<LocalPostgres>,
}

impl Env {
    /// A fresh database and chain with `accounts` funded dev accounts (0 is the hub's).
    pub async fn new(accounts: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (postgres, server) = postgres_server("test")?;
        let database_url = fresh_database(&server, "it").await?;
        let pool = ingrid_hub::db::connect(&database_url, 4).await?;
        ingrid_hub::db::MIGRATOR.run(&pool).await?;
        let devnet = Devnet::start_with_accounts(accounts)?;
        let hub_key = devnet.key(0);
        let stack = deploy_stack(&devnet, &hub_key, dir.path()).await?;
        Ok(Self { devnet, stack, hub_key, database_url, pool, dir, _postgres: postgres })
    }

    /// ETH, as the hub lists it.
    pub fn eth(&self) -> Asset {
        Asset { holder: self.stack.assets[0].holder, token: None }
    }

    /// The test token, as the hub lists it.
    pub fn token(&self) -> Asset {
        Asset { holder: self.stack.assets[1].holder, token: self.stack.assets[1].token }
    }

    /// A hub configuration for this world (listening on a free port, acting at once).
    pub fn config(&self) -> Config {
        let mut config = local_config(
            self.database_url.clone(),
            &self.devnet,
            &self.stack,
            "127.0.0.1:0".parse().expect("address"),
            0,
            100,
        );
        config.operator_token = Some(OPERATOR_TOKEN.into());
        config.db_max_connections = 8;
        config
    }

    /// Starts a hub in this process.
    pub async fn start_hub(&self) -> anyhow::Result<Running> {
        server::start(self.config()).await
    }

    /// A provider for `key`.
    pub fn provider(&self, key: &PrivateKeySigner) -> DynProvider {
        self.devnet.provider(key)
    }

    /// The hub's chain side (watcher and outbox) for this world, to drive by hand while no
    /// hub runs: acting at once (no confirmation depth), from block 0.
    pub fn chain(&self) -> ingrid_hub::chain::Chain {
        let config = self.config();
        ingrid_hub::chain::Chain {
            provider: self.provider(&self.hub_key),
            deployment: self.stack.contracts.deployment,
            assets: self.stack.assets.iter().map(|a| Asset { holder: a.holder, token: a.token }).collect(),
            key: self.hub_key.clone(),
            confirmations: 0,
            start_block: 0,
            poll: Duration::from_millis(100),
            head: Default::default(),
            settle_grace: config.channels.settle_grace,
            fee_bump_after: Duration::from_secs(5),
        }
    }

    /// A logged-in wallet for dev account `i` with a fresh store.
    pub async fn wallet(&self, url: &str, i: usize) -> anyhow::Result<Wallet> {
        let key = self.devnet.key(i);
        let store = ChannelStore::open(&self.dir.path().join(format!("client-{i}")))?;
        Ok(Wallet::connect(url, key.clone(), store, self.provider(&key)).await?)
    }

    /// A digest of every table a request may touch: equal digests mean nothing changed.
    pub async fn snapshot(&self) -> anyhow::Result<String> {
        let mut parts = Vec::new();
        for table in [
            "clients",
            "basic_channels",
            "channel_states",
            "channel_funding",
            "outbox",
            "idempotency_keys",
            "sessions",
            "used_challenges",
            "virtual_channels",
            "disputes",
            "top_ups",
        ] {
            // The outbox worker retries its entries in the background (attempts, due times,
            // transaction hashes): what a request could change is which actions exist.
            let rows = if table == "outbox" {
                "(SELECT dedup_key, kind, payload, status FROM outbox)".to_string()
            } else {
                table.to_string()
            };
            let digest: Option<String> =
                sqlx::query_scalar(&format!("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {rows} t"))
                    .fetch_one(&self.pool)
                    .await?;
            parts.push(format!("{table}:{}", digest.unwrap_or_default()));
        }
        Ok(parts.join(" "))
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Mines a block every 200 ms until `check` returns true or `timeout` passes: for hubs that
/// wait for confirmations on a chain that mines only when a transaction comes.
pub async fn mine_until<F, Fut>(env: &Env, timeout: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    use alloy::providers::ext::AnvilApi;
    let provider = env.provider(&env.hub_key);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        provider.anvil_mine(Some(1), None).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

/// Opens a basic channel of `wallet` with `mine` and `hub` whole units of `asset` (challenge
/// 3600 s) and waits up to a minute until the hub sees it funded.
pub async fn open_basic(
    wallet: &ingrid_client_sdk::wallet::Wallet,
    asset: alloy::primitives::Address,
    mine: u64,
    hub: u64,
) -> anyhow::Result<alloy::primitives::B256> {
    use ingrid_client_sdk::wallet::Deposit;
    let id = wallet.open_channel(&[Deposit { asset, mine: ether(mine), hub: ether(hub) }], 3600).await?;
    wallet.wait_until_open(id, Duration::from_secs(60)).await?;
    Ok(id)
}

/// One ether in wei.
pub fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// The `ingrid` binary built for these tests.
pub fn ingrid_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ingrid"))
}

/// Starts `ingrid serve --config <config>` as a child process (killed on drop) and waits
/// until it answers at `url`.
pub async fn spawn_hub(config: &std::path::Path, url: &str) -> anyhow::Result<tokio::process::Child> {
    let child = tokio::process::Command::new(ingrid_binary())
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let http = ingrid_client_sdk::tls::http_client();
    wait_until(Duration::from_secs(30), "the hub to answer", || async {
        Ok(http.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()))
    })
    .await?;
    Ok(child)
}

/// Moves the chain's clock `secs` forward and mines a block.
pub async fn advance_chain(env: &Env, secs: u64) -> anyhow::Result<()> {
    use alloy::providers::ext::AnvilApi;
    let provider = env.provider(&env.hub_key);
    provider.anvil_increase_time(secs).await?;
    provider.anvil_mine(Some(1), None).await?;
    Ok(())
}

/// The balances a channel's conclusion pushed on chain (from the adjudicator's `Concluded`
/// event), once there is one.
pub async fn concluded(env: &Env, channel: alloy::primitives::B256) -> anyhow::Result<Option<Vec<[U256; 2]>>> {
    use alloy::providers::Provider;
    use alloy::sol_types::SolEvent;
    use ingrid_client_sdk::bindings::adjudicator::Adjudicator::Concluded;
    let filter = alloy::rpc::types::Filter::new()
        .address(env.stack.contracts.deployment.adjudicator)
        .event_signature(Concluded::SIGNATURE_HASH)
        .topic1(channel)
        .from_block(0);
    let logs = env.provider(&env.hub_key).get_logs(&filter).await?;
    Ok(logs.last().map(|l| l.log_decode::<Concluded>()).transpose()?.map(|e| e.inner.data.balances))
}

/// Waits until `channel` concluded on chain; returns the balances pushed.
pub async fn wait_concluded(env: &Env, channel: alloy::primitives::B256) -> anyhow::Result<Vec<[U256; 2]>> {
    wait_until(Duration::from_secs(60), "the conclusion on chain", || async {
        Ok(concluded(env, channel).await?.is_some())
    })
    .await?;
    Ok(concluded(env, channel).await?.unwrap_or_default())
}

/// Every transaction sent to the adjudicator or an asset holder so far: (function, gas used).
pub async fn contract_gas(env: &Env) -> anyhow::Result<Vec<(&'static str, u64)>> {
    use alloy::consensus::Transaction as _;
    use alloy::providers::Provider;
    use alloy::sol_types::SolCall;
    use ingrid_client_sdk::bindings::adjudicator::Adjudicator as A;
    use ingrid_client_sdk::bindings::eth_holder::EthAssetHolder as H;
    let names: [([u8; 4], &str); 7] = [
        (A::registerCall::SELECTOR, "register"),
        (A::refuteCall::SELECTOR, "refute"),
        (A::concludeCall::SELECTOR, "conclude"),
        (A::concludeFinalCall::SELECTOR, "concludeFinal"),
        (H::depositCall::SELECTOR, "deposit"),
        (H::withdrawCall::SELECTOR, "withdraw"),
        (ingrid_client_sdk::bindings::TestToken::approveCall::SELECTOR, "approve"),
    ];
    let provider = env.provider(&env.hub_key);
    let mut contracts = vec![env.stack.contracts.deployment.adjudicator];
    contracts.extend(env.stack.assets.iter().map(|a| a.holder));
    let mut out = Vec::new();
    for n in 0..=provider.get_block_number().await? {
        let Some(block) = provider.get_block_by_number(n.into()).full().await? else { continue };
        for tx in block.transactions.txns() {
            if !tx.to().is_some_and(|to| contracts.contains(&to)) {
                continue;
            }
            let selector: [u8; 4] = tx.input().get(..4).and_then(|s| s.try_into().ok()).unwrap_or_default();
            let Some((_, name)) = names.iter().find(|(s, _)| *s == selector) else { continue };
            let receipt = provider.get_transaction_receipt(*tx.inner.tx_hash()).await?;
            out.push((*name, receipt.map_or(0, |r| r.gas_used)));
        }
    }
    Ok(out)
}

/// Prints the gas of every dispute-path transaction of a scenario (`gas | scenario | function |
/// gas` lines; run the tests with `--no-capture` to see them).
pub async fn print_dispute_gas(env: &Env, scenario: &str) -> anyhow::Result<()> {
    for (name, gas) in contract_gas(env).await? {
        if matches!(name, "register" | "refute" | "conclude" | "concludeFinal" | "withdraw") {
            println!("gas | {scenario} | {name} | {gas}");
        }
    }
    Ok(())
}

/// `n` `ingrid serve` processes on this world's database, each on a free port; their
/// children (killed on drop) and URLs.
pub async fn spawn_replicas(env: &Env, n: usize) -> anyhow::Result<(Vec<tokio::process::Child>, Vec<String>)> {
    let (mut hubs, mut urls) = (Vec::new(), Vec::new());
    for i in 0..n {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut config = env.config();
        config.listen = format!("127.0.0.1:{port}").parse()?;
        let file = env.dir.path().join(format!("replica-{i}.toml"));
        std::fs::write(&file, toml::to_string(&config)?)?;
        let url = format!("http://127.0.0.1:{port}");
        hubs.push(spawn_hub(&file, &url).await?);
        urls.push(url);
    }
    Ok((hubs, urls))
}
