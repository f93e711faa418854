//! Limits against abuse end to end on a real hub, Postgres and anvil: a proposer's cap of
//! waiting proposals (a proposal never counts against its peer, and stops counting when it
//! expires), lists paged by cursor, long polls per client, sessions per client, a client's
//! request rate. Every
//! refusal has its status, reason and `Retry-After` where it fits, and changes nothing.

use std::time::Duration;

use alloy::primitives::U256;
use ingrid_client_sdk::api::VirtualStatus;
use ingrid_client_sdk::client::HubClient;
use ingrid_hub::server;
use reqwest::StatusCode;

use crate::harness::{Env, ether, now, open_basic, wait_until};
use crate::policy::refused;

fn tenth() -> U256 {
    ether(1) / U256::from(10)
}

/// Proposals sent at once from several parents of one proposer pass its cap together by
/// none: with a cap of one and three parents, exactly one of three concurrent proposals is
/// stored, the others are refused `too_many_proposals`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_from_several_parents_do_not_pass_the_cap_together() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let mut config = env.config();
    config.limits.proposals_per_proposer = 1;
    config.channels.max_unfunded_per_client = 3;
    let hub = server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (mallory, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let mut parents = Vec::new();
    for _ in 0..3 {
        parents.push(open_basic(&mallory, eth, 1, 1).await?);
    }
    // Three wallets of Mallory's (one store, three sessions): a wallet sends one request at a time.
    let wallets = [mallory, env.wallet(&url, 1).await?, env.wallet(&url, 1).await?];
    let deposits = [[tenth(), tenth()]];
    let tries =
        wallets.iter().zip(&parents).map(|(w, m)| w.propose_virtual(bob.address(), *m, &deposits, 600, now() + 600));
    let results = futures::future::join_all(tries).await;
    let stored = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(stored, 1, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(format!("{r:?}").contains("too_many_proposals"), "{r:?}");
    }
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM virtual_channels WHERE status = 'proposed'")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(waiting, 1);
    hub.stop().await;
    Ok(())
}

/// Proposals that ended unopened (rejected, expired) are pruned a week after they ended:
/// they locked and signed nothing, and a proposer could otherwise fill the books with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_that_ended_unopened_are_pruned_after_a_week() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (mallory, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let m = open_basic(&mallory, eth, 1, 1).await?;
    let mut ended = Vec::new();
    for _ in 0..2 {
        let v = mallory.propose_virtual(bob.address(), m, &[[tenth(), tenth()]], 600, now() + 600).await?;
        bob.hub().reject_virtual(v).await?;
        ended.push(v);
    }
    let waiting = mallory.propose_virtual(bob.address(), m, &[[tenth(), tenth()]], 600, now() + 600).await?;
    sqlx::query("UPDATE virtual_channels SET updated_at = now() - interval '8 days' WHERE id = $1")
        .bind(ended[0].as_slice())
        .execute(&env.pool)
        .await?;
    ingrid_hub::db::prune_expired(&env.pool).await?;
    let left: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT id FROM virtual_channels ORDER BY created_at").fetch_all(&env.pool).await?;
    assert_eq!(left, vec![ended[1].to_vec(), waiting.to_vec()], "only the week-old rejection is gone");
    hub.stop().await;
    Ok(())
}

