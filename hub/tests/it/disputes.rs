//! Disputes on a real chain (anvil, its clock moved forward) with a real hub and Postgres:
//! whoever cheats or disappears, every honest party ends with at least its latest fully
//! signed balance, read back from the adjudicator's `Concluded` events, and the hub's total
//! across its channels is unchanged.
//!
//! The world is the seed's: X = (Alice 3, Ingrid 3), Y = (Bob 5, Ingrid 4); V opened with
//! (Alice 2, Bob 3) locks 5 in both. Ingrid holds 7.

use std::time::Duration;

use anyhow::Context as _;

use alloy::primitives::{B256, U256};
use ingrid_client_sdk::api::FullySignedState;
use ingrid_client_sdk::chain::{self, phase};
use ingrid_client_sdk::dispute::{self, record_key};
use ingrid_client_sdk::wallet::Wallet;
use ingrid_client_sdk::{SignedState, State};
use ingrid_hub::config::Config;
use ingrid_hub::server::{self, Running};

use crate::harness::{
    Env, advance_chain, ether, now, open_basic, print_dispute_gas, spawn_replicas, wait_concluded, wait_until,
};

/// Every basic channel's challenge duration (seconds); virtual channels get [`V_CHALLENGE`].
const CHALLENGE: u64 = 3600;
const V_CHALLENGE: u64 = 600;
const WAIT: Duration = Duration::from_secs(60);

/// The seed's world with V open and `payments` made in it (amount, payer index).
struct Seed {
    env: Env,
    alice: Wallet,
    bob: Wallet,
    x: B256,
    y: B256,
    v: B256,
    /// Every fully signed state of V, by version.
    v_states: Vec<FullySignedState>,
}

impl Seed {
    async fn new(env: Env, url: &str, validity: u64, payments: &[(u64, usize)]) -> anyhow::Result<Self> {
        let eth = env.eth().holder;
        let (alice, bob) = (env.wallet(url, 1).await?, env.wallet(url, 2).await?);
        let x = open_basic(&alice, eth, 3, 3).await?;
        let y = open_basic(&bob, eth, 5, 4).await?;
        let v = alice.propose_virtual(bob.address(), x, &[[ether(2), ether(3)]], V_CHALLENGE, validity).await?;
        let proposal = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("proposal");
        bob.accept_virtual(&proposal, y).await?;
        let opened = alice.wait_virtual_open(v, WAIT).await?;
        let mut v_states = vec![opened.latest];
        for (amount, payer) in payments {
            let (payer, payee) = if *payer == 0 { (&alice, &bob) } else { (&bob, &alice) };
            let payment = payer.pay(v, eth, ether(*amount)).await?;
            let receipt = payee.receive_payment(&payment, eth, ether(*amount)).await?;
            payer.accept_receipt(&receipt).await?;
            v_states.push(payer.virtual_record(v)?.latest);
        }
        Ok(Self { env, alice, bob, x, y, v, v_states })
    }

    /// V's record key on chain.
    fn v_key(&self) -> anyhow::Result<B256> {
        let record = self.alice.virtual_record(self.v)?;
        Ok(record_key(&record.params, &record.latest.state)?)
    }

    async fn v_record(&self) -> anyhow::Result<chain::DisputeRecord> {
        Ok(chain::dispute(&self.env.provider(&self.env.hub_key), &self.env.stack.contracts.deployment, self.v_key()?)
            .await?)
    }
}

/// A stored state of a basic channel with both signatures, straight from the hub's books.
async fn stored_state(env: &Env, channel: B256, version: u64) -> anyhow::Result<SignedState> {
    let mut conn = env.pool.acquire().await?;
    let row = ingrid_hub::db::channel(&mut conn, channel).await?.expect("channel");
    let s = ingrid_hub::db::state(&mut conn, channel, version).await?;
    Ok(SignedState { params: row.params, state: s.state, sigs: s.sigs })
}

fn signed_v(seed: &Seed, s: &FullySignedState) -> anyhow::Result<SignedState> {
    let params = seed.alice.virtual_record(seed.v)?.params;
    Ok(SignedState { params, state: s.state.clone(), sigs: s.sigs.clone() })
}

fn balances(state: &State) -> [U256; 2] {
    state.outcome.balances[0]
}

async fn dispute_version(env: &Env, channel: B256) -> anyhow::Result<chain::DisputeRecord> {
    Ok(chain::dispute(&env.provider(&env.hub_key), &env.stack.contracts.deployment, channel).await?)
}

