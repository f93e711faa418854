//! The hub's Prometheus metrics, all declared here with their help text and served as text on
//! `GET /metrics`.
//!
//! Two kinds:
//! - counters and histograms kept in the process (HTTP requests, virtual channels opened and
//!   closed): they start at zero with the process, as Prometheus counters do;
//! - gauges refreshed from Postgres at every scrape ([`Metrics::refresh`]): collateral,
//!   channels by status, chain cursor, outbox. They are right after a restart, since the
//!   database is the source of truth.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use sqlx::PgPool;

use crate::config::AssetConfig;
use crate::core::ChannelBooks;
use crate::db;
use ingrid_client_sdk::api::VirtualStatus;

/// Content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const BASIC_STATUSES: [&str; 4] = ["funding", "open", "closing", "closed"];
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// Every metric of the hub, registered in its own [`Registry`].
pub struct Metrics {
    registry: Registry,
    /// Asset holder address → symbol (the `asset` label), from the hub config.
    symbols: HashMap<Address, String>,
    /// The chain head the watcher saw last (0 until it saw one); the watcher writes it.
    pub chain_head_seen: Arc<AtomicU64>,
    /// Whether this process leads (set by the leader election).
    pub leading: Arc<std::sync::atomic::AtomicBool>,
    leader: IntGauge,
    disputes: IntGaugeVec,
    fees_earned: GaugeVec,

    hub_locked: GaugeVec,
    locked_total: GaugeVec,
    hub_free: GaugeVec,
    utilisation: GaugeVec,
    basic_channels: IntGaugeVec,
    virtual_channels: IntGaugeVec,
    open_virtual: IntGauge,
    virtual_opened: IntCounter,
    virtual_closed: IntCounterVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    db_pool_size: IntGauge,
    db_pool_idle: IntGauge,
    db_up: IntGauge,
    chain_head: IntGauge,
    chain_ingested: IntGauge,
    chain_lag: IntGauge,
    outbox_pending: IntGauge,
    outbox_failed: IntGauge,
    events_skipped: IntGauge,
    scrape_seconds: Gauge,
    refreshed_at: Gauge,
}

const DISPUTE_KINDS: [&str; 2] = ["basic", "virtual"];
const DISPUTE_RESULTS: [&str; 3] = ["open", "refuted", "concluded"];

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Names are fixed and distinct (the unit test renders them all): registering cannot fail.
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        tracing::error!(error = %e, "metric not registered");
    }
    metric
}

macro_rules! metric {
    ($registry:expr, $kind:ident, $name:expr, $help:expr) => {
        register(&$registry, $kind::new($name, $help).expect("valid metric"))
    };
    ($registry:expr, $kind:ident, $name:expr, $help:expr, $labels:expr) => {
        register(&$registry, $kind::new(Opts::new($name, $help), $labels).expect("valid metric"))
    };
}