/// Mallory fills her cap of proposals with two proposals to Bob: a third is refused, yet Bob,
/// whose quota is two virtual channels, still proposes to Alice and opens. Mallory's
/// proposals expire at their validity (a status of their own), Bob can no longer accept
/// them, and Mallory may propose again. A second long poll of one client is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_count_against_their_proposer_only_and_stop_counting_when_they_expire() -> anyhow::Result<()> {
    let env = Env::new(4).await?;
    let mut config = env.config();
    config.limits.proposals_per_proposer = 2;
    config.limits.long_polls_per_client = 1;
    config.channels.max_virtual_per_client = Some(2);
    let hub = server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (alice, bob, mallory) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?, env.wallet(&url, 3).await?);
    let x = open_basic(&alice, eth, 2, 2).await?;
    let y = open_basic(&bob, eth, 2, 2).await?;
    let m = open_basic(&mallory, eth, 2, 2).await?;

    let soon = now() + 6;
    let mut floods = Vec::new();
    for _ in 0..2 {
        floods.push(mallory.propose_virtual(bob.address(), m, &[[tenth(), tenth()]], 600, soon).await?);
    }
    refused(
        &env,
        409,
        "too_many_proposals",
        "the limit is 2",
        mallory.propose_virtual(bob.address(), m, &[[tenth(), tenth()]], 600, soon),
    )
    .await?;

    // Bob, proposed to twice, is untouched: his own proposal to Alice opens.
    let v = bob.propose_virtual(alice.address(), y, &[[tenth(), tenth()]], 600, now() + 3600).await?;
    // While Bob long-polls for Alice's answer, a second long poll of his is refused.
    let waiting = bob.hub().wait_virtual_channel(v, VirtualStatus::Proposed, Duration::from_secs(3));
    let second = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let answer = ingrid_client_sdk::tls::http_client()
            .get(format!("{url}/v1/virtual-channels/{v}?unlessStatus=proposed&waitMs=3000"))
            .bearer_auth(bob.hub().token().unwrap_or_default())
            .send()
            .await?;
        anyhow::Ok((answer.status(), answer.headers().get("retry-after").cloned(), answer.text().await?))
    };
    let (first, second) = tokio::join!(waiting, second);
    let (status, retry_after, body) = second?;
    assert_eq!(first?.status, VirtualStatus::Proposed, "the first long poll ran to its end");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body.contains("too_many_long_polls") && retry_after.is_some(), "{body}");
    let proposal = alice.proposals().await?.into_iter().find(|p| p.id == v).expect("Bob's proposal");
    alice.accept_virtual(&proposal, x).await?;
    assert_eq!(bob.hub().virtual_channel(v).await?.status, VirtualStatus::Open);

    // Bob pages through his list one at a time while Alice proposes to him: the new proposal
    // lands before his cursor, and every older one is still reached, once.
    let token = bob.hub().token().unwrap_or_default().to_string();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let request = ingrid_client_sdk::tls::http_client().get(format!("{url}/v1/virtual-channels?limit=1{query}"));
        let page: ingrid_client_sdk::api::VirtualList = request.bearer_auth(&token).send().await?.json().await?;
        seen.extend(page.channels.iter().map(|c| c.id));
        if seen.len() == 1 {
            alice.propose_virtual(bob.address(), x, &[[tenth(), tenth()]], 600, now() + 3600).await?;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, vec![v, floods[1], floods[0]], "newest first, each once, none pushed out of reach");
    // A list of one status: Bob's open virtual channels are V alone; a status that is none is refused.
    let list = |query: &'static str| {
        let request = ingrid_client_sdk::tls::http_client().get(format!("{url}/v1/virtual-channels?{query}"));
        request.bearer_auth(&token).send()
    };
    let open: ingrid_client_sdk::api::VirtualList = list("status=open").await?.json().await?;
    assert_eq!(open.channels.iter().map(|c| c.id).collect::<Vec<_>>(), vec![v]);
    assert_eq!(list("status=nonsense").await?.status(), StatusCode::BAD_REQUEST);
    let bad = ingrid_client_sdk::tls::http_client()
        .get(format!("{url}/v1/virtual-channels?cursor=12.zz"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await?.contains("malformed_cursor"));

    // Mallory's proposals expire, and stop counting.
    let stale = bob.proposals().await?.into_iter().find(|p| p.id == floods[0]).expect("Mallory's proposal");
    wait_until(Duration::from_secs(30), "Mallory's proposals to expire", || async {
        let mut all = Vec::new();
        for id in &floods {
            all.push(mallory.hub().virtual_channel(*id).await?.status);
        }
        Ok(all.iter().all(|s| *s == VirtualStatus::Expired))
    })
    .await?;
    assert!(bob.proposals().await?.iter().all(|p| !floods.contains(&p.id)), "expired proposals are not offered");
    refused(&env, 409, "not_proposed", "", bob.accept_virtual(&stale, y)).await?;
    mallory.propose_virtual(alice.address(), m, &[[tenth(), tenth()]], 600, now() + 3600).await?;
    hub.stop().await;
    Ok(())
}

/// A client holds at most `limits.sessions_per_client` sessions: a login beyond it ends the
/// oldest, whose token is refused from then on, by every hub process: a second process on
/// the same database that cached the session drops it when the database announces the end
/// (long before its cache would read it again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_beyond_the_cap_of_sessions_ends_the_oldest() -> anyhow::Result<()> {
    let env = Env::new(2).await?;
    let mut config = env.config();
    config.limits.sessions_per_client = 2;
    config.auth.session_cache_secs = 3600;
    let hub = server::start(config.clone()).await?;
    let other = server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let other_url = format!("http://{}", other.addr);
    let key = env.devnet.key(1);
    let mut tokens = Vec::new();
    let login = || async {
        let mut client = HubClient::new(&url);
        anyhow::Ok(client.login(&key).await?.token)
    };
    for _ in 0..2 {
        tokens.push(login().await?);
    }
    let status = |url: String, token: String| async move {
        anyhow::Ok(
            ingrid_client_sdk::tls::http_client()
                .get(format!("{url}/v1/channels"))
                .bearer_auth(token)
                .send()
                .await?
                .status(),
        )
    };
    // Both processes know (and cache) the first session.
    assert_eq!(status(url.clone(), tokens[0].clone()).await?, StatusCode::OK);
    assert_eq!(status(other_url.clone(), tokens[0].clone()).await?, StatusCode::OK);
    tokens.push(login().await?);
    assert_eq!(status(url.clone(), tokens[0].clone()).await?, StatusCode::UNAUTHORIZED, "the oldest session ended");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while status(other_url.clone(), tokens[0].clone()).await? != StatusCode::UNAUTHORIZED {
        assert!(std::time::Instant::now() < deadline, "the other process still accepts the ended session");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for url in [&url, &other_url] {
        assert_eq!(status(url.clone(), tokens[1].clone()).await?, StatusCode::OK);
        assert_eq!(status(url.clone(), tokens[2].clone()).await?, StatusCode::OK);
    }
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE client = $1")
        .bind(key.address().as_slice())
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(sessions, 2);
    other.stop().await;
    hub.stop().await;
    Ok(())
}