/// The hub's payout withdrawn from a concluded channel (its holding is empty again).
async fn hub_withdrew(env: &Env, channel: B256) -> anyhow::Result<()> {
    let eth = env.eth().holder;
    let provider = env.provider(&env.hub_key);
    wait_until(WAIT, "the hub's withdrawal", || async {
        Ok(chain::settled(&provider, eth, channel).await?
            && chain::holdings(&provider, eth, channel, env.hub_key.address()).await?.is_zero())
    })
    .await
}

/// A provider of an account that is no party to any channel: registrations and refutations
/// carry their signatures in the states, so anyone can send them (and the parties' own
/// providers keep their nonces).
/// Registers `ledger` (with `subs`) from an outsider's account, unless the hub already
/// registered that channel: the hub answers a registration of a virtual channel by registering
/// its parents at once, so the two race. Returns whether this registration landed.
async fn register_unless_the_hub_did(env: &Env, ledger: SignedState, subs: Vec<SignedState>) -> anyhow::Result<bool> {
    let channel = ledger.state.channelId;
    match chain::register(&outsider(env), &env.stack.contracts.deployment, ledger, subs).await {
        Ok(_) => Ok(true),
        Err(e) => {
            anyhow::ensure!(
                dispute_version(env, channel).await?.phase != phase::NONE,
                "registering {channel} failed although nobody had registered it: {e}"
            );
            Ok(false)
        }
    }
}

fn outsider(env: &Env) -> alloy::providers::DynProvider {
    env.provider(&env.devnet.key(OUTSIDER))
}

/// The dev account of [`outsider`]; tests start [`Env`] with one more account than they use.
const OUTSIDER: usize = 3;

fn config_with(env: &Env, grace: u64) -> Config {
    let mut config = env.config();
    config.channels.settle_grace = grace;
    config
}

/// The hub registers an old state of X (better for it) and stops answering; Alice's own
/// watcher refutes it with her latest, then she concludes and withdraws alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_state_registered_by_the_hub_is_refuted_by_the_client() -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = env.start_hub().await?;
    let seed = Seed::new(env, &format!("http://{}", hub.addr), now() + 3600, &[(2, 1)]).await?;
    // Close V cooperatively: X = (5, 1), Y = (Bob 3, Ingrid 6).
    let request = seed.alice.close_request(seed.v).await?;
    let answer = seed.bob.answer_close(&request).await?;
    seed.alice.finish_close(seed.v, &request, answer).await?;
    let x_latest = seed.alice.store().load(seed.x)?.expect("X").latest;
    assert_eq!(balances(&x_latest.state), [ether(5), ether(1)]);
    hub.stop().await;

    // The (now malicious) hub registers X at version 0: (3, 3).
    let env = &seed.env;
    let stale = stored_state(env, seed.x, 0).await?;
    chain::register(&env.provider(&env.hub_key), &env.stack.contracts.deployment, stale, Vec::new()).await?;
    let report = seed.alice.watch_once().await?;
    assert_eq!(report.refuted, vec![seed.x], "Alice's watcher refutes the stale registration");
    assert_eq!(dispute_version(env, seed.x).await?.version, x_latest.state.version);
    assert_eq!(seed.alice.watch_once().await?, Default::default(), "nothing more to refute");

    advance_chain(env, CHALLENGE + 1).await?;
    seed.alice.conclude_channel(seed.x, 0, WAIT).await?;
    assert_eq!(seed.alice.withdraw(seed.x, WAIT).await?, vec![ether(5)]);
    assert_eq!(wait_concluded(env, seed.x).await?, vec![[ether(5), ether(1)]]);
    print_dispute_gas(env, "hub registers a stale basic state; client refutes").await?;
    Ok(())
}

