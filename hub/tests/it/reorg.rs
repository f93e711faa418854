//! Chain reorganisations: a reorganisation that takes a deposit away takes its channel's
//! funding away too, a top-up whose standby disappears is made again, and before the watcher
//! has noticed, the hub still locks nothing against a deposit the chain no longer holds.

use std::time::Duration;

use alloy::providers::ext::AnvilApi;
use ingrid_client_sdk::api::ChannelStatus;
use ingrid_client_sdk::wallet::Deposit;

use crate::harness::{Env, ether, mine_until, now, wait_until};

/// The block of the first deposit into `channel` the hub ingested.
async fn first_deposit_block(env: &Env, channel: alloy::primitives::B256) -> anyhow::Result<u64> {
    let block: i64 =
        sqlx::query_scalar("SELECT min(block_number) FROM chain_events WHERE channel_id = $1 AND name = 'Deposited'")
            .bind(channel.as_slice())
            .fetch_one(&env.pool)
            .await?;
    Ok(block as u64)
}

/// Issue 13: a chain reorganisation deeper than the confirmation depth replaces the blocks of
/// Alice's deposit (and of the hub's matching one). The hub notices the replaced blocks,
/// undoes what it ingested from them and puts Alice's channel back to `funding` with nothing
/// confirmed; accepting or proposing a virtual channel against it is refused and changes
/// nothing, and the hub deposits nothing more into it. When Alice deposits again, the
/// channel opens again and the hub puts its share in once more (exactly once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_a_reorganisation_takes_away_leaves_its_channel_unfunded_and_locks_nothing() -> anyhow::Result<()> {
    use alloy::providers::Provider;
    use alloy::rpc::types::anvil::ReorgOptions;
    use ingrid_client_sdk::api::VirtualStatus;
    use ingrid_client_sdk::client::ClientError;
    use ingrid_client_sdk::wallet::WalletError;

    const WAIT: Duration = Duration::from_secs(60);
    let env = Env::new(3).await?;
    let mut config = env.config();
    config.chain.confirmations = 2;
    let hub = ingrid_hub::server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let chain = env.provider(&env.hub_key);
    let status = |wallet: &ingrid_client_sdk::wallet::Wallet, id| {
        let hub = wallet.hub().clone();
        async move { anyhow::Ok(hub.channel(id).await?.status) }
    };
    let holds = |id, who| ingrid_client_sdk::chain::holdings(&chain, eth, id, who);

    // Bob's channel Y is funded well before the blocks the reorganisation replaces.
    let y = bob.open_channel(&[Deposit { asset: eth, mine: ether(5), hub: ether(4) }], 3600).await?;
    mine_until(&env, WAIT, "Y funded", || async { Ok(status(&bob, y).await? == ChannelStatus::Open) }).await?;
    // Alice's channel X: her deposit and the hub's are mined, buried and counted.
    let x = alice.open_channel(&[Deposit { asset: eth, mine: ether(3), hub: ether(3) }], 3600).await?;
    mine_until(&env, WAIT, "X funded", || async { Ok(status(&alice, x).await? == ChannelStatus::Open) }).await?;
    assert_eq!(holds(x, env.hub_key.address()).await?, ether(3), "the hub put its share in");
    // Bob proposes a virtual channel to Alice through Y (stored; nothing locked before she accepts).
    let v = bob.propose_virtual(alice.address(), y, &[[ether(1), ether(1)]], 600, now() + 3600).await?;

    // The chain replaces every block from Alice's deposit on with empty ones.
    let deposit_block = first_deposit_block(&env, x).await?;
    let head = chain.get_block_number().await?;
    assert!(head >= deposit_block + 2, "the deposit was buried deeper than the confirmation depth");
    let hash_at = |n: u64| {
        let chain = chain.clone();
        async move { anyhow::Ok(chain.get_block_by_number(n.into()).await?.map(|b| b.header.hash)) }
    };
    let (before, parent) = (hash_at(deposit_block).await?, hash_at(deposit_block - 1).await?);
    chain.anvil_reorg(ReorgOptions { depth: head - deposit_block + 1, tx_block_pairs: vec![] }).await?;
    assert_eq!(chain.get_block_number().await?, head, "as many blocks as before");
    assert_ne!(hash_at(deposit_block).await?, before, "a real reorganisation: the block was replaced");
    assert_eq!(hash_at(deposit_block - 1).await?, parent, "its parent was kept");
    assert!(holds(x, alice.address()).await?.is_zero(), "Alice's deposit is gone from the chain");
    assert!(holds(x, env.hub_key.address()).await?.is_zero(), "and so is the hub's");

    // The hub undoes it: X goes back to funding with nothing confirmed, Y is untouched.
    wait_until(WAIT, "X to leave open", || async { Ok(status(&alice, x).await? == ChannelStatus::Funding) }).await?;
    let view = alice.hub().channel(x).await?;
    assert!(view.funding.iter().all(|f| f.amount.is_zero()), "no deposit of X is confirmed: {:?}", view.funding);
    assert_eq!(status(&bob, y).await?, ChannelStatus::Open, "Y's deposits were not replaced");
    let (recorded, outbox_changes): (i64, Option<String>) = sqlx::query_as(
        "SELECT count(*), string_agg(outbox::text, ' ') FROM chain_reorgs
         WHERE $1 = ANY(unfunded) AND kept_block < $2 AND jsonb_array_length(undone_events) > 0",
    )
    .bind(x.as_slice())
    .bind(deposit_block as i64)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(recorded, 1, "the reorganisation is recorded with X unfunded");
    assert!(
        outbox_changes.unwrap_or_default().contains("deposit:"),
        "the hub's own deposit into X is re-armed or withdrawn"
    );
    let undone_left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chain_events WHERE block_number >= $1 AND channel_id = $2")
            .bind(deposit_block as i64)
            .bind(x.as_slice())
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(undone_left, 0, "the events of the replaced blocks are no longer in the books");

    // Accepting Bob's proposal with X, or proposing with X, is refused and changes nothing.
    let refused = |result: Result<_, WalletError>| match result {
        Err(WalletError::Hub(ClientError::Refused { status: 409, body, .. })) if body.error == "parent_not_open" => {
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("refused for another reason: {e}")),
        Ok(_) => Err(anyhow::anyhow!("a virtual channel was locked against a deposit that disappeared")),
    };
    let snapshot = env.snapshot().await?;
    let proposal = alice.proposals().await?.into_iter().find(|p| p.id == v).expect("Alice sees Bob's proposal");
    refused(alice.accept_virtual(&proposal, x).await.map(|_| ()))?;
    refused(alice.propose_virtual(bob.address(), x, &[[ether(1), ether(1)]], 600, now() + 3600).await.map(|_| ()))?;
    assert_eq!(env.snapshot().await?, snapshot, "the refusals changed nothing");
    assert_eq!(alice.hub().virtual_channel(v).await?.status, VirtualStatus::Proposed);
    assert_eq!(alice.hub().channel(x).await?.latest.state.version, 0, "nothing is locked in X");

    // The new blocks are buried: the hub deposits nothing into X while Alice's deposit is missing.
    chain.anvil_mine(Some(5), None).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        holds(x, env.hub_key.address()).await?.is_zero(),
        "no coins of the hub go to a channel without its deposit"
    );
    assert_eq!(status(&alice, x).await?, ChannelStatus::Funding);

    // Alice deposits again: X opens again with the hub's share deposited once more.
    ingrid_client_sdk::chain::deposit(&env.provider(&env.devnet.key(1)), &env.eth(), x, alice.address(), ether(3))
        .await?;
    mine_until(&env, WAIT, "X funded again", || async { Ok(status(&alice, x).await? == ChannelStatus::Open) }).await?;
    assert_eq!(holds(x, alice.address()).await?, ether(3));
    assert_eq!(holds(x, env.hub_key.address()).await?, ether(3), "the hub deposited its share again, once");
    hub.stop().await;
    Ok(())
}