/// A client over its rate gets 429 `client_rate_limited` with `Retry-After`, across its
/// sessions, and its refused write stores nothing; another client is not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_rate_is_limited_across_its_sessions_and_others_are_not_touched() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let mut config = env.config();
    config.limits.client_per_second = 1;
    config.limits.client_burst = 3;
    let hub = server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let login = |i: usize| {
        let (url, key) = (url.clone(), env.devnet.key(i));
        async move {
            let mut client = HubClient::new(&url);
            anyhow::Ok(client.login(&key).await?.token)
        }
    };
    let (alice_1, alice_2, bob) = (login(1).await?, login(1).await?, login(2).await?);
    let http = ingrid_client_sdk::tls::http_client();
    for token in [&alice_1, &alice_2, &alice_1] {
        assert_eq!(http.get(format!("{url}/v1/channels")).bearer_auth(token).send().await?.status(), StatusCode::OK);
    }
    let before = env.snapshot().await?;
    let refused = http.post(format!("{url}/v1/channels")).bearer_auth(&alice_2).body("{}").send().await?;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    let body: serde_json::Value = refused.json().await?;
    assert_eq!(body["error"], "client_rate_limited", "{body}");
    assert_eq!(env.snapshot().await?, before, "a refused request changed the database");
    assert_eq!(http.get(format!("{url}/v1/channels")).bearer_auth(&bob).send().await?.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(http.get(format!("{url}/v1/channels")).bearer_auth(&alice_1).send().await?.status(), StatusCode::OK);
    hub.stop().await;
    Ok(())
}

/// Pages `path` of the operator API one row at a time (`key` names the list in the answer);
/// returns the rows' `field` in order.
async fn operator_pages(url: &str, path: &str, key: &str, field: &str) -> anyhow::Result<Vec<String>> {
    let http = ingrid_client_sdk::tls::http_client();
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let query = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page: serde_json::Value = http
            .get(format!("{url}{path}?limit=1{query}"))
            .bearer_auth(crate::harness::OPERATOR_TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        seen.extend(page[key].as_array().into_iter().flatten().map(|row| row[field].to_string()));
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(seen),
        }
    }
}

/// The operator's lists of clients and of the outbox page with a cursor too: one row a page,
/// every row is reached once, newest first, and a cursor that is no page's is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_clients_and_outbox_page_with_a_cursor() -> anyhow::Result<()> {
    let env = Env::new(4).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let mut wallets = Vec::new();
    for i in 1..=3 {
        wallets.push(env.wallet(&url, i).await?);
    }
    for w in &wallets[..2] {
        open_basic(w, eth, 1, 1).await?; // each makes a deposit of the hub: an outbox entry
    }
    let clients: Vec<String> = sqlx::query_scalar(
        "SELECT '\"' || '0x' || encode(address, 'hex') || '\"' FROM clients ORDER BY created_at DESC, address",
    )
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(clients.len(), 3);
    let paged = operator_pages(&url, "/v1/admin/clients", "clients", "address").await?;
    assert_eq!(paged.iter().map(|a| a.to_lowercase()).collect::<Vec<_>>(), clients);
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id DESC").fetch_all(&env.pool).await?;
    assert!(ids.len() >= 2, "{ids:?}");
    let paged = operator_pages(&url, "/v1/admin/outbox", "entries", "id").await?;
    assert_eq!(paged, ids.iter().map(|i| i.to_string()).collect::<Vec<_>>());
    for path in ["/v1/admin/outbox?cursor=x1", "/v1/admin/clients?cursor=12.zz"] {
        let bad = ingrid_client_sdk::tls::http_client()
            .get(format!("{url}{path}"))
            .bearer_auth(crate::harness::OPERATOR_TOKEN)
            .send()
            .await?;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(bad.text().await?.contains("malformed_cursor"), "{path}");
    }
    hub.stop().await;
    Ok(())
}
