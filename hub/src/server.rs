//! Starting and stopping a hub process: database, chain, HTTP API, watcher and outbox.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::providers::{Provider, ProviderBuilder};
use anyhow::{Context, ensure};
use axum_server::tls_rustls::RustlsConfig;
use ingrid_client_sdk::Deployment;
use ingrid_client_sdk::api::{AssetInfo, HubInfo};
use ingrid_client_sdk::chain::Asset;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState, Hub};
use crate::auth::Challenges;
use crate::chain::Chain;
use crate::config::Config;
use crate::core::Rules;
use crate::db;
use crate::metrics::Metrics;

/// A running hub.
pub struct Running {
    /// Where the HTTP API listens.
    pub addr: SocketAddr,
    /// Where the operator API listens, when apart (`operator_listen`).
    pub operator_addr: Option<SocketAddr>,
    /// Where `/metrics` listens, when apart (`metrics_listen`).
    pub metrics_addr: Option<SocketAddr>,
    hub: Arc<Hub>,
    leading: Arc<std::sync::atomic::AtomicBool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// HTTP requests the hub received since it started.
    pub fn requests(&self) -> u64 {
        self.hub.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether this process is the leader (runs the watcher, the outbox and the sweep).
    pub fn is_leader(&self) -> bool {
        self.leading.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops accepting requests, finishes the ones in flight, stops the background tasks.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Waits until the process is told to stop (Ctrl-C or SIGTERM), then stops.
    pub async fn run_until_signal(self) {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Connects to the database (running the migrations) and the chain, checks both, and
/// starts the HTTP API, the event watcher and the outbox worker.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let key = config.hub_key()?;
    let pool =
        db::connect(&config.database_url, config.db_max_connections).await.context("connecting to the database")?;
    db::MIGRATOR.run(&pool).await.context("running database migrations")?;
    crate::disputes::backfill_record_keys(&pool).await.context("keying old dispute rows by record")?;
    let filled = db::fill_missing_books(&pool, 1000).await.context("filling in the books of older channels")?;
    if filled > 0 {
        tracing::info!(channels = filled, "filled in the running books of channels stored before them");
    }

    // Nonces come from the node's pending count at every send, never from a local cache: a
    // cached nonce is taken before gas estimation, so a transaction that fails to estimate
    // (a refutation the chain no longer needs, say) would burn it and hold back every later
    // transaction of the hub for good. Only the leader's outbox sends, one at a time.
    // `http(s)://` or `ws(s)://` nodes; TLS is rustls on ring (the SDK installs it as the
    // process's provider).
    ingrid_client_sdk::tls::install_crypto_provider();
    let rpc_url = &config.chain.rpc_url;
    let provider = ProviderBuilder::default()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(key.clone()))
        .connect(rpc_url)
        .await
        .with_context(|| format!("connecting to chain.rpc_url {rpc_url:?}"))?
        .erased();
    let chain_id = provider.get_chain_id().await.context("reaching the chain at chain.rpc_url")?;
    ensure!(
        chain_id == config.chain.chain_id,
        "chain.chain_id is {} but the node is on chain {chain_id}",
        config.chain.chain_id
    );
    let code = provider.get_code_at(config.chain.adjudicator).await?;
    ensure!(!code.is_empty(), "no contract at chain.adjudicator {}", config.chain.adjudicator);

    for (address, kind) in config.apps.registry().entries() {
        let code = provider.get_code_at(address).await?;
        ensure!(!code.is_empty(), "no contract at apps.{kind:?} {address}");
    }

    let deployment = Deployment { chain_id, adjudicator: config.chain.adjudicator };
    let info = HubInfo {
        address: key.address(),
        chain_id,
        adjudicator: deployment.adjudicator,
        assets: config
            .assets
            .iter()
            .map(|a| AssetInfo { symbol: a.symbol.clone(), holder: a.holder, token: a.token })
            .collect(),
        challenge_duration: [config.channels.min_challenge_duration, config.channels.max_challenge_duration],
        confirmations: config.chain.confirmations,
        virtual_fees: config.assets.iter().any(|a| a.charges_fees()),
        apps: config.apps,
        app_challenge_duration: Some(config.channels.max_app_challenge_duration),
    };
    let hub = Hub {
        key: key.clone(),
        rules: std::sync::RwLock::new(Arc::new(Rules {
            hub: key.address(),
            deployment,
            assets: config.assets.clone(),
            channels: config.channels.clone(),
            apps: config.apps.registry(),
        })),
        info,
        auth: config.auth.clone(),
        operator_token: config.operator_token.clone(),
        challenges: Challenges::new(key.to_bytes().as_slice(), key.address(), chain_id),
        requests: Default::default(),
        virtual_changed: Default::default(),
        metrics: Metrics::new(&config.assets),
        paused: db::virtual_paused(&pool).await?.into(),
        provider: provider.clone(),
        config_source: config.source.clone(),
        limits: crate::api::limits::Limits::new(&config.limits),
        readiness: Default::default(),
        refresh: Duration::from_millis(config.metrics_refresh_ms),
        sessions: Arc::new(crate::sessions::Sessions::new(
            config.auth.session_cache as usize,
            Duration::from_secs(config.auth.session_cache_secs),
        )),
    };
    let chain = Chain {
        provider,
        deployment,
        assets: config.assets.iter().map(|a| Asset { holder: a.holder, token: a.token }).collect(),
        key,
        confirmations: config.chain.confirmations,
        start_block: config.chain.start_block,
        poll: Duration::from_millis(config.chain.poll_interval_ms),
        head: hub.metrics.chain_head_seen.clone(),
        settle_grace: config.channels.settle_grace,
        fee_bump_after: Duration::from_secs(config.chain.fee_bump_after_secs),
    };

    let (stop, stopped) = watch::channel(false);
    let hub = Arc::new(hub);
    let state = AppState { pool: pool.clone(), hub: hub.clone() };
    let public = api::Listener::Public {
        operator_apart: config.operator_listen.is_some(),
        metrics_apart: config.metrics_listen.is_some(),
    };
    let tls = match &config.tls {
        Some(tls) => Some(
            RustlsConfig::from_pem_file(&tls.cert_file, &tls.key_file)
                .await
                .context("tls: reading cert_file and key_file")?,
        ),
        None => None,
    };
    let mut tasks = Vec::new();
    let (addr, http) =
        serve(config.listen, api::router_for(state.clone(), public), tls.clone(), stopped.clone()).await?;
    tasks.push(http);
    let apart = |listen: Option<SocketAddr>, listener, tls: Option<RustlsConfig>| {
        let (state, stopped) = (state.clone(), stopped.clone());
        async move {
            match listen {
                Some(listen) => {
                    let (addr, task) = serve(listen, api::router_for(state, listener), tls, stopped).await?;
                    anyhow::Ok((Some(addr), Some(task)))
                }
                None => Ok((None, None)),
            }
        }
    };
    let (operator_addr, operator_task) = apart(config.operator_listen, api::Listener::Operator, tls).await?;
    let (metrics_addr, metrics_task) = apart(config.metrics_listen, api::Listener::Metrics, None).await?;
    tasks.extend(operator_task.into_iter().chain(metrics_task));
    // One probe before the first request, so a new process is ready when it says it is.
    probe_health(&pool, &hub).await;
    tasks.push(tokio::spawn(refresh_health(pool.clone(), hub.clone(), stopped.clone())));
    let janitor = tokio::spawn(run_janitor(pool.clone(), hub.clone(), stopped.clone()));
    let sessions = tokio::spawn(crate::sessions::listen(pool.clone(), hub.sessions.clone(), stopped.clone()));
    let settings = tokio::spawn(refresh_settings(pool.clone(), hub.clone(), stopped.clone()));
    let reloads = tokio::spawn(reload_on_hangup(hub.clone(), stopped.clone()));
    let leading = hub.metrics.leading.clone();
    let hub_for_leader = hub.clone();
    let leader = tokio::spawn(crate::leader::run(
        config.database_url.clone(),
        chain.poll.max(Duration::from_millis(200)),
        leading.clone(),
        stopped,
        move |stop: watch::Receiver<bool>| {
            let (chain, pool, hub) = (chain.clone(), pool.clone(), hub_for_leader.clone());
            async move {
                vec![
                    tokio::spawn(chain.clone().run_watcher(pool.clone(), stop.clone())),
                    tokio::spawn(run_sweeper(pool.clone(), hub, chain.settle_grace, chain.poll, stop.clone())),
                    tokio::spawn(chain.run_outbox(pool, stop)),
                ]
            }
        },
    ));
    tracing::info!(%addr, ?operator_addr, ?metrics_addr, hub = %deployment.adjudicator, "ingrid serving");
    tasks.extend([janitor, sessions, settings, reloads, leader]);
    Ok(Running { addr, operator_addr, metrics_addr, hub, leading, stop, tasks })
}

/// Binds `listen` and serves `app` there, over HTTPS with `tls`, until `stopped` turns true
/// (requests in flight are finished). The peer's address reaches the limits layer.
async fn serve(
    listen: SocketAddr,
    app: axum::Router,
    tls: Option<RustlsConfig>,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let task = match tls {
        None => tokio::spawn(async move {
            let graceful = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
                tracing::error!(error = ?e, %addr, "http server failed");
            }
        }),
        Some(tls) => {
            let server = axum_server::from_tcp_rustls(listener.into_std()?, tls)?;
            let handle = axum_server::Handle::new();
            let shutdown = handle.clone();
            tokio::spawn(async move {
                let _ = stopped.wait_for(|s| *s).await;
                // Requests in flight get as long as a long poll may take.
                shutdown.graceful_shutdown(Some(Duration::from_secs(30)));
            });
            tokio::spawn(async move {
                if let Err(e) = server.handle(handle).serve(app).await {
                    tracing::error!(error = ?e, %addr, "https server failed");
                }
            })
        }
    };
    Ok((addr, task))
}

/// Every `metrics_refresh_ms`: probes the database and the chain node (2 s each at most) for
/// `/readyz`, and reads the metrics' gauges from the database for `/metrics`.
async fn refresh_health(pool: sqlx::PgPool, hub: Arc<Hub>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(hub.refresh) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        probe_health(&pool, &hub).await;
    }
}