/// A collateral top-up confirmed by a standby that a reorganisation takes away goes back to
/// `depositing`, and the hub's standby action is armed again (the old, finished entry stays
/// under another key); the channel itself stays open, since top-ups are not part of its
/// opening deposits. Driven by hand with a synthetic standby event far above the chain's head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_up_whose_standby_disappears_is_deposited_again() -> anyhow::Result<()> {
    use alloy::primitives::B256;
    use alloy::sol_types::SolEvent;
    use ingrid_client_sdk::bindings::eth_holder::EthAssetHolder::StandbyDeposited;
    use ingrid_hub::chain::Action;

    let env = Env::new(2).await?;
    let hub = env.start_hub().await?;
    let wallet = env.wallet(&format!("http://{}", hub.addr), 1).await?;
    let eth = env.eth().holder;
    let x = crate::harness::open_basic(&wallet, eth, 2, 2).await?;
    hub.stop().await;
    let chain = env.chain();
    let me = env.hub_key.address();

    // A top-up of 1 starts (the hub's requirement rises to 3) and its standby is confirmed.
    let mut tx = env.pool.begin().await?;
    let standby = ingrid_hub::db::start_top_up(&mut tx, x, eth, me, ether(1), ether(3)).await?.expect("started");
    let action = Action::TopUp { channel: x, asset: eth, amount: standby };
    action.enqueue(&mut tx, 0).await?;
    tx.commit().await?;
    sqlx::query("UPDATE outbox SET status = 'done' WHERE dedup_key = $1")
        .bind(action.dedup_key())
        .execute(&env.pool)
        .await?;
    let cursor: i64 =
        sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = 'events'").fetch_one(&env.pool).await?;
    let block = cursor as u64 + 1_000;
    let replaced = B256::repeat_byte(0xab);
    let log = alloy::rpc::types::Log {
        inner: alloy::primitives::Log {
            address: eth,
            data: StandbyDeposited { channelId: x, participant: me, amount: ether(1), total: standby }
                .encode_log_data(),
        },
        block_hash: Some(replaced),
        block_number: Some(block),
        transaction_hash: Some(B256::repeat_byte(1)),
        log_index: Some(0),
        ..Default::default()
    };
    chain.ingest_logs(&env.pool, &[log], block, Some(replaced)).await?;
    let top_up_status = || async {
        let s: String = sqlx::query_scalar("SELECT status FROM top_ups WHERE channel_id = $1")
            .bind(x.as_slice())
            .fetch_one(&env.pool)
            .await?;
        anyhow::Ok(s)
    };
    assert_eq!(top_up_status().await?, "confirmed");

    // The block of the standby is replaced.
    assert_eq!(chain.undo_above(&env.pool, Some(block - 1), (block, replaced)).await?, Some(block - 1));
    assert_eq!(top_up_status().await?, "depositing", "no longer confirmed");
    let entries: Vec<(String, String)> = sqlx::query_as(
        "SELECT dedup_key, status::text FROM outbox WHERE kind = 'top_up' AND channel_id = $1 ORDER BY id",
    )
    .bind(x.as_slice())
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[0].0.starts_with(&format!("{}:undone-by-reorg-", action.dedup_key())) && entries[0].1 == "done");
    assert_eq!(entries[1], (action.dedup_key(), "pending".to_string()), "the standby is put in again");
    let mut conn = env.pool.acquire().await?;
    let view = ingrid_hub::db::channel_views(&mut conn, Some(x), None, 1).await?.remove(0);
    assert_eq!(view.status, ChannelStatus::Open, "the opening deposits are all still confirmed");
    assert!(view.funding.iter().all(|f| f.amount == ether(2)), "{:?}", view.funding);
    let (kept, recorded): (Option<i64>, i64) = sqlx::query_as(
        "SELECT kept_block, jsonb_array_length(undone_events)::int8 FROM chain_reorgs ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await?;
    assert_eq!((kept, recorded), (Some(block as i64 - 1), 1));
    Ok(())
}

