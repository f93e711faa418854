//! Apps in virtual channels through the real hub, Postgres and anvil: a coin flip and
//! tic-tac-toe played without any hub request and closed cooperatively into both parents; bad
//! moves refused by the peer with the reason, changing nothing; proposals naming an app the
//! operator does not allow refused by the hub; and the dispute of a player who stalls after
//! the other committed, which ends on chain with the pot to the honest player and the hub's
//! total unchanged.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::api::{StateRequest, VirtualClose, VirtualProposal, VirtualStatus};
use ingrid_client_sdk::app::{coin_flip, conditional_payment, tic_tac_toe};
use ingrid_client_sdk::client::ClientError;
use ingrid_client_sdk::p2p::{OfferCheck, P2pClose, Payment};
use ingrid_client_sdk::state::channel_id;
use ingrid_client_sdk::virtual_channel::{Link, finalize, lock_in_parent, settle_in_parent};
use ingrid_client_sdk::wallet::Wallet;
use ingrid_client_sdk::{Allocation, Params, Role, State};

use crate::harness::{Env, advance_chain, ether, now, open_basic, wait_concluded, wait_until};

/// The first asset's balances of `wallet`'s basic channel `id`.
fn parent(wallet: &Wallet, id: B256) -> anyhow::Result<[U256; 2]> {
    Ok(wallet.store().load(id)?.expect("stored").latest.state.outcome.balances[0])
}

/// `mover` plays `data`, `peer` checks and countersigns, `mover` takes the receipt.
async fn play(mover: &Wallet, peer: &Wallet, id: B256, data: Bytes) -> anyhow::Result<State> {
    let mv = mover.play(id, data).await?;
    let receipt = peer.receive_move(&mv).await?;
    mover.accept_receipt(&receipt).await?;
    let (a, b) = (mover.virtual_record(id)?.latest, peer.virtual_record(id)?.latest);
    anyhow::ensure!(a == b, "both sides hold the same state signed by both");
    Ok(a.state)
}

/// Closes app channel `id` directly: `a` asks, `b` answers, `a` settles both parents.
async fn close(a: &Wallet, b: &Wallet, id: B256) -> anyhow::Result<()> {
    let request = a.close_request(id).await?;
    let answer = b.answer_close(&request).await?;
    a.finish_close(id, &request, answer).await?;
    Ok(())
}

/// `peer` refuses `mv` with `code` and keeps its record as it was.
async fn refused(peer: &Wallet, mv: &Payment, code: &str) -> anyhow::Result<()> {
    let before = peer.virtual_record(mv.channel)?;
    match peer.receive_move(mv).await {
        Err(refusal) if refusal.code() == code => {}
        other => anyhow::bail!("expected {code}, got {other:?}"),
    }
    anyhow::ensure!(peer.virtual_record(mv.channel)? == before, "a refused move ({code}) changed the record");
    Ok(())
}