/// One probe of the database and the chain, and one refresh of the metrics.
async fn probe_health(pool: &sqlx::PgPool, hub: &Hub) {
    let limit = Duration::from_secs(2);
    let database = matches!(tokio::time::timeout(limit, db::ping(pool)).await, Ok(Ok(_)));
    let block = tokio::time::timeout(limit, hub.provider.get_block_number()).await;
    let readiness = api::Readiness {
        database,
        chain: matches!(block, Ok(Ok(_))),
        block: block.ok().and_then(Result::ok).unwrap_or_default(),
        at: api::now_secs(),
    };
    *hub.readiness.write().unwrap_or_else(|p| p.into_inner()) = readiness;
    if let Err(e) = hub.metrics.refresh(pool).await {
        tracing::warn!(error = ?e, "metrics: reading the database failed");
    }
}

/// Goes to chain for virtual channels left open past their validity (see
/// [`crate::disputes::sweep_once`]), starts collateral top-ups ([`crate::topup`]) and expires
/// proposals left unaccepted ([`crate::proposals`]), every ten polls.
async fn run_sweeper(pool: sqlx::PgPool, hub: Arc<Hub>, grace: u64, poll: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Err(e) = crate::disputes::sweep_once(&pool, now, grace).await {
            tracing::warn!(error = ?e, "sweeping expired virtual channels failed");
        }
        if let Err(e) = crate::topup::sweep_once(&pool, &hub.rules(), 1000).await {
            tracing::warn!(error = ?e, "sweeping collateral top-ups failed");
        }
        match crate::proposals::expire_once(&pool, now, 1000).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(expired = n, "proposals expired unaccepted");
                hub.virtual_changed.changed_all();
            }
            Err(e) => tracing::warn!(error = ?e, "expiring proposals failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll * 10) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Reloads the policy on `SIGHUP` (a bad file is logged and changes nothing).
async fn reload_on_hangup(hub: Arc<Hub>, mut stop: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
        loop {
            tokio::select! {
                _ = hangups.recv() => {
                    if let Err(e) = hub.reload() {
                        tracing::error!(error = %format!("{e:#}"), "reload refused; the policy is unchanged");
                    }
                }
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (hub, stop.wait_for(|s| *s).await);
}

/// Every second, reads the operator's switches (another process may have changed them).
async fn refresh_settings(pool: sqlx::PgPool, hub: Arc<Hub>, mut stop: watch::Receiver<bool>) {
    loop {
        match db::virtual_paused(&pool).await {
            Ok(paused) => hub.paused.store(paused, std::sync::atomic::Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "reading the operator's settings failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Every minute, forgets the rate state of idle addresses and clients and folds the running
/// books' shards of ended database sessions; every ten minutes, deletes expired sessions,
/// used challenges, old idempotency answers and ended proposals.
async fn run_janitor(pool: sqlx::PgPool, hub: Arc<Hub>, mut stop: watch::Receiver<bool>) {
    for round in 0u64.. {
        // The rate limiters' maps hold every address seen since the last forgetting: every
        // minute bounds them by a minute's worth of addresses.
        hub.limits.forget_idle();
        if let Err(e) = db::fold_book_shards(&pool).await {
            tracing::warn!(error = ?e, "folding the books' shards failed");
        }
        if round % 10 == 0 {
            match db::prune_expired(&pool).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "pruned expired sessions, challenges, answers and proposals"),
                Err(e) => tracing::warn!(error = ?e, "pruning expired rows failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