/// The window before the watcher notices: a reorganisation takes Alice's deposit away while
/// the hub's watcher sleeps (it polls once an hour here), so the books still say X is open
/// and funded. Her acceptance of Bob's proposal through X would lock the hub's coins in Y
/// against a deposit the chain no longer holds: it is refused (`parent_not_funded`) from what
/// the chain holds, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptance_before_the_watcher_notices_a_reorganisation_locks_nothing() -> anyhow::Result<()> {
    use alloy::providers::Provider;
    use alloy::rpc::types::anvil::ReorgOptions;
    use ingrid_client_sdk::client::ClientError;
    use ingrid_client_sdk::wallet::WalletError;

    const WAIT: Duration = Duration::from_secs(60);
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let y = crate::harness::open_basic(&bob, eth, 5, 4).await?;
    let x = crate::harness::open_basic(&alice, eth, 3, 3).await?;
    let v = bob.propose_virtual(alice.address(), y, &[[ether(1), ether(1)]], 600, now() + 3600).await?;
    let deposit_block = first_deposit_block(&env, x).await?;
    hub.stop().await;
    drop((alice, bob));
    // A block the next hub's first poll ingests: when its cursor reaches it, that poll is done.
    let chain = env.provider(&env.hub_key);
    chain.anvil_mine(Some(1), None).await?;
    let head = chain.get_block_number().await?;

    // The same books served by a hub whose watcher polls once now and then not for an hour.
    let mut config = env.config();
    config.chain.poll_interval_ms = 3_600_000;
    let hub = ingrid_hub::server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    wait_until(WAIT, "the watcher's first poll", || async {
        let cursor: Option<i64> = sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = 'events'")
            .fetch_optional(&env.pool)
            .await?;
        Ok(cursor.is_some_and(|c| c as u64 >= head))
    })
    .await?;
    let alice = env.wallet(&url, 1).await?;

    // Alice's deposit (and the hub's into X) are replaced; the books have not noticed.
    let depth = chain.get_block_number().await? - deposit_block + 1;
    chain.anvil_reorg(ReorgOptions { depth, tx_block_pairs: vec![] }).await?;
    let holds = |who| ingrid_client_sdk::chain::holdings(&chain, eth, x, who);
    assert!(holds(alice.address()).await?.is_zero(), "Alice's deposit is gone from the chain");
    assert_eq!(alice.hub().channel(x).await?.status, ChannelStatus::Open, "the watcher has not noticed yet");

    let snapshot = env.snapshot().await?;
    let proposal = alice.proposals().await?.into_iter().find(|p| p.id == v).expect("Alice sees Bob's proposal");
    match alice.accept_virtual(&proposal, x).await {
        Err(WalletError::Hub(ClientError::Refused { status: 409, body, .. })) => {
            assert_eq!(body.error, "parent_not_funded", "{}", body.message);
            assert!(!body.message.contains(&format!("{x}")) && !body.message.contains(&format!("{y}")));
        }
        Err(e) => anyhow::bail!("refused for another reason: {e}"),
        Ok(_) => anyhow::bail!("the hub locked coins against a deposit the chain no longer holds"),
    }
    assert_eq!(env.snapshot().await?, snapshot, "the refusal changed nothing");
    assert_eq!(alice.hub().channel(x).await?.latest.state.version, 0, "nothing is locked in X");
    assert_eq!(alice.hub().channel(x).await?.status, ChannelStatus::Open, "still unnoticed by the watcher");
    hub.stop().await;

    // The chain is asked only about deposits above the finalized block: once the watcher has
    // seen Y's deposits finalized, an acceptance through Y reads nothing from the chain.
    let y_block: i64 = sqlx::query_scalar("SELECT max(block_number) FROM chain_events WHERE channel_id = $1")
        .bind(y.as_slice())
        .fetch_one(&env.pool)
        .await?;
    let to_check = |finalized: i64| {
        let pool = env.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            ingrid_hub::db::set_cursor(&mut conn, ingrid_hub::db::FINALIZED_CURSOR, finalized as u64).await?;
            let deposits = ingrid_hub::db::opening_deposits_to_check(&mut conn, &[y]).await?;
            anyhow::Ok(deposits.len())
        }
    };
    assert_eq!(to_check(y_block - 1).await?, 2, "Bob's and the hub's deposits into Y, not yet final");
    assert_eq!(to_check(y_block).await?, 0, "final: nothing to ask the chain");
    Ok(())
}

