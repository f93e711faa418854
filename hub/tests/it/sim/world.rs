//! One seed's world: a real anvil with the contracts, a fresh Postgres database, the hub as a
//! child process, honest SDK wallets and the coalition's accounts; the seeded RNG that picks
//! every action; the action log; and what the invariants need to remember (every hub
//! signature seen, the fees and payments the hub earned).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use ingrid_client_sdk::chain::{self, phase};
use ingrid_client_sdk::client::{HubClient, RetryPolicy};
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::wallet::Wallet;
use ingrid_client_sdk::{Deployment, State};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::coalition::{Coalition, Member};
use super::honest::{HVirtual, Honest};
use super::hubproc::{HubProc, metrics};
use super::strategy::Weights;
use crate::harness::Env;

/// Accounts: the hub, then the honest clients, then the coalition, then an outsider who
/// sends the permissionless transactions of the settlement (`conclude`).
pub const HONEST: usize = 3;
/// Accounts the coalition controls.
pub const COALITION: usize = 3;
const ACCOUNTS: usize = 1 + HONEST + COALITION + 1;
const OUTSIDER: usize = ACCOUNTS - 1;

/// Challenge duration of the honest clients' basic channels, and of their virtual channels.
pub const HONEST_CHALLENGE: u64 = 1200;
/// Challenge duration of honest virtual channels; every time jump is shorter than this, and
/// the honest watchers run before each jump, so an honest client always refutes in time.
pub const HONEST_V_CHALLENGE: u64 = 600;
/// Longest single time jump (seconds).
pub const MAX_JUMP: u64 = 500;
/// `channels.settle_grace` of the hub under test (seconds of wall-clock time).
pub const SETTLE_GRACE: u64 = 8;

/// The amounts of the simulation are in milli-ether.
pub fn units(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000_000_000_000u64)
}

/// An amount in units, for the log (to the micro-unit; `~` when rounded).
pub fn fmt_units(x: U256) -> String {
    let micro = U256::from(1_000_000_000u64);
    let (q, r) = (x / units(1), (x % units(1)) / micro);
    let exact = (x % micro).is_zero();
    let frac =
        if r.is_zero() { String::new() } else { format!(".{:06}", r.to::<u64>()).trim_end_matches('0').to_string() };
    format!("{}{q}{frac}u", if exact { "" } else { "~" })
}

/// A provider that signs with `key` and asks the node for the account's nonce before each
/// transaction. (alloy's default nonce cache also counts a transaction whose gas estimation
/// reverted, an everyday event for an adversary, and every later transaction of the key then
/// waits in the node's queue behind the gap for ever.)
pub fn provider(env: &Env, key: &alloy::signers::local::PrivateKeySigner) -> DynProvider {
    use alloy::providers::ProviderBuilder;
    ingrid_client_sdk::tls::install_crypto_provider();
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(alloy::network::EthereumWallet::from(key.clone()))
        .connect_http(env.devnet.anvil.endpoint_url())
        .erased()
}

/// Wall-clock seconds (the hub's clock for validity, quotes and grace periods).
pub use crate::harness::now;

/// The hub's configuration for the simulation: top-ups and fees on, so the flaws that need
/// them are reachable; a short settle grace so the hub acts within a run.
fn hub_config(env: &Env) -> ingrid_hub::config::Config {
    let mut config = env.config();
    let eth = &mut config.assets[0];
    eth.max_hub_deposit = units(100);
    eth.collateral_ratio_bps = 10_000;
    eth.top_up_below = Some(units(8));
    eth.top_up_amount = units(10);
    eth.virtual_policy.fee_flat = units(1);
    eth.virtual_policy.fee_bps = 100;
    config.channels.settle_grace = SETTLE_GRACE;
    // App channels planned with a longer challenge (the coalition picks up to 600 s) are
    // refused (`challenge_too_long`).
    config.channels.max_app_challenge_duration = 300;
    config.chain.poll_interval_ms = 100;
    config.chain.confirmations = 0;
    config.db_max_connections = 8;
    config
}

/// Every hub signature on a state seen by any client, by channel and version: two different
/// states signed at one version is a violation of invariant 3.
#[derive(Default)]
pub struct SigLog {
    seen: HashMap<(B256, u64), (B256, State)>,
    /// Signatures seen in all.
    pub count: usize,
    /// Equivocations found.
    pub violations: Vec<String>,
}

impl SigLog {
    /// Records `sig` if it is the hub's signature on `state`.
    pub fn see(&mut self, d: &Deployment, hub: Address, state: &State, sig: &[u8]) {
        let digest = d.state_digest(state);
        if ingrid_client_sdk::state::verify_digest(&digest, sig, hub).is_err() {
            return;
        }
        self.count += 1;
        match self.seen.get(&(state.channelId, state.version)) {
            None => {
                self.seen.insert((state.channelId, state.version), (digest, state.clone()));
            }
            Some((d0, s0)) if *d0 != digest => self.violations.push(format!(
                "the hub signed two states of channel {} at version {}:\n  {s0:?}\n  {state:?}",
                state.channelId, state.version
            )),
            Some(_) => {}
        }
    }
}

