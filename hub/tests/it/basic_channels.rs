//! Basic channels end to end through the real hub: many clients open, fund, update and
//! close concurrently, and the chain pays out exactly the final states.

use std::time::Duration;

use alloy::primitives::U256;
use futures::future::try_join_all;
use ingrid_client_sdk::api::ChannelStatus;
use ingrid_client_sdk::chain;
use ingrid_client_sdk::wallet::Deposit;

use crate::harness::{Env, ether, wait_until};

const CLIENTS: usize = 50;
const UPDATES: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_open_fund_update_and_close_concurrently() -> anyhow::Result<()> {
    let env = Env::new(CLIENTS + 1).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let (eth, token) = (env.eth().holder, env.token().holder);
    let hub_address = env.hub_key.address();

    let runs = (1..=CLIENTS).map(|i| {
        let (env, url) = (&env, url.clone());
        async move {
            let wallet = env.wallet(&url, i).await?;
            // Every client deposits 1 ETH and 100 tUSD; the hub matches half of each.
            let deposits = [
                Deposit { asset: eth, mine: ether(1), hub: ether(1) / U256::from(2) },
                Deposit { asset: token, mine: U256::from(100_000_000u64), hub: U256::from(50_000_000u64) },
            ];
            let id = wallet.open_channel(&deposits, 3600).await?;
            wallet.wait_until_open(id, Duration::from_secs(60)).await?;
            // Client i pays the hub i gwei of ETH and i units of tUSD, UPDATES times.
            for _ in 0..UPDATES {
                wallet.pay_hub(id, eth, U256::from(i as u64 * 1_000_000_000)).await?;
                wallet.pay_hub(id, token, U256::from(i as u64)).await?;
            }
            wallet.close(id).await?;
            let withdrawn = wallet.withdraw(id, Duration::from_secs(120)).await?;
            anyhow::Ok((i, id, withdrawn, wallet.store().load(id)?.expect("stored")))
        }
    });
    let results = try_join_all(runs).await?;

    for (i, id, withdrawn, record) in &results {
        let state = &record.latest.state;
        assert!(state.isFinal);
        assert_eq!(state.version, 1 + 2 * UPDATES);
        let paid_eth = U256::from(*i as u64 * 1_000_000_000 * UPDATES);
        let paid_tusd = U256::from(*i as u64 * UPDATES);
        assert_eq!(state.outcome.balances[0], [ether(1) - paid_eth, ether(1) / U256::from(2) + paid_eth]);
        assert_eq!(
            state.outcome.balances[1],
            [U256::from(100_000_000u64) - paid_tusd, U256::from(50_000_000u64) + paid_tusd]
        );
        // What the client withdrew is its final balance.
        assert_eq!(*withdrawn, vec![state.outcome.balances[0][0], state.outcome.balances[1][0]]);

        // The hub recorded the on-chain conclusion with the same balances, and withdrew its share.
        wait_until(Duration::from_secs(30), "the hub to record the conclusion", || async {
            Ok(env_view(&env, *id).await?.0 == ChannelStatus::Closed)
        })
        .await?;
        assert_eq!(env_view(&env, *id).await?.1, Some(state.outcome.balances.clone()));
        let provider = env.provider(&env.hub_key);
        wait_until(Duration::from_secs(60), "the hub's withdrawal", || async {
            Ok(chain::holdings(&provider, eth, *id, hub_address).await?.is_zero()
                && chain::holdings(&provider, token, *id, hub_address).await?.is_zero())
        })
        .await?;
    }
    // Every outbox action completes (the last ones are marked done just after their receipts).
    wait_until(Duration::from_secs(30), "every outbox action to be done", || async {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status <> 'done'").fetch_one(&env.pool).await?;
        Ok(pending == 0)
    })
    .await?;
    let states: i64 = sqlx::query_scalar("SELECT count(*) FROM channel_states").fetch_one(&env.pool).await?;
    assert_eq!(states as usize, CLIENTS * (2 + 2 * UPDATES as usize), "every version of every channel is kept");
    hub.stop().await;
    Ok(())
}

async fn env_view(env: &Env, id: alloy::primitives::B256) -> anyhow::Result<(ChannelStatus, Option<Vec<[U256; 2]>>)> {
    let mut conn = env.pool.acquire().await?;
    let view = ingrid_hub::db::channel_views(&mut conn, Some(id), None, 1).await?.pop().expect("channel");
    Ok((view.status, view.settled))
}