/// A move signed by `key` to `state`.
fn signed_move(env: &Env, key: &PrivateKeySigner, state: State) -> anyhow::Result<Payment> {
    let signature = env.stack.contracts.deployment.sign_state(key, &state)?;
    Ok(Payment { channel: state.channelId, state, signature })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn games_in_virtual_channels_need_no_hub_and_close_into_both_parents() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let (ak, bk) = (env.devnet.key(1), env.devnet.key(2));
    let apps = alice.apps();
    assert!(!apps.coin_flip.is_zero() && !apps.tic_tac_toe.is_zero(), "the hub announces the apps it allows");
    let x = open_basic(&alice, eth, 3, 3).await?; // [Alice, Ingrid]
    let y = open_basic(&bob, eth, 5, 4).await?; // [Bob, Ingrid]
    let hub_total = |a: &Wallet, b: &Wallet| -> anyhow::Result<U256> { Ok(parent(a, x)?[1] + parent(b, y)?[1]) };
    let hub_before = hub_total(&alice, &bob)?;

    // ------------------------------------------------------------ coin flip, 1 + 1 ether
    let v = alice
        .propose_app(bob.address(), x, &[[ether(1), ether(1)]], 600, now() + 3600, apps.coin_flip, coin_flip::opening())
        .await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("Bob sees the proposal");
    bob.accept_virtual(&proposal, y).await?;
    alice.wait_virtual_open(v, Duration::from_secs(10)).await?;
    for w in [&alice, &bob] {
        let kind = w.virtual_record(v)?.app;
        assert_eq!(kind, Some(ingrid_client_sdk::app::AppKind::CoinFlip), "the rule is kept with the channel");
    }
    let requests = hub.requests();

    let (salt, bit) = (B256::repeat_byte(0x5a), true);
    let s0 = bob.virtual_record(v)?.latest.state;
    // Bad moves, each refused by Bob with its reason, changing nothing: Bob's turn comes after
    // Alice's commitment (out of turn), a commitment that keeps the stakes (the rule gives the
    // pot to the committer), a move signed by Bob for Alice, a skipped version.
    let rule = ingrid_client_sdk::app::AppKind::CoinFlip.rule();
    let p = &proposal.params;
    let commit = rule.apply(p, &s0, Role::First, coin_flip::commit(salt, bit))?;
    let mut stakes_kept = commit.clone();
    stakes_kept.outcome.balances = s0.outcome.balances.clone();
    refused(&bob, &signed_move(&env, &ak, stakes_kept)?, "wrong_allocation").await?;
    refused(&bob, &signed_move(&env, &bk, commit.clone())?, "bad_signature").await?;
    let mut stranger = signed_move(&env, &ak, commit.clone())?;
    stranger.signature = env.stack.contracts.deployment.sign_state(&PrivateKeySigner::random(), &commit)?;
    refused(&bob, &stranger, "bad_signature").await?;
    let mut skipped = commit.clone();
    skipped.version += 1;
    refused(&bob, &signed_move(&env, &ak, skipped)?, "payment_out_of_sync").await?;
    let mut bad_data = commit.clone();
    bad_data.appData = coin_flip::guess(&commit, true)?; // a guess is not Alice's move
    refused(&bob, &signed_move(&env, &ak, bad_data)?, "invalid_move").await?;
    assert!(bob.play(v, coin_flip::guess(&s0, true).unwrap_or_default()).await.is_err(), "not Bob's turn");

    play(&alice, &bob, v, coin_flip::commit(salt, bit)).await?;
    let committed = alice.virtual_record(v)?.latest.state;
    // Out of turn now: Alice may not guess for Bob.
    let guess_by_alice = rule.apply(p, &committed, Role::Second, coin_flip::guess(&committed, false)?)?;
    refused(&bob, &signed_move(&env, &ak, guess_by_alice)?, "not_your_turn").await?;
    play(&bob, &alice, v, coin_flip::guess(&committed, false)?).await?;
    let guessed = alice.virtual_record(v)?.latest.state;
    // Alice reveals (her pending move, which wins); before countersigning it, Bob asks to
    // close at the guess's allocation (pot to Bob): Alice must not sign away her reveal.
    let reveal = alice.play(v, coin_flip::reveal(&guessed, salt, bit)?).await?;
    let grab = finalize(&guessed)?;
    let grab = P2pClose { channel: v, signature: env.stack.contracts.deployment.sign_state(&bk, &grab)?, state: grab };
    assert!(alice.answer_close(&grab).await.is_err(), "a close that drops Alice's winning reveal is refused");
    alice.accept_receipt(&bob.receive_move(&reveal).await?).await?;
    let revealed = alice.virtual_record(v)?.latest.state;
    assert_eq!(revealed, bob.virtual_record(v)?.latest.state);
    assert!(revealed.isFinal);
    assert_eq!(coin_flip::winner(&revealed), Some(Role::First), "Bob guessed 0, the bit was 1");
    assert_eq!(revealed.outcome.balances[0], [ether(2), U256::ZERO]);
    assert_eq!(hub.requests(), requests, "the game needed no hub request");

    // A final state both sign but the adjudicator would refuse (app data over 1024 bytes):
    // the hub settles no parent with it, and nothing changes.
    let d = env.stack.contracts.deployment;
    let mut bloated = revealed.clone();
    bloated.version += 1;
    bloated.appData = Bytes::from(vec![7u8; ingrid_client_sdk::app::MAX_APP_DATA + 1]);
    let x_update = settle_in_parent(&alice.store().load(x)?.expect("X").latest.state, &bloated)?;
    let refused_close = VirtualClose {
        sigs: [d.sign_state(&ak, &bloated)?, d.sign_state(&bk, &bloated)?],
        parents: vec![StateRequest { signature: d.sign_state(&ak, &x_update)?, state: x_update }],
        state: bloated,
    };
    let before = env.snapshot().await?;
    match alice.hub().close_virtual(v, &refused_close, None).await {
        Err(ClientError::Refused { status: 422, body, .. }) if body.error == "app_data_too_long" => {}
        other => anyhow::bail!("expected 422 app_data_too_long, got {other:?}"),
    }
    assert_eq!(env.snapshot().await?, before, "the refused close changed nothing");

    close(&alice, &bob, v).await?;
    bob.sync_channel(y).await?;
    assert_eq!(alice.hub().virtual_channel(v).await?.status, VirtualStatus::Closed);
    assert_eq!(parent(&alice, x)?, [ether(4), ether(2)], "X: Alice 2 + the pot 2, Ingrid 2");
    assert_eq!(parent(&bob, y)?, [ether(4), ether(5)], "Y: Bob 4, Ingrid 3 + Alice's side 2");
    assert_eq!(hub_total(&alice, &bob)?, hub_before, "the hub's total is unchanged");

    // ------------------------------------------------------------ tic-tac-toe, 1 + 1 ether
    let stakes = [[ether(1), ether(1)]];
    let t = alice
        .propose_app(bob.address(), x, &stakes, 600, now() + 3600, apps.tic_tac_toe, tic_tac_toe::opening(&stakes))
        .await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == t).expect("Bob sees the proposal");
    bob.accept_virtual(&proposal, y).await?;
    alice.wait_virtual_open(t, Duration::from_secs(10)).await?;
    let requests = hub.requests();
    // X: 4, 0, 8 (a diagonal? no: the right column 2, 5, 8); O: 4, 1. X wins on 2-5-8? Play
    // X 2, O 4, X 5, O 0, X 8: X holds the right column.
    let moves = [(Role::First, 2), (Role::Second, 4), (Role::First, 5), (Role::Second, 0), (Role::First, 8)];
    let mut last = None;
    for (role, cell) in moves {
        let (mover, peer) = if role == Role::First { (&alice, &bob) } else { (&bob, &alice) };
        let current = mover.virtual_record(t)?.latest.state;
        // Taking a taken cell is refused by the mover's own wallet before it signs anything.
        if cell == 0 {
            assert!(mover.play(t, tic_tac_toe::place(&current, role, 2)?).await.is_err(), "cell 2 is taken");
        }
        last = Some(play(mover, peer, t, tic_tac_toe::place(&current, role, cell)?).await?);
    }
    let last = last.expect("moves");
    assert!(last.isFinal);
    assert_eq!(tic_tac_toe::winner(&tic_tac_toe::data(&last)?.board), 1);
    assert_eq!(hub.requests(), requests, "the game needed no hub request");
    close(&bob, &alice, t).await?;
    alice.sync_channel(x).await?;
    assert_eq!(parent(&alice, x)?, [ether(5), ether(1)], "X: Alice won Bob's 1");
    assert_eq!(parent(&bob, y)?, [ether(3), ether(6)], "Y: Bob lost his 1");
    assert_eq!(hub_total(&alice, &bob)?, hub_before, "the hub's total is unchanged");

    // ------------------------------------------------------------ pay on delivery, 2 ether
    let c = alice
        .propose_app(
            bob.address(),
            x,
            &[[ether(2), U256::ZERO]],
            600,
            now() + 3600,
            apps.conditional_payment,
            conditional_payment::opening(Role::First),
        )
        .await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == c).expect("Bob sees the proposal");
    bob.accept_virtual(&proposal, y).await?;
    alice.wait_virtual_open(c, Duration::from_secs(10)).await?;
    let requests = hub.requests();
    // Alice wants the response whose hash she knows; Bob is paid only by delivering it.
    let body = Bytes::from_static(b"HTTP/1.1 200 OK: the nanoservice's answer");
    let latest = alice.virtual_record(c)?.latest.state;
    let offered = play(
        &alice,
        &bob,
        c,
        conditional_payment::offer(&latest, conditional_payment::lock_of(&body), vec![ether(1)])?,
    )
    .await?;
    assert_eq!(offered.outcome.balances[0], [ether(2), U256::ZERO], "offered, not paid");
    let wrong = conditional_payment::claim(&offered, Bytes::from_static(b"something else"))?;
    assert!(bob.play(c, wrong).await.is_err(), "a wrong delivery claims nothing");
    let paid = play(&bob, &alice, c, conditional_payment::claim(&offered, body.clone())?).await?;
    assert_eq!(paid.outcome.balances[0], [ether(1), ether(1)], "delivered, paid");
    assert_eq!(hub.requests(), requests, "no hub request");
    close(&alice, &bob, c).await?;
    bob.sync_channel(y).await?;
    assert_eq!(parent(&alice, x)?, [ether(4), ether(2)], "X: Alice paid 1, Ingrid got Bob's side 1");
    assert_eq!(parent(&bob, y)?, [ether(4), ether(5)], "Y: Bob was paid 1, Ingrid put in Alice's side");
    assert_eq!(hub_total(&alice, &bob)?, hub_before, "the hub's total is unchanged");
    Ok(())
}