/// What happened to one chosen action.
pub enum Outcome {
    /// It ran; what it did.
    Done(String),
    /// The hub or the chain refused it (a normal outcome for an adversary).
    Refused(String),
    /// Its preconditions do not hold in this world: another action is chosen.
    Skipped,
}

/// One seed's world.
pub struct World {
    /// The chain, the database, the contracts (kept alive for the run).
    pub env: Env,
    /// The hub under test.
    pub hub: HubProc,
    /// Every random choice.
    pub rng: StdRng,
    /// Chain id and adjudicator.
    pub d: Deployment,
    /// The ETH asset holder (the only asset used).
    pub eth: Address,
    /// The hub's address.
    pub hub_addr: Address,
    /// The honest clients.
    pub honest: Vec<Honest>,
    /// Virtual channels between honest clients.
    pub hv: Vec<HVirtual>,
    /// The colluding clients.
    pub co: Coalition,
    /// Hub signatures seen.
    pub sigs: SigLog,
    /// The action log.
    pub log: Vec<String>,
    /// Fees of the virtual channels the hub opened (countersigned), per the hub's quotes.
    pub fees: U256,
    /// Payments to the hub in basic channels, countersigned.
    pub paid_to_hub: U256,
    /// Sends permissionless transactions (conclusions) during the settlement.
    pub outsider: DynProvider,
    /// Block and balances when the simulation started (after the deployment).
    pub start_block: u64,
    /// Balances of every account at `start_block`.
    pub start_balances: HashMap<Address, U256>,
    /// Strategy weights.
    pub weights: Weights,
    /// Kill the hub this long into the next action (then start it again).
    pub crash_next: Option<Duration>,
    /// The ingested block the last time the watcher did not catch up (to wait less).
    pub lagging_at: Option<u64>,
    /// How often each strategy ran (not skipped).
    pub fired: BTreeMap<&'static str, u32>,
    /// Steps run.
    pub steps: usize,
    /// What the checks recognised in a failure (the flaw behind it, when known).
    pub diagnosis: Vec<String>,
    /// The first step after which the watcher stayed behind the chain (reset when it caught up).
    pub behind_since: Option<usize>,
}

impl World {
    /// A fresh world for `seed`.
    pub async fn new(seed: u64, weights: Weights) -> anyhow::Result<Self> {
        let env = Env::new(ACCOUNTS).await?;
        let mut hub = HubProc::new(env.dir.path(), hub_config(&env))?;
        hub.start().await?;
        let d = env.stack.contracts.deployment;
        let eth = env.eth().holder;
        let hub_addr = env.hub_key.address();
        let mut honest = Vec::new();
        for i in 0..HONEST {
            let key = env.devnet.key(1 + i);
            let store = ChannelStore::open(&env.dir.path().join(format!("client-{}", 1 + i)))?;
            let wallet = Wallet::connect(&hub.url, key.clone(), store, provider(&env, &key)).await?;
            honest.push(Honest::new(format!("H{i}"), wallet));
        }
        let mut members = Vec::new();
        for i in 0..COALITION {
            let key = env.devnet.key(1 + HONEST + i);
            let mut api = HubClient::new(&hub.url)
                .with_retry(RetryPolicy { attempts: 2, first_delay: Duration::from_millis(50) });
            api.login(&key).await?;
            members.push(Member { name: format!("C{i}"), provider: provider(&env, &key), key, api });
        }
        let outsider = provider(&env, &env.devnet.key(OUTSIDER));
        let provider = env.provider(&env.hub_key);
        let start_block = provider.get_block_number().await?;
        let mut start_balances = HashMap::new();
        for i in 0..ACCOUNTS {
            let a = env.devnet.key(i).address();
            start_balances.insert(a, provider.get_balance(a).block_id(start_block.into()).await?);
        }
        Ok(Self {
            env,
            hub,
            rng: StdRng::seed_from_u64(seed),
            d,
            eth,
            hub_addr,
            honest,
            hv: Vec::new(),
            co: Coalition { members, channels: Vec::new(), virtuals: Vec::new(), own_ledgers: Vec::new() },
            sigs: SigLog::default(),
            log: Vec::new(),
            fees: U256::ZERO,
            paid_to_hub: U256::ZERO,
            outsider,
            start_block,
            start_balances,
            weights,
            crash_next: None,
            lagging_at: None,
            fired: BTreeMap::new(),
            steps: 0,
            diagnosis: Vec::new(),
            behind_since: None,
        })
    }

    /// The outsider's provider: reads, and the permissionless transactions of the settlement.
    pub fn reader(&self) -> DynProvider {
        self.outsider.clone()
    }

    /// Appends to the action log (and prints it live when `INGRID_SIM_VERBOSE` is set).
    pub fn note(&mut self, line: String) {
        if std::env::var_os("INGRID_SIM_VERBOSE").is_some() {
            println!("{line}");
        }
        self.log.push(line);
    }

    /// The latest block.
    pub async fn head(&self) -> anyhow::Result<u64> {
        Ok(self.reader().get_block_number().await?)
    }

