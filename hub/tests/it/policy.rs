//! The operator's policy end to end on a real hub, Postgres and anvil: every limit refuses
//! with its rule and the asker's own numbers (never another client's or the hub's books) and
//! changes nothing, fees are paid in the proposer's parent
//! exactly to the unit, quotes that expired or were altered are refused, and a reload
//! changes the policy for new decisions only.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use ingrid_client_sdk::Role;
use ingrid_client_sdk::api::{Quote, QuoteRequest, StateRequest, VirtualProposal};
use ingrid_client_sdk::bindings::eth_holder::EthAssetHolder;
use ingrid_client_sdk::client::ClientError;
use ingrid_client_sdk::state::channel_id;
use ingrid_client_sdk::virtual_channel::{Link, lock_in_parent, pay_fees};
use ingrid_client_sdk::wallet::{Wallet, WalletError};
use ingrid_client_sdk::{Allocation, Params, State};
use ingrid_hub::config::Config;
use ingrid_hub::policy::{VirtualPolicy, fee};
use ingrid_hub::server::{self, Running};

use crate::harness::{Env, OPERATOR_TOKEN, ether, now, open_basic};

const WAIT: Duration = Duration::from_secs(60);

/// A hub started from a configuration file (so it can reload it) with `policy` for ETH.
struct PolicyHub {
    hub: Running,
    url: String,
    file: std::path::PathBuf,
    config: Config,
}

impl PolicyHub {
    async fn start(env: &Env, policy: VirtualPolicy, max_per_client: Option<u64>) -> anyhow::Result<Self> {
        let mut config = env.config();
        config.assets[0].max_hub_deposit = ether(100);
        config.assets[0].virtual_policy = policy;
        config.channels.max_virtual_per_client = max_per_client;
        let file = env.dir.path().join("policy.toml");
        std::fs::write(&file, toml::to_string(&config)?)?;
        let config = Config::load(Some(&file))?;
        let hub = server::start(config.clone()).await?;
        let url = format!("http://{}", hub.addr);
        Ok(Self { hub, url, file, config })
    }

    /// Writes the new policy to the file and reloads it through the operator API.
    async fn reload(&mut self, policy: VirtualPolicy, max_per_client: Option<u64>) -> anyhow::Result<()> {
        self.config.assets[0].virtual_policy = policy;
        self.config.channels.max_virtual_per_client = max_per_client;
        std::fs::write(&self.file, toml::to_string(&self.config)?)?;
        let answer = ingrid_client_sdk::tls::http_client()
            .post(format!("{}/v1/admin/reload", self.url))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await?;
        anyhow::ensure!(answer.status() == 200, "reload: {}", answer.text().await?);
        Ok(())
    }
}

/// Expects a refusal with `status` and `code` whose message contains `numbers`, and that
/// the database did not change.
pub(crate) async fn refused<T: std::fmt::Debug>(
    env: &Env,
    status: u16,
    code: &str,
    numbers: &str,
    request: impl std::future::Future<Output = Result<T, WalletError>>,
) -> anyhow::Result<()> {
    let before = env.snapshot().await?;
    match request.await {
        Err(WalletError::Hub(ClientError::Refused { status: s, body, .. }))
            if s == status && body.error == code && body.message.contains(numbers) => {}
        other => anyhow::bail!("expected {status} {code} naming {numbers:?}, got {other:?}"),
    }
    anyhow::ensure!(env.snapshot().await? == before, "a refused request ({code}) changed the database");
    Ok(())
}

fn e(n: u64) -> String {
    ether(n).to_string()
}