impl Metrics {
    /// Declares and registers every metric; `assets` names the `asset` label values.
    pub fn new(assets: &[AssetConfig]) -> Self {
        let r = Registry::new();
        let m = Self {
            symbols: assets.iter().map(|a| (a.holder, a.symbol.clone())).collect(),
            chain_head_seen: Arc::new(AtomicU64::new(0)),
            leading: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            leader: metric!(
                r,
                IntGauge,
                "ingrid_leader",
                "1 if this process holds the leader lock and runs the chain watcher, the outbox and the expiry sweep; \
                 exactly one replica should."
            ),
            fees_earned: metric!(
                r,
                GaugeVec,
                "ingrid_fees_earned",
                "Fees earned per asset, in the asset's smallest unit: the fees of every accepted virtual channel, paid \
                 to the hub inside the proposer's parent's opening update. From the database.",
                &["asset"]
            ),
            disputes: metric!(
                r,
                IntGaugeVec,
                "ingrid_disputes",
                "Registrations on chain of the hub's basic channels and brokered virtual channels, by kind (basic, \
                 virtual) and result (open: registered, not concluded; refuted: a stale registration the hub answered \
                 with a newer state; concluded: settled on chain). From the database.",
                &["kind", "result"]
            ),
            hub_locked: metric!(
                r,
                GaugeVec,
                "ingrid_hub_locked",
                "The hub's own coins locked in virtual channels, per asset, in the asset's smallest unit: for every \
                 lock in the latest state of each open or closing basic channel, the virtual channel's opening \
                 balances of the participants the lock maps to the hub (what the hub paid in). From the database.",
                &["asset"]
            ),
            locked_total: metric!(
                r,
                GaugeVec,
                "ingrid_locked_total",
                "All coins locked in virtual channels, per asset, smallest unit: the sum of every lock amount in the \
                 latest state of each open or closing basic channel (both sides' shares; each virtual channel counts \
                 in both parents). From the database.",
                &["asset"]
            ),
            hub_free: metric!(
                r,
                GaugeVec,
                "ingrid_hub_free",
                "The hub's free coins in basic channels, per asset, smallest unit: the hub's balance in the latest \
                 state of each open basic channel (not locked, usable to back new virtual channels). From the database.",
                &["asset"]
            ),
            utilisation: metric!(
                r,
                GaugeVec,
                "ingrid_hub_utilisation",
                "Share of the hub's coins in channels that is locked in virtual channels, per asset: \
                 ingrid_hub_locked / (ingrid_hub_locked + ingrid_hub_free); 0 when both are 0.",
                &["asset"]
            ),
            basic_channels: metric!(
                r,
                IntGaugeVec,
                "ingrid_basic_channels",
                "Basic channels by status (funding, open, closing, closed). From the database.",
                &["status"]
            ),
            virtual_channels: metric!(
                r,
                IntGaugeVec,
                "ingrid_virtual_channels",
                "Virtual channels by status (proposed, open, closing, closed, rejected). From the database.",
                &["status"]
            ),
            open_virtual: metric!(
                r,
                IntGauge,
                "ingrid_virtual_channels_open",
                "Open virtual channels (status open): ingrid_virtual_channels{status=\"open\"}. From the database."
            ),
            virtual_opened: metric!(
                r,
                IntCounter,
                "ingrid_virtual_channels_opened_total",
                "Virtual channels opened (accepted) by this process since it started."
            ),
            virtual_closed: metric!(
                r,
                IntCounterVec,
                "ingrid_virtual_channels_closed_total",
                "Virtual channel close requests committed by this process since it started, by outcome: closed \
                 (both parents settled) or closing (one parent settled so far).",
                &["outcome"]
            ),
            http_requests: metric!(
                r,
                IntCounterVec,
                "ingrid_http_requests_total",
                "HTTP requests answered since start, by method, route template (or `unmatched`) and status class \
                 (2xx, 4xx, ...).",
                &["method", "route", "status"]
            ),
            http_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "ingrid_http_request_duration_seconds",
                        "Time to answer HTTP requests since start, by route template (or `unmatched`), seconds.",
                    )
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0]),
                    &["route"],
                )
                .expect("valid metric"),
            ),
            db_pool_size: metric!(
                r,
                IntGauge,
                "ingrid_db_pool_connections",
                "Connections in the database pool (idle and in use)."
            ),
            db_pool_idle: metric!(r, IntGauge, "ingrid_db_pool_idle", "Idle connections in the database pool."),
            db_up: metric!(
                r,
                IntGauge,
                "ingrid_db_up",
                "1 if the last scrape read the database, 0 if it failed (the gauges from the database are then stale)."
            ),
            chain_head: metric!(
                r,
                IntGauge,
                "ingrid_chain_head_block",
                "The latest chain block the event watcher saw (0 until it saw one, or when another replica runs it)."
            ),
            chain_ingested: metric!(
                r,
                IntGauge,
                "ingrid_chain_ingested_block",
                "The last block whose events are ingested (the durable cursor `events`; 0 before the first). \
                 From the database."
            ),
            chain_lag: metric!(
                r,
                IntGauge,
                "ingrid_chain_lag_blocks",
                "ingrid_chain_head_block - ingrid_chain_ingested_block (includes the confirmation depth); 0 while the \
                 head is unknown."
            ),
            outbox_pending: metric!(
                r,
                IntGauge,
                "ingrid_outbox_pending",
                "The outbox backlog: the hub's chain transactions not done yet (status pending). From the database."
            ),
            outbox_failed: metric!(
                r,
                IntGauge,
                "ingrid_outbox_failed",
                "The hub's chain transactions given up after their retries (status failed); each needs an operator. \
                 From the database."
            ),
            events_skipped: metric!(
                r,
                IntGauge,
                "ingrid_chain_events_skipped",
                "Chain events the watcher recorded but could not apply (malformed, unexpected, out of range) and \
                 skipped so that ingestion goes on; each needs an operator. From the database."
            ),
            scrape_seconds: metric!(
                r,
                Gauge,
                "ingrid_metrics_refresh_seconds",
                "Time the last refresh spent reading the database, seconds."
            ),
            refreshed_at: metric!(
                r,
                Gauge,
                "ingrid_metrics_refreshed_at_seconds",
                "Unix time of the last refresh that read the database (every metrics_refresh_ms): the gauges read \
                 from the database are as old as this. Stale while the database is unreachable."
            ),
            registry: r,
        };
        for symbol in m.symbols.values() {
            for g in [&m.hub_locked, &m.locked_total, &m.hub_free, &m.utilisation, &m.fees_earned] {
                g.with_label_values(&[symbol.as_str()]).set(0.0);
            }
        }
        for s in BASIC_STATUSES {
            m.basic_channels.with_label_values(&[s]).set(0);
        }
        for s in VirtualStatus::ALL.map(VirtualStatus::as_str) {
            m.virtual_channels.with_label_values(&[s]).set(0);
        }
        for kind in DISPUTE_KINDS {
            for result in DISPUTE_RESULTS {
                m.disputes.with_label_values(&[kind, result]).set(0);
            }
        }
        for o in ["closed", "closing"] {
            m.virtual_closed.with_label_values(&[o]).inc_by(0);
        }
        m
    }

    /// Counts a virtual channel opened (after the commit).
    pub fn virtual_opened(&self) {
        self.virtual_opened.inc();
    }

    /// Counts a committed virtual channel close: `closed` once both parents are settled.
    pub fn virtual_closed(&self, both_settled: bool) {
        self.virtual_closed.with_label_values(&[if both_settled { "closed" } else { "closing" }]).inc();
    }

    /// Counts an answered HTTP request. `route` must be a route template (bounded), not a path.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = METHODS.iter().find(|m| **m == method).copied().unwrap_or("other");
        let class = match status {
            100..=599 => ["1xx", "2xx", "3xx", "4xx", "5xx"][usize::from(status / 100 - 1)],
            _ => "other",
        };
        self.http_requests.with_label_values(&[method, route, class]).inc();
        self.http_duration.with_label_values(&[route]).observe(elapsed.as_secs_f64());
    }

    fn symbol(&self, asset: Address) -> String {
        self.symbols.get(&asset).cloned().unwrap_or_else(|| asset.to_string())
    }

    /// Reads the gauges that live in the database, and the pool and chain-head gauges.
    pub async fn refresh(&self, pool: &PgPool) -> sqlx::Result<()> {
        self.db_pool_size.set(i64::from(pool.size()));
        self.db_pool_idle.set(i64::try_from(pool.num_idle()).unwrap_or(i64::MAX));
        let started = std::time::Instant::now();
        let result = self.refresh_from_db(pool).await;
        self.scrape_seconds.set(started.elapsed().as_secs_f64());
        self.db_up.set(i64::from(result.is_ok()));
        if result.is_ok() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            self.refreshed_at.set(now.as_secs_f64());
        }
        result
    }

    async fn refresh_from_db(&self, pool: &PgPool) -> sqlx::Result<()> {
        let counts = db::status_counts(pool).await?;
        let count = |table: &str, status: &str| {
            counts.iter().find(|(t, s, _)| t == table && s == status).map_or(0, |(_, _, n)| *n)
        };
        for s in BASIC_STATUSES {
            self.basic_channels.with_label_values(&[s]).set(count("basic", s));
        }
        for s in VirtualStatus::ALL.map(VirtualStatus::as_str) {
            let n = count("virtual", s);
            self.virtual_channels.with_label_values(&[s]).set(n);
            if s == "open" {
                self.open_virtual.set(n);
            }
        }

        self.leader.set(i64::from(self.leading.load(Ordering::Relaxed)));
        for (asset, fees) in crate::db::fees_earned(pool).await? {
            self.fees_earned.with_label_values(&[self.symbol(asset).as_str()]).set(f64::from(fees));
        }
        let rows = db::dispute_counts(pool).await?;
        for kind in DISPUTE_KINDS {
            for result in DISPUTE_RESULTS {
                let n = rows.iter().find(|(k, r, _)| k == kind && r == result).map_or(0, |(_, _, n)| *n);
                self.disputes.with_label_values(&[kind, result]).set(n);
            }
        }
        let work = db::chain_work(pool).await?;
        let ingested = work.ingested;
        self.chain_ingested.set(ingested);
        self.outbox_pending.set(work.outbox_pending);
        self.outbox_failed.set(work.outbox_failed);
        self.events_skipped.set(work.events_skipped);
        let head = i64::try_from(self.chain_head_seen.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        self.chain_head.set(head);
        self.chain_lag.set(if head > 0 { (head - ingested).max(0) } else { 0 });

        self.refresh_collateral(pool).await
    }

    /// The collateral gauges, from [`collateral`].
    async fn refresh_collateral(&self, pool: &PgPool) -> sqlx::Result<()> {
        let Collateral { hub_locked, locked_total, hub_free } = collateral(pool).await?;
        let mut assets: Vec<Address> = self.symbols.keys().copied().collect();
        assets.extend(hub_locked.keys().chain(locked_total.keys()).chain(hub_free.keys()));
        assets.sort();
        assets.dedup();
        for asset in assets {
            let label = self.symbol(asset);
            let get = |m: &BTreeMap<Address, U256>| m.get(&asset).map_or(0.0, |v| f64::from(*v));
            let (locked, free) = (get(&hub_locked), get(&hub_free));
            self.hub_locked.with_label_values(&[label.as_str()]).set(locked);
            self.locked_total.with_label_values(&[label.as_str()]).set(get(&locked_total));
            self.hub_free.with_label_values(&[label.as_str()]).set(free);
            let total = locked + free;
            self.utilisation.with_label_values(&[label.as_str()]).set(if total > 0.0 { locked / total } else { 0.0 });
        }
        Ok(())
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    #[cfg(test)]
    fn families(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }
}

/// The hub's collateral per asset, in the asset's smallest unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Collateral {
    /// The hub's own coins locked in virtual channels (what it paid into each lock).
    pub hub_locked: BTreeMap<Address, U256>,
    /// All coins locked in virtual channels (both sides, counted in both parents).
    pub locked_total: BTreeMap<Address, U256>,
    /// The hub's balance in open basic channels.
    pub hub_free: BTreeMap<Address, U256>,
}

