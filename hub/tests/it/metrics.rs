//! `GET /metrics`: the hub's collateral gauges are read from the database (every
//! `metrics_refresh_ms`, not per scrape), so they are right after a restart; the in-process
//! counters see the requests. `/metrics` and the operator API can listen apart.

use std::time::Duration;

use crate::harness::{Env, ether, now, open_basic};

/// `GET /metrics` once the gauges read from the database were read after this call began
/// (they are refreshed every `metrics_refresh_ms`, 200 ms on a local stack).
pub(crate) async fn scrape(url: &str) -> anyhow::Result<String> {
    let asked = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs_f64();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = reqwest::get(format!("{url}/metrics")).await?;
        anyhow::ensure!(response.status().is_success(), "GET /metrics: {}", response.status());
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        anyhow::ensure!(content_type.starts_with("text/plain"), "content type {content_type}");
        let text = response.text().await?;
        if sample(&text, "ingrid_metrics_refreshed_at_seconds").is_some_and(|at| at > asked) {
            return Ok(text);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "the metrics were not refreshed within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the sample `series` (name with labels, exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn eth_amount(n: u64) -> f64 {
    n as f64 * 1e18
}

/// X = (3, 3) Alice–Ingrid, Y = (5, 4) Bob–Ingrid; V opened with (2, 3): Ingrid locks 3 in X
/// and 2 in Y (5 in all, 10 locked counting both sides) and keeps 0 + 2 free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_collateral_survives_a_restart() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let x = open_basic(&alice, eth, 3, 3).await?;
    let y = open_basic(&bob, eth, 5, 4).await?;

    let before = scrape(&url).await?;
    assert_eq!(sample(&before, "ingrid_hub_locked{asset=\"ETH\"}"), Some(0.0));
    assert_eq!(sample(&before, "ingrid_hub_free{asset=\"ETH\"}"), Some(eth_amount(7)));
    assert_eq!(sample(&before, "ingrid_basic_channels{status=\"open\"}"), Some(2.0));

    let v = alice.propose_virtual(bob.address(), x, &[[ether(2), ether(3)]], 600, now() + 3600).await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("Bob sees the proposal");
    bob.accept_virtual(&proposal, y).await?;
    alice.wait_virtual_open(v, Duration::from_secs(10)).await?;

    let text = scrape(&url).await?;
    assert_eq!(sample(&text, "ingrid_hub_locked{asset=\"ETH\"}"), Some(eth_amount(5)), "3 in X + 2 in Y");
    assert_eq!(sample(&text, "ingrid_hub_free{asset=\"ETH\"}"), Some(eth_amount(2)), "0 in X + 2 in Y");
    assert_eq!(sample(&text, "ingrid_locked_total{asset=\"ETH\"}"), Some(eth_amount(10)), "5 in each parent");
    let utilisation = sample(&text, "ingrid_hub_utilisation{asset=\"ETH\"}").expect("utilisation");
    assert!((utilisation - 5.0 / 7.0).abs() < 1e-9, "utilisation {utilisation}");
    assert_eq!(sample(&text, "ingrid_virtual_channels_open"), Some(1.0));
    assert_eq!(sample(&text, "ingrid_virtual_channels{status=\"open\"}"), Some(1.0));
    assert_eq!(sample(&text, "ingrid_virtual_channels_opened_total"), Some(1.0));
    assert_eq!(sample(&text, "ingrid_db_up"), Some(1.0));
    assert!(sample(&text, "ingrid_db_pool_connections").is_some_and(|n| n >= 1.0));
    assert!(sample(&text, "ingrid_chain_ingested_block").is_some_and(|n| n > 0.0));
    assert!(sample(&text, "ingrid_chain_head_block").is_some_and(|n| n > 0.0));
    let accepted =
        "ingrid_http_requests_total{method=\"POST\",route=\"/v1/virtual-channels/{id}/accept\",status=\"2xx\"}";
    assert_eq!(sample(&text, accepted), Some(1.0), "requests are labelled by route template:\n{text}");
    assert!(!text.contains(&format!("{v}")), "no channel id in a label");
    let unmatched = reqwest::get(format!("{url}/no/such/route/{v}")).await?;
    assert_eq!(unmatched.status(), reqwest::StatusCode::NOT_FOUND);
    let text = scrape(&url).await?;
    assert_eq!(
        sample(&text, "ingrid_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"4xx\"}"),
        Some(1.0)
    );
    assert!(!text.contains(&format!("{v}")), "an unknown path is not a label");

    // A new process on the same database: the in-process counters restart, the collateral does
    // not. The channels' books are erased first, as for channels stored before the running
    // books: the new process fills them in before it serves.
    hub.stop().await;
    sqlx::query(
        "UPDATE basic_channels SET assets = NULL, hub_free = NULL, hub_locked = NULL, locked_total = NULL,
             books_version = NULL",
    )
    .execute(&env.pool)
    .await?;
    let erased = ingrid_hub::metrics::collateral(&env.pool).await?;
    assert!(erased.hub_locked.values().chain(erased.hub_free.values()).all(|v| v.is_zero()), "{erased:?}");
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let after = scrape(&url).await?;
    assert_eq!(sample(&after, "ingrid_hub_locked{asset=\"ETH\"}"), Some(eth_amount(5)), "locked after a restart");
    assert_eq!(sample(&after, "ingrid_hub_free{asset=\"ETH\"}"), Some(eth_amount(2)));
    assert_eq!(sample(&after, "ingrid_locked_total{asset=\"ETH\"}"), Some(eth_amount(10)));
    assert_eq!(sample(&after, "ingrid_virtual_channels_open"), Some(1.0));
    assert_eq!(sample(&after, "ingrid_virtual_channels_opened_total"), Some(0.0));
    hub.stop().await;
    Ok(())
}

/// With `operator_listen` and `metrics_listen` set, the public address serves neither the
/// operator API nor `/metrics`; each apart address serves only its own routes (and the
/// probes), and the limits of the public API do not apply there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_api_and_the_metrics_listen_apart() -> anyhow::Result<()> {
    let env = Env::new(2).await?;
    let mut config = env.config();
    config.operator_listen = Some("127.0.0.1:0".parse()?);
    config.metrics_listen = Some("127.0.0.1:0".parse()?);
    config.limits.ip_per_second = 1;
    config.limits.ip_burst = 2;
    let hub = ingrid_hub::server::start(config).await?;
    let (public, operator, metrics) = (
        format!("http://{}", hub.addr),
        format!("http://{}", hub.operator_addr.expect("operator address")),
        format!("http://{}", hub.metrics_addr.expect("metrics address")),
    );
    let http = ingrid_client_sdk::tls::http_client();
    let get = |url: String| {
        let http = http.clone();
        async move { anyhow::Ok(http.get(url).bearer_auth(crate::harness::OPERATOR_TOKEN).send().await?.status().as_u16()) }
    };
    assert_eq!(get(format!("{public}/v1/admin/channels")).await?, 404);
    assert_eq!(get(format!("{public}/metrics")).await?, 404);
    // Many scrapes and operator calls: no rate applies apart.
    for _ in 0..5 {
        assert_eq!(get(format!("{operator}/v1/admin/channels")).await?, 200);
        assert_eq!(get(format!("{metrics}/metrics")).await?, 200);
    }
    assert_eq!(get(format!("{metrics}/readyz")).await?, 200);
    assert_eq!(get(format!("{operator}/v1/hub")).await?, 404);
    assert_eq!(get(format!("{metrics}/v1/hub")).await?, 404);
    assert!(scrape(&metrics).await?.contains("ingrid_hub_locked"));
    hub.stop().await;
    Ok(())
}