/// Every limit, one at a time (changed by reloads): size, per client, in total, as a share of
/// the hub's coins, count per client; at accept too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_refuses_with_its_rule_and_numbers_and_changes_nothing() -> anyhow::Result<()> {
    let env = Env::new(4).await?;
    let size =
        VirtualPolicy { min_virtual_amount: Some(ether(1)), max_virtual_amount: Some(ether(8)), ..Default::default() };
    let mut hub = PolicyHub::start(&env, size.clone(), None).await?;
    let eth = env.eth().holder;
    let (alice, bob, carol) =
        (env.wallet(&hub.url, 1).await?, env.wallet(&hub.url, 2).await?, env.wallet(&hub.url, 3).await?);
    let x = open_basic(&alice, eth, 10, 10).await?;
    let y = open_basic(&bob, eth, 10, 10).await?;
    let z = open_basic(&carol, eth, 10, 10).await?;
    let until = now() + 3600;
    let small = [[ether(1) / U256::from(2), ether(1) / U256::from(4)]];
    refused(
        &env,
        422,
        "virtual_amount_below_minimum",
        &format!("minimum is {}", e(1)),
        alice.propose_virtual(bob.address(), x, &small, 600, until),
    )
    .await?;
    let big = [[ether(5), ether(4)]];
    refused(
        &env,
        422,
        "virtual_amount_above_maximum",
        &format!("maximum is {}", e(8)),
        alice.propose_virtual(bob.address(), x, &big, 600, until),
    )
    .await?;

    // V1: Alice 1, Bob 2: the hub locks 2 in X (for Alice), 1 in Y (for Bob).
    let v1 = alice.propose_virtual(bob.address(), x, &[[ether(1), ether(2)]], 600, until).await?;
    let p = bob.proposals().await?.into_iter().find(|p| p.id == v1).expect("proposal");
    bob.accept_virtual(&p, y).await?;

    hub.reload(VirtualPolicy { max_locked_per_client: Some(ether(4)), ..size.clone() }, None).await?;
    refused(
        &env,
        409,
        "client_limit_exceeded",
        &format!("lock {} for you, the proposer", e(5)),
        alice.propose_virtual(bob.address(), x, &[[ether(1), ether(3)]], 600, until),
    )
    .await?;

    hub.reload(VirtualPolicy { max_locked_total: Some(ether(6)), ..size.clone() }, None).await?;
    refused(
        &env,
        409,
        "total_limit_exceeded",
        &format!("cannot lock {} more", e(4)),
        carol.propose_virtual(bob.address(), z, &[[ether(2), ether(2)]], 600, until),
    )
    .await?;

    // 15 % of the hub's 30 ETH in channels: 4.5.
    hub.reload(VirtualPolicy { max_locked_fraction_bps: Some(1500), ..size.clone() }, None).await?;
    refused(
        &env,
        409,
        "fraction_limit_exceeded",
        &format!("cannot lock {} more", e(2)),
        carol.propose_virtual(bob.address(), z, &[[ether(1), ether(1)]], 600, until),
    )
    .await?;

    // A count per client: Alice holds V1. Carol's proposal to her counts against Carol only,
    // so it is taken; Alice's acceptance would be her second and is refused.
    hub.reload(size.clone(), Some(1)).await?;
    let v_count = carol.propose_virtual(alice.address(), z, &[[ether(1), ether(1)]], 600, until).await?;
    let p_count = alice.proposals().await?.into_iter().find(|p| p.id == v_count).expect("proposal");
    // Alice's acceptance is valid in every other way (her parent as the hub has it, with V1's
    // lock): the policy is checked after the parent updates.
    alice.sync_channel(x).await?;
    refused(&env, 409, "too_many_virtual_channels", "the limit is 1", alice.accept_virtual(&p_count, x)).await?;
    refused(
        &env,
        409,
        "too_many_virtual_channels",
        "the limit is 1",
        alice.propose_virtual(carol.address(), x, &[[ether(1), ether(1)]], 600, until),
    )
    .await?;
    alice.hub().reject_virtual(v_count).await?;

    // At accept, against the books of that moment: two proposals that fit alone, not together.
    hub.reload(VirtualPolicy { max_locked_total: Some(ether(6)), ..size.clone() }, None).await?;
    // (From two parents: a second proposal from one parent is stale once the first is taken.)
    let v2 = carol.propose_virtual(bob.address(), z, &[[ether(1), ether(1)]], 600, until).await?;
    let v3 = alice.propose_virtual(carol.address(), x, &[[ether(1), ether(1)]], 600, until).await?;
    let p2 = bob.proposals().await?.into_iter().find(|p| p.id == v2).expect("proposal");
    bob.accept_virtual(&p2, y).await?;
    carol.wait_virtual_open(v2, std::time::Duration::from_secs(10)).await?;
    let p3 = carol.proposals().await?.into_iter().find(|p| p.id == v3).expect("proposal");
    refused(&env, 409, "total_limit_exceeded", &format!("cannot lock {} more", e(2)), carol.accept_virtual(&p3, z))
        .await?;
    hub.hub.stop().await;
    Ok(())
}

