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

#[tokio::test]
async fn expired_sessions_challenges_and_old_idempotency_answers_are_pruned() -> anyhow::Result<()> {
    let env = Env::new(2).await?;
    let hub = env.start_hub().await?;
    let wallet = env.wallet(&format!("http://{}", hub.addr), 1).await?;
    let client = wallet.address();
    // A live session (the wallet's), plus an expired one, an expired used challenge and an old answer.
    sqlx::query("INSERT INTO sessions (token_hash, client, expires_at) VALUES ($1, $2, now() - interval '1 second')")
        .bind(vec![1u8; 32])
        .bind(client.as_slice())
        .execute(&env.pool)
        .await?;
    sqlx::query("INSERT INTO used_challenges (nonce, expires_at) VALUES ($1, now() - interval '1 second')")
        .bind(vec![2u8; 16])
        .execute(&env.pool)
        .await?;
    sqlx::query(
        "INSERT INTO idempotency_keys (client, key, request_hash, status, body, created_at)
         VALUES ($1, 'old', $2, 200, 'null', now() - interval '25 hours'), ($1, 'new', $2, 200, 'null', now())",
    )
    .bind(client.as_slice())
    .bind(vec![3u8; 32])
    .execute(&env.pool)
    .await?;
    // The hub's own janitor prunes at start too and may have taken some of the three first.
    let deleted = ingrid_hub::db::prune_expired(&env.pool).await?;
    assert!(deleted <= 3, "only the three expired or old rows go ({deleted})");
    assert_eq!(ingrid_hub::db::prune_expired(&env.pool).await?, 0, "nothing left to prune");
    let left: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM used_challenges), (SELECT count(*) FROM idempotency_keys)",
    )
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(left.0, 1, "the live session stays");
    assert_eq!(left.1, 1, "the wallet's login nonce, still within its validity, stays");
    assert_eq!(left.2, 1, "the recent answer stays");
    assert!(wallet.hub().channels().await.is_ok(), "the live session still works");
    hub.stop().await;
    Ok(())
}
