//! Virtual channels through the real hub: the seed's worked example end to end (open through
//! both parents, pay without the hub, close into both parents, settle on chain), and
//! concurrent opens that would over-lock the hub's coins.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use futures::future::join_all;
use ingrid_client_sdk::Role;
use ingrid_client_sdk::api::{StateRequest, VirtualAccept, VirtualStatus};
use ingrid_client_sdk::client::ClientError;
use ingrid_client_sdk::virtual_channel::{Link, finalize, lock_in_parent, settle_in_parent, transfer};
use ingrid_client_sdk::wallet::{Wallet, WalletError};

use crate::harness::{Env, ether, now, open_basic, wait_until};

fn balances(wallet: &Wallet, id: B256) -> anyhow::Result<[U256; 2]> {
    let record = wallet.store().load(id)?.expect("stored");
    anyhow::ensure!(record.latest.state.outcome.locked.is_empty() || record.latest.state.outcome.locked.len() == 1);
    Ok(record.latest.state.outcome.balances[0])
}

/// X = (3, 3) Alice–Ingrid, Y = (4, 5) Ingrid–Bob; V opened with (2, 3) → X = (1, 0) + lock 5,
/// Y = (2, 2) + lock 5; Bob pays Alice 2 → V = (4, 1); close → X = (5, 1), Y = (6, 3);
/// Ingrid holds 7 before and after, on chain too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_worked_example_through_the_hub() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let x = open_basic(&alice, eth, 3, 3).await?; // [Alice, Ingrid]
    let y = open_basic(&bob, eth, 5, 4).await?; // [Bob, Ingrid]: Ingrid 4, Bob 5

    let v = alice.propose_virtual(bob.address(), x, &[[ether(2), ether(3)]], 600, now() + 3600).await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("Bob sees the proposal");
    assert_eq!(proposal.initial.outcome.balances[0], [ether(2), ether(3)]);
    bob.accept_virtual(&proposal, y).await?;
    let opened = alice.wait_virtual_open(v, Duration::from_secs(10)).await?;
    assert_eq!(balances(&alice, x)?, [ether(1), ether(0)], "X = (1, 0) + lock 5");
    assert_eq!(balances(&bob, y)?, [ether(2), ether(2)], "Y = (2, 2) + lock 5 (Bob, Ingrid)");
    let locked = &alice.store().load(x)?.expect("X").latest.state.outcome.locked;
    assert_eq!((locked[0].id, locked[0].balances.clone()), (v, vec![ether(5)]));

    // Bob pays Alice 2 directly; the hub sees no request.
    let before = hub.requests();
    let keys = [env.devnet.key(1), env.devnet.key(2)];
    let d = env.stack.contracts.deployment;
    let last = finalize(&transfer(&opened.latest.state, Role::Second, eth, ether(2))?)?;
    let sigs = [d.sign_state(&keys[0], &last)?, d.sign_state(&keys[1], &last)?];
    assert_eq!(hub.requests(), before, "paying inside the virtual channel needs no hub request");

    // Close: Alice brings Bob's signed parent update, so one request settles both parents.
    let y_record = bob.store().load(y)?.expect("Y");
    let y_update = settle_in_parent(&y_record.latest.state, &last)?;
    let bob_parent = StateRequest { signature: d.sign_state(&keys[1], &y_update)?, state: y_update };
    assert!(alice.settle_virtual(v, &last, sigs, Some(bob_parent)).await?, "both parents settle at once");
    bob.sync_channel(y).await?;
    assert_eq!(balances(&alice, x)?, [ether(5), ether(1)], "X = (5, 1)");
    assert_eq!(balances(&bob, y)?, [ether(3), ether(6)], "Y = (6, 3): Bob 3, Ingrid 6");
    assert_eq!(alice.hub().virtual_channel(v).await?.status, VirtualStatus::Closed);

    // Settle both basic channels on chain: the payouts are the seed's figures.
    for (wallet, id) in [(&alice, x), (&bob, y)] {
        wallet.close(id).await?;
    }
    assert_eq!(alice.withdraw(x, Duration::from_secs(60)).await?, vec![ether(5)]);
    assert_eq!(bob.withdraw(y, Duration::from_secs(60)).await?, vec![ether(3)]);
    let provider = env.provider(&env.hub_key);
    wait_until(Duration::from_secs(60), "the hub's payouts", || async {
        let mut conn = env.pool.acquire().await?;
        let views = ingrid_hub::db::channel_views(&mut conn, None, None, 10).await?;
        Ok(views.iter().all(|v| v.settled.is_some()))
    })
    .await?;
    let mut conn = env.pool.acquire().await?;
    let settled_x = ingrid_hub::db::channel_views(&mut conn, Some(x), None, 1).await?.pop().expect("X").settled;
    let settled_y = ingrid_hub::db::channel_views(&mut conn, Some(y), None, 1).await?.pop().expect("Y").settled;
    assert_eq!(settled_x, Some(vec![[ether(5), ether(1)]]));
    assert_eq!(settled_y, Some(vec![[ether(3), ether(6)]]));
    assert_eq!(settled_x.expect("x")[0][1] + settled_y.expect("y")[0][1], ether(7), "Ingrid holds 7 after, as before");
    drop(provider);
    hub.stop().await;
    Ok(())
}