/// A proposal of an app channel by `key` (participant 0) from its parent state `x_state`,
/// with a challenge duration of 400 s.
fn proposal(
    env: &Env,
    key: &PrivateKeySigner,
    peer: Address,
    app: Address,
    data: Bytes,
    x_state: &State,
) -> VirtualProposal {
    proposal_lasting(env, key, [peer, app], data, x_state, 400)
}

/// [`proposal`] to `peer_app[0]` of app `peer_app[1]` with challenge duration `challenge`.
fn proposal_lasting(
    env: &Env,
    key: &PrivateKeySigner,
    [peer, app]: [Address; 2],
    data: Bytes,
    x_state: &State,
    challenge: u64,
) -> VirtualProposal {
    let d = env.stack.contracts.deployment;
    let params = Params {
        challengeDuration: challenge,
        nonce: U256::from(rand::random::<u64>()),
        participants: [key.address(), peer],
        ledger: false,
        isVirtual: true,
        app,
    };
    let opening = State {
        channelId: channel_id(&params),
        version: 0,
        outcome: Allocation { assets: vec![env.eth().holder], balances: vec![[ether(1), ether(1)]], locked: vec![] },
        appData: data,
        isFinal: false,
    };
    let update = lock_in_parent(x_state, Link::client_parent(Role::First, Role::Second), &opening).expect("lock");
    VirtualProposal {
        signature: d.sign_state(key, &opening).expect("sign"),
        parent: StateRequest { signature: d.sign_state(key, &update).expect("sign"), state: update },
        params,
        state: opening,
        valid_until: now() + 3600,
        quote: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_refuses_apps_its_operator_does_not_allow() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    // This operator allows the coin flip only.
    let mut config = env.config();
    config.apps.tic_tac_toe = Address::ZERO;
    config.apps.conditional_payment = Address::ZERO;
    // and app channels whose challenge duration is at most 500 s.
    config.channels.max_app_challenge_duration = 500;
    let hub = ingrid_hub::server::start(config).await?;
    let url = format!("http://{}", hub.addr);
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let ak = env.devnet.key(1);
    assert!(alice.apps().tic_tac_toe.is_zero(), "the hub announces only the coin flip");
    let x = open_basic(&alice, env.eth().holder, 3, 3).await?;
    let x_state = alice.store().load(x)?.expect("X").latest.state;
    let deployed = env.stack.contracts.apps;
    let api = alice.hub().clone();
    let refused = |code: &'static str, p: VirtualProposal| {
        let (env, api) = (&env, api.clone());
        async move {
            let before = env.snapshot().await?;
            match api.propose_virtual(&p, None).await {
                Err(ClientError::Refused { status: 422, body, .. }) if body.error == code => {}
                other => anyhow::bail!("expected 422 {code}, got {other:?}"),
            }
            anyhow::ensure!(env.snapshot().await? == before, "a refused proposal ({code}) changed the database");
            anyhow::Ok(())
        }
    };
    let stakes = [[ether(1), ether(1)]];
    refused(
        "app_not_allowed",
        proposal(&env, &ak, bob.address(), deployed.tic_tac_toe, tic_tac_toe::opening(&stakes), &x_state),
    )
    .await?;
    refused("app_not_allowed", proposal(&env, &ak, bob.address(), Address::repeat_byte(0x99), Bytes::new(), &x_state))
        .await?;
    // An allowed app with a challenge duration (600 s) over the operator's cap for apps.
    refused(
        "challenge_too_long",
        proposal_lasting(&env, &ak, [bob.address(), deployed.coin_flip], coin_flip::opening(), &x_state, 600),
    )
    .await?;
    // The hub announces the cap, and the wallet keeps to it without asking.
    assert_eq!(alice.hub_info().app_challenge_duration, Some(500));
    let requests = hub.requests();
    let long =
        alice.propose_app(bob.address(), x, &stakes, 600, now() + 3600, deployed.coin_flip, coin_flip::opening());
    assert!(matches!(long.await, Err(ingrid_client_sdk::wallet::WalletError::Invalid(_))));
    assert_eq!(hub.requests(), requests, "refused before any request");
    // An allowed app, but not from its start (a commitment already made).
    refused(
        "invalid_app_opening",
        proposal(&env, &ak, bob.address(), deployed.coin_flip, coin_flip::commit(B256::ZERO, true), &x_state),
    )
    .await?;
    refused(
        "invalid_app_opening",
        proposal(&env, &ak, bob.address(), deployed.coin_flip, Bytes::from_static(&[1, 2, 3]), &x_state),
    )
    .await?;
    // The wallet refuses locally too: it plays only what the hub allows.
    assert!(
        alice
            .propose_app(
                bob.address(),
                x,
                &stakes,
                600,
                now() + 3600,
                deployed.tic_tac_toe,
                tic_tac_toe::opening(&stakes)
            )
            .await
            .is_err()
    );
    // The allowed app opens, within the cap.
    let v = alice
        .propose_app(bob.address(), x, &stakes, 400, now() + 3600, deployed.coin_flip, coin_flip::opening())
        .await?;
    assert_eq!(alice.hub().virtual_channel(v).await?.status, VirtualStatus::Proposed);

    // A hub that announces another contract (here tic-tac-toe's) as the coin flip: the
    // wallet checks the code on chain and plays nothing by a rule it does not mirror.
    let mut lying = env.config();
    lying.apps.coin_flip = deployed.tic_tac_toe;
    lying.apps.tic_tac_toe = Address::ZERO;
    let liar = ingrid_hub::server::start(lying).await?;
    let fooled = env.wallet(&format!("http://{}", liar.addr), 1).await?;
    assert_eq!(fooled.apps().coin_flip, deployed.tic_tac_toe);
    let refused = fooled.check_app_code(deployed.tic_tac_toe).await;
    assert!(
        matches!(refused, Err(ingrid_client_sdk::wallet::WalletError::Untrusted(_))),
        "the announced coin flip's code is refused: {refused:?}"
    );
    let refused = fooled
        .propose_app(bob.address(), x, &stakes, 600, now() + 3600, deployed.tic_tac_toe, coin_flip::opening())
        .await;
    assert!(matches!(refused, Err(ingrid_client_sdk::wallet::WalletError::Untrusted(_))), "{refused:?}");
    alice.check_app_code(deployed.coin_flip).await?;
    Ok(())
}

