//! 200 virtual channels among 50 clients through one hub: opened (many open at once through
//! the same basic channels), random direct payments, closed. Afterwards every basic channel's
//! latest state equals the balances computed independently from the final states, and the
//! hub holds per asset exactly what it held before.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{B256, U256};
use futures::future::try_join_all;
use ingrid_client_sdk::wallet::{Deposit, Wallet};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::sync::Mutex;

use crate::harness::{Env, ether, now};

const CLIENTS: usize = 50;
const VIRTUAL: usize = 200;
const MILLI: u64 = 1_000_000_000_000_000;

/// One virtual channel of the plan: proposer, acceptor, deposits, and payments
/// (from proposer to acceptor when positive).
#[derive(Clone)]
struct Plan {
    a: usize,
    b: usize,
    deposits: [U256; 2],
    payments: Vec<i64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_virtual_channels_among_fifty_clients() -> anyhow::Result<()> {
    let env = Env::new(CLIENTS + 1).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;

    // Every client: 10 ETH in, the hub matches 10 ETH.
    let wallets: Vec<Arc<Wallet>> = try_join_all((1..=CLIENTS).map(|i| {
        let (env, url) = (&env, url.clone());
        async move { anyhow::Ok(Arc::new(env.wallet(&url, i).await?)) }
    }))
    .await?;
    let parents: Vec<B256> = try_join_all(wallets.iter().map(|w| async move {
        let id = w.open_channel(&[Deposit { asset: eth, mine: ether(10), hub: ether(10) }], 3600).await?;
        w.wait_until_open(id, Duration::from_secs(60)).await?;
        anyhow::Ok(id)
    }))
    .await?;

    let mut rng = StdRng::seed_from_u64(4);
    let plans: Vec<Plan> = (0..VIRTUAL)
        .map(|_| {
            let a = rng.random_range(0..CLIENTS);
            let b = (a + rng.random_range(1..CLIENTS)) % CLIENTS;
            let deposits =
                [U256::from(rng.random_range(100..1000) * MILLI), U256::from(rng.random_range(0..500) * MILLI)];
            let payments = (0..rng.random_range(0..12)).map(|_| rng.random_range(-40..60) as i64).collect();
            Plan { a, b, deposits, payments }
        })
        .collect();

    // A client works on one of its basic channel's updates at a time (as one device does);
    // a virtual channel's open and close take both ends' locks, in index order.
    let locks: Vec<Arc<Mutex<()>>> = (0..CLIENTS).map(|_| Arc::new(Mutex::new(()))).collect();
    let pair = |a: usize, b: usize| {
        let (lo, hi) = (a.min(b), a.max(b));
        (locks[lo].clone(), locks[hi].clone())
    };

    // Open all 200; they all stay open until every one is open.
    let opened: Vec<B256> = try_join_all(plans.iter().map(|p| {
        let (alice, bob) = (wallets[p.a].clone(), wallets[p.b].clone());
        let (lo, hi) = pair(p.a, p.b);
        let (x, y) = (parents[p.a], parents[p.b]);
        async move {
            let _l = lo.lock().await;
            let _h = hi.lock().await;
            alice.sync_channel(x).await?;
            bob.sync_channel(y).await?;
            let v = alice.propose_virtual(bob.address(), x, &[p.deposits], 600, now() + 3600).await?;
            let view = bob.hub().virtual_channel(v).await?;
            bob.accept_virtual(&view, y).await?;
            alice.wait_virtual_open(v, Duration::from_secs(30)).await?;
            anyhow::Ok(v)
        }
    }))
    .await?;
    let open_now: i64 =
        sqlx::query_scalar("SELECT count(*) FROM virtual_channels WHERE status = 'open'").fetch_one(&env.pool).await?;
    assert_eq!(open_now as usize, VIRTUAL, "all 200 are open at once");

    // Pay directly (the hub sees none of it), then close each.
    let before = hub.requests();
    let finals: Vec<[U256; 2]> = try_join_all(plans.iter().zip(&opened).map(|(p, v)| {
        let (alice, bob) = (wallets[p.a].clone(), wallets[p.b].clone());
        async move {
            for amount in &p.payments {
                let (payer, payee) = if *amount > 0 { (&alice, &bob) } else { (&bob, &alice) };
                let want = U256::from(amount.unsigned_abs() * MILLI);
                let record = payer.virtual_record(*v)?;
                let mine = record.latest.state.outcome.balances[0][record.my_index.index()];
                if mine < want {
                    continue; // more than the payer has: it would refuse; skip as a real payer would
                }
                let payment = payer.pay(*v, eth, want).await?;
                let receipt = payee.receive_payment(&payment, eth, want).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                payer.accept_receipt(&receipt).await?;
            }
            anyhow::Ok(alice.virtual_record(*v)?.latest.state.outcome.balances[0])
        }
    }))
    .await?;
    assert_eq!(hub.requests(), before, "payments inside virtual channels send nothing to the hub");

    try_join_all(plans.iter().zip(&opened).map(|(p, v)| {
        let (alice, bob) = (wallets[p.a].clone(), wallets[p.b].clone());
        let (lo, hi) = pair(p.a, p.b);
        let (x, y) = (parents[p.a], parents[p.b]);
        async move {
            let _l = lo.lock().await;
            let _h = hi.lock().await;
            alice.sync_channel(x).await?;
            bob.sync_channel(y).await?;
            let request = alice.close_request(*v).await?;
            let answer = bob.answer_close(&request).await?;
            alice.finish_close(*v, &request, answer).await?;
            bob.sync_channel(y).await?;
            anyhow::Ok(())
        }
    }))
    .await?;

    // The expected books, computed from the plan and the final states alone.
    let mut client: HashMap<usize, U256> = (0..CLIENTS).map(|i| (i, ether(10))).collect();
    let mut hub_in: HashMap<usize, U256> = (0..CLIENTS).map(|i| (i, ether(10))).collect();
    for (p, last) in plans.iter().zip(&finals) {
        // In A's parent, V's A is A and V's B is the hub; in B's parent, V's A is the hub.
        *client.get_mut(&p.a).expect("a") = client[&p.a] - p.deposits[0] + last[0];
        *hub_in.get_mut(&p.a).expect("a") = hub_in[&p.a] - p.deposits[1] + last[1];
        *hub_in.get_mut(&p.b).expect("b") = hub_in[&p.b] - p.deposits[0] + last[0];
        *client.get_mut(&p.b).expect("b") = client[&p.b] - p.deposits[1] + last[1];
    }
    let mut conn = env.pool.acquire().await?;
    let mut hub_total = U256::ZERO;
    for (i, id) in parents.iter().enumerate() {
        let view = ingrid_hub::db::channel_views(&mut conn, Some(*id), None, 1).await?.pop().expect("channel");
        let state = &view.latest.state;
        assert!(state.outcome.locked.is_empty(), "client {i}: no lock left");
        assert_eq!(state.outcome.balances[0], [client[&i], hub_in[&i]], "client {i}'s basic channel");
        assert_eq!(
            wallets[i].store().load(*id)?.expect("stored").latest,
            view.latest,
            "client {i} holds the hub's latest"
        );
        hub_total += state.outcome.balances[0][1];
    }
    assert_eq!(hub_total, ether(10) * U256::from(CLIENTS), "the hub's total is unchanged");
    let closed: i64 = sqlx::query_scalar("SELECT count(*) FROM virtual_channels WHERE status = 'closed'")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(closed as usize, VIRTUAL);
    hub.stop().await;
    Ok(())
}