/// Two virtual channels that together need more of the hub's coins in Bob's parent than the
/// hub has there: they can never both open, whatever the interleaving; the loser gets a 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_never_over_lock_the_hubs_coins() -> anyhow::Result<()> {
    let env = Env::new(4).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (alice, carol, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?, env.wallet(&url, 3).await?);
    let xa = open_basic(&alice, eth, 5, 0).await?;
    let xc = open_basic(&carol, eth, 5, 0).await?;
    let y = open_basic(&bob, eth, 5, 5).await?; // the hub has 5 in Y
    // Each proposal needs 4 of the hub's 5 in Y.
    let va = alice.propose_virtual(bob.address(), xa, &[[ether(4), U256::ZERO]], 600, now() + 3600).await?;
    let vc = carol.propose_virtual(bob.address(), xc, &[[ether(4), U256::ZERO]], 600, now() + 3600).await?;
    let proposals = bob.proposals().await?;
    assert_eq!(proposals.len(), 2);
    // Bob accepts both at once, each acceptance built on the same Y (as two devices would).
    let d = env.stack.contracts.deployment;
    let bob_key = env.devnet.key(3);
    let y_now = bob.store().load(y)?.expect("Y").latest.state;
    let accepts = proposals.iter().map(|p| {
        let update = lock_in_parent(&y_now, Link::client_parent(Role::Second, Role::Second), &p.initial).expect("lock");
        let accept = VirtualAccept {
            signature: d.sign_state(&bob_key, &p.initial).expect("sign"),
            parent: StateRequest { signature: d.sign_state(&bob_key, &update).expect("sign"), state: update },
        };
        let client = bob.hub().clone();
        async move { client.accept_virtual(p.id, &accept, None).await }
    });
    let results = join_all(accepts).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "exactly one of the two opens succeeds: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, ClientError::Refused { status: 409, .. }), "{e:?}");
        }
    }
    // Retrying the loser on the new Y: the SDK itself sees the hub is short, and the hub,
    // asked anyway, refuses with 409 insufficient_hub_balance and changes nothing.
    let y_now = bob.sync_channel(y).await?.latest.state;
    let view = bob
        .hub()
        .virtual_channels()
        .await?
        .channels
        .into_iter()
        .find(|v| v.status == VirtualStatus::Proposed)
        .expect("the loser");
    assert!(matches!(bob.accept_virtual(&view, y).await, Err(WalletError::Update(_))));
    let mut next = y_now.clone();
    next.version += 1;
    let accept = VirtualAccept {
        signature: d.sign_state(&bob_key, &view.initial)?,
        parent: StateRequest { signature: d.sign_state(&bob_key, &next)?, state: next },
    };
    let before = env.snapshot().await?;
    match bob.hub().accept_virtual(view.id, &accept, None).await {
        Err(ClientError::Refused { status: 409, body, .. }) => assert_eq!(body.error, "insufficient_hub_balance"),
        other => anyhow::bail!("expected 409 insufficient_hub_balance, got {other:?}"),
    }
    assert_eq!(env.snapshot().await?, before);
    let y_state = bob.sync_channel(y).await?.latest.state;
    assert_eq!(y_state.outcome.locked.len(), 1);
    assert_eq!(y_state.outcome.balances[0], [ether(5), ether(1)], "the hub locked 4 of its 5 once");
    let _ = (va, vc);
    hub.stop().await;
    Ok(())
}