/// Fees: the proposer's parent pays exactly the quoted fee to the hub at open; the quote's
/// fee is the policy's formula; a reload changes the fee of new proposals, not of old ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fees_are_paid_in_the_proposers_parent_exactly() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let policy =
        VirtualPolicy { fee_flat: U256::from(1_000u64), fee_bps: 10, fee_ppm_per_hour: 100, ..Default::default() };
    let mut hub = PolicyHub::start(&env, policy.clone(), None).await?;
    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&hub.url, 1).await?, env.wallet(&hub.url, 2).await?);
    assert!(alice.hub_info().virtual_fees, "the hub says it charges fees");
    let x = open_basic(&alice, eth, 5, 5).await?;
    let y = open_basic(&bob, eth, 5, 5).await?;

    let until = now() + 7200;
    let before = now();
    let v = alice.propose_virtual(bob.address(), x, &[[ether(2), ether(3)]], 600, until).await?;
    let after = now();
    let view = alice.hub().virtual_channel(v).await?;
    let paid = view.fees[0];
    // The hub locks 3 (Bob's side) in X and 2 (Alice's) in Y: 5 ETH, for the validity left.
    let expected: Vec<U256> = (before..=after).map(|t| fee(&policy, ether(5), until - t).expect("fee")).collect();
    assert!(expected.contains(&paid), "fee {paid} is the formula's ({expected:?})");
    assert!(paid > U256::from(1_000u64), "flat + proportional + time parts");
    let p = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("proposal");
    bob.accept_virtual(&p, y).await?;
    alice.wait_virtual_open(v, WAIT).await?;
    let xs = alice.store().load(x)?.expect("X").latest.state;
    assert_eq!(xs.outcome.balances[0], [ether(5) - ether(2) - paid, ether(5) - ether(3) + paid], "X to the unit");
    let ys = bob.store().load(y)?.expect("Y").latest.state;
    assert_eq!(ys.outcome.balances[0], [ether(5) - ether(3), ether(5) - ether(2)], "Y: no fee for the acceptor");
    let metrics = crate::metrics::scrape(&hub.url).await?;
    let earned = format!("ingrid_fees_earned{{asset=\"ETH\"}} {}", f64::from(paid));
    assert!(metrics.lines().any(|l| l == earned), "fee revenue is exported: {earned}");

    // A proposal under this fee, then a reload doubling the flat fee: the proposal keeps its
    // fee at accept; a new proposal pays the new one.
    let v2 = alice.propose_virtual(bob.address(), x, &[[ether(1), ether(1)]], 600, until).await?;
    let old_fee = alice.hub().virtual_channel(v2).await?.fees[0];
    hub.reload(VirtualPolicy { fee_flat: U256::from(2_000u64), ..policy.clone() }, None).await?;
    let p2 = bob.proposals().await?.into_iter().find(|p| p.id == v2).expect("proposal");
    bob.accept_virtual(&p2, y).await?;
    alice.wait_virtual_open(v2, WAIT).await?;
    let x2 = alice.store().load(x)?.expect("X").latest.state;
    assert_eq!(x2.outcome.balances[0][0], xs.outcome.balances[0][0] - ether(1) - old_fee, "not retroactive");
    // The time part shrinks by the second, so compare with the formula over the request's
    // window rather than with the old fee.
    let doubled = VirtualPolicy { fee_flat: U256::from(2_000u64), ..policy.clone() };
    let before = now();
    let v3 = alice.propose_virtual(bob.address(), x, &[[ether(1), ether(1)]], 600, until).await?;
    let after = now();
    let new_fee = alice.hub().virtual_channel(v3).await?.fees[0];
    let expected: Vec<U256> = (before..=after).map(|t| fee(&doubled, ether(2), until - t).expect("fee")).collect();
    assert!(expected.contains(&new_fee), "the new flat fee applies: {new_fee} in {expected:?}");
    let old_formula: Vec<U256> = (before..=after).map(|t| fee(&policy, ether(2), until - t).expect("fee")).collect();
    assert!(!old_formula.contains(&new_fee), "not the old fee's formula: {new_fee}");
    hub.hub.stop().await;
    Ok(())
}

