//! `GET /metrics`: the hub's collateral gauges are read from the database, so they are right
//! after a restart; the in-process counters see the requests.

use std::time::Duration;

use crate::harness::{Env, ether, now, open_basic};

async fn scrape(url: &str) -> anyhow::Result<String> {
    let response = reqwest::get(format!("{url}/metrics")).await?;
    anyhow::ensure!(response.status().is_success(), "GET /metrics: {}", response.status());
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    anyhow::ensure!(content_type.starts_with("text/plain"), "content type {content_type}");
    Ok(response.text().await?)
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

    // A new process on the same database: the in-process counters restart, the collateral does not.
    hub.stop().await;
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