/// The hub's collateral in total, from the running books (a handful of rows, whatever the
/// number of channels).
pub async fn collateral(pool: &PgPool) -> sqlx::Result<Collateral> {
    let mut conn = pool.acquire().await?;
    collateral_of(&mut conn, None).await
}

/// [`collateral`] in `db`'s transaction; of one client's basic channels only if `client` is
/// given (the hub's coins locked for that client: a scan of that client's channels).
pub async fn collateral_of(db: &mut sqlx::PgConnection, client: Option<Address>) -> sqlx::Result<Collateral> {
    let Some(client) = client else {
        let (hub_locked, locked_total, hub_free) = db::hub_totals(db).await?;
        return Ok(Collateral { hub_locked, locked_total, hub_free });
    };
    let mut out = Collateral::default();
    for books in db::client_books(db, client).await? {
        out.add(&books, true);
    }
    Ok(out)
}

impl Collateral {
    /// Adds one channel's books; its free coins only if `open`.
    fn add(&mut self, books: &ChannelBooks, open: bool) {
        for (k, asset) in books.assets.iter().enumerate() {
            let get = |v: &[U256]| v.get(k).copied().unwrap_or_default();
            if open {
                *self.hub_free.entry(*asset).or_default() += get(&books.hub_free);
            }
            *self.hub_locked.entry(*asset).or_default() += get(&books.hub_locked);
            *self.locked_total.entry(*asset).or_default() += get(&books.locked_total);
        }
    }
}

