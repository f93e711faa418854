//! Killing the hub (SIGKILL) in the middle of a run and starting it again loses nothing:
//! clients retry with their idempotency keys, every state a client holds a hub signature
//! for is in the database, and the chain pays out the final states.

use std::time::Duration;

use alloy::primitives::U256;
use futures::future::try_join_all;
use ingrid_client_sdk::api::ChannelStatus;
use ingrid_client_sdk::wallet::Deposit;

use crate::harness::{Env, ether, spawn_hub, wait_until};

const CLIENTS: usize = 10;
const UPDATES: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hub_killed_and_restarted_mid_run_loses_nothing() -> anyhow::Result<()> {
    let env = Env::new(CLIENTS + 1).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut config = env.config();
    config.listen = format!("127.0.0.1:{port}").parse()?;
    let config_file = env.dir.path().join("ingrid.toml");
    std::fs::write(&config_file, toml::to_string(&config)?)?;
    let url = format!("http://127.0.0.1:{port}");
    let mut hub = spawn_hub(&config_file, &url).await?;
    let eth = env.eth().holder;

    let runs = (1..=CLIENTS).map(|i| {
        let (env, url) = (&env, url.clone());
        async move {
            let wallet = env.wallet(&url, i).await?;
            let id = wallet.open_channel(&[Deposit { asset: eth, mine: ether(1), hub: ether(1) }], 3600).await?;
            wallet.wait_until_open(id, Duration::from_secs(60)).await?;
            for _ in 0..UPDATES {
                wallet.pay_hub(id, eth, U256::from(1_000 * i as u64)).await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            wallet.close(id).await?;
            let withdrawn = wallet.withdraw(id, Duration::from_secs(120)).await?;
            anyhow::Ok((id, withdrawn, wallet.store().load(id)?.expect("stored"), wallet.hub().clone()))
        }
    });
    let killer = async {
        // Kill the hub once the clients are half way through their updates.
        let half = (CLIENTS as u64 * (1 + UPDATES / 2)) as i64;
        wait_until(Duration::from_secs(60), "half of the updates", || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM channel_states").fetch_one(&env.pool).await?;
            Ok(n >= half)
        })
        .await?;
        hub.kill().await?;
        let at_kill: i64 = sqlx::query_scalar("SELECT count(*) FROM channel_states").fetch_one(&env.pool).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        anyhow::Ok((spawn_hub(&config_file, &url).await?, at_kill))
    };
    let (results, restarted) = tokio::join!(try_join_all(runs), killer);
    let results = results?;
    let (_hub, at_kill) = restarted?;
    let total = (CLIENTS as u64 * (UPDATES + 2)) as i64;
    assert!(at_kill < total, "the hub was killed mid-run ({at_kill} of {total} states stored)");

    for (id, withdrawn, record, http) in results {
        let state = &record.latest.state;
        assert_eq!(state.version, UPDATES + 1);
        assert!(state.isFinal);
        // The hub holds the same latest state, and every version before it.
        let view = http.channel(id).await?;
        assert_eq!(view.latest, record.latest);
        let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM channel_states WHERE channel_id = $1")
            .bind(id.as_slice())
            .fetch_one(&env.pool)
            .await?;
        assert_eq!(versions as u64, UPDATES + 2);
        assert_eq!(withdrawn, vec![state.outcome.balances[0][0]]);
        wait_until(Duration::from_secs(60), "the conclusion to be recorded", || async {
            Ok(http.channel(id).await?.status == ChannelStatus::Closed)
        })
        .await?;
        assert_eq!(http.channel(id).await?.settled, Some(state.outcome.balances.clone()));
    }
    Ok(())
}
