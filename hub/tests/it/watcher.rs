//! The chain watcher: deposits count only at the configured confirmation depth, and
//! ingesting the same blocks again (a replay after a restart) changes nothing.

use std::time::Duration;

use alloy::providers::ext::AnvilApi;
use ingrid_client_sdk::api::ChannelStatus;
use ingrid_client_sdk::wallet::Deposit;

use crate::harness::{Env, ether, wait_until};

#[tokio::test]
async fn deposits_count_at_the_confirmation_depth_and_replays_change_nothing() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let mut config = env.config();
    config.chain.confirmations = 3;
    let hub = ingrid_hub::server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let wallet = env.wallet(&url, 1).await?;
    let eth = env.eth().holder;
    let id = wallet.open_channel(&[Deposit { asset: eth, mine: ether(2), hub: ether(1) }], 3600).await?;

    // Both deposits are mined (anvil mines one block per transaction) but not yet buried.
    let provider = env.provider(&env.hub_key);
    wait_until(Duration::from_secs(30), "the hub's deposit", || async {
        Ok(ingrid_client_sdk::chain::holdings(&provider, eth, id, env.hub_key.address()).await? == ether(1))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(wallet.hub().channel(id).await?.status, ChannelStatus::Funding, "unconfirmed deposits do not count");

    provider.anvil_mine(Some(3), None).await?;
    wallet.wait_until_open(id, Duration::from_secs(30)).await?;
    let funding = wallet.hub().channel(id).await?.funding;
    assert!(funding.iter().any(|f| f.participant == wallet.address() && f.amount == ether(2)));
    assert!(funding.iter().any(|f| f.participant == env.hub_key.address() && f.amount == ether(1)));

    // Rewind the cursor: the watcher ingests every block again, and the books stay the same.
    let books = || async {
        let s: String = sqlx::query_scalar(
            "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM
               (SELECT id::text, status::text, latest_version::text, settled::text FROM basic_channels
                UNION ALL SELECT channel_id::text, participant::text, required::text, deposited::text FROM channel_funding
                UNION ALL SELECT block_number::text, log_index::text, name, payload::text FROM chain_events) t",
        )
        .fetch_one(&env.pool)
        .await?;
        anyhow::Ok(s)
    };
    let before = books().await?;
    let head: i64 =
        sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = 'events'").fetch_one(&env.pool).await?;
    sqlx::query("DELETE FROM chain_cursor").execute(&env.pool).await?;
    wait_until(Duration::from_secs(30), "the watcher to catch up again", || async {
        let block: Option<i64> = sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = 'events'")
            .fetch_optional(&env.pool)
            .await?;
        Ok(block.is_some_and(|b| b >= head))
    })
    .await?;
    assert_eq!(books().await?, before, "re-ingesting the same blocks changed the books");
    hub.stop().await;
    Ok(())
}