/// A synthetic log of `data` from `address` in block `block` (hash `hash`), first in it.
fn log_at(
    address: alloy::primitives::Address,
    data: alloy::primitives::LogData,
    block: u64,
    hash: alloy::primitives::B256,
) -> alloy::rpc::types::Log {
    alloy::rpc::types::Log {
        inner: alloy::primitives::Log { address, data },
        block_hash: Some(hash),
        block_number: Some(block),
        transaction_hash: Some(alloy::primitives::B256::repeat_byte(2)),
        log_index: Some(0),
        ..Default::default()
    }
}

/// A stale registration of Alice's channel that the hub refuted, both undone by a deep
/// reorganisation: the hub's finished answers (refutation, conclusion, withdrawal) are armed
/// again under their keys, so if the new chain carries the registration but not the hub's
/// refutation, the hub refutes again (each answer checks the chain before it sends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hubs_answers_to_an_undone_registration_are_armed_again() -> anyhow::Result<()> {
    use alloy::primitives::B256;
    use alloy::sol_types::SolEvent;
    use ingrid_client_sdk::bindings::adjudicator::Adjudicator::Registered;

    let env = Env::new(2).await?;
    let hub = env.start_hub().await?;
    let alice = env.wallet(&format!("http://{}", hub.addr), 1).await?;
    let eth = env.eth().holder;
    let x = crate::harness::open_basic(&alice, eth, 2, 2).await?;
    alice.pay_hub(x, eth, ether(1)).await?; // the hub's latest is version 1
    hub.stop().await;
    let chain = env.chain();

    // Alice registers version 0 (synthetic, far above the chain's head): the hub plans its answers.
    let record = alice.store().load(x)?.expect("X");
    let mut stale = record.latest.state.clone();
    stale.version = 0;
    let cursor: i64 =
        sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = 'events'").fetch_one(&env.pool).await?;
    let block = cursor as u64 + 1_000;
    let replaced = B256::repeat_byte(0xcd);
    let registered =
        Registered { channelId: x, parentId: B256::ZERO, timeout: 1, params: record.params.clone(), state: stale };
    let adjudicator = env.stack.contracts.deployment.adjudicator;
    chain
        .ingest_logs(
            &env.pool,
            &[log_at(adjudicator, registered.encode_log_data(), block, replaced)],
            block,
            Some(replaced),
        )
        .await?;
    let answers = || async {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT dedup_key, status::text FROM outbox WHERE channel_id = $1 AND kind <> 'deposit' ORDER BY id",
        )
        .bind(x.as_slice())
        .fetch_all(&env.pool)
        .await?;
        anyhow::Ok(rows)
    };
    let planned = answers().await?;
    assert!(planned.iter().any(|(k, _)| *k == format!("refute:{x}:0")), "the hub refutes: {planned:?}");
    // The answers were sent and mined (on the branch about to be replaced).
    sqlx::query("UPDATE outbox SET status = 'done' WHERE channel_id = $1 AND kind <> 'deposit'")
        .bind(x.as_slice())
        .execute(&env.pool)
        .await?;

    // The block is replaced: each finished answer stays, renamed, and a pending copy takes its key.
    chain.undo_above(&env.pool, Some(block - 1), (block, replaced)).await?;
    let after = answers().await?;
    for (key, _) in &planned {
        assert!(after.iter().any(|(k, s)| k == key && s == "pending"), "{key} armed again: {after:?}");
        assert!(
            after.iter().any(|(k, s)| k.starts_with(&format!("{key}:undone-by-reorg-")) && s == "done"),
            "{key}'s finished entry kept: {after:?}"
        );
    }
    let changes: String = sqlx::query_scalar("SELECT outbox::text FROM chain_reorgs ORDER BY id DESC LIMIT 1")
        .fetch_one(&env.pool)
        .await?;
    assert!(changes.contains(&format!("refute:{x}:0")), "recorded: {changes}");
    Ok(())
}