/// The collateral recounted from the latest state of every open and closing basic channel:
/// what the running books must equal (for audits and tests; it reads every channel). Run it
/// in a repeatable-read transaction next to [`collateral_of`] to compare the two.
pub async fn collateral_recount(db: &mut sqlx::PgConnection) -> sqlx::Result<Collateral> {
    let parents = db::live_outcomes(db, None).await?;
    let lock_ids: Vec<B256> = parents.iter().flat_map(|(_, _, o)| ChannelBooks::lock_ids(o)).collect();
    let openings = db::openings(db, &lock_ids).await?;
    let mut out = Collateral::default();
    for (hub, open, outcome) in &parents {
        let books = ChannelBooks::of(outcome, *hub, &openings)
            .map_err(|id| sqlx::Error::Decode(format!("a lock of virtual channel {id}, which is not stored").into()))?;
        out.add(&books, *open);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth() -> AssetConfig {
        toml::from_str(&format!("symbol = \"ETH\"\nholder = \"{}\"", Address::repeat_byte(0xee))).expect("asset")
    }

    #[test]
    fn every_metric_has_help_text_and_renders() {
        let m = Metrics::new(&[eth()]);
        m.virtual_opened();
        m.virtual_closed(true);
        m.http_request("GET", "/v1/hub", 200, Duration::from_millis(3));
        m.http_request("BREW", "unmatched", 404, Duration::from_millis(1));
        let families = m.families();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        for expected in [
            "ingrid_hub_locked",
            "ingrid_locked_total",
            "ingrid_hub_free",
            "ingrid_hub_utilisation",
            "ingrid_basic_channels",
            "ingrid_virtual_channels",
            "ingrid_virtual_channels_open",
            "ingrid_virtual_channels_opened_total",
            "ingrid_virtual_channels_closed_total",
            "ingrid_http_requests_total",
            "ingrid_http_request_duration_seconds",
            "ingrid_db_pool_connections",
            "ingrid_db_pool_idle",
            "ingrid_db_up",
            "ingrid_chain_head_block",
            "ingrid_chain_ingested_block",
            "ingrid_chain_lag_blocks",
            "ingrid_outbox_pending",
            "ingrid_outbox_failed",
            "ingrid_chain_events_skipped",
            "ingrid_metrics_refresh_seconds",
            "ingrid_metrics_refreshed_at_seconds",
            "ingrid_leader",
            "ingrid_disputes",
            "ingrid_fees_earned",
        ] {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
        assert_eq!(families.len(), 25, "a metric without a test: {names:?}");
        for f in &families {
            assert!(f.help().len() > 20, "{} has no real help text", f.name());
        }
        let text = m.render();
        for f in &families {
            assert!(text.contains(&format!("# HELP {} ", f.name())), "{} not rendered", f.name());
        }
        assert!(text.contains("ingrid_hub_locked{asset=\"ETH\"} 0"));
        assert!(text.contains("ingrid_http_requests_total{method=\"GET\",route=\"/v1/hub\",status=\"2xx\"} 1"));
        assert!(text.contains("ingrid_http_requests_total{method=\"other\",route=\"unmatched\",status=\"4xx\"} 1"));
        assert!(text.contains("ingrid_virtual_channels_closed_total{outcome=\"closed\"} 1"));
        assert!(text.contains("ingrid_basic_channels{status=\"funding\"} 0"));
    }
}