/// Quotes: without one (when fees are charged), altered, for other terms, or expired, a
/// proposal is refused and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_altered_and_missing_quotes_are_refused() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let policy = VirtualPolicy { fee_flat: U256::from(5_000u64), ..Default::default() };
    let mut hub = PolicyHub::start(&env, policy, None).await?;
    // Long enough for the refusals before expiry even on a loaded machine (with 1 s, a
    // quote could expire before the "other terms" case was sent: a flaky quote_expired).
    hub.config.channels.quote_ttl = 4;
    std::fs::write(&hub.file, toml::to_string(&hub.config)?)?;
    hub.reload(hub.config.assets[0].virtual_policy.clone(), None).await?;
    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&hub.url, 1).await?, env.wallet(&hub.url, 2).await?);
    let x = open_basic(&alice, eth, 5, 5).await?;
    open_basic(&bob, eth, 5, 5).await?;
    let d = env.stack.contracts.deployment;
    let key = env.devnet.key(1);
    let parent = alice.store().load(x)?.expect("X").latest.state;
    let until = now() + 3600;
    let deposits = vec![[ether(2), ether(3)]];
    let proposal = |quote: Option<Quote>, fees: Vec<U256>| -> anyhow::Result<VirtualProposal> {
        let params = Params {
            challengeDuration: 600,
            nonce: U256::from(rand::random::<u64>()),
            participants: [alice.address(), bob.address()],
            ledger: false,
            isVirtual: true,
            app: Address::ZERO,
        };
        let opening = State {
            channelId: channel_id(&params),
            version: 0,
            outcome: Allocation { assets: vec![eth], balances: deposits.clone(), locked: vec![] },
            appData: Bytes::new(),
            isFinal: false,
        };
        let update = pay_fees(
            &lock_in_parent(&parent, Link::client_parent(Role::First, Role::Second), &opening)?,
            Role::Second,
            &fees,
        )?;
        Ok(VirtualProposal {
            signature: d.sign_state(&key, &opening)?,
            parent: StateRequest { signature: d.sign_state(&key, &update)?, state: update },
            params,
            state: opening,
            valid_until: until,
            quote,
        })
    };
    let request = QuoteRequest { peer: bob.address(), parent: x, deposits: deposits.clone(), valid_until: until };
    let hub_api = alice.hub();
    let wallet_err = |r: Result<ingrid_client_sdk::api::VirtualView, ClientError>| r.map_err(WalletError::from);

    let without = proposal(None, vec![U256::ZERO])?;
    refused(&env, 409, "quote_required", "quote", async { wallet_err(hub_api.propose_virtual(&without, None).await) })
        .await?;

    let quote = hub_api.quote(&request).await?;
    assert_eq!(quote.fees, vec![U256::from(5_000u64)]);
    let mut cheaper = quote.clone();
    cheaper.fees = vec![U256::from(1u64)];
    let altered = proposal(Some(cheaper.clone()), cheaper.fees.clone())?;
    refused(&env, 422, "quote_altered", "signed", async { wallet_err(hub_api.propose_virtual(&altered, None).await) })
        .await?;
    let mut other = proposal(Some(quote.clone()), quote.fees.clone())?;
    other.valid_until += 1;
    refused(&env, 422, "quote_mismatch", "other terms", async {
        wallet_err(hub_api.propose_virtual(&other, None).await)
    })
    .await?;
    // The quote's fee not paid in the parent update.
    let unpaid = proposal(Some(quote.clone()), vec![U256::ZERO])?;
    refused(&env, 422, "parent_update_mismatch", "lock", async {
        wallet_err(hub_api.propose_virtual(&unpaid, None).await)
    })
    .await?;

    while now() <= quote.expires_at {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let late = proposal(Some(quote.clone()), quote.fees.clone())?;
    refused(&env, 409, "quote_expired", &format!("expired at {}", quote.expires_at), async {
        wallet_err(hub_api.propose_virtual(&late, None).await)
    })
    .await?;

    // A fresh quote, used as quoted, is accepted.
    let fresh = hub_api.quote(&request).await?;
    hub_api.propose_virtual(&proposal(Some(fresh.clone()), fresh.fees.clone())?, None).await?;
    hub.hub.stop().await;
    Ok(())
}

/// A hub that tops up (3 ETH when its free balance in a channel falls below 2) and two
/// clients, Alice and Bob.
async fn top_up_world() -> anyhow::Result<(Env, Running, Wallet, Wallet)> {
    let env = Env::new(3).await?;
    let mut config = env.config();
    config.assets[0].max_hub_deposit = ether(100);
    config.assets[0].top_up_below = Some(ether(2));
    config.assets[0].top_up_amount = ether(3);
    let hub = server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    Ok((env, hub, alice, bob))
}