/// Alice pays the hub, then registers her older, richer state of X: once while the hub runs,
/// once while it is down (it handles the registration after its restart, within the
/// challenge period). The hub refutes, concludes and withdraws.
async fn client_registers_a_stale_state(hub_down: bool) -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = env.start_hub().await?;
    let eth = env.eth().holder;
    let alice = env.wallet(&format!("http://{}", hub.addr), 1).await?;
    let x = open_basic(&alice, eth, 3, 3).await?;
    alice.pay_hub(x, eth, ether(2)).await?;
    let hub = if hub_down {
        hub.stop().await;
        None
    } else {
        Some(hub)
    };
    let stale = stored_state(&env, x, 0).await?;
    assert_eq!(balances(&stale.state), [ether(3), ether(3)]);
    chain::register(&outsider(&env), &env.stack.contracts.deployment, stale, Vec::new()).await?;
    let _hub: Running = match hub {
        Some(hub) => hub,
        None => env.start_hub().await?,
    };
    wait_until(WAIT, "the hub's refutation", || async { Ok(dispute_version(&env, x).await?.version == 1) }).await?;
    let result = || async {
        let r: Option<String> = sqlx::query_scalar("SELECT result FROM disputes WHERE channel_id = $1")
            .bind(x.as_slice())
            .fetch_optional(&env.pool)
            .await?;
        anyhow::Ok(r.unwrap_or_default())
    };
    wait_until(WAIT, "the dispute recorded as refuted", || async { Ok(result().await? == "refuted") }).await?;
    advance_chain(&env, CHALLENGE + 1).await?;
    assert_eq!(wait_concluded(&env, x).await?, vec![[ether(1), ether(5)]], "the latest state settles");
    hub_withdrew(&env, x).await?;
    wait_until(WAIT, "the dispute recorded as concluded", || async { Ok(result().await? == "concluded") }).await?;
    assert_eq!(alice.withdraw(x, WAIT).await?, vec![ether(1)]);
    print_dispute_gas(
        &env,
        if hub_down {
            "registration while the hub is down; refuted after restart"
        } else {
            "client registers a stale basic state; hub refutes"
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_state_registered_by_a_client_is_refuted_by_the_hub() -> anyhow::Result<()> {
    client_registers_a_stale_state(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_while_the_hub_is_down_is_refuted_after_its_restart() -> anyhow::Result<()> {
    client_registers_a_stale_state(true).await
}

/// The hub dies with V open after Bob paid Alice 2 (V = (4, 1)): Alice force-closes X through
/// the chain with V's latest state. Once back, the hub registers Y so the same record of V
/// settles it: X = (5, 1), Y = (Bob 3, Ingrid 6), Ingrid 1 + 6 = 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_dies_with_a_virtual_channel_open_and_alice_settles_through_her_parent() -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = env.start_hub().await?;
    let seed = Seed::new(env, &format!("http://{}", hub.addr), now() + 3600, &[(2, 1)]).await?;
    hub.stop().await;
    let env = &seed.env;

    seed.alice.register_channel(seed.x).await?;
    assert_eq!(seed.v_record().await?.version, 1, "V's shared record holds its latest state");
    advance_chain(env, CHALLENGE + 1).await?;
    seed.alice.conclude_channel(seed.x, 0, WAIT).await?;
    assert_eq!(seed.alice.withdraw(seed.x, WAIT).await?, vec![ether(5)]);

    let _hub = env.start_hub().await?;
    wait_until(WAIT, "the hub to register Y", || async {
        Ok(dispute_version(env, seed.y).await?.phase == phase::DISPUTE)
    })
    .await?;
    advance_chain(env, CHALLENGE + 1).await?;
    let x = wait_concluded(env, seed.x).await?;
    let y = wait_concluded(env, seed.y).await?;
    assert_eq!(x, vec![[ether(5), ether(1)]]);
    assert_eq!(y, vec![[ether(3), ether(6)]]);
    assert_eq!(x[0][1] + y[0][1], ether(7), "Ingrid holds 7 before and after");
    hub_withdrew(env, seed.x).await?;
    hub_withdrew(env, seed.y).await?;
    assert_eq!(seed.bob.withdraw(seed.y, WAIT).await?, vec![ether(3)]);
    print_dispute_gas(env, "hub dies; Alice settles V through X; hub then settles Y").await?;
    Ok(())
}

/// Bob signs V's final state, then disappears before settling his parent. Alice settles
/// alone: the hub first fixes the final state on chain through Y (registering it), then
/// settles X off chain; Y concludes on chain from the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_disappears_before_close_and_the_hub_settles_both_parents() -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = env.start_hub().await?;
    let seed = Seed::new(env, &format!("http://{}", hub.addr), now() + 3600, &[(2, 1)]).await?;
    let env = &seed.env;
    let request = seed.alice.close_request(seed.v).await?;
    let answer = seed.bob.answer_close(&request).await?;
    let sigs = [request.signature.clone(), answer.signature.clone()];
    // Bob's parent update never reaches the hub.
    let settled = seed.alice.settle_virtual(seed.v, &request.state, sigs.clone(), None).await?;
    assert!(!settled, "one parent alone waits for the final state to be fixed on chain");
    wait_until(WAIT, "V's final state on chain", || async {
        let r = seed.v_record().await?;
        Ok(r.phase == phase::DISPUTE && r.version == request.state.version)
    })
    .await?;
    assert_eq!(dispute_version(env, seed.y).await?.phase, phase::DISPUTE, "the hub registered Bob's parent");
    wait_until(WAIT, "Alice's settlement", || async {
        Ok(seed.alice.settle_virtual(seed.v, &request.state, sigs.clone(), None).await?)
    })
    .await?;
    let x_latest = seed.alice.store().load(seed.x)?.expect("X").latest.state;
    assert_eq!(balances(&x_latest), [ether(5), ether(1)]);
    assert!(x_latest.outcome.locked.is_empty());

    advance_chain(env, CHALLENGE + 1).await?;
    let y = wait_concluded(env, seed.y).await?;
    assert_eq!(y, vec![[ether(3), ether(6)]]);
    seed.alice.close(seed.x).await?;
    assert_eq!(seed.alice.withdraw(seed.x, WAIT).await?, vec![ether(5)]);
    let x = wait_concluded(env, seed.x).await?;
    assert_eq!(x[0][1] + y[0][1], ether(7), "Ingrid holds 7 before and after");
    hub_withdrew(env, seed.y).await?;
    assert_eq!(seed.bob.withdraw(seed.y, WAIT).await?, vec![ether(3)]);
    drop(hub);
    print_dispute_gas(env, "Bob gone at close; hub fixes V's final state through Y").await?;
    Ok(())
}

/// V's validity ends and nobody closes it: the hub goes to chain with V's opening state in
/// both parents; Alice's watcher refutes V's record with the latest (4, 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_validity_the_hub_settles_a_virtual_channel_on_chain() -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = server::start(config_with(&env, 1)).await?;
    let seed = Seed::new(env, &format!("http://{}", hub.addr), now() + 3, &[(2, 1)]).await?;
    let env = &seed.env;
    wait_until(WAIT, "the hub to register both parents", || async {
        Ok(dispute_version(env, seed.x).await?.phase == phase::DISPUTE
            && dispute_version(env, seed.y).await?.phase == phase::DISPUTE)
    })
    .await?;
    assert_eq!(seed.v_record().await?.version, 0, "the hub only has V's opening state");
    assert_eq!(seed.alice.watch_once().await?.refuted, vec![seed.v]);
    assert_eq!(seed.v_record().await?.version, 1);
    advance_chain(env, CHALLENGE + 1).await?;
    let x = wait_concluded(env, seed.x).await?;
    let y = wait_concluded(env, seed.y).await?;
    assert_eq!((x[0], y[0]), ([ether(5), ether(1)], [ether(3), ether(6)]));
    hub_withdrew(env, seed.x).await?;
    hub_withdrew(env, seed.y).await?;
    hub.stop().await;
    print_dispute_gas(env, "past validity; hub registers X and Y, Alice refutes V").await?;
    Ok(())
}

/// Alice registers X with V at (4, 1) (version 1), Bob registers Y with V at (2, 3)
/// (version 0); both also hold version 2 = (3, 2). One shared record: the higher version
/// stays, Bob's watcher refutes it with version 2, and both parents settle from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_and_bob_register_different_states_of_their_virtual_channel() -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = env.start_hub().await?;
    let seed = Seed::new(env, &format!("http://{}", hub.addr), now() + 3600, &[(2, 1), (1, 0)]).await?;
    let env = &seed.env;
    let d = env.stack.contracts.deployment;
    let x_latest = stored_state(env, seed.x, seed.alice.store().load(seed.x)?.expect("X").latest.state.version).await?;
    let y_latest = stored_state(env, seed.y, seed.bob.store().load(seed.y)?.expect("Y").latest.state.version).await?;
    let v1 = signed_v(&seed, &seed.v_states[1])?;
    let v0 = signed_v(&seed, &seed.v_states[0])?;
    chain::register(&outsider(env), &d, x_latest, vec![v1]).await?;
    // Bob's registration of Y with the older V state, or the hub's own of Y (it answers V's
    // registration by registering both parents): either way with V below version 1.
    register_unless_the_hub_did(env, y_latest, vec![v0]).await?;
    assert_eq!(seed.v_record().await?.version, 1, "the lower version does not replace the record");
    assert_eq!(seed.bob.watch_once().await?.refuted, vec![seed.v]);
    assert_eq!(seed.v_record().await?.version, 2);

    advance_chain(env, CHALLENGE + 1).await?;
    let x = wait_concluded(env, seed.x).await?;
    let y = wait_concluded(env, seed.y).await?;
    assert_eq!(x, vec![[ether(4), ether(2)]], "X: Alice 1 + 3, Ingrid 0 + 2");
    assert_eq!(y, vec![[ether(4), ether(5)]], "Y: Bob 2 + 2, Ingrid 2 + 3");
    assert_eq!(x[0][1] + y[0][1], ether(7));
    hub_withdrew(env, seed.x).await?;
    hub_withdrew(env, seed.y).await?;
    hub.stop().await;
    print_dispute_gas(env, "Alice and Bob register different V states").await?;
    Ok(())
}

