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

    // The client's deposit is mined (anvil mines one block per transaction) but not yet
    // buried: it does not count, and the hub deposits nothing against it.
    let provider = env.provider(&env.hub_key);
    let hub_holds = || ingrid_client_sdk::chain::holdings(&provider, eth, id, env.hub_key.address());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(wallet.hub().channel(id).await?.status, ChannelStatus::Funding, "unconfirmed deposits do not count");
    assert!(hub_holds().await?.is_zero(), "the hub deposits only once the client's deposit is confirmed");

    provider.anvil_mine(Some(3), None).await?;
    wait_until(Duration::from_secs(30), "the hub's deposit", || async { Ok(hub_holds().await? == ether(1)) }).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(wallet.hub().channel(id).await?.status, ChannelStatus::Funding, "the hub's deposit is not buried yet");
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

/// Flaw 2 of "the hub cannot be robbed", as a property: no event stops ingestion. Arbitrary
/// events of the hub's contracts (registrations of the hub's own channel or of any channel
/// with any params, versions and timeouts up to `u64::MAX`, deposits and conclusions with any
/// amounts, and malformed payloads under the real event signatures) are each applied or
/// recorded as skipped, and the cursor always moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(non_snake_case)] // the fields of the generated event and state types
async fn no_event_payload_stops_ingestion() -> anyhow::Result<()> {
    use alloy::primitives::{Address, B256, Bytes, LogData, U256};
    use alloy::sol_types::SolEvent;
    use ingrid_client_sdk::bindings::adjudicator::Adjudicator::{Concluded, Refuted, Registered};
    use ingrid_client_sdk::bindings::eth_holder::EthAssetHolder::{Deposited, OutcomeSet};
    use ingrid_client_sdk::{Allocation, Params, State, SubAlloc};
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config as PropConfig, TestRunner};

    let env = Env::new(2).await?;
    let hub = env.start_hub().await?;
    let wallet = env.wallet(&format!("http://{}", hub.addr), 1).await?;
    let eth = env.eth().holder;
    let real = wallet.open_channel(&[Deposit { asset: eth, mine: ether(1), hub: ether(1) }], 3600).await?;
    wallet.wait_until_open(real, Duration::from_secs(60)).await?;
    hub.stop().await;
    let chain = env.chain();
    let adjudicator = env.stack.contracts.deployment.adjudicator;

    let u256 = || any::<[u8; 32]>().prop_map(U256::from_be_bytes);
    let word = || any::<[u8; 32]>().prop_map(B256::from);
    let version = || prop_oneof![any::<u64>(), Just(u64::MAX), Just(1u64 << 63), 0u64..4];
    let channel = move || prop_oneof![word(), Just(real)];
    let outcome = move || {
        (
            proptest::collection::vec(any::<[u8; 20]>().prop_map(Address::from), 0..3),
            proptest::collection::vec([u256(), u256()], 0..3),
            proptest::collection::vec((word(), proptest::collection::vec(u256(), 0..3), [0u16..3, 0u16..3]), 0..2),
        )
            .prop_map(|(assets, balances, locked)| Allocation {
                assets,
                balances,
                locked: locked
                    .into_iter()
                    .map(|(id, balances, indexMap)| SubAlloc { id, balances, indexMap })
                    .collect(),
            })
    };
    let params = || {
        (any::<u64>(), u256(), any::<[[u8; 20]; 2]>(), any::<bool>(), any::<bool>()).prop_map(
            |(d, nonce, p, ledger, v)| Params {
                challengeDuration: d,
                nonce,
                participants: p.map(Address::from),
                ledger,
                isVirtual: v,
                app: Address::ZERO,
            },
        )
    };
    let state = move || {
        (channel(), version(), outcome(), proptest::collection::vec(any::<u8>(), 0..40), any::<bool>()).prop_map(
            |(channelId, version, outcome, app, isFinal)| State {
                channelId,
                version,
                outcome,
                appData: Bytes::from(app),
                isFinal,
            },
        )
    };
    // (address, data) of one event: a well-formed one with arbitrary fields, or garbage under
    // a real signature.
    let event = prop_oneof![
        (channel(), word(), any::<u64>(), params(), state()).prop_map(
            move |(channelId, parentId, timeout, params, state)| {
                (adjudicator, Registered { channelId, parentId, timeout, params, state }.encode_log_data())
            }
        ),
        (channel(), word(), any::<u64>(), params(), state()).prop_map(
            move |(channelId, parentId, timeout, params, state)| {
                (adjudicator, Refuted { channelId, parentId, timeout, params, state }.encode_log_data())
            }
        ),
        (channel(), version(), proptest::collection::vec([u256(), u256()], 0..3)).prop_map(
            move |(channelId, version, balances)| {
                let assets = vec![eth; balances.len()];
                (adjudicator, Concluded { channelId, version, assets, balances }.encode_log_data())
            }
        ),
        (channel(), any::<[u8; 20]>(), u256(), u256()).prop_map(move |(channelId, p, amount, total)| {
            (eth, Deposited { channelId, participant: Address::from(p), amount, total }.encode_log_data())
        }),
        (channel(), [u256(), u256()], [u256(), u256()], any::<bool>()).prop_map(
            move |(channelId, balances, credited, refunded)| {
                (eth, OutcomeSet { channelId, balances, credited, refunded }.encode_log_data())
            }
        ),
        (
            prop_oneof![
                Just(Registered::SIGNATURE_HASH),
                Just(Refuted::SIGNATURE_HASH),
                Just(Concluded::SIGNATURE_HASH),
                Just(Deposited::SIGNATURE_HASH)
            ],
            proptest::collection::vec(word(), 0..3),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(move |(topic0, mut topics, data)| {
                topics.insert(0, topic0);
                (adjudicator, LogData::new_unchecked(topics, Bytes::from(data)))
            }),
    ];
    let batch = proptest::collection::vec(event, 1..6);

    let mut runner = TestRunner::new(PropConfig { cases: 64, ..PropConfig::default() });
    let cursor = || async {
        let b: Option<i64> = sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = 'events'")
            .fetch_optional(&env.pool)
            .await?;
        anyhow::Ok(b.unwrap_or(0) as u64)
    };
    let mut block = cursor().await? + 1_000_000;
    for case in 0..64 {
        let events = batch.new_tree(&mut runner).map_err(|e| anyhow::anyhow!("{e}"))?.current();
        let logs: Vec<alloy::rpc::types::Log> = events
            .iter()
            .enumerate()
            .map(|(i, (address, data))| alloy::rpc::types::Log {
                inner: alloy::primitives::Log { address: *address, data: data.clone() },
                block_hash: Some(B256::with_last_byte(1)),
                block_number: Some(block),
                transaction_hash: Some(B256::with_last_byte(2)),
                log_index: Some(i as u64),
                ..Default::default()
            })
            .collect();
        let stored_before: i64 = sqlx::query_scalar("SELECT count(*) FROM chain_events").fetch_one(&env.pool).await?;
        if let Err(e) = chain.ingest_logs(&env.pool, &logs, block, None).await {
            panic!("case {case}: ingestion stopped on {events:?}: {e:#}");
        }
        assert_eq!(cursor().await?, block, "case {case}: the cursor moved on");
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM chain_events").fetch_one(&env.pool).await?;
        assert_eq!(
            stored - stored_before,
            logs.len() as i64,
            "case {case}: every event is applied or recorded as skipped"
        );
        block += 1;
    }
    let skipped: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chain_events WHERE skipped IS NOT NULL").fetch_one(&env.pool).await?;
    assert!(skipped > 0, "malformed payloads were generated and skipped");
    Ok(())
}