    /// The adjudicator's clock.
    pub async fn chain_time(&self) -> anyhow::Result<u64> {
        Ok(ingrid_client_sdk::dispute::chain_time(&self.reader()).await?)
    }

    /// Waits (at most `limit`) until the hub ingested every block; returns whether it did.
    pub async fn wait_ingested(&mut self, limit: Duration) -> anyhow::Result<bool> {
        if !self.hub.is_up() {
            return Ok(false);
        }
        let head = self.head().await?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let ingested =
                metrics(&self.hub.url).await.ok().and_then(|m| m.get("ingrid_chain_ingested_block").copied());
            if ingested.is_some_and(|b| b as u64 >= head) {
                self.lagging_at = None;
                return Ok(true);
            }
            // A watcher that did not move since last time is stuck: do not wait for it again.
            let stuck = ingested.is_some() && ingested.map(|b| b as u64) == self.lagging_at;
            if stuck || tokio::time::Instant::now() >= deadline {
                self.lagging_at = ingested.map(|b| b as u64);
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Moves the chain's clock `secs` forward (mining a block). Every honest client runs its
    /// watcher first, as the SDK asks (more often than the shortest challenge duration).
    pub async fn pass_time(&mut self, secs: u64) -> anyhow::Result<Vec<String>> {
        use alloy::providers::ext::AnvilApi;
        let mut notes = Vec::new();
        self.wait_ingested(Duration::from_secs(2)).await?;
        tokio::time::sleep(Duration::from_millis(150)).await;
        if let Some(waited) = self.wait_for_hub_disputes().await? {
            notes.push(waited);
        }
        if self.hub.is_up() {
            self.h_finish_opens().await;
        }
        for h in &mut self.honest {
            match h.wallet.watch_once().await {
                Ok(r) if !r.refuted.is_empty() || !r.too_late.is_empty() => notes.push(format!(
                    "{} watcher refuted {} (too late: {})",
                    h.name,
                    r.refuted.len(),
                    r.too_late.len()
                )),
                Ok(_) => {}
                Err(e) => notes.push(format!("{} watcher failed: {e}", h.name)),
            }
        }
        let p = self.env.provider(&self.env.hub_key);
        p.anvil_increase_time(secs).await?;
        p.anvil_mine(Some(1), None).await?;
        Ok(notes)
    }

    /// Time is fair to the hub: the chain's clock moves on only once the hub has no
    /// refutation and no registration in flight, or waiting out a lease after a crash (its
    /// clock is the wall clock, which the simulation does not compress). Bounded; returns a
    /// note when it had to wait long.
    pub async fn wait_for_hub_disputes(&mut self) -> anyhow::Result<Option<String>> {
        if !self.hub.is_up() {
            return Ok(None);
        }
        let started = tokio::time::Instant::now();
        let limit = Duration::from_secs(135);
        loop {
            let busy = self.hub_dispute_work().await.unwrap_or_default();
            if busy.is_empty() {
                let waited = started.elapsed();
                return Ok((waited > Duration::from_secs(3))
                    .then(|| format!("waited {}s for the hub's {}", waited.as_secs(), "dispute actions")));
            }
            if started.elapsed() >= limit {
                return Ok(Some(format!(
                    "the hub's dispute actions still pending after {}s: {}",
                    limit.as_secs(),
                    busy.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The hub's pending refutations, and registrations already tried (in flight or leased),
    /// from its operator API.
    async fn hub_dispute_work(&self) -> anyhow::Result<Vec<String>> {
        let list: serde_json::Value = ingrid_client_sdk::tls::http_client()
            .get(format!("{}/v1/admin/outbox?limit=1000", self.hub.url))
            .bearer_auth(crate::harness::OPERATOR_TOKEN)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .json()
            .await?;
        let entries = list["entries"].as_array().cloned().unwrap_or_default();
        Ok(entries
            .iter()
            .filter(|e| e["status"] == "pending")
            .filter(|e| match e["kind"].as_str().unwrap_or("") {
                "refute" | "refute_virtual" => true,
                "register" => e["attempts"].as_i64().unwrap_or(0) > 0,
                _ => false,
            })
            .map(|e| format!("{} (tried {})", e["kind"].as_str().unwrap_or("?"), e["attempts"]))
            .collect())
    }

    /// The dispute record of `key` (a ledger channel's id or a sub-channel key).
    pub async fn record(&self, key: B256) -> anyhow::Result<chain::DisputeRecord> {
        Ok(chain::dispute(&self.reader(), &self.d, key).await?)
    }

    /// Whether ledger channel `id` concluded on chain.
    pub async fn concluded(&self, id: B256) -> anyhow::Result<bool> {
        Ok(self.record(id).await?.phase == phase::CONCLUDED)
    }

    /// Collects the hub's signatures in the honest clients' stores.
    pub fn collect_honest_sigs(&mut self) {
        for h in &self.honest {
            let Ok(records) = h.wallet.store().list() else { continue };
            for r in records {
                let i = r.hub_index.index();
                self.sigs.see(&self.d, self.hub_addr, &r.latest.state, &r.latest.sigs[i]);
            }
        }
    }
}