/// Two hub processes on one database: one leads. Killing it (SIGKILL) hands the watcher and
/// the outbox to the other, which refutes a stale registration made after the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_leader_dies_and_the_other_hub_process_takes_over() -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let (mut hubs, urls) = spawn_replicas(&env, 2).await?;
    let http = ingrid_client_sdk::tls::http_client();
    let leaders = || async {
        let mut out = Vec::new();
        for url in &urls {
            let text = match http.get(format!("{url}/metrics")).send().await {
                Ok(r) => r.text().await?,
                Err(_) => String::new(),
            };
            out.push(text.lines().any(|l| l == "ingrid_leader 1"));
        }
        anyhow::Ok(out)
    };
    wait_until(WAIT, "one leader", || async { Ok(leaders().await?.iter().filter(|l| **l).count() == 1) }).await?;
    let leader = leaders().await?.iter().position(|l| *l).expect("a leader");
    let follower = 1 - leader;

    let eth = env.eth().holder;
    let alice = env.wallet(&urls[follower], 1).await?;
    let x = open_basic(&alice, eth, 3, 3).await?;
    alice.pay_hub(x, eth, ether(2)).await?;
    hubs[leader].kill().await?;
    wait_until(WAIT, "the other process to lead", || async { Ok(leaders().await?[follower]) }).await?;

    let stale = stored_state(&env, x, 0).await?;
    chain::register(&outsider(&env), &env.stack.contracts.deployment, stale, Vec::new()).await?;
    wait_until(WAIT, "the refutation", || async { Ok(dispute_version(&env, x).await?.version == 1) }).await?;
    advance_chain(&env, CHALLENGE + 1).await?;
    assert_eq!(wait_concluded(&env, x).await?, vec![[ether(1), ether(5)]]);
    hub_withdrew(&env, x).await?;
    print_dispute_gas(&env, "leader killed; follower refutes").await?;
    Ok(())
}

