//! Virtual channels: every bad proposal, acceptance and close is a 4xx naming the reason that
//! changes nothing; a close with one side offline settles the other side's parent only; past
//! its validity the hub asks both ends to close.

use std::time::Duration;

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::Role;
use ingrid_client_sdk::api::{StateRequest, VirtualAccept, VirtualClose, VirtualProposal, VirtualStatus};
use ingrid_client_sdk::chain;
use ingrid_client_sdk::client::ClientError;
use ingrid_client_sdk::state::channel_id;
use ingrid_client_sdk::virtual_channel::{Link, finalize, lock_in_parent, settle_in_parent, transfer};
use ingrid_client_sdk::{Allocation, Deployment, Params, SignedState, State};

use crate::harness::{Env, ether, now, open_basic, wait_until};

struct World {
    env: Env,
    d: Deployment,
    eth: Address,
}

impl World {
    async fn refused<T: std::fmt::Debug>(
        &self,
        status: u16,
        code: &str,
        request: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> anyhow::Result<()> {
        let before = self.env.snapshot().await?;
        match request.await {
            Err(ClientError::Refused { status: s, body, .. }) if s == status && body.error == code => {}
            other => anyhow::bail!("expected {status} {code}, got {other:?}"),
        }
        anyhow::ensure!(self.env.snapshot().await? == before, "a refused request ({code}) changed the database");
        Ok(())
    }

    fn params(&self, a: Address, b: Address, challenge: u64) -> Params {
        Params {
            challengeDuration: challenge,
            nonce: U256::from(rand::random::<u64>()),
            participants: [a, b],
            ledger: false,
            isVirtual: true,
            app: Address::ZERO,
        }
    }

    fn opening(&self, params: &Params, deposits: [U256; 2]) -> State {
        State {
            channelId: channel_id(params),
            version: 0,
            outcome: Allocation { assets: vec![self.eth], balances: vec![deposits], locked: vec![] },
            appData: Bytes::new(),
            isFinal: false,
        }
    }

    /// A proposal by `key` from its parent state `parent`, with `update` replacing the
    /// correct parent update when given.
    fn proposal(
        &self,
        key: &PrivateKeySigner,
        params: Params,
        opening: State,
        parent: &State,
        update: Option<State>,
    ) -> VirtualProposal {
        let update = update.unwrap_or_else(|| {
            lock_in_parent(parent, Link::client_parent(Role::First, Role::Second), &opening).expect("lock")
        });
        VirtualProposal {
            signature: self.d.sign_state(key, &opening).expect("sign"),
            parent: StateRequest { signature: self.d.sign_state(key, &update).expect("sign"), state: update },
            params,
            state: opening,
            valid_until: now() + 3600,
            quote: None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_virtual_channel_requests_change_nothing() -> anyhow::Result<()> {
    let env = Env::new(5).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let w = World { d: env.stack.contracts.deployment, eth: env.eth().holder, env };
    let (alice, bob, carol) =
        (w.env.wallet(&url, 1).await?, w.env.wallet(&url, 2).await?, w.env.wallet(&url, 3).await?);
    let (ak, bk) = (w.env.devnet.key(1), w.env.devnet.key(2));
    let x = open_basic(&alice, w.eth, 3, 3).await?;
    let y = open_basic(&bob, w.eth, 5, 4).await?;
    let x_state = alice.store().load(x)?.expect("X").latest.state;
    let api = alice.hub().clone();

    // ---------------------------------------------------------------- proposals
    let p = w.params(ak.address(), bk.address(), 600);
    let v0 = w.opening(&p, [ether(2), ether(3)]);
    // Mismatched amounts: Alice locks only 1 of her 2.
    let mut short = lock_in_parent(&x_state, Link::client_parent(Role::First, Role::Second), &v0)?;
    short.outcome.balances[0][0] += ether(1);
    short.outcome.balances[0][1] -= ether(1);
    w.refused(
        422,
        "parent_update_mismatch",
        api.propose_virtual(&w.proposal(&ak, p.clone(), v0.clone(), &x_state, Some(short)), None),
    )
    .await?;
    // Wrong index map: V's Bob mapped to Alice.
    let mut wrong_map = lock_in_parent(&x_state, Link::client_parent(Role::First, Role::Second), &v0)?;
    wrong_map.outcome.locked[0].indexMap = [1, 0];
    w.refused(
        422,
        "parent_update_mismatch",
        api.propose_virtual(&w.proposal(&ak, p.clone(), v0.clone(), &x_state, Some(wrong_map)), None),
    )
    .await?;
    // A forged signature on the opening state, and none at all.
    let mut forged = w.proposal(&ak, p.clone(), v0.clone(), &x_state, None);
    forged.signature = w.d.sign_state(&bk, &v0)?;
    w.refused(422, "bad_signature", api.propose_virtual(&forged, None)).await?;
    forged.signature = Bytes::new();
    w.refused(422, "bad_signature", api.propose_virtual(&forged, None)).await?;
    // A challenge duration longer than the parent's (3600).
    let long = w.params(ak.address(), bk.address(), 7200);
    let v_long = w.opening(&long, [ether(2), ether(3)]);
    w.refused(422, "challenge_too_long", api.propose_virtual(&w.proposal(&ak, long, v_long, &x_state, None), None))
        .await?;
    // More than the hub has in Alice's parent (Bob's 4 > the hub's 3).
    let greedy = w.params(ak.address(), bk.address(), 600);
    let v_greedy = w.opening(&greedy, [ether(1), ether(4)]);
    let mut bogus = x_state.clone();
    bogus.version += 1;
    w.refused(
        409,
        "insufficient_hub_balance",
        api.propose_virtual(&w.proposal(&ak, greedy, v_greedy, &x_state, Some(bogus)), None),
    )
    .await?;
    // A peer who is not a client, and a stale parent version.
    let stranger = w.params(ak.address(), Address::repeat_byte(7), 600);
    let v_stranger = w.opening(&stranger, [ether(1), U256::ZERO]);
    w.refused(422, "unknown_peer", api.propose_virtual(&w.proposal(&ak, stranger, v_stranger, &x_state, None), None))
        .await?;
    let mut stale = lock_in_parent(&x_state, Link::client_parent(Role::First, Role::Second), &v0)?;
    stale.version -= 1;
    w.refused(
        409,
        "wrong_version",
        api.propose_virtual(&w.proposal(&ak, p.clone(), v0.clone(), &x_state, Some(stale)), None),
    )
    .await?;

    // A good proposal; replaying it is refused, unless with the same idempotency key.
    let good = w.proposal(&ak, p.clone(), v0.clone(), &x_state, None);
    let first = api.propose_virtual(&good, Some("v-1")).await?;
    assert_eq!(first.status, VirtualStatus::Proposed);
    assert_eq!(api.propose_virtual(&good, Some("v-1")).await?, first);
    w.refused(409, "virtual_exists", api.propose_virtual(&good, None)).await?;

    // ---------------------------------------------------------------- acceptance
    let y_state = bob.store().load(y)?.expect("Y").latest.state;
    let accept = |key: &PrivateKeySigner, update: State| VirtualAccept {
        signature: w.d.sign_state(key, &v0).expect("sign"),
        parent: StateRequest { signature: w.d.sign_state(key, &update).expect("sign"), state: update },
    };
    let good_y = lock_in_parent(&y_state, Link::client_parent(Role::Second, Role::Second), &v0)?;
    // Only the proposed peer may accept; Carol cannot.
    w.refused(
        404,
        "not_found",
        carol.hub().accept_virtual(first.id, &accept(&w.env.devnet.key(3), good_y.clone()), None),
    )
    .await?;
    // A forged acceptance signature.
    let mut forged = accept(&bk, good_y.clone());
    forged.signature = w.d.sign_state(&ak, &v0)?;
    w.refused(422, "bad_signature", bob.hub().accept_virtual(first.id, &forged, None)).await?;
    // A wrong index map in Y.
    let mut wrong = good_y.clone();
    wrong.outcome.locked[0].indexMap = [0, 1];
    w.refused(422, "parent_update_mismatch", bob.hub().accept_virtual(first.id, &accept(&bk, wrong), None)).await?;
    // Bob's parent in dispute: Bob registers Y on chain; the hub sees it and refuses.
    let y_record = bob.store().load(y)?.expect("Y");
    let registered = SignedState {
        params: y_record.params.clone(),
        state: y_record.latest.state.clone(),
        sigs: y_record.latest.sigs.clone(),
    };
    chain::register(&w.env.provider(&bk), &w.d, registered, vec![]).await?;
    wait_until(Duration::from_secs(20), "the hub to see the registration", || async {
        Ok(sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM chain_events WHERE name = 'Registered')")
            .fetch_one(&w.env.pool)
            .await?)
    })
    .await?;
    // A registered parent is `closing` for the hub: it takes no new locks.
    w.refused(409, "parent_not_open", bob.hub().accept_virtual(first.id, &accept(&bk, good_y.clone()), None)).await?;

    // Carol's parent is not funded yet (she never deposits): her proposal is refused.
    let z = carol.hub().clone();
    let ck = w.env.devnet.key(3);
    let zp = Params {
        challengeDuration: 3600,
        nonce: U256::from(9),
        participants: [ck.address(), w.env.hub_key.address()],
        ledger: true,
        isVirtual: false,
        app: Address::ZERO,
    };
    let z0 = State {
        channelId: channel_id(&zp),
        version: 0,
        outcome: Allocation { assets: vec![w.eth], balances: vec![[ether(1), U256::ZERO]], locked: vec![] },
        appData: Bytes::new(),
        isFinal: false,
    };
    z.open_channel(
        &ingrid_client_sdk::api::OpenChannelRequest {
            signature: w.d.sign_state(&ck, &z0)?,
            params: zp,
            state: z0.clone(),
        },
        None,
    )
    .await?;
    let cp = w.params(ck.address(), ak.address(), 600);
    let cv = w.opening(&cp, [ether(1), U256::ZERO]);
    w.refused(409, "parent_not_open", z.propose_virtual(&w.proposal(&ck, cp, cv, &z0, None), None)).await?;
    hub.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_one_side_offline_and_expiry() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let d = env.stack.contracts.deployment;
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let (ak, bk) = (env.devnet.key(1), env.devnet.key(2));
    let x = open_basic(&alice, eth, 3, 3).await?;
    let y = open_basic(&bob, eth, 5, 4).await?;
    let v = alice.propose_virtual(bob.address(), x, &[[ether(2), ether(3)]], 600, now() + 2).await?;
    let proposal = bob.proposals().await?.pop().expect("proposal");
    bob.accept_virtual(&proposal, y).await?;
    let opened = alice.wait_virtual_open(v, Duration::from_secs(10)).await?;

    // Past its validity, the hub asks both ends for the final state.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(alice.hub().virtual_channel(v).await?.close_requested);
    assert!(bob.hub().virtual_channel(v).await?.close_requested);

    // Both sign the final state. Alice cannot settle Bob's parent without Bob's signature on
    // its update. (Settling one parent alone is a dispute path: see disputes.rs.)
    let last = finalize(&transfer(&opened.latest.state, Role::Second, eth, ether(2))?)?;
    let sigs = [d.sign_state(&ak, &last)?, d.sign_state(&bk, &last)?];
    let y_state = bob.store().load(y)?.expect("Y").latest.state;
    let y_update = settle_in_parent(&y_state, &last)?;
    let forged = VirtualClose {
        state: last.clone(),
        sigs: sigs.clone(),
        parents: vec![StateRequest { signature: d.sign_state(&ak, &y_update)?, state: y_update.clone() }],
    };
    let before = env.snapshot().await?;
    match alice.hub().close_virtual(v, &forged, None).await {
        Err(ClientError::Refused { status: 422, body, .. }) => assert_eq!(body.error, "bad_signature"),
        other => anyhow::bail!("expected 422 bad_signature, got {other:?}"),
    }
    assert_eq!(env.snapshot().await?, before, "the refused close changed nothing");
    // Both parents' updates in one request settle it.
    let x_state = alice.store().load(x)?.expect("X").latest.state;
    let x_update = settle_in_parent(&x_state, &last)?;
    let both = VirtualClose {
        state: last.clone(),
        sigs,
        parents: vec![
            StateRequest { signature: d.sign_state(&ak, &x_update)?, state: x_update },
            StateRequest { signature: d.sign_state(&bk, &y_update)?, state: y_update },
        ],
    };
    alice.hub().close_virtual(v, &both, None).await?;
    alice.sync_channel(x).await?;
    bob.sync_channel(y).await?;
    assert_eq!(alice.store().load(x)?.expect("X").latest.state.outcome.balances[0], [ether(5), ether(1)]);
    assert_eq!(bob.store().load(y)?.expect("Y").latest.state.outcome.balances[0], [ether(3), ether(6)]);
    assert_eq!(bob.hub().virtual_channel(v).await?.status, VirtualStatus::Closed);
    let _ = env.provider(&env.hub_key).anvil_mine(Some(1), None).await;
    hub.stop().await;
    Ok(())
}
