//! Configuration: a TOML file overlaid with `INGRID_*` environment variables
//! (`INGRID_DATABASE_URL`, `INGRID_CHAIN__RPC_URL`, ...; `__` separates sections), checked
//! at start with errors that name the key. `deploy/ingrid.example.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail, ensure};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

/// The whole configuration of a hub process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Postgres connection URL. Required.
    pub database_url: String,
    /// Address the HTTP API listens on. Default `127.0.0.1:8547`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Address the operator API (`/v1/admin/*`) listens on, apart from the public API (which
    /// then answers 404 there). Default: unset, the operator API is served on `listen`.
    #[serde(default)]
    pub operator_listen: Option<SocketAddr>,
    /// Address `/metrics` (with `/readyz` and `/healthz`) is served on, apart from the public
    /// API (which then does not serve `/metrics`). Default: unset, served on `listen`.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// How often the metrics read the database and the readiness probe the database and the
    /// chain, milliseconds: `/metrics` and `/readyz` answer from these readings, so a scrape
    /// costs no query. Default 5000.
    #[serde(default = "default_metrics_refresh_ms")]
    pub metrics_refresh_ms: u64,
    /// File holding the hub's channel key as hex (the key also pays the hub's gas). Required.
    /// The hub refuses to start when others may read or write it (mode `o+rwx`) or its group
    /// may write it; chmod 600 (or 640/440 for a group that runs the hub).
    pub hub_key_file: PathBuf,
    /// Skips the check of `hub_key_file`'s permissions. Only for a publicly known key of a
    /// local development chain (the compose stack's). Default false.
    #[serde(default)]
    pub insecure_key_file: bool,
    /// Bearer token of the operator API; the operator API is off when unset. It must be long
    /// and random (at least 32 characters, e.g. `openssl rand -hex 32`): the hub refuses to
    /// start otherwise.
    #[serde(default)]
    pub operator_token: Option<String>,
    /// Largest pool of database connections (one of them listens for ended sessions, so at
    /// least 2). Default 16.
    #[serde(default = "default_db_connections")]
    pub db_max_connections: u32,
    /// The chain and the contracts.
    pub chain: ChainConfig,
    /// Assets the hub accepts. At least one.
    pub assets: Vec<AssetConfig>,
    /// Basic channel rules.
    #[serde(default)]
    pub channels: ChannelConfig,
    /// The apps the hub allows in virtual channels (`[apps]`): the address of each allowed
    /// app's contract (`coin_flip`, `tic_tac_toe`, `conditional_payment`). Default: none, only
    /// payment channels. The hub's coins never depend on an app's outcome (only on a virtual
    /// channel's total), but a forced game can hold its parents' coins up to
    /// `(2 + 16) * challenge duration` of the virtual channel after it is registered.
    #[serde(default)]
    pub apps: ingrid_client_sdk::app::AppDeployment,
    /// Client authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Limits against abuse: request rates, requests in flight, sessions, proposals and long
    /// polls (`[limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// HTTPS on `listen` and `operator_listen` (`[tls]`). Default: unset, plain HTTP (behind a
    /// TLS-terminating proxy, or on loopback).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The file this configuration was loaded from (a reload reads it again).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// The hub's own TLS certificate (rustls). `metrics_listen`, when set, stays plain HTTP for
/// a scraper inside the operator's network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file: the server certificate followed by its intermediates.
    pub cert_file: PathBuf,
    /// PEM file: the certificate's private key (PKCS#8, PKCS#1 or SEC1). Refused, like
    /// `hub_key_file`, when others may read it (unless `insecure_key_file`).
    pub key_file: PathBuf,
}

/// The chain and the contracts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoint: `http://`, `https://`, `ws://` or `wss://` (TLS: rustls). Required.
    pub rpc_url: String,
    /// Expected chain id; the hub refuses to start on another chain. Required.
    pub chain_id: u64,
    /// The adjudicator contract. Required.
    pub adjudicator: Address,
    /// Blocks on top of an event's block before the hub acts on it. Default 2.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// Block to start ingesting events from on a fresh database. Default 0.
    #[serde(default)]
    pub start_block: u64,
    /// How often the watcher and the outbox poll, milliseconds. Default 1000.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Seconds a transaction of the hub may wait unmined before the outbox replaces it with
    /// the same nonce and a higher fee (at least 12.5 % more, and the node's current
    /// estimate). Default 60.
    #[serde(default = "default_fee_bump_secs")]
    pub fee_bump_after_secs: u64,
}