/// A node that replaces blocks it called finalized (anvil calls the block 64 below its head
/// finalized) is not believed: the hub undoes nothing, keeps X open, and stops ingesting
/// rather than put its channels back to funding on that node's word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorganisation_below_the_finalized_block_is_refused() -> anyhow::Result<()> {
    use alloy::providers::Provider;
    use alloy::rpc::types::anvil::ReorgOptions;

    let env = Env::new(2).await?;
    let hub = env.start_hub().await?;
    let alice = env.wallet(&format!("http://{}", hub.addr), 1).await?;
    let eth = env.eth().holder;
    let x = crate::harness::open_basic(&alice, eth, 2, 2).await?;
    let chain = env.provider(&env.hub_key);
    chain.anvil_mine(Some(80), None).await?;
    let head = chain.get_block_number().await?;
    let cursor = || async {
        let c: i64 =
            sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = 'events'").fetch_one(&env.pool).await?;
        anyhow::Ok(c as u64)
    };
    wait_until(Duration::from_secs(60), "the watcher at the head", || async { Ok(cursor().await? >= head) }).await?;

    let deposit_block = first_deposit_block(&env, x).await?;
    chain.anvil_reorg(ReorgOptions { depth: head - deposit_block + 1, tx_block_pairs: vec![] }).await?;
    assert!(ingrid_client_sdk::chain::holdings(&chain, eth, x, alice.address()).await?.is_zero());
    chain.anvil_mine(Some(3), None).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await; // many polls of the watcher
    let reorgs: i64 = sqlx::query_scalar("SELECT count(*) FROM chain_reorgs").fetch_one(&env.pool).await?;
    assert_eq!(reorgs, 0, "nothing undone");
    assert_eq!(alice.hub().channel(x).await?.status, ChannelStatus::Open);
    assert_eq!(cursor().await?, head, "ingestion stopped at the replaced blocks");
    hub.stop().await;
    Ok(())
}