/// An app channel open through the hub between Alice (X = (3, 3)) and Bob (Y = (5, 4)).
struct Flip {
    alice: Wallet,
    bob: Wallet,
    x: B256,
    y: B256,
    v: B256,
    proposal: ingrid_client_sdk::api::VirtualView,
    /// The hub's coins in X and Y before the flip.
    hub_before: U256,
}

/// Opens X, Y and a coin flip with `stakes` (whole ether: Alice's, Bob's) through `hub`.
async fn coin_flip_through(env: &Env, hub: &ingrid_hub::server::Running, stakes: [u64; 2]) -> anyhow::Result<Flip> {
    app_through(env, hub, stakes, |apps| apps.coin_flip, coin_flip::opening()).await
}

/// Opens X, Y and a channel of the app `app` picks from the hub's, opened with `opening`
/// and `stakes` (whole ether: Alice's, Bob's), through `hub`.
async fn app_through(
    env: &Env,
    hub: &ingrid_hub::server::Running,
    stakes: [u64; 2],
    app: fn(&ingrid_client_sdk::app::AppDeployment) -> Address,
    opening: Bytes,
) -> anyhow::Result<Flip> {
    let url = format!("http://{}", hub.addr);
    let eth = env.eth().holder;
    let (alice, bob) = (env.wallet(&url, 1).await?, env.wallet(&url, 2).await?);
    let x = open_basic(&alice, eth, 3, 3).await?;
    let y = open_basic(&bob, eth, 5, 4).await?;
    let hub_before = parent(&alice, x)?[1] + parent(&bob, y)?[1];
    let deposits = [[ether(stakes[0]), ether(stakes[1])]];
    let app = app(&alice.apps());
    let v = alice.propose_app(bob.address(), x, &deposits, 600, now() + 3600, app, opening).await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("Bob sees the proposal");
    bob.accept_virtual(&proposal, y).await?;
    alice.wait_virtual_open(v, Duration::from_secs(10)).await?;
    Ok(Flip { alice, bob, x, y, v, proposal, hub_before })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_who_stalls_after_the_commitment_loses_the_pot_on_chain() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let Flip { alice, bob, x, y, v, proposal, hub_before } = coin_flip_through(&env, &hub, [1, 2]).await?;
    let hub_after_open = parent(&alice, x)?[1] + parent(&bob, y)?[1];

    // Alice commits; Bob never countersigns nor guesses.
    let commit = alice.play(v, coin_flip::commit(B256::repeat_byte(7), false)).await?;
    assert!(!commit.state.isFinal);
    // Alice registers her parent (with V's latest state signed by both, the opening); the
    // hub registers Bob's parent too (the same record settles both).
    alice.register_channel(x).await?;
    let provider = env.provider(&env.hub_key);
    let d = env.stack.contracts.deployment;
    wait_until(Duration::from_secs(60), "the hub to register Y", || async {
        Ok(ingrid_client_sdk::chain::dispute(&provider, &d, y).await?.phase == ingrid_client_sdk::chain::phase::DISPUTE)
    })
    .await?;
    let key = ingrid_client_sdk::dispute::record_key(&proposal.params, &proposal.initial)?;
    let created = ingrid_client_sdk::chain::dispute(&provider, &d, key).await?;
    // Refutation period (600 s), then Alice forces her commitment.
    assert!(alice.force_move(v).await.is_err(), "no forced move during the refutation period");
    advance_chain(&env, 600).await?;
    let timeout = alice.force_move(v).await?;
    let record = ingrid_client_sdk::chain::dispute(&provider, &d, key).await?;
    assert_eq!((record.version, record.timeout), (1, timeout));
    assert!(timeout <= created.timeout + 16 * 600, "force-execution within its bound");
    // Bob does not answer within his 600 s; the record is fixed with the pot to Alice.
    advance_chain(&env, 601).await?;
    let fixed = ingrid_client_sdk::chain::dispute(&provider, &d, key).await?;
    assert_eq!((fixed.version, fixed.state_hash), (1, d.state_digest(&commit.state)), "the forced state stays");
    // The parents' own records (challenge 3600 s) time out later.
    advance_chain(&env, 3600).await?;
    alice.conclude_channel(x, 0, Duration::from_secs(60)).await?;
    let x_out = wait_concluded(&env, x).await?;
    let y_out = wait_concluded(&env, y).await?; // the hub concludes Bob's parent itself
    assert_eq!(x_out[0][0], parent(&alice, x)?[0] + ether(3), "Alice: her free coins and the whole pot");
    assert_eq!(y_out[0][0], parent(&bob, y)?[0], "Bob: his free coins only");
    assert_eq!(x_out[0][1] + y_out[0][1], hub_after_open + ether(3), "Ingrid: her free coins + V's total");
    assert_eq!(x_out[0][1] + y_out[0][1], hub_before, "the hub's total is unchanged");
    Ok(())
}

