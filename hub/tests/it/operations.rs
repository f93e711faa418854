//! Operating the hub: readiness, request ids, the operator API and CLI (pause and resume,
//! collateral, closing a client's channel), and three hub processes on one database serving
//! concurrent opens and closes.

use std::time::Duration;

use alloy::primitives::B256;
use futures::future::try_join_all;
use ingrid_client_sdk::api::ChannelStatus;
use ingrid_client_sdk::client::ClientError;

use crate::harness::{
    Env, OPERATOR_TOKEN, advance_chain, ether, ingrid_binary, now, open_basic, spawn_replicas, wait_concluded,
    wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

async fn admin(url: &str, method: reqwest::Method, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let response = ingrid_client_sdk::tls::http_client()
        .request(method, format!("{url}{path}"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_pauses_reads_collateral_and_closes_a_channel() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let http = ingrid_client_sdk::tls::http_client();

    // Readiness and request ids.
    let ready = http.get(format!("{url}/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().contains_key("x-request-id"), "every answer carries a request id");
    let body: serde_json::Value = ready.json().await?;
    assert_eq!((body["database"].as_str(), body["chain"].as_str()), (Some("ok"), Some("ok")));
    let echoed = http.get(format!("{url}/v1/hub")).header("x-request-id", "abc-123").send().await?;
    assert_eq!(echoed.headers()["x-request-id"], "abc-123", "a caller's request id is kept");
    let refused = http.post(format!("{url}/v1/admin/pause")).send().await?;
    assert_eq!(refused.status(), 401, "the operator API needs the operator token");

    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let x = open_basic(&alice, eth, 3, 3).await?;
    let y = open_basic(&bob, eth, 5, 4).await?;

    // Paused: new virtual channels are refused and nothing changes.
    let (status, body) = admin(&url, reqwest::Method::POST, "/v1/admin/pause").await?;
    assert_eq!((status, body["virtualChannelsPaused"].as_bool()), (200, Some(true)));
    let before = env.snapshot().await?;
    match alice.propose_virtual(bob.address(), x, &[[ether(2), ether(3)]], 600, now() + 3600).await {
        Err(ingrid_client_sdk::wallet::WalletError::Hub(ClientError::Refused { status: 409, body, .. })) => {
            assert_eq!(body.error, "virtual_channels_paused")
        }
        other => anyhow::bail!("expected 409 virtual_channels_paused, got {other:?}"),
    }
    assert_eq!(env.snapshot().await?, before, "a refused proposal changes nothing");

    // The CLI against the same API.
    let out = tokio::process::Command::new(ingrid_binary())
        .args(["admin", "--url", &url, "--token", OPERATOR_TOKEN, "resume"])
        .output()
        .await?;
    assert!(out.status.success(), "ingrid admin resume: {}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(answer["virtualChannelsPaused"], false);

    let v = alice.propose_virtual(bob.address(), x, &[[ether(2), ether(3)]], 600, now() + 3600).await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("proposal");
    bob.accept_virtual(&proposal, y).await?;
    alice.wait_virtual_open(v, WAIT).await?;
    let (_, collateral) = admin(&url, reqwest::Method::GET, "/v1/admin/collateral").await?;
    let asset = collateral["assets"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["symbol"] == "ETH"))
        .cloned()
        .expect("ETH collateral");
    let amount = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<alloy::primitives::U256>().ok());
    assert_eq!(amount(&asset["hubLocked"]), Some(ether(5)), "3 in X for Bob's side, 2 in Y for Alice's");
    assert_eq!(amount(&asset["hubFree"]), Some(ether(2)), "X: 0, Y: 2");
    let (_, vcs) = admin(&url, reqwest::Method::GET, "/v1/admin/virtual-channels").await?;
    assert_eq!(vcs["channels"].as_array().map(Vec::len), Some(1));
    let (_, clients) = admin(&url, reqwest::Method::GET, "/v1/admin/clients").await?;
    assert_eq!(clients["clients"].as_array().map(Vec::len), Some(2));

    // The operator closes Alice's channel on chain; V settles from its opening state.
    let (status, _) = admin(&url, reqwest::Method::POST, &format!("/v1/admin/channels/{x}/close")).await?;
    assert_eq!(status, 202);
    let (status, body) =
        admin(&url, reqwest::Method::POST, &format!("/v1/admin/channels/{}/close", B256::ZERO)).await?;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    wait_until(WAIT, "X registered and Y with it", || async {
        let (_, d) = admin(&url, reqwest::Method::GET, "/v1/admin/disputes").await?;
        Ok(d["disputes"].as_array().is_some_and(|d| d.len() == 3))
    })
    .await?;
    advance_chain(&env, 3601).await?;
    assert_eq!(wait_concluded(&env, x).await?, vec![[ether(3), ether(3)]], "X: Alice 1 + 2, Ingrid 0 + 3");
    assert_eq!(wait_concluded(&env, y).await?, vec![[ether(5), ether(4)]], "Y: Bob 2 + 3, Ingrid 2 + 2");
    wait_until(WAIT, "X closed in the books", || async {
        Ok(alice.hub().channel(x).await?.status == ChannelStatus::Closed)
    })
    .await?;
    hub.stop().await;
    Ok(())
}

/// Three `ingrid serve` processes on one database; three pairs of clients, each client on
/// another process, open, pay in and close virtual channels concurrently, three rounds each.
/// Every basic channel ends exactly where the rounds put it, and no coin stays locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hub_processes_serve_concurrent_opens_and_closes() -> anyhow::Result<()> {
    const PAIRS: usize = 3;
    const ROUNDS: u64 = 3;
    let env = Env::new(1 + 2 * PAIRS).await?;
    let (_hubs, urls) = spawn_replicas(&env, 3).await?;
    let eth = env.eth().holder;
    let pairs = (0..PAIRS).map(|p| {
        let (env, urls) = (&env, &urls);
        async move {
            let alice = env.wallet(&urls[p % 3], 1 + 2 * p).await?;
            let bob = env.wallet(&urls[(p + 1) % 3], 2 + 2 * p).await?;
            let x = open_basic(&alice, eth, 5, 5).await?;
            let y = open_basic(&bob, eth, 5, 5).await?;
            for _ in 0..ROUNDS {
                let v = alice.propose_virtual(bob.address(), x, &[[ether(2), ether(2)]], 600, now() + 3600).await?;
                let proposal = bob.proposals().await?.into_iter().find(|q| q.id == v).expect("proposal");
                bob.accept_virtual(&proposal, y).await?;
                alice.wait_virtual_open(v, WAIT).await?;
                let payment = alice.pay(v, eth, ether(1)).await?;
                let receipt = bob.receive_payment(&payment, eth, ether(1)).await?;
                alice.accept_receipt(&receipt).await?;
                let request = alice.close_request(v).await?;
                let answer = bob.answer_close(&request).await?;
                alice.finish_close(v, &request, answer).await?;
                bob.sync_channel(y).await?;
            }
            anyhow::Ok((alice, bob, x, y))
        }
    });
    let results = try_join_all(pairs).await?;
    for (alice, bob, x, y) in &results {
        let xs = alice.hub().channel(*x).await?.latest;
        let ys = bob.hub().channel(*y).await?.latest;
        assert_eq!(xs, alice.store().load(*x)?.expect("X").latest, "the hub and Alice agree");
        assert_eq!(ys, bob.store().load(*y)?.expect("Y").latest, "the hub and Bob agree");
        assert_eq!(xs.state.outcome.balances[0], [ether(5 - ROUNDS), ether(5 + ROUNDS)]);
        assert_eq!(ys.state.outcome.balances[0], [ether(5 + ROUNDS), ether(5 - ROUNDS)]);
        assert!(xs.state.outcome.locked.is_empty() && ys.state.outcome.locked.is_empty());
        assert_eq!(xs.state.version, 2 * ROUNDS, "one lock and one settlement per round");
    }
    let (_, collateral) = admin(&urls[2], reqwest::Method::GET, "/v1/admin/collateral").await?;
    for asset in collateral["assets"].as_array().expect("assets") {
        assert_eq!(asset["hubLocked"], "0x0", "nothing stays locked: {asset}");
    }
    let closed: i64 = sqlx::query_scalar("SELECT count(*) FROM virtual_channels WHERE status = 'closed'")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(closed, (PAIRS as u64 * ROUNDS) as i64);
    // Each state version was signed once: no two processes countersigned the same version.
    let duplicates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT channel_id, version FROM channel_states GROUP BY 1, 2 HAVING count(*) > 1) d",
    )
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(duplicates, 0);
    Ok(())
}
