//! Every class of bad request gets a 4xx whose JSON body names the reason, and changes
//! nothing in the database (the tables' digests are equal before and after).

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::api::{ChallengeRequest, ErrorBody, OpenChannelRequest, StateRequest, TokenRequest};
use ingrid_client_sdk::client::{ClientError, HubClient};
use ingrid_client_sdk::state::channel_id;
use ingrid_client_sdk::wallet::Deposit;
use ingrid_client_sdk::{Allocation, Deployment, Params, State};

use crate::harness::{Env, ether};

/// Fails unless `result` is a refusal with `status` and `code`.
fn refused<T: std::fmt::Debug>(result: Result<T, ClientError>, status: u16, code: &str) -> anyhow::Result<()> {
    match result {
        Err(ClientError::Refused { status: s, body, .. }) if s == status && body.error == code => Ok(()),
        other => anyhow::bail!("expected {status} {code}, got {other:?}"),
    }
}

struct World {
    env: Env,
    url: String,
    deployment: Deployment,
    hub: Address,
}

impl World {
    fn params(&self, client: Address, challenge: u64) -> Params {
        Params {
            challengeDuration: challenge,
            nonce: U256::from(rand::random::<u64>()),
            participants: [client, self.hub],
            ledger: true,
            isVirtual: false,
            app: Address::ZERO,
        }
    }

    fn state(&self, params: &Params, version: u64, asset: Address, balances: [U256; 2]) -> State {
        State {
            channelId: channel_id(params),
            version,
            outcome: Allocation { assets: vec![asset], balances: vec![balances], locked: vec![] },
            appData: Bytes::new(),
            isFinal: false,
        }
    }