/// The pure parts the watcher relies on agree with the adjudicator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_key_of_a_virtual_channel_matches_the_adjudicator() -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = env.start_hub().await?;
    let seed = Seed::new(env, &format!("http://{}", hub.addr), now() + 3600, &[]).await?;
    let env = &seed.env;
    let provider = env.provider(&env.hub_key);
    let adjudicator =
        ingrid_client_sdk::bindings::Adjudicator::new(env.stack.contracts.deployment.adjudicator, &provider);
    let state = &seed.v_states[0].state;
    let totals = vec![ether(5)];
    let on_chain = adjudicator.subChannelKey(seed.v, state.outcome.assets.clone(), totals.clone()).call().await?;
    assert_eq!(on_chain, dispute::sub_channel_key(seed.v, &state.outcome.assets, &totals));
    assert_eq!(on_chain, seed.v_key()?);
    hub.stop().await;
    Ok(())
}

/// Alice and Bob's own ledger channel Z (no funding needed to register it), locking V with
/// the same amount as X and Y: a way to create V's record without touching the hub's
/// channels.
fn coalition_ledger(seed: &Seed, lock: U256) -> anyhow::Result<SignedState> {
    let d = seed.env.stack.contracts.deployment;
    let params = ingrid_client_sdk::Params {
        challengeDuration: CHALLENGE,
        nonce: U256::from(now()),
        participants: [seed.alice.address(), seed.bob.address()],
        ledger: true,
        isVirtual: false,
        app: alloy::primitives::Address::ZERO,
    };
    let eth = seed.env.eth().holder;
    let state = State {
        channelId: ingrid_client_sdk::state::channel_id(&params),
        version: 0,
        outcome: ingrid_client_sdk::Allocation {
            assets: vec![eth],
            balances: vec![[U256::ZERO, U256::ZERO]],
            locked: vec![ingrid_client_sdk::SubAlloc { id: seed.v, balances: vec![lock], indexMap: [0, 1] }],
        },
        appData: Default::default(),
        isFinal: false,
    };
    Ok(chain::sign_both(&d, &params, &state, [&seed.env.devnet.key(1), &seed.env.devnet.key(2)])?)
}