fn default_fee_bump_secs() -> u64 {
    60
}

/// One asset the hub accepts, and how much of its own coins it puts into channels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    /// Short name shown to clients and operators, e.g. `ETH`.
    pub symbol: String,
    /// The asset holder contract (the asset's id in outcomes).
    pub holder: Address,
    /// The ERC20 token; unset for ETH.
    #[serde(default)]
    pub token: Option<Address>,
    /// Most the hub deposits into one basic channel, in the asset's smallest unit. Default 0.
    #[serde(default)]
    pub max_hub_deposit: U256,
    /// The hub deposits at most this many basis points of the client's deposit. Default
    /// 10000 (match the client's deposit one to one).
    #[serde(default = "default_ratio_bps")]
    pub collateral_ratio_bps: u32,
    /// Least the hub deposits into a basic channel when it deposits at all (a smaller
    /// non-zero request is refused). Default 0.
    #[serde(default)]
    pub min_hub_deposit: U256,
    /// When the hub's free balance in an open basic channel falls below this, the hub tops it
    /// up by `top_up_amount` (a deposit on chain, then an off-chain update the client
    /// countersigns), as long as its deposits into the channel stay within `max_hub_deposit`.
    /// Default: no top-ups.
    #[serde(default)]
    pub top_up_below: Option<U256>,
    /// How much one top-up deposits. Default 0 (no top-ups).
    #[serde(default)]
    pub top_up_amount: U256,
    /// Limits and fees of virtual channels in this asset (`[assets.virtual]`).
    #[serde(default, rename = "virtual")]
    pub virtual_policy: crate::policy::VirtualPolicy,
}

impl AssetConfig {
    /// Whether virtual channels in this asset cost a fee.
    pub fn charges_fees(&self) -> bool {
        let p = &self.virtual_policy;
        !p.fee_flat.is_zero() || p.fee_bps > 0 || p.fee_ppm_per_hour > 0
    }
}

/// Basic channel rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelConfig {
    /// Shortest challenge duration accepted, seconds. Default 86400 (a day): the hub learns
    /// of a registration `chain.confirmations` blocks late and then needs its refutation
    /// mined on a possibly congested chain. Local chains (`ingrid dev`, tests) set it lower.
    pub min_challenge_duration: u64,
    /// Longest challenge duration accepted, seconds. Default 604800 (a week).
    pub max_challenge_duration: u64,
    /// Longest challenge duration of a virtual channel that runs an app, seconds. Default
    /// 86400 (a day). A disputed app channel's record can stay open for 18 of its challenge
    /// durations (two to refute and start force-execution, then up to 16 forced moves, one
    /// each), and its parents, with the hub's coins in them, cannot conclude before.
    pub max_app_challenge_duration: u64,
    /// Longest validity of a virtual channel from its proposal, seconds. Default 604800.
    pub max_virtual_validity: u64,
    /// Seconds the hub waits for the clients before it goes to chain: past a virtual
    /// channel's validity (no final state yet), or after a final state fixed on chain lets
    /// the other parent settle off chain. Default 3600.
    pub settle_grace: u64,
    /// Most virtual channels one client may hold open or closing at once (its waiting
    /// proposals are capped by `limits.proposals_per_proposer`). Default: no limit.
    pub max_virtual_per_client: Option<u64>,
    /// Most basic channels one client may hold unfunded (status `funding`) at once. Default 2.
    /// The hub deposits its share only once the client's deposits are confirmed, so an
    /// unfunded channel costs the hub no coins, but rows and a watch.
    pub max_unfunded_per_client: u64,
    /// Seconds a quote of the hub stays valid. Default 60.
    pub quote_ttl: u64,
}

/// The production floor of a basic channel's challenge duration: a day.
pub const DEFAULT_MIN_CHALLENGE_DURATION: u64 = 24 * 3600;

fn default_max_validity() -> u64 {
    7 * 24 * 3600
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            min_challenge_duration: DEFAULT_MIN_CHALLENGE_DURATION,
            max_challenge_duration: 7 * 24 * 3600,
            max_app_challenge_duration: 24 * 3600,
            max_virtual_validity: default_max_validity(),
            settle_grace: 3600,
            max_virtual_per_client: None,
            max_unfunded_per_client: 2,
            quote_ttl: 60,
        }
    }
}

