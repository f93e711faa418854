//! A real Prometheus (Debian's `prometheus`) scrapes a real hub under a scripted workload:
//! every dashboard query runs and returns data, and every alert rule loads and evaluates
//! without error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Env, ether, now, open_basic, wait_until};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every (dashboard, panel title, expression) of `grafana/dashboards`, template variables
/// replaced by values of the same shape (all assets; a rate window that a few 1 s scrapes fill).
fn dashboard_queries() -> anyhow::Result<Vec<(String, String, String)>> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push((p["title"].as_str().unwrap_or("?").to_string(), expr.to_string()));
                }
            }
            walk(p["panels"].as_array().map(Vec::as_slice).unwrap_or_default(), out);
        }
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("grafana/dashboards"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let d: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let mut found = Vec::new();
        walk(d["panels"].as_array().map(Vec::as_slice).unwrap_or_default(), &mut found);
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        for (title, expr) in found {
            let expr = expr
                .replace("${asset}", ".*")
                .replace("$asset", ".*")
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "15s")
                .replace("$__range", "1m")
                .replace("[5m]", "[1m]");
            out.push((name.clone(), title, expr));
        }
    }
    Ok(out)
}

async fn query(http: &reqwest::Client, prometheus: &str, expr: &str) -> anyhow::Result<Value> {
    let url = reqwest::Url::parse_with_params(&format!("{prometheus}/api/v1/query"), &[("query", expr)])?;
    let answer: Value = http.get(url).send().await?.json().await?;
    anyhow::ensure!(answer["status"] == "success", "query {expr} failed: {answer}");
    Ok(answer["data"]["result"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_hub_and_every_panel_and_alert_works() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);

    // Prometheus scraping the hub every second, with the alert rules of deploy/prometheus.
    let dir = env.dir.path().join("prometheus");
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: ingrid\n    static_configs:\n      - targets: [\"{}\"]\n",
        repo().join("deploy/prometheus/alerts.yml").canonicalize()?.display(),
        hub.addr
    );
    std::fs::write(dir.join("prometheus.yml"), config)?;
    let _prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let prometheus = format!("http://127.0.0.1:{port}");
    let http = ingrid_client_sdk::tls::http_client();

    // The workload: basic channels, a virtual channel opened, paid in and closed, a refusal.
    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    open_basic(&alice, eth, 5, 5).await?;
    open_basic(&bob, eth, 5, 4).await?;
    let x = alice.store().list()?.pop().expect("X").id();
    let y = bob.store().list()?.pop().expect("Y").id();
    let v = alice.propose_virtual(bob.address(), x, &[[ether(2), ether(3)]], 600, now() + 3600).await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("proposal");
    bob.accept_virtual(&proposal, y).await?;
    alice.wait_virtual_open(v, Duration::from_secs(30)).await?;
    let payment = bob.pay(v, eth, ether(1)).await?;
    let receipt = alice.receive_payment(&payment, eth, ether(1)).await?;
    bob.accept_receipt(&receipt).await?;
    // A second one stays open, so the collateral gauges are not all zero.
    let w = alice.propose_virtual(bob.address(), x, &[[ether(1), ether(1)]], 600, now() + 3600).await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == w).expect("proposal");
    bob.accept_virtual(&proposal, y).await?;
    alice.wait_virtual_open(w, Duration::from_secs(30)).await?;
    let request = alice.close_request(v).await?;
    let answer = bob.answer_close(&request).await?;
    alice.finish_close(v, &request, answer).await?;
    let _ = http.get(format!("{url}/v1/channels/nope")).send().await?;

    wait_until(Duration::from_secs(60), "Prometheus to scrape the hub", || async {
        Ok(query(&http, &prometheus, "up{job=\"ingrid\"} == 1")
            .await
            .is_ok_and(|r| r.as_array().is_some_and(|a| !a.is_empty())))
    })
    .await?;
    // Rates need two samples in their window after the workload.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let queries = dashboard_queries()?;
    assert!(queries.len() > 30, "the dashboards were read ({} queries)", queries.len());
    let mut empty = Vec::new();
    for (dashboard, title, expr) in &queries {
        let result = query(&http, &prometheus, expr).await?;
        if result.as_array().is_none_or(|a| a.is_empty()) {
            empty.push(format!("{dashboard} / {title}: {expr}"));
        }
    }
    assert!(empty.is_empty(), "panels without data:\n{}", empty.join("\n"));

    // Every alert rule loaded and evaluated without error.
    let rules: Value = http.get(format!("{prometheus}/api/v1/rules")).send().await?.json().await?;
    let all: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert!(all.len() >= 13, "the alert rules were loaded: {rules}");
    for rule in all {
        assert_eq!(rule["health"], "ok", "rule {} evaluates: {rule}", rule["name"]);
    }
    let up = query(&http, &prometheus, "ingrid_virtual_channels_open").await?;
    assert_eq!(up[0]["value"][1], "1", "one virtual channel is open");
    hub.stop().await;
    Ok(())
}