/// A state of V that Alice and Bob co-sign (they collude): any version, final or not, any
/// split of V's 5.
fn cosigned_v(seed: &Seed, version: u64, is_final: bool, alice: u64) -> anyhow::Result<SignedState> {
    let params = seed.alice.virtual_record(seed.v)?.params;
    let mut state = seed.v_states[0].state.clone();
    state.version = version;
    state.isFinal = is_final;
    state.outcome.balances[0] = [ether(alice), ether(5 - alice)];
    Ok(chain::sign_both(
        &seed.env.stack.contracts.deployment,
        &params,
        &state,
        [&seed.env.devnet.key(1), &seed.env.devnet.key(2)],
    )?)
}

/// Flaw 1 of "the hub cannot be robbed": Alice and Bob co-sign F1 (final, all to Alice) and
/// F2 (final, a higher version, all to Bob). They create V's record with its opening state
/// (through a ledger channel of their own), refute it with F1, and Alice settles X off chain
/// with F1; then they try to replace the record with F2 so that Y concludes with F2 and the
/// hub pays V's 5 twice. A final state recorded on chain ends the record's dispute at once,
/// and the hub settles one parent alone only on what the chain has fixed: the hub keeps 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_final_states_of_a_virtual_channel_cannot_make_the_hub_pay_twice() -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = env.start_hub().await?;
    let seed = Seed::new(env, &format!("http://{}", hub.addr), now() + 3600, &[]).await?;
    let env = &seed.env;
    let d = env.stack.contracts.deployment;
    let s1 = signed_v(&seed, &seed.v_states[0])?;
    chain::register(&outsider(env), &d, coalition_ledger(&seed, ether(5))?, vec![s1]).await?;
    let f1 = cosigned_v(&seed, 10, true, 5)?;
    let f2 = cosigned_v(&seed, 11, true, 0)?;
    chain::refute(&outsider(env), &d, f1.clone(), Vec::new()).await?;
    // Alice settles X alone with F1, as soon as the hub accepts it; unless the hub, answering
    // the registration of S1 (not final), already registered X (then X settles on chain).
    wait_until(WAIT, "Alice's settlement of X with F1", || async {
        match seed.alice.settle_virtual(seed.v, &f1.state, f1.sigs.clone(), None).await {
            Ok(settled) => Ok(settled),
            Err(ingrid_client_sdk::wallet::WalletError::Hub(ingrid_client_sdk::client::ClientError::Refused {
                status: 409,
                body,
                ..
            })) if body.error == "virtual_in_dispute" => {
                advance_chain(env, 1).await?;
                Ok(false)
            }
            Err(ingrid_client_sdk::wallet::WalletError::Hub(ingrid_client_sdk::client::ClientError::Refused {
                status: 409,
                body,
                ..
            })) if body.error == "parent_not_open" => Ok(true),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    // The coalition tries to replace F1 with F2; the record keeps F1.
    let replaced = chain::refute(&outsider(env), &d, f2.clone(), Vec::new()).await;
    let record = seed.v_record().await?;
    assert_eq!(
        record.state_hash,
        d.state_digest(&f1.state),
        "a final state on chain is never replaced (refute with F2: {replaced:?})"
    );
    assert!(replaced.is_err(), "refuting a final state reverts");
    // Bob registers Y with his latest state and F2 (the record keeps F1), unless the hub
    // registered Y already; Y concludes.
    let y_latest = stored_state(env, seed.y, seed.bob.store().load(seed.y)?.expect("Y").latest.state.version).await?;
    register_unless_the_hub_did(env, y_latest, vec![f2]).await?;
    advance_chain(env, CHALLENGE + 1).await?;
    let y = wait_concluded(env, seed.y).await?;
    assert_eq!(y, vec![[ether(2), ether(7)]], "Y settles with F1: Bob 2 + 0, Ingrid 2 + 5");
    // X closes off chain unless the hub's registration of X landed (then it concludes there,
    // with V's record, F1).
    if dispute_version(env, seed.x).await?.phase == phase::NONE {
        seed.alice.close(seed.x).await?;
    }
    let x = wait_concluded(env, seed.x).await?;
    assert_eq!(x, vec![[ether(6), U256::ZERO]], "X settled with F1: Alice 1 + 5, Ingrid 0");
    assert_eq!(x[0][1] + y[0][1], ether(7), "Ingrid holds 7 before and after");
    hub.stop().await;
    Ok(())
}

/// Flaw 2 of "the hub cannot be robbed": versions are uint64 on chain. Alice and Bob register
/// V with a state at version 2^63 + 1 (only they sign V's states) through X; the hub records
/// it faithfully, keeps ingesting (its cursor reaches the head), registers Y because V is
/// registered, and both parents conclude with that state: the hub still holds 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_beyond_i64_does_not_stop_the_watcher() -> anyhow::Result<()> {
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = env.start_hub().await?;
    let seed = Seed::new(env, &format!("http://{}", hub.addr), now() + 3600, &[]).await?;
    let env = &seed.env;
    let d = env.stack.contracts.deployment;
    let huge = (1u64 << 63) + 1;
    let x_latest = seed.alice.store().load(seed.x)?.expect("X").latest.state.version;
    let x_state = stored_state(env, seed.x, x_latest).await?;
    chain::register(&outsider(env), &d, x_state, vec![cosigned_v(&seed, huge, false, 4)?]).await?;
    let key = seed.v_key()?;
    wait_until(WAIT, "the registration at 2^63 + 1 recorded", || async {
        let mut conn = env.pool.acquire().await?;
        Ok(ingrid_hub::db::dispute_of(&mut conn, key).await?.is_some_and(|r| r.registered_version == huge))
    })
    .await?;
    let provider = env.provider(&env.hub_key);
    let head = alloy::providers::Provider::get_block_number(&provider).await?;
    wait_until(WAIT, "the watcher at the head", || async {
        let cursor: Option<i64> = sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = 'events'")
            .fetch_optional(&env.pool)
            .await?;
        advance_chain(env, 1).await?;
        Ok(cursor.is_some_and(|c| c as u64 >= head))
    })
    .await?;
    let skipped: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chain_events WHERE skipped IS NOT NULL").fetch_one(&env.pool).await?;
    assert_eq!(skipped, 0, "a version of 2^63 + 1 is stored, not skipped");
    // The hub still acts: it registers Y (V is registered) and concludes both parents with
    // the state Alice and Bob fixed; its total stays 7.
    wait_until(WAIT, "the hub to register Y", || async {
        Ok(dispute_version(env, seed.y).await?.phase == phase::DISPUTE)
    })
    .await?;
    advance_chain(env, CHALLENGE + 1).await?;
    let x = wait_concluded(env, seed.x).await?;
    let y = wait_concluded(env, seed.y).await?;
    assert_eq!(x[0][1] + y[0][1], ether(7), "Ingrid holds 7 before and after");
    hub.stop().await;
    Ok(())
}

/// Flaw 5 of "the hub cannot be robbed": disputes must not wait behind a transaction of the
/// hub that does not confirm. With mining paused, the hub's deposit into Bob's channel stays
/// pending and the outbox replaces it (same nonce, higher fee) once it is older than
/// `fee_bump_after`. Then every block costs 1000 gwei of base fee, which the deposit cannot
/// pay (anvil drops it from its pool; a node that keeps it would see it replaced again), and
/// Alice registers a stale state of X: the refutation goes first and lands within X's
/// challenge period, and the deposit is then sent anew at the new fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refutation_lands_while_an_earlier_transaction_of_the_hub_is_stuck() -> anyhow::Result<()> {
    use alloy::consensus::Transaction as _;
    use alloy::providers::Provider as _;
    use alloy::providers::ext::AnvilApi;
    const EXPENSIVE: u128 = 1_000_000_000_000; // 1000 gwei
    let env = Env::new(OUTSIDER + 1).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth();
    let alice = env.wallet(&url, 1).await?;
    let x = open_basic(&alice, eth.holder, 3, 3).await?;
    alice.pay_hub(x, eth.holder, ether(2)).await?;
    let bob = env.wallet(&url, 2).await?;
    let bob_key = env.devnet.key(2);
    let provider = env.provider(&env.hub_key);

    // Blocks come only when the test mines them. Bob funds his channel; the hub's deposit
    // follows at the fee of a cheap chain.
    provider.anvil_set_auto_mine(false).await?;
    let params = ingrid_client_sdk::Params {
        challengeDuration: CHALLENGE,
        nonce: U256::from(77),
        participants: [bob.address(), env.hub_key.address()],
        ledger: true,
        isVirtual: false,
        app: alloy::primitives::Address::ZERO,
    };
    let y = ingrid_client_sdk::state::channel_id(&params);
    let state = State {
        channelId: y,
        version: 0,
        outcome: ingrid_client_sdk::Allocation {
            assets: vec![eth.holder],
            balances: vec![[ether(1), ether(1)]],
            locked: vec![],
        },
        appData: Default::default(),
        isFinal: false,
    };
    let signature = env.stack.contracts.deployment.sign_state(&bob_key, &state)?;
    bob.hub().open_channel(&ingrid_client_sdk::api::OpenChannelRequest { params, state, signature }, None).await?;
    let deposit = chain::send_deposit(&env.provider(&bob_key), &eth, y, bob.address(), ether(1)).await?;
    provider.anvil_mine(Some(1), None).await?;
    deposit.get_receipt().await?;
    let deposit_tx = || async {
        let row: Option<(Option<Vec<u8>>, String)> =
            sqlx::query_as("SELECT tx_hash, status::text FROM outbox WHERE kind = 'deposit' AND channel_id = $1")
                .bind(y.as_slice())
                .fetch_optional(&env.pool)
                .await?;
        anyhow::Ok(row.and_then(|(hash, status)| Some((B256::from_slice(&hash?), status))))
    };
    wait_until(WAIT, "the hub's deposit sent", || async { Ok(deposit_tx().await?.is_some()) }).await?;
    let (first, _) = deposit_tx().await?.expect("sent");
    let a = provider.get_transaction_by_hash(first).await?.context("first deposit in the pool")?;

    // No block: the deposit stays pending and is replaced with a higher fee at its nonce.
    wait_until(WAIT, "the pending deposit replaced", || async {
        Ok(deposit_tx().await?.is_some_and(|(hash, _)| hash != first))
    })
    .await?;
    let (second, _) = deposit_tx().await?.expect("sent");
    let b = provider.get_transaction_by_hash(second).await?.context("replacement in the pool")?;
    assert_eq!(a.nonce(), b.nonce(), "a replacement, not a second deposit");
    assert!(b.max_fee_per_gas() > a.max_fee_per_gas() + a.max_fee_per_gas() / 9, "at least 12.5 % more");
    assert!(provider.get_transaction_receipt(second).await?.is_none(), "nothing mined yet");

    // From now on every block costs 1000 gwei of base fee: the deposit cannot be mined.
    let mining = {
        let provider = provider.clone();
        tokio::spawn(async move {
            loop {
                let _ = provider.anvil_set_next_block_base_fee_per_gas(EXPENSIVE).await;
                let _ = provider.anvil_mine(Some(1), None).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    // Alice registers her older, richer state of X.
    let stale = stored_state(&env, x, 0).await?;
    chain::register(&outsider(&env), &env.stack.contracts.deployment, stale, Vec::new()).await?;
    let registered = dispute_version(&env, x).await?;
    wait_until(Duration::from_secs(120), "the hub's refutation", || async {
        Ok(dispute_version(&env, x).await?.version == 1)
    })
    .await?;
    let refuted_at = dispute::chain_time(&provider).await?;
    assert!(refuted_at < registered.timeout, "refuted within the challenge period");
    // The deposit is sent again at the new fee and lands.
    wait_until(Duration::from_secs(120), "the hub's deposit done", || async {
        Ok(deposit_tx().await?.is_some_and(|(_, status)| status == "done"))
    })
    .await?;
    let (last, _) = deposit_tx().await?.expect("sent");
    assert!(last != first && last != second, "the deposit was sent anew at the new fee");
    let receipt = provider.get_transaction_receipt(last).await?.context("deposit mined")?;
    assert!(receipt.effective_gas_price >= EXPENSIVE, "paid the new base fee");
    assert_eq!(
        chain::holdings(&provider, eth.holder, y, env.hub_key.address()).await?,
        ether(1),
        "the hub's coins in Y"
    );
    mining.abort();
    hub.stop().await;
    Ok(())
}