/// Client authentication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a login challenge stays valid, seconds. Default 300.
    pub challenge_ttl: u64,
    /// How long a session token stays valid, seconds. Default 86400.
    pub session_ttl: u64,
    /// Sessions each hub process keeps in memory, so a request needs no database read to
    /// know its client. Default 100000 (about 10 MB).
    pub session_cache: u32,
    /// Seconds a cached session is trusted before it is read again: the bound on a
    /// revocation whose notice a process missed (a notice normally arrives at once).
    /// Default 60.
    pub session_cache_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { challenge_ttl: 300, session_ttl: 86_400, session_cache: 100_000, session_cache_secs: 60 }
    }
}

/// Limits against abuse. A request over a rate or a cap of requests in flight is answered
/// 429 with a JSON reason and `Retry-After`, a cap of stored things (proposals) 409; either
/// changes nothing. Set a rate to 0 to turn it off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per second from one IP address, sustained (all routes). Default 50.
    pub ip_per_second: u32,
    /// Requests one IP address may send at once beyond its rate. Default 100.
    pub ip_burst: u32,
    /// Login requests (`/v1/auth/*`) per minute from one IP address (IPv6: one /64), each a
    /// possible new account: it bounds how fast one address makes accounts. Default 30.
    pub logins_per_minute: u32,
    /// Requests per second of one authenticated client (all its sessions), sustained.
    /// Default 20.
    pub client_per_second: u32,
    /// Requests one client may send at once beyond its rate. Default 40.
    pub client_burst: u32,
    /// Requests of one client in flight at once (long polls included). Default 8.
    pub client_concurrent: u32,
    /// Live sessions of one client; a login beyond it ends the client's oldest session.
    /// Default 8.
    pub sessions_per_client: u32,
    /// Proposals of one proposer waiting for their peers at once (a proposal stops counting
    /// when accepted, rejected or past its `validUntil`); incoming proposals never count
    /// against their peer. Default 16.
    pub proposals_per_proposer: u32,
    /// Long polls (`GET /v1/virtual-channels/{id}?unlessStatus=..&waitMs=..`) of one client at
    /// once. Default 2.
    pub long_polls_per_client: u32,
    /// Long polls of all clients at once. Default 1000.
    pub long_polls_total: u32,
    /// The request header naming the client's IP address, for a hub behind a reverse proxy
    /// that sets it (its last entry counts: the one the proxy appended). Unset (the default):
    /// the TCP peer's address. Set it only behind such a proxy: a client can write the header.
    pub client_ip_header: Option<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            ip_per_second: 50,
            ip_burst: 100,
            logins_per_minute: 30,
            client_per_second: 20,
            client_burst: 40,
            client_concurrent: 8,
            sessions_per_client: 8,
            proposals_per_proposer: 16,
            long_polls_per_client: 2,
            long_polls_total: 1000,
            client_ip_header: None,
        }
    }
}