/// Flaw 4 of "the hub cannot be robbed": a client with no money opens channels asking for the
/// hub's collateral and never deposits. The hub deposits its share only once the client's
/// deposits are confirmed, so nothing of the hub's is locked; and a client may hold only
/// `channels.max_unfunded_per_client` (2) unfunded channels, a third is refused and changes
/// nothing. Once the client funds one, the hub deposits and the channel opens. A channel the
/// client funds and concludes on chain before the hub's share goes in gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_deposits_after_the_client_and_caps_unfunded_channels() -> anyhow::Result<()> {
    use ingrid_client_sdk::api::OpenChannelRequest;
    use ingrid_client_sdk::client::ClientError;
    let env = Env::new(2).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let wallet = env.wallet(&url, 1).await?;
    let key = env.devnet.key(1);
    let eth = env.eth();
    let hub_address = env.hub_key.address();
    let d = env.stack.contracts.deployment;
    let request = |nonce: u64| -> anyhow::Result<OpenChannelRequest> {
        let params = ingrid_client_sdk::Params {
            challengeDuration: 3600,
            nonce: U256::from(nonce),
            participants: [key.address(), hub_address],
            ledger: true,
            isVirtual: false,
            app: alloy::primitives::Address::ZERO,
        };
        let state = ingrid_client_sdk::State {
            channelId: ingrid_client_sdk::state::channel_id(&params),
            version: 0,
            outcome: ingrid_client_sdk::Allocation {
                assets: vec![eth.holder],
                balances: vec![[ether(1), ether(1)]],
                locked: vec![],
            },
            appData: Default::default(),
            isFinal: false,
        };
        let signature = d.sign_state(&key, &state)?;
        Ok(OpenChannelRequest { params, state, signature })
    };
    let a = wallet.hub().open_channel(&request(1)?, None).await?.channel_id;
    let b_request = request(2)?;
    let b_hub_signature = wallet.hub().open_channel(&b_request, None).await?.signature;

    let rows = || async {
        let channels: i64 = sqlx::query_scalar("SELECT count(*) FROM basic_channels").fetch_one(&env.pool).await?;
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&env.pool).await?;
        anyhow::Ok((channels, outbox))
    };
    let before = rows().await?;
    assert_eq!(before, (2, 0), "two channels and no deposit of the hub queued");
    match wallet.hub().open_channel(&request(3)?, None).await {
        Err(ClientError::Refused { status: 409, body, .. }) => {
            assert_eq!(body.error, "too_many_unfunded", "{}", body.message);
            assert!(body.message.contains("at most 2"), "{}", body.message);
        }
        other => panic!("a third unfunded channel must be refused, got {other:?}"),
    }
    assert_eq!(rows().await?, before, "the refusal changed nothing");

    // Blocks go by and the watcher ingests them: the hub deposits nothing into a or b.
    let provider = env.provider(&env.hub_key);
    {
        use alloy::providers::Provider;
        use alloy::providers::ext::AnvilApi;
        provider.anvil_mine(Some(5), None).await?;
        let head = provider.get_block_number().await?;
        wait_until(Duration::from_secs(30), "the watcher past the opening", || async {
            let cursor: Option<i64> = sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = 'events'")
                .fetch_optional(&env.pool)
                .await?;
            provider.anvil_mine(Some(1), None).await?;
            Ok(cursor.is_some_and(|c| c as u64 >= head))
        })
        .await?;
    }
    assert_eq!(rows().await?.1, 0, "no deposit of the hub queued for channels nobody funded");
    assert!(chain::holdings(&provider, eth.holder, a, hub_address).await?.is_zero());

    // The client funds a: the hub deposits its share after it, and a opens.
    chain::deposit(&env.provider(&key), &eth, a, key.address(), ether(1)).await?;
    wallet.wait_until_open(a, Duration::from_secs(60)).await?;
    assert_eq!(chain::holdings(&provider, eth.holder, a, hub_address).await?, ether(1));
    // One channel waits for its funding now: a new one is accepted.
    wallet.hub().open_channel(&request(3)?, None).await?;

    // While the hub is down the client funds b, registers its opening state and concludes it
    // (underfunded: its deposit comes back). The restarted hub ingests the deposit, which
    // makes its share due, but puts nothing into the settled channel.
    hub.stop().await;
    let b = b_request.state.channelId;
    let client = env.provider(&key);
    chain::deposit(&client, &eth, b, key.address(), ether(1)).await?;
    let signed = ingrid_client_sdk::SignedState {
        params: b_request.params.clone(),
        state: b_request.state.clone(),
        sigs: [b_request.signature.clone(), b_hub_signature],
    };
    chain::register(&client, &d, signed, Vec::new()).await?;
    crate::harness::advance_chain(&env, 3601).await?;
    chain::conclude(&client, &d, b_request.params.clone(), b_request.state.clone(), Vec::new()).await?;
    assert!(chain::settled(&provider, eth.holder, b).await?);
    let hub = env.start_hub().await?;
    wait_until(Duration::from_secs(60), "the hub's deposit for b decided", || async {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status::text FROM outbox WHERE kind = 'deposit' AND channel_id = $1")
                .bind(b.as_slice())
                .fetch_optional(&env.pool)
                .await?;
        Ok(status.as_deref() == Some("done"))
    })
    .await?;
    assert!(
        chain::holdings(&provider, eth.holder, b, hub_address).await?.is_zero(),
        "nothing left in a settled channel"
    );
    hub.stop().await;
    Ok(())
}