/// Bob countersigns Alice's commitment but withholds his receipt, registers his parent with
/// the committed state and forces his guess on chain. Alice's wallet adopts the forced state
/// from the chain and forces her reveal: she wins as the coin says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_receipt_and_a_forced_guess_do_not_cost_the_honest_player_the_game() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let Flip { alice, bob, x, y, v, proposal, .. } = coin_flip_through(&env, &hub, [1, 1]).await?;
    let alice_free = parent(&alice, x)?[0];

    let (salt, bit) = (B256::repeat_byte(3), true);
    let commit = alice.play(v, coin_flip::commit(salt, bit)).await?;
    let _withheld = bob.receive_move(&commit).await?; // Bob holds the commitment signed by both
    bob.register_channel(y).await?;
    let provider = env.provider(&env.hub_key);
    let d = env.stack.contracts.deployment;
    wait_until(Duration::from_secs(60), "the hub to register X", || async {
        Ok(ingrid_client_sdk::chain::dispute(&provider, &d, x).await?.phase == ingrid_client_sdk::chain::phase::DISPUTE)
    })
    .await?;
    advance_chain(&env, 600).await?;
    let committed = bob.virtual_record(v)?.latest.state;
    bob.play(v, coin_flip::guess(&committed, false)?).await?; // the pot is Bob's if Alice stalls
    bob.force_move(v).await?;

    // Alice's own pending commitment is no longer what the record holds.
    assert!(alice.force_move(v).await.is_err());
    assert_eq!(alice.sync_from_chain(v).await?, 2, "Alice adopts Bob's forced guess");
    let base = alice.virtual_record(v)?.on_chain.expect("the forced state");
    alice.play(v, coin_flip::reveal(&base, salt, bit)?).await?;
    alice.force_move(v).await?;
    let key = ingrid_client_sdk::dispute::record_key(&proposal.params, &proposal.initial)?;
    let record = ingrid_client_sdk::chain::dispute(&provider, &d, key).await?;
    assert_eq!(record.version, 3, "the reveal is on chain, final");

    advance_chain(&env, 3601).await?;
    alice.conclude_channel(x, 0, Duration::from_secs(60)).await?;
    let x_out = wait_concluded(&env, x).await?;
    let y_out = wait_concluded(&env, y).await?;
    assert_eq!(x_out[0][0], alice_free + ether(2), "Alice wins the pot: the bit was 1, Bob guessed 0");
    assert_eq!(x_out[0][1] + y_out[0][1], ether(3 + 4), "the hub's total is unchanged");
    Ok(())
}