impl LimitsConfig {
    /// No rate or cap that a local stack's tests and benchmarks (many clients on one address,
    /// thousands of requests a second) would reach.
    pub fn generous() -> Self {
        Self {
            ip_per_second: 0,
            logins_per_minute: 0,
            client_per_second: 0,
            client_concurrent: 1_000,
            sessions_per_client: 1_000,
            proposals_per_proposer: 1_000,
            long_polls_per_client: 1_000,
            long_polls_total: 100_000,
            ..Self::default()
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8547))
}
fn default_metrics_refresh_ms() -> u64 {
    5000
}
fn default_db_connections() -> u32 {
    16
}
fn default_confirmations() -> u64 {
    2
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_ratio_bps() -> u32 {
    10_000
}

impl Config {
    /// Loads the file at `path` (if given), overlays `INGRID_*` variables and validates.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            ensure!(path.exists(), "config file {} does not exist", path.display());
            figment = figment.merge(Toml::file(path));
        }
        let config: Self =
            // INGRID_CONFIG names the file (`ingrid serve`), INGRID_LOG_FORMAT the log format and
            // INGRID_URL the hub of `ingrid admin`: they are not keys of the file.
            figment
                .merge(Env::prefixed("INGRID_").ignore(&["config", "log_format", "url"]).split("__"))
                .extract()
                .context("invalid configuration")?;
        config.validate()?;
        Ok(Self { source: path.map(Path::to_path_buf), ..config })
    }

    /// Checks what the types cannot: non-empty, consistent, readable.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(!self.assets.is_empty(), "assets: at least one asset must be configured");
        for (i, a) in self.assets.iter().enumerate() {
            ensure!(!a.symbol.is_empty(), "assets[{i}].symbol must not be empty");
            ensure!(!a.holder.is_zero(), "assets[{i}].holder must not be the zero address");
            if self.assets[..i].iter().any(|b| b.holder == a.holder) {
                bail!("assets[{i}].holder {} is listed twice", a.holder);
            }
        }
        ensure!(!self.chain.adjudicator.is_zero(), "chain.adjudicator must not be the zero address");
        ensure!(self.chain.poll_interval_ms > 0, "chain.poll_interval_ms must be positive");
        ensure!(
            self.channels.min_challenge_duration <= self.channels.max_challenge_duration,
            "channels.min_challenge_duration exceeds channels.max_challenge_duration"
        );
        ensure!(
            self.channels.min_challenge_duration <= self.channels.max_app_challenge_duration,
            "channels.min_challenge_duration exceeds channels.max_app_challenge_duration (no app channel could open)"
        );
        ensure!(self.auth.challenge_ttl > 0 && self.auth.session_ttl > 0, "auth ttls must be positive");
        // The SDK signs no challenge that is valid for longer (`login::MAX_CHALLENGE_LIFETIME`).
        ensure!(
            self.auth.challenge_ttl <= ingrid_protocol::login::MAX_CHALLENGE_LIFETIME,
            "auth.challenge_ttl must be at most {} seconds: clients refuse to sign longer-lived challenges",
            ingrid_protocol::login::MAX_CHALLENGE_LIFETIME
        );
        ensure!(
            self.db_max_connections >= 2,
            "db_max_connections must be at least 2 (one connection listens for ended sessions)"
        );
        ensure!(self.metrics_refresh_ms > 0, "metrics_refresh_ms must be positive");
        if let Some(token) = &self.operator_token {
            check_operator_token(token)?;
        }
        let mut addresses = vec![("listen", self.listen)];
        addresses.extend(self.operator_listen.map(|a| ("operator_listen", a)));
        addresses.extend(self.metrics_listen.map(|a| ("metrics_listen", a)));
        for (i, (key, address)) in addresses.iter().enumerate() {
            if let Some((other, _)) = addresses[..i].iter().find(|(_, a)| a == address && a.port() != 0) {
                bail!("{key} {address} is also {other}");
            }
        }
        let l = &self.limits;
        for (value, key) in [
            (l.client_concurrent, "limits.client_concurrent"),
            (l.sessions_per_client, "limits.sessions_per_client"),
            (l.proposals_per_proposer, "limits.proposals_per_proposer"),
            (l.long_polls_per_client, "limits.long_polls_per_client"),
            (l.long_polls_total, "limits.long_polls_total"),
        ] {
            ensure!(value > 0, "{key} must be positive");
        }
        for (rate, burst, key) in [
            (l.ip_per_second, l.ip_burst, "limits.ip_burst"),
            (l.client_per_second, l.client_burst, "limits.client_burst"),
        ] {
            ensure!(rate == 0 || burst > 0, "{key} must be positive while its rate is on");
        }
        if let Some(tls) = &self.tls {
            for (key, path) in [("tls.cert_file", &tls.cert_file), ("tls.key_file", &tls.key_file)] {
                ensure!(path.is_file(), "{key}: {} is not a readable file", path.display());
            }
            if !self.insecure_key_file {
                check_key_file_mode("tls.key_file", &tls.key_file)?;
            }
        }
        self.hub_key().map(|_| ())
    }

    /// Reads the hub's key from `hub_key_file`, refusing a file others may read (unless
    /// `insecure_key_file`).
    pub fn hub_key(&self) -> anyhow::Result<PrivateKeySigner> {
        if !self.insecure_key_file {
            check_key_file_mode("hub_key_file", &self.hub_key_file)?;
        }
        read_key_file(&self.hub_key_file)
    }
}

/// Refuses an operator token that is short or visibly not random: fewer than 32 characters,
/// or fewer than 10 distinct ones (a 32-digit random hex string has about 15).
pub fn check_operator_token(token: &str) -> anyhow::Result<()> {
    let distinct: std::collections::BTreeSet<char> = token.chars().collect();
    ensure!(
        token.chars().count() >= 32 && distinct.len() >= 10,
        "operator_token must be long and random: at least 32 characters with 10 distinct ones (e.g. `openssl rand \
         -hex 32`); this one has {} characters, {} distinct",
        token.chars().count(),
        distinct.len()
    );
    Ok(())
}

