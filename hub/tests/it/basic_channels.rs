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