/// The attack on a seller paid on delivery: the buyer registers the channel on chain with a
/// state the seller has nothing newer than (nothing to refute), waits for the record to be
/// fixed, and only then buys, so that no offer or claim signed afterwards could count. The seller's
/// watcher notes the record, and from then on the seller countersigns nothing off chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_delivers_nothing_off_chain_once_the_channel_is_registered() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let hub = env.start_hub().await?;
    let eth = env.eth().holder;
    let opening = conditional_payment::opening(Role::First);
    let Flip { alice, bob, x, v, .. } =
        app_through(&env, &hub, [2, 0], |apps| apps.conditional_payment, opening).await?;
    // One chunk delivered and acknowledged: both hold version 2, the claim.
    let chunk = Bytes::from_static(b"chunk 1");
    let offer = alice.offer(v, eth, ether(1), keccak256(&chunk)).await?;
    let delivery = bob.deliver(&offer, eth, ether(1), chunk.clone()).await?;
    assert_eq!(alice.take_delivery(&offer, &delivery).await?, chunk);
    let next = Bytes::from_static(b"chunk 2");
    let offer = alice.offer(v, eth, ether(1), keccak256(&next)).await?;
    assert!(matches!(bob.check_offer(&offer, eth, ether(1)).await?, OfferCheck::Deliver { .. }));
    alice.drop_pending(v).await?;

    // Alice registers her parent, and with it V at the claim (version 2): Bob holds nothing
    // newer signed by both (his claim waits for its acknowledgement), so nothing to refute.
    alice.register_channel(x).await?;
    let report = bob.watch_once().await?;
    assert!(report.refuted.is_empty(), "nothing to refute: {report:?}");
    let offer = alice.offer(v, eth, ether(1), keccak256(&next)).await?;
    let before = bob.virtual_record(v)?;
    assert!(before.on_chain.is_some(), "Bob's watcher noted the record");
    for refusal in [
        bob.check_offer(&offer, eth, ether(1)).await.expect_err("refused"),
        bob.deliver(&offer, eth, ether(1), next.clone()).await.expect_err("refused"),
    ] {
        assert_eq!(refusal.code(), "channel_on_chain");
    }
    assert_eq!(bob.virtual_record(v)?, before, "a refused offer changed nothing");
    Ok(())
}