/// Refuses a key file whose mode lets others read, write or run it, or its group write it.
/// `key` names the configuration key in the message.
#[cfg(unix)]
pub fn check_key_file_mode(key: &str, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        std::fs::metadata(path).with_context(|| format!("{key}: cannot read {}", path.display()))?.permissions().mode();
    ensure!(
        mode & 0o027 == 0,
        "{key}: {} has mode {:o}: others may read it or its group write it; chmod 600 it (640 or 440 for a \
         group that runs the hub)",
        path.display(),
        mode & 0o777
    );
    Ok(())
}

/// Permissions are not checked where they are not Unix modes.
#[cfg(not(unix))]
pub fn check_key_file_mode(_key: &str, _path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Writes a key file readable by its owner only (mode 600).
pub fn write_key_file(path: &Path, key: &PrivateKeySigner) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    writeln!(file, "{:#x}", key.to_bytes())?;
    Ok(())
}

/// Reads a hex private key (with or without `0x`, surrounding whitespace ignored).
pub fn read_key_file(path: &Path) -> anyhow::Result<PrivateKeySigner> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("hub_key_file: cannot read {}", path.display()))?;
    text.trim()
        .parse::<PrivateKeySigner>()
        .with_context(|| format!("hub_key_file: {} does not hold a hex private key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_with_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ingrid.example.toml");
        let config: Config = Figment::new().merge(Toml::file(&path)).extract().expect("example parses");
        assert_eq!(config.assets.len(), 2);
        assert_eq!(config.assets[1].collateral_ratio_bps, 5000);
        assert_eq!(config.assets[0].max_hub_deposit, U256::from(10u64).pow(U256::from(19)));
        assert_eq!(config.chain.confirmations, 2);
        assert_eq!(config.channels.max_challenge_duration, 604_800);
        assert_eq!(config.channels.min_challenge_duration, 86_400);
        assert_eq!(config.channels.max_virtual_per_client, Some(100));
        let eth = &config.assets[0].virtual_policy;
        assert_eq!((eth.fee_bps, eth.fee_ppm_per_hour, eth.max_locked_fraction_bps), (10, 5, Some(9000)));
        assert!(config.assets[0].charges_fees() && !config.assets[1].charges_fees());
    }

    #[test]
    fn the_default_challenge_floor_leaves_the_watcher_a_day() {
        // A registration must not time out while a congested chain delays the refutation.
        assert_eq!(ChannelConfig::default().min_challenge_duration, 86_400);
    }

    #[test]
    fn unknown_keys_and_missing_required_keys_are_errors() {
        let figment =
            Figment::new().merge(Toml::string("database_url = \"x\"\nlisten = \"127.0.0.1:1\"\ncolour = 3\n"));
        let err = figment.extract::<Config>().expect_err("refused");
        assert!(err.to_string().contains("colour") || err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn a_short_or_patterned_operator_token_is_refused() {
        assert!(check_operator_token("change-me").is_err());
        assert!(check_operator_token(&"ab".repeat(20)).is_err(), "long but not random");
        assert!(check_operator_token("3f9a0c7e1b5d2f8a6c4e0b9d7f1a3c5e").is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("hub.key");
        write_key_file(&path, &PrivateKeySigner::random())?;
        assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        check_key_file_mode("hub_key_file", &path)?;
        for (mode, ok) in [(0o644, false), (0o604, false), (0o620, false), (0o640, true), (0o440, true)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            assert_eq!(check_key_file_mode("hub_key_file", &path).is_ok(), ok, "mode {mode:o}");
        }
        Ok(())
    }

    #[test]
    fn validation_names_the_offending_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ingrid.example.toml");
        let mut config: Config = Figment::new().merge(Toml::file(&path)).extract().expect("example parses");
        config.channels.min_challenge_duration = 10 * config.channels.max_challenge_duration;
        let err = config.validate().expect_err("refused").to_string();
        assert!(err.contains("channels.min_challenge_duration"), "{err}");
        let mut config: Config = Figment::new().merge(Toml::file(&path)).extract().expect("example parses");
        config.channels.max_app_challenge_duration = config.channels.min_challenge_duration - 1;
        let err = config.validate().expect_err("refused").to_string();
        assert!(err.contains("channels.max_app_challenge_duration"), "{err}");
        let mut config: Config = Figment::new().merge(Toml::file(&path)).extract().expect("example parses");
        config.assets[1].holder = config.assets[0].holder;
        let err = config.validate().expect_err("refused").to_string();
        assert!(err.contains("assets[1].holder"), "{err}");
    }
}