    /// Sends `request` as `client`, expecting a refusal, and checks nothing changed.
    async fn expect_unchanged<T: std::fmt::Debug>(
        &self,
        status: u16,
        code: &str,
        request: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> anyhow::Result<()> {
        let before = self.env.snapshot().await?;
        refused(request.await, status, code)?;
        anyhow::ensure!(self.env.snapshot().await? == before, "a refused request ({code}) changed the database");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_a_reason_and_change_nothing() -> anyhow::Result<()> {
    let env = Env::new(4).await?;
    let running = env.start_hub().await?;
    let url = format!("http://{}", running.addr);
    let eth = env.eth().holder;
    let w = World { deployment: env.stack.contracts.deployment, hub: env.hub_key.address(), url, env };

    // Alice has an open channel (1 ETH each); Bob a logged-in session and no channel.
    let alice = w.env.wallet(&w.url, 1).await?;
    let id = alice.open_channel(&[Deposit { asset: eth, mine: ether(1), hub: ether(1) }], 3600).await?;
    alice.wait_until_open(id, Duration::from_secs(30)).await?;
    alice.pay_hub(id, eth, U256::from(10)).await?;
    let alice_key = w.env.devnet.key(1);
    let alice_http = alice.hub().clone();
    let mut bob_http = HubClient::new(&w.url);
    let bob_key = w.env.devnet.key(2);
    bob_http.login(&bob_key).await?;
    let latest = alice.store().load(id)?.expect("stored").latest.state;

    // ---------------------------------------------------------------- authentication
    let anonymous = HubClient::new(&w.url);
    w.expect_unchanged(401, "unauthorized", anonymous.channels()).await?;
    let open = OpenChannelRequest {
        params: w.params(alice_key.address(), 3600),
        state: latest.clone(),
        signature: Bytes::from(vec![0u8; 65]),
    };
    w.expect_unchanged(401, "unauthorized", anonymous.open_channel(&open, None)).await?;
    w.expect_unchanged(401, "unauthorized", HubClient::new(&w.url).with_token("forged").channels()).await?;

    // A challenge signed by another key, an altered challenge, a replayed challenge.
    let http = ingrid_client_sdk::tls::http_client();
    let challenge: serde_json::Value = http
        .post(format!("{}/v1/auth/challenge", w.url))
        .json(&ChallengeRequest { address: alice_key.address() })
        .send()
        .await?
        .json()
        .await?;
    let text = challenge["challenge"].as_str().expect("challenge").to_string();
    let token_request = |key: &PrivateKeySigner, text: &str| TokenRequest {
        address: alice_key.address(),
        challenge: text.to_string(),
        signature: key.sign_message_sync(text.as_bytes()).expect("sign").as_bytes().to_vec().into(),
    };
    for (request, status) in [
        (token_request(&bob_key, &text), 401),
        (token_request(&alice_key, &text.replace("expires: ", "expires: 9")), 401),
    ] {
        let before = w.env.snapshot().await?;
        let response = http.post(format!("{}/v1/auth/token", w.url)).json(&request).send().await?;
        assert_eq!(response.status().as_u16(), status);
        let body: ErrorBody = response.json().await?;
        assert_eq!(body.error, "unauthorized");
        // A failed login writes nothing.
        let after = w.env.snapshot().await?;
        assert_eq!(before, after);
    }
    // Asking for a challenge writes nothing either; a used challenge cannot be used again.
    let before = w.env.snapshot().await?;
    let fresh: serde_json::Value = http
        .post(format!("{}/v1/auth/challenge", w.url))
        .json(&ChallengeRequest { address: alice_key.address() })
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(w.env.snapshot().await?, before);
    let fresh = token_request(&alice_key, fresh["challenge"].as_str().expect("challenge"));
    assert!(http.post(format!("{}/v1/auth/token", w.url)).json(&fresh).send().await?.status().is_success());
    let before = w.env.snapshot().await?;
    let replay = http.post(format!("{}/v1/auth/token", w.url)).json(&fresh).send().await?;
    assert_eq!(replay.status().as_u16(), 401);
    assert_eq!(w.env.snapshot().await?, before, "a replayed login writes nothing");

    // Layers' refusals carry the same JSON body too (the body limit is tested in the router's unit tests).
    let query = http
        .get(format!("{}/v1/channels?limit=lots", w.url))
        .bearer_auth(alice_http.token().expect("token"))
        .send()
        .await?;
    assert_eq!(query.status().as_u16(), 400);
    assert_eq!(query.json::<ErrorBody>().await?.error, "bad_request");

    // ---------------------------------------------------------------- malformed input
    let before = w.env.snapshot().await?;
    let response = http
        .post(format!("{}/v1/channels", w.url))
        .bearer_auth(alice_http.token().expect("token"))
        .body("{\"params\": 12")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.json::<ErrorBody>().await?.error, "malformed_json");
    let response = http
        .get(format!("{}/v1/channels/not-a-channel-id", w.url))
        .bearer_auth(alice_http.token().expect("token"))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.json::<ErrorBody>().await?.error, "malformed_channel_id");
    assert_eq!(w.env.snapshot().await?, before);

    // ---------------------------------------------------------------- opening
    let me = alice_key.address();
    let signed_open = |params: Params, state: State, key: &PrivateKeySigner| OpenChannelRequest {
        signature: w.deployment.sign_state(key, &state).expect("sign"),
        params,
        state,
    };
    let p = w.params(me, 3600);
    let s = w.state(&p, 0, eth, [ether(1), ether(1)]);
    w.expect_unchanged(
        422,
        "bad_signature",
        alice_http.open_channel(&signed_open(p.clone(), s.clone(), &bob_key), None),
    )
    .await?;
    let s = w.state(&p, 0, eth, [ether(1), ether(2)]);
    w.expect_unchanged(
        422,
        "hub_deposit_above_ratio",
        alice_http.open_channel(&signed_open(p.clone(), s, &alice_key), None),
    )
    .await?;
    let s = w.state(&p, 0, Address::repeat_byte(9), [ether(1), ether(1)]);
    w.expect_unchanged(422, "unknown_asset", alice_http.open_channel(&signed_open(p.clone(), s, &alice_key), None))
        .await?;
    let short = w.params(me, 5);
    let s = w.state(&short, 0, eth, [ether(1), ether(1)]);
    w.expect_unchanged(422, "invalid_params", alice_http.open_channel(&signed_open(short, s, &alice_key), None))
        .await?;
    let s = w.state(&p, 0, eth, [ether(1), ether(1)]);
    w.expect_unchanged(
        422,
        "client_not_participant",
        bob_http.open_channel(&signed_open(p.clone(), s, &alice_key), None),
    )
    .await?;
    let s = w.state(&p, 1, eth, [ether(1), ether(1)]);
    w.expect_unchanged(422, "wrong_version", alice_http.open_channel(&signed_open(p.clone(), s, &alice_key), None))
        .await?;
    // Re-opening an existing channel.
    let record = alice.store().load(id)?.expect("stored");
    let first = w.state(&record.params, 0, eth, [ether(1), ether(1)]);
    w.expect_unchanged(
        409,
        "channel_exists",
        alice_http.open_channel(&signed_open(record.params.clone(), first, &alice_key), None),
    )
    .await?;

    // ---------------------------------------------------------------- updates
    let update = |state: State, key: &PrivateKeySigner| StateRequest {
        signature: w.deployment.sign_state(key, &state).expect("sign"),
        state,
    };
    let next = |version: u64, balances: [U256; 2]| {
        let mut s = latest.clone();
        s.version = version;
        s.outcome.balances[0] = balances;
        s
    };
    let [a, h] = latest.outcome.balances[0];
    let v = latest.version;
    // Replay of the last update, a version skipped, value created, the hub paying, forged.
    w.expect_unchanged(409, "wrong_version", alice_http.update(id, &update(latest.clone(), &alice_key), None)).await?;
    w.expect_unchanged(
        409,
        "wrong_version",
        alice_http.update(id, &update(next(v + 2, [a - U256::from(1), h + U256::from(1)]), &alice_key), None),
    )
    .await?;
    w.expect_unchanged(
        422,
        "total_changed",
        alice_http.update(id, &update(next(v + 1, [a, h + U256::from(1)]), &alice_key), None),
    )
    .await?;
    w.expect_unchanged(
        422,
        "hub_balance_decreased",
        alice_http.update(id, &update(next(v + 1, [a + U256::from(1), h - U256::from(1)]), &alice_key), None),
    )
    .await?;
    w.expect_unchanged(
        422,
        "bad_signature",
        alice_http.update(id, &update(next(v + 1, [a - U256::from(1), h + U256::from(1)]), &bob_key), None),
    )
    .await?;
    // Someone else's channel, and a channel that does not exist.
    w.expect_unchanged(
        404,
        "not_found",
        bob_http.update(id, &update(next(v + 1, [a - U256::from(1), h + U256::from(1)]), &bob_key), None),
    )
    .await?;
    w.expect_unchanged(404, "not_found", bob_http.channel(id)).await?;
    w.expect_unchanged(
        404,
        "not_found",
        alice_http.update(B256::repeat_byte(3), &update(next(v + 1, [a, h]), &alice_key), None),
    )
    .await?;
    // Closing with a non-final state, or with other balances.
    w.expect_unchanged(422, "not_final", alice_http.close(id, &update(next(v + 1, [a, h]), &alice_key), None)).await?;
    let mut fin = next(v + 1, [a - U256::from(1), h + U256::from(1)]);
    fin.isFinal = true;
    w.expect_unchanged(422, "balances_changed", alice_http.close(id, &update(fin, &alice_key), None)).await?;

    // ---------------------------------------------------------------- idempotency
    let good = update(next(v + 1, [a - U256::from(5), h + U256::from(5)]), &alice_key);
    let first = alice_http.update(id, &good, Some("pay-5")).await?;
    let after_first = w.env.snapshot().await?;
    let again = alice_http.update(id, &good, Some("pay-5")).await?;
    assert_eq!(first, again, "a retry with the same key gets the first answer");
    assert_eq!(w.env.snapshot().await?, after_first, "and changes nothing");
    let other = update(next(v + 2, [a - U256::from(6), h + U256::from(6)]), &alice_key);
    w.expect_unchanged(422, "idempotency_key_reused", alice_http.update(id, &other, Some("pay-5"))).await?;

    // ---------------------------------------------------------------- a channel not yet funded
    let p = w.params(bob_key.address(), 3600);
    let s = w.state(&p, 0, eth, [ether(1), U256::ZERO]);
    bob_http.open_channel(&signed_open(p.clone(), s.clone(), &bob_key), None).await?;
    let mut s1 = s.clone();
    s1.version = 1;
    s1.outcome.balances[0] = [ether(1) - U256::from(1), U256::from(1)];
    w.expect_unchanged(409, "channel_not_open", bob_http.update(channel_id(&p), &update(s1, &bob_key), None)).await?;

    // The operator API wants the operator token; a client token is not enough.
    w.expect_unchanged(401, "unauthorized", alice_http.admin_channels()).await?;
    let operator = HubClient::new(&w.url).with_token(crate::harness::OPERATOR_TOKEN);
    let all = operator.admin_channels().await?;
    assert_eq!(all.channels.len(), 2, "the operator sees every client's channels");
    let outbox: serde_json::Value = http
        .get(format!("{}/v1/admin/outbox", w.url))
        .bearer_auth(crate::harness::OPERATOR_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert!(outbox["entries"].as_array().is_some_and(|e| e.iter().any(|e| e["kind"] == "deposit")), "{outbox}");

    // Unknown routes and methods.
    let response = http.get(format!("{}/v1/nothing", w.url)).send().await?;
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(response.json::<ErrorBody>().await?.error, "not_found");
    let response = http.delete(format!("{}/v1/channels", w.url)).send().await?;
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.json::<ErrorBody>().await?.error, "method_not_allowed");
    running.stop().await;
    Ok(())
}