/// Alice proposes V to Bob with `deposits` from X, Bob accepts it from Y, and both wait until
/// V is open and the hub offers Bob a top-up of Y.
async fn open_virtual_until_top_up(
    alice: &Wallet,
    bob: &Wallet,
    x: B256,
    y: B256,
    deposits: [U256; 2],
) -> anyhow::Result<B256> {
    let v = alice.propose_virtual(bob.address(), x, &[deposits], 600, now() + 3600).await?;
    let p = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("proposal");
    bob.accept_virtual(&p, y).await?;
    alice.wait_virtual_open(v, WAIT).await?;
    crate::harness::wait_until(WAIT, "the top-up offer", || async { Ok(bob.hub().channel(y).await?.top_up.is_some()) })
        .await?;
    Ok(v)
}

/// Alice and Bob close V directly; Bob syncs Y, his parent.
async fn close_virtual(alice: &Wallet, bob: &Wallet, v: B256, y: B256) -> anyhow::Result<()> {
    let request = alice.close_request(v).await?;
    let answer = bob.answer_close(&request).await?;
    alice.finish_close(v, &request, answer).await?;
    bob.sync_channel(y).await?;
    Ok(())
}

/// Flaw 3 of "the hub cannot be robbed": a client that paid the hub and then ignores the hub's
/// top-up, closing with its last state, gets exactly that state's balance, and the hub gets
/// its balance plus the whole top-up back. (With the top-up deposited as funding, the
/// holder's excess rule credited Bob the 2 he had paid the hub.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_up_the_client_ignores_goes_back_to_the_hub_in_full() -> anyhow::Result<()> {
    let (env, hub, alice, bob) = top_up_world().await?;
    let eth = env.eth().holder;
    let x = open_basic(&alice, eth, 5, 5).await?;
    let y = open_basic(&bob, eth, 5, 3).await?;
    bob.pay_hub(y, eth, ether(2)).await?; // Y: Bob 3, the hub 5

    // V: Alice 4, Bob 1: the hub locks 4 in Y (free 1 < 2): a top-up of 3 goes on standby.
    let v = open_virtual_until_top_up(&alice, &bob, x, y, [ether(4), ether(1)]).await?;
    let provider = env.provider(&env.hub_key);
    let hub_addr = env.hub_key.address();
    assert_eq!(ingrid_client_sdk::chain::standby(&provider, eth, y, hub_addr).await?, ether(3));

    // V closes unchanged; Bob never takes the top-up and closes Y with his last state.
    close_virtual(&alice, &bob, v, y).await?;
    bob.close(y).await?;
    assert_eq!(crate::harness::wait_concluded(&env, y).await?, vec![[ether(3), ether(5)]]);
    let logs = alloy::providers::Provider::get_logs(
        &provider,
        &alloy::rpc::types::Filter::new()
            .address(eth)
            .event_signature(<EthAssetHolder::OutcomeSet as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
            .from_block(0),
    )
    .await?;
    let outcome = logs
        .iter()
        .filter_map(|l| l.log_decode::<EthAssetHolder::OutcomeSet>().ok())
        .map(|l| l.inner.data)
        .find(|e| e.channelId == y)
        .expect("Y's outcome");
    assert!(!outcome.refunded);
    assert_eq!(outcome.credited, [ether(3), ether(8)], "Bob his balance; the hub 5 + its whole top-up");
    assert_eq!(bob.withdraw(y, WAIT).await?, vec![ether(3)]);
    assert_eq!(ingrid_client_sdk::chain::standby(&provider, eth, y, hub_addr).await?, U256::ZERO, "credited");
    hub.stop().await;
    Ok(())
}

/// A top-up the client ignores while the hub's own balance is 0: the channel closes with the
/// hub at 0, the holder credits the hub its whole standby, and the hub withdraws it (it did
/// not plan a withdrawal where its final balance was 0, so the coins stayed idle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignored_top_up_is_withdrawn_even_when_the_hubs_balance_is_zero() -> anyhow::Result<()> {
    let (env, hub, alice, bob) = top_up_world().await?;
    let eth = env.eth().holder;
    let x = open_basic(&alice, eth, 5, 5).await?;
    let y = open_basic(&bob, eth, 5, 3).await?;
    // V: Alice 3, Bob 0: the hub locks 3 in Y (free 0 < 2): a top-up of 3 goes on standby.
    let v = open_virtual_until_top_up(&alice, &bob, x, y, [ether(3), U256::ZERO]).await?;
    // Alice pays Bob all 3; V closes: Y is Bob 8, the hub 0.
    let payment = alice.pay(v, eth, ether(3)).await?;
    let receipt = bob.receive_payment(&payment, eth, ether(3)).await?;
    alice.accept_receipt(&receipt).await?;
    close_virtual(&alice, &bob, v, y).await?;
    bob.close(y).await?;
    assert_eq!(crate::harness::wait_concluded(&env, y).await?, vec![[ether(8), U256::ZERO]]);
    let provider = env.provider(&env.hub_key);
    let hub_addr = env.hub_key.address();
    crate::harness::wait_until(WAIT, "the hub's withdrawal of its standby", || async {
        Ok(ingrid_client_sdk::chain::holdings(&provider, eth, y, hub_addr).await?.is_zero())
    })
    .await?;
    assert_eq!(bob.withdraw(y, WAIT).await?, vec![ether(8)]);
    hub.stop().await;
    Ok(())
}

/// A collateral top-up: the hub's free balance in Bob's channel drops below the threshold when
/// a virtual channel locks it; the hub puts more on standby on chain, and once it is confirmed
/// Bob's wallet checks the chain and countersigns the raised balance. The bigger total then
/// settles on chain fully funded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_channel_is_topped_up_once_the_deposit_is_on_chain() -> anyhow::Result<()> {
    let (env, hub, alice, bob) = top_up_world().await?;
    let eth = env.eth().holder;
    let x = open_basic(&alice, eth, 5, 5).await?;
    let y = open_basic(&bob, eth, 5, 3).await?;
    assert!(!bob.accept_top_up(y).await?, "nothing to take while the hub's balance is high");

    // V: Alice 3, Bob 1: the hub locks 3 in Y (free 0 < 2) and 1 in X (free 4).
    let v = open_virtual_until_top_up(&alice, &bob, x, y, [ether(3), ether(1)]).await?;
    let provider = env.provider(&env.hub_key);
    let hub_addr = env.hub_key.address();
    assert_eq!(ingrid_client_sdk::chain::holdings(&provider, eth, y, hub_addr).await?, ether(3), "funding unchanged");
    assert_eq!(ingrid_client_sdk::chain::standby(&provider, eth, y, hub_addr).await?, ether(3), "on standby first");
    assert!(alice.hub().channel(x).await?.top_up.is_none(), "X is not busy");

    // A top-up state with another amount is refused and changes nothing.
    let record = bob.store().load(y)?.expect("Y");
    let wrong = ingrid_client_sdk::virtual_channel::top_up(&record.latest.state, Role::Second, eth, ether(2))?;
    let signature = env.stack.contracts.deployment.sign_state(&env.devnet.key(2), &wrong)?;
    let bob_api = bob.hub();
    refused(&env, 422, "top_up_mismatch", "raised by", async {
        bob_api
            .top_up(y, &StateRequest { state: wrong.clone(), signature: signature.clone() }, None)
            .await
            .map_err(WalletError::from)
    })
    .await?;

    assert!(bob.accept_top_up(y).await?);
    let ys = bob.store().load(y)?.expect("Y").latest.state;
    assert_eq!(ys.outcome.balances[0], [ether(4), ether(3)], "Bob 4, the hub 0 + 3");
    assert_eq!(ys.version, record.latest.state.version + 1);
    assert!(bob.hub().channel(y).await?.top_up.is_none());
    assert!(!bob.accept_top_up(y).await?, "applied once");

    // Y, topped up, still takes new virtual channels: what opened it is on chain (the top-up
    // is a standby, not a deposit, and the hub's check before it locks coins knows that).
    let v2 = alice.propose_virtual(bob.address(), x, &[[ether(1), ether(1)]], 600, now() + 3600).await?;
    let p = bob.proposals().await?.into_iter().find(|p| p.id == v2).expect("proposal");
    bob.accept_virtual(&p, y).await?;
    alice.wait_virtual_open(v2, WAIT).await?;
    close_virtual(&alice, &bob, v2, y).await?;

    // Close V and Y: Y's total of 11 is paid out in full.
    close_virtual(&alice, &bob, v, y).await?;
    bob.close(y).await?;
    assert_eq!(crate::harness::wait_concluded(&env, y).await?, vec![[ether(5), ether(6)]]);
    assert_eq!(bob.withdraw(y, WAIT).await?, vec![ether(5)]);
    hub.stop().await;
    Ok(())
}
