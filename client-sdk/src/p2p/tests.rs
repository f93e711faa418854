//! Tests of direct payments and closes (also used by the paid-HTTP tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;

use super::*;
use crate::Role;
use crate::api::{AssetInfo, FullySignedState, HubInfo};
use crate::bindings::Channel::{Allocation, Params, State};
use crate::devnet::Devnet;
use crate::state::{Deployment, channel_id};
use crate::store::{ChannelRecord, ChannelStore};
use crate::virtual_channel::{Link, VirtualRecord, lock_in_parent, settle_in_parent};

pub(crate) fn eth() -> Address {
    Address::repeat_byte(0xee)
}

pub(crate) fn token() -> Address {
    Address::repeat_byte(0x70)
}

pub(crate) fn u(x: u64) -> U256 {
    U256::from(x)
}

/// Two wallets holding the same open virtual channel: Alice (participant 0, the buyer)
/// deposited `deposit` ETH and 50 tokens, Bob (participant 1, the seller) 0 ETH and 50
/// tokens. Both parents are stored, locking it, signed by their client and the hub.
pub(crate) struct Pair {
    pub alice: Arc<Wallet>,
    pub bob: Arc<Wallet>,
    pub hub_key: PrivateKeySigner,
    pub id: B256,
    pub parents: [ChannelRecord; 2],
    pub deployment: Deployment,
    _dirs: [tempfile::TempDir; 2],
}

/// A TCP listener standing in for the hub and the chain node: counts the connections it
/// accepts and drops them.
pub(crate) async fn unreachable_hub() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (url, hits)
}

fn params(participants: [Address; 2], ledger: bool) -> Params {
    Params {
        challengeDuration: 3600,
        nonce: U256::from_be_bytes(rand::random::<[u8; 32]>()),
        participants,
        ledger,
        isVirtual: !ledger,
        app: Address::ZERO,
    }
}

pub(crate) fn opening(params: &Params, balances: Vec<[U256; 2]>) -> State {
    State {
        channelId: channel_id(params),
        version: 0,
        outcome: Allocation { assets: vec![eth(), token()], balances, locked: vec![] },
        appData: Bytes::new(),
        isFinal: false,
    }
}

pub(crate) fn sign_both(d: &Deployment, keys: [&PrivateKeySigner; 2], state: State) -> FullySignedState {
    let sigs = keys.map(|k| d.sign_state(k, &state).expect("sign"));
    FullySignedState { state, sigs }
}

pub(crate) fn pair(hub_url: &str, deposit: u64) -> Pair {
    pair_on(hub_url, deposit, |dir| ChannelStore::open(dir).expect("store"))
}

/// [`pair`] with each wallet's store made by `store` (from a scratch directory).
pub(crate) fn pair_on(hub_url: &str, deposit: u64, store: impl FnMut(&std::path::Path) -> ChannelStore) -> Pair {
    pair_with(hub_url, deposit, None, store)
}

/// [`pair`] for a channel of app `kind` opened with `app_data` (the hub announces the app at
/// a made-up address; nothing here touches a chain).
pub(crate) fn app_pair(hub_url: &str, deposit: u64, kind: crate::app::AppKind, app_data: Bytes) -> Pair {
    pair_with(hub_url, deposit, Some((kind, app_data)), |dir| ChannelStore::open(dir).expect("store"))
}

fn pair_with(
    hub_url: &str,
    deposit: u64,
    app: Option<(crate::app::AppKind, Bytes)>,
    mut store: impl FnMut(&std::path::Path) -> ChannelStore,
) -> Pair {
    let (alice_key, bob_key, hub_key) =
        (PrivateKeySigner::random(), PrivateKeySigner::random(), PrivateKeySigner::random());
    let mut info = HubInfo {
        address: hub_key.address(),
        chain_id: 31337,
        adjudicator: Address::repeat_byte(0xad),
        assets: vec![
            AssetInfo { symbol: "ETH".into(), holder: eth(), token: None },
            AssetInfo { symbol: "TOK".into(), holder: token(), token: Some(Address::repeat_byte(0x71)) },
        ],
        challenge_duration: [60, 86_400],
        confirmations: 1,
        virtual_fees: false,
        apps: Default::default(),
        app_challenge_duration: None,
    };
    let mut vparams = params([alice_key.address(), bob_key.address()], false);
    if let Some((kind, _)) = &app {
        let address = Address::repeat_byte(0xa0);
        info.apps = match kind {
            crate::app::AppKind::CoinFlip => crate::app::AppDeployment { coin_flip: address, ..Default::default() },
            crate::app::AppKind::TicTacToe => crate::app::AppDeployment { tic_tac_toe: address, ..Default::default() },
            crate::app::AppKind::ConditionalPayment => {
                crate::app::AppDeployment { conditional_payment: address, ..Default::default() }
            }
        };
        vparams.app = address;
    }
    let d = Deployment { chain_id: info.chain_id, adjudicator: info.adjudicator };
    let mut v0 = opening(&vparams, vec![[u(deposit), u(0)], [u(50), u(50)]]);
    if let Some((_, data)) = &app {
        v0.appData = data.clone();
    }
    // Alice's parent X (Alice 0, hub 1) and Bob's parent Y (Bob 0, hub 1), both locking V.
    let xparams = params([alice_key.address(), hub_key.address()], true);
    let yparams = params([bob_key.address(), hub_key.address()], true);
    let x0 = opening(&xparams, vec![[u(2 * deposit), u(2 * deposit)], [u(100), u(100)]]);
    let y0 = opening(&yparams, vec![[u(10), u(2 * deposit)], [u(100), u(100)]]);
    let x1 = lock_in_parent(&x0, Link::client_parent(Role::First, Role::Second), &v0).expect("lock X");
    let y1 = lock_in_parent(&y0, Link::client_parent(Role::Second, Role::Second), &v0).expect("lock Y");
    let x =
        ChannelRecord { params: xparams, hub_index: Role::Second, latest: sign_both(&d, [&alice_key, &hub_key], x1) };
    let y = ChannelRecord { params: yparams, hub_index: Role::Second, latest: sign_both(&d, [&bob_key, &hub_key], y1) };
    let opened = sign_both(&d, [&alice_key, &bob_key], v0);
    let mut dirs = Vec::new();
    let mut wallets = Vec::new();
    for (i, (key, parent)) in [(alice_key, &x), (bob_key, &y)].into_iter().enumerate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(dir.path());
        store.save(parent).expect("save parent");
        store
            .save_virtual(&VirtualRecord {
                params: vparams.clone(),
                parents: vec![x.id(), y.id()],
                my_index: Role::ALL[i],
                latest: opened.clone(),
                pending: None,
                pending_sig: None,
                on_chain: None,
                app: app.as_ref().map(|(kind, _)| *kind),
            })
            .expect("save virtual");
        let provider = Devnet::provider_at(hub_url.parse().expect("url"), &key);
        wallets.push(Arc::new(Wallet::from_parts(key, HubClient::new(hub_url), info.clone(), store, provider)));
        dirs.push(dir);
    }
    let [alice, bob]: [Arc<Wallet>; 2] = wallets.try_into().ok().expect("two wallets");
    let dirs: [tempfile::TempDir; 2] = dirs.try_into().expect("two dirs");
    Pair { alice, bob, hub_key, id: opened.state.channelId, parents: [x, y], deployment: d, _dirs: dirs }
}

fn balances(wallet: &Wallet, id: B256) -> Vec<[U256; 2]> {
    wallet.virtual_record(id).expect("record").latest.state.outcome.balances
}

#[tokio::test]
async fn a_hundred_payments_in_a_row_leave_exact_balances() {
    let (hub, hits) = unreachable_hub().await;
    let p = pair(&hub, 10_000);
    for i in 1..=100u64 {
        let payment = p.alice.pay(p.id, eth(), u(i)).await.expect("pay");
        let receipt = p.bob.receive_payment(&payment, eth(), u(i)).await.expect("receive");
        assert_eq!(receipt.version, i);
        p.alice.accept_receipt(&receipt).await.expect("receipt");
    }
    let (a, b) = (p.alice.virtual_record(p.id).expect("a"), p.bob.virtual_record(p.id).expect("b"));
    assert_eq!(a.latest, b.latest, "both stores hold the same fully signed state");
    assert_eq!(a.latest.state.version, 100);
    assert!(a.pending.is_none() && b.pending.is_none());
    assert_eq!(a.latest.state.outcome.balances, vec![[u(10_000 - 5050), u(5050)], [u(50), u(50)]]);
    for (sig, key) in a.latest.sigs.iter().zip([p.alice.address(), p.bob.address()]) {
        p.deployment.verify_state(&a.latest.state, sig, key).expect("signed by both");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
}

#[tokio::test]
async fn a_replayed_payment_is_refused_with_the_payees_latest() {
    let (hub, _) = unreachable_hub().await;
    let p = pair(&hub, 100);
    let payment = p.alice.pay(p.id, eth(), u(5)).await.expect("pay");
    let receipt = p.bob.receive_payment(&payment, eth(), u(5)).await.expect("receive");
    p.alice.accept_receipt(&receipt).await.expect("receipt");
    let before = p.bob.virtual_record(p.id).expect("record");
    let refusal = p.bob.receive_payment(&payment, eth(), u(5)).await.expect_err("replay");
    match &refusal {
        PaymentRefusal::WrongVersion { expected: 2, actual: 1, latest } => assert_eq!(**latest, before.latest),
        other => panic!("unexpected refusal {other:?}"),
    }
    assert_eq!(refusal.code(), "payment_out_of_sync");
    assert_eq!(p.bob.virtual_record(p.id).expect("record"), before, "nothing stored");
    assert_eq!(balances(&p.bob, p.id)[0], [u(95), u(5)], "paid once");
}

#[tokio::test]
async fn forged_short_and_malformed_payments_are_refused_and_nothing_is_stored() {
    let (hub, _) = unreachable_hub().await;
    let p = pair(&hub, 100);
    let before = p.bob.virtual_record(p.id).expect("record");
    let next = |from: Role, asset: Address, amount: u64| {
        transfer(&before.latest.state, from, asset, u(amount)).expect("transfer")
    };
    let sign = |state: &State| p.deployment.sign_state(&p.alice.key, state).expect("sign");
    let payment = |state: State| Payment { channel: p.id, signature: sign(&state), state };

    // Signed by someone else (Mallory), or the state altered after Alice signed.
    let mallory = PrivateKeySigner::random();
    let state = next(Role::First, eth(), 5);
    let forged = Payment { channel: p.id, signature: p.deployment.sign_state(&mallory, &state).expect("sign"), state };
    assert!(matches!(
        p.bob.receive_payment(&forged, eth(), u(5)).await,
        Err(PaymentRefusal::BadSignature(SignatureError::WrongSigner { .. }))
    ));
    let mut altered = payment(next(Role::First, eth(), 1));
    altered.state.outcome.balances[0] = [u(90), u(10)];
    assert!(matches!(p.bob.receive_payment(&altered, eth(), u(5)).await, Err(PaymentRefusal::BadSignature(_))));
    let mut truncated = payment(next(Role::First, eth(), 5));
    truncated.signature = truncated.signature.slice(..64);
    assert!(matches!(
        p.bob.receive_payment(&truncated, eth(), u(5)).await,
        Err(PaymentRefusal::BadSignature(SignatureError::Malformed))
    ));

    // Short, in another asset, taking from the payee, minting money, final, elsewhere.
    assert_eq!(
        p.bob.receive_payment(&payment(next(Role::First, eth(), 3)), eth(), u(5)).await,
        Err(PaymentRefusal::Short { price: u(5), paid: u(3), latest: Box::new(before.latest.clone()) })
    );
    assert_eq!(
        p.bob.receive_payment(&payment(next(Role::First, token(), 5)), eth(), u(5)).await,
        Err(PaymentRefusal::WrongAsset(eth()))
    );
    assert_eq!(
        p.bob.receive_payment(&payment(next(Role::First, eth(), 5)), Address::repeat_byte(1), u(5)).await,
        Err(PaymentRefusal::WrongAsset(Address::repeat_byte(1)))
    );
    let mut taking = next(Role::First, eth(), 5);
    taking.outcome.balances[1] = [u(51), u(49)];
    assert_eq!(
        p.bob.receive_payment(&payment(taking), eth(), u(5)).await,
        Err(PaymentRefusal::TakesFromPayee(token()))
    );
    assert_eq!(
        p.bob.receive_payment(&payment(next(Role::Second, token(), 5)), eth(), u(0)).await,
        Err(PaymentRefusal::TakesFromPayee(token()))
    );
    let mut minting = next(Role::First, eth(), 5);
    minting.outcome.balances[0][1] = u(500);
    assert!(matches!(
        p.bob.receive_payment(&payment(minting), eth(), u(5)).await,
        Err(PaymentRefusal::Invalid(UpdateError::TotalChanged { .. }))
    ));
    let mut last = next(Role::First, eth(), 5);
    last.isFinal = true;
    assert!(matches!(p.bob.receive_payment(&payment(last), eth(), u(5)).await, Err(PaymentRefusal::Malformed(_))));
    let mut elsewhere = payment(next(Role::First, eth(), 5));
    elsewhere.channel = B256::repeat_byte(3);
    assert_eq!(
        p.bob.receive_payment(&elsewhere, eth(), u(5)).await,
        Err(PaymentRefusal::UnknownChannel(B256::repeat_byte(3)))
    );
    let mut mismatched = payment(next(Role::First, eth(), 5));
    mismatched.state.channelId = B256::repeat_byte(3);
    mismatched.signature = sign(&mismatched.state);
    assert!(matches!(p.bob.receive_payment(&mismatched, eth(), u(5)).await, Err(PaymentRefusal::Malformed(_))));

    assert_eq!(p.bob.virtual_record(p.id).expect("record"), before, "nothing stored");
    // A good payment still goes through at version 1.
    let receipt = p.bob.receive_payment(&payment(next(Role::First, eth(), 5)), eth(), u(5)).await.expect("good");
    assert_eq!(receipt.version, 1);
}

#[tokio::test]
async fn a_lost_receipt_is_recovered_by_resync() {
    let (hub, hits) = unreachable_hub().await;
    let p = pair(&hub, 100);
    let first = p.alice.pay(p.id, eth(), u(7)).await.expect("pay");
    let _lost = p.bob.receive_payment(&first, eth(), u(7)).await.expect("receive");
    // Alice never got the receipt: another payment is refused until she resyncs.
    assert!(p.alice.pay(p.id, eth(), u(1)).await.is_err());
    let stored = p.alice.virtual_record(p.id).expect("record");
    assert_eq!(stored.pending.as_ref(), Some(&first.state), "the payment was stored before it left");
    // Sending the pending payment again returns the same bytes; Bob refuses it with his latest.
    let again = p.alice.pending_payment(p.id).await.expect("pending").expect("some");
    assert_eq!(again, first);
    let latest = match p.bob.receive_payment(&again, eth(), u(7)).await {
        Err(PaymentRefusal::WrongVersion { latest, .. }) => *latest,
        other => panic!("expected a wrong version, got {other:?}"),
    };
    // A state not signed by both, or older than the stored one, is not adopted.
    let mut forged = latest.clone();
    forged.sigs[1] = forged.sigs[0].clone();
    assert!(p.alice.resync(p.id, &forged).await.is_err());
    let record = p.alice.resync(p.id, &latest).await.expect("resync");
    assert_eq!((record.latest.state.version, record.pending), (1, None));
    assert!(p.alice.resync(p.id, &stored.latest).await.is_err(), "version 0 is older");
    // Paying continues from version 2.
    let second = p.alice.pay(p.id, eth(), u(3)).await.expect("pay");
    let receipt = p.bob.receive_payment(&second, eth(), u(3)).await.expect("receive");
    p.alice.accept_receipt(&receipt).await.expect("receipt");
    assert_eq!(balances(&p.alice, p.id)[0], [u(90), u(10)]);
    assert_eq!(p.alice.virtual_record(p.id).expect("a").latest, p.bob.virtual_record(p.id).expect("b").latest);

    // A payment that never arrived: resync with the payee's (unchanged) latest drops it.
    let _never_sent = p.alice.pay(p.id, eth(), u(50)).await.expect("pay");
    let bobs = p.bob.virtual_record(p.id).expect("b").latest;
    let record = p.alice.resync(p.id, &bobs).await.expect("resync");
    assert_eq!((record.latest.state.version, record.pending), (2, None));
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
}

#[tokio::test]
async fn close_request_and_answer_give_a_final_state_and_the_answerers_parent_settlement() {
    let (hub, hits) = unreachable_hub().await;
    let p = pair(&hub, 100);
    for amount in [10, 20] {
        let payment = p.alice.pay(p.id, eth(), u(amount)).await.expect("pay");
        let receipt = p.bob.receive_payment(&payment, eth(), u(amount)).await.expect("receive");
        p.alice.accept_receipt(&receipt).await.expect("receipt");
    }
    let close = p.alice.close_request(p.id).await.expect("close request");
    let latest = p.alice.virtual_record(p.id).expect("record").latest.state;
    assert_eq!(close.state, finalize(&latest).expect("final"));
    assert!(p.alice.pay(p.id, eth(), u(1)).await.is_err(), "no payment after the final state");
    assert_eq!(p.alice.close_request(p.id).await.expect("again"), close, "asking again is the same");

    // Bob refuses a close that is not the final state of the latest balances.
    let mut greedy = close.clone();
    greedy.state.outcome.balances[0] = [u(100), u(0)];
    greedy.signature = p.deployment.sign_state(&p.alice.key, &greedy.state).expect("sign");
    assert!(p.bob.answer_close(&greedy).await.is_err());
    let mut unsigned = close.clone();
    unsigned.signature = p.deployment.sign_state(&PrivateKeySigner::random(), &close.state).expect("sign");
    assert!(p.bob.answer_close(&unsigned).await.is_err());

    let answer = p.bob.answer_close(&close).await.expect("answer");
    p.deployment.verify_state(&close.state, &close.signature, p.alice.address()).expect("Alice signed");
    p.deployment.verify_state(&close.state, &answer.signature, p.bob.address()).expect("Bob signed");
    let y = &p.parents[1];
    assert_eq!(answer.parent.state, settle_in_parent(&y.latest.state, &close.state).expect("settle"));
    assert_eq!(answer.parent.state.outcome.balances[0], [u(10 + 30), u(200 - 100 + 70)], "Bob 10 + 30, hub 100 + 70");
    assert!(answer.parent.state.outcome.locked.is_empty());
    p.deployment.verify_state(&answer.parent.state, &answer.parent.signature, p.bob.address()).expect("parent");
    let bob_v = p.bob.virtual_record(p.id).expect("record");
    assert_eq!(bob_v.latest.state, close.state);
    assert_eq!(bob_v.latest.sigs, [close.signature.clone(), answer.signature.clone()]);
    assert_eq!(p.bob.record(y.id()).expect("parent"), *y, "the parent waits for the hub's countersignature");
    assert_eq!(p.bob.answer_close(&close).await.expect("answer again"), answer, "answering again is the same");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
}

/// A stand-in for the hub's close endpoint: countersigns every parent update it is given.
async fn countersigning_hub(
    hub_key: PrivateKeySigner,
    d: Deployment,
) -> (String, Arc<std::sync::Mutex<Vec<crate::api::VirtualClose>>>) {
    use axum::routing::post;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/virtual-channels/{id}/close",
        post(move |axum::Json(close): axum::Json<crate::api::VirtualClose>| {
            let (hub_key, log) = (hub_key.clone(), log.clone());
            async move {
                let signatures = close
                    .parents
                    .iter()
                    .map(|p| crate::api::SignatureResponse {
                        channel_id: p.state.channelId,
                        version: p.state.version,
                        signature: d.sign_state(&hub_key, &p.state).expect("sign"),
                    })
                    .collect();
                log.lock().expect("log").push(close);
                axum::Json(crate::api::VirtualCloseResponse { signatures })
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn finish_close_settles_both_parents_in_one_hub_request() {
    let (placeholder, _) = unreachable_hub().await;
    let mut p = pair(&placeholder, 100);
    let (hub, seen) = countersigning_hub(p.hub_key.clone(), p.deployment).await;
    let alice = Arc::get_mut(&mut p.alice).expect("sole owner");
    alice.hub = HubClient::new(&hub);
    let payment = p.alice.pay(p.id, eth(), u(30)).await.expect("pay");
    let receipt = p.bob.receive_payment(&payment, eth(), u(30)).await.expect("receive");
    p.alice.accept_receipt(&receipt).await.expect("receipt");

    let close = p.alice.close_request(p.id).await.expect("close request");
    let answer = p.bob.answer_close(&close).await.expect("answer");
    let bobs_parent = answer.parent.clone();
    p.alice.finish_close(p.id, &close, answer).await.expect("finish");

    let requests = seen.lock().expect("log").clone();
    assert_eq!(requests.len(), 1, "one hub request");
    assert_eq!(requests[0].parents.len(), 2, "settling both parents");
    assert_eq!(requests[0].parents[1], bobs_parent);
    let x = p.alice.record(p.parents[0].id()).expect("X");
    assert_eq!(x.latest.state, settle_in_parent(&p.parents[0].latest.state, &close.state).expect("settle"));
    assert_eq!(x.latest.state.outcome.balances[0], [u(200 - 100 + 70), u(200 + 30)]);
    let v = p.alice.virtual_record(p.id).expect("V");
    assert!(v.latest.state.isFinal && v.pending.is_none());
    assert_eq!(v.latest, p.bob.virtual_record(p.id).expect("V").latest);
}

use crate::store::Storage as _;

/// A storage that models a machine's crash: what was written without waiting for the disk
/// is lost by [`CrashStorage::crash`], what was written durably stays.
#[derive(Debug, Default)]
pub(crate) struct CrashStorage {
    durable: crate::store::MemoryStorage,
    now: crate::store::MemoryStorage,
}

impl CrashStorage {
    /// The machine crashes: only the durable records are left.
    fn crash(&self) {
        for record in self.durable.all_virtual().expect("durable") {
            self.now.put_virtual(&record).expect("restore");
        }
        for record in self.durable.all().expect("durable") {
            self.now.put(&record).expect("restore");
        }
    }

    fn durable_latest(&self, id: B256) -> FullySignedState {
        self.durable.get_virtual(id).expect("read").expect("stored").latest
    }
}

impl crate::store::Storage for Arc<CrashStorage> {
    fn put(&self, record: &ChannelRecord) -> Result<(), crate::store::StoreError> {
        self.durable.put(record)?;
        self.now.put(record)
    }
    fn get(&self, id: B256) -> Result<Option<ChannelRecord>, crate::store::StoreError> {
        self.now.get(id)
    }
    fn all(&self) -> Result<Vec<ChannelRecord>, crate::store::StoreError> {
        self.now.all()
    }
    fn put_virtual(&self, record: &VirtualRecord) -> Result<(), crate::store::StoreError> {
        self.durable.put_virtual(record)?;
        self.now.put_virtual(record)
    }
    fn put_virtual_unsynced(&self, record: &VirtualRecord) -> Result<(), crate::store::StoreError> {
        self.now.put_virtual(record)
    }
    fn get_virtual(&self, id: B256) -> Result<Option<VirtualRecord>, crate::store::StoreError> {
        self.now.get_virtual(id)
    }
    fn all_virtual(&self) -> Result<Vec<VirtualRecord>, crate::store::StoreError> {
        self.now.all_virtual()
    }
}

/// Where a payment's run is cut by a crash of one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    None,
    /// The payer, after signing, before sending.
    PayerBeforeSend,
    /// The payer, after the payee countersigned, before the receipt arrived.
    PayerBeforeReceipt,
    /// The payer, after taking the receipt.
    PayerAfterReceipt,
    /// The payee, right after answering.
    PayeeAfterAnswer,
}

fn crash_strategy() -> impl proptest::strategy::Strategy<Value = Crash> {
    use proptest::prelude::*;
    prop_oneof![
        3 => Just(Crash::None),
        1 => Just(Crash::PayerBeforeSend),
        1 => Just(Crash::PayerBeforeReceipt),
        1 => Just(Crash::PayerAfterReceipt),
        1 => Just(Crash::PayeeAfterAnswer),
    ]
}

/// Payment runs in both directions, each possibly cut by a crash of the payer's or the
/// payee's machine that loses whatever was not written durably (the payer's record of a
/// receipted payment). Whatever the crashes:
/// - nobody ever signs two different states at one version;
/// - the payee's durable state holds every payment it countersigned;
/// - each side's durable state, with its pending payment completed, gives it at least what
///   the latest state signed by both gives it;
/// - after resyncing, both hold the same latest state, with exactly the payments that were
///   countersigned.
#[test]
fn a_crash_of_either_side_never_costs_anyone_what_it_is_owed() {
    use proptest::prelude::*;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let config = ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(steps in proptest::collection::vec((any::<bool>(), 1u64..6, crash_strategy()), 1..24))| {
        runtime.block_on(async {
            let (hub, hits) = unreachable_hub().await;
            let storages = [Arc::new(CrashStorage::default()), Arc::new(CrashStorage::default())];
            let mut made = storages.iter().cloned();
            let p = pair_on(&hub, 100, |_| ChannelStore::on(made.next().expect("a storage")));
            let wallets = [&p.alice, &p.bob];
            // What each side holds of ETH when every countersigned payment counts.
            let mut owed = [u(100), u(0)];
            let mut receipted = [0u64; 2];
            let mut signed: [std::collections::HashMap<u64, State>; 2] = Default::default();
            let mut sign = |side: usize, state: &State| -> Result<(), TestCaseError> {
                let before = signed[side].insert(state.version, state.clone());
                prop_assert!(before.is_none_or(|b| b == *state), "side {side} signed two states at {}", state.version);
                Ok(())
            };
            for (alice_pays, amount, crash) in steps {
                let (payer, payee) = if alice_pays { (0, 1) } else { (1, 0) };
                let amount = u(amount);
                // After a crash a side first sends its pending payment again (it may or may not
                // have arrived); a side that is behind (it lost its record of a receipted
                // payment) takes the other's latest. Then the payer pays.
                let mut tries = 0;
                let receipt = loop {
                    tries += 1;
                    prop_assert!(tries <= 6, "no payment after resyncing");
                    let mut from = payer;
                    let mut pending = wallets[payer].pending_payment(p.id).await.expect("pending");
                    if pending.is_none() {
                        pending = wallets[payee].pending_payment(p.id).await.expect("pending");
                        if pending.is_some() {
                            from = payee;
                        }
                    }
                    let to = 1 - from;
                    let (payment, fresh) = match pending {
                        Some(pending) => (pending, false),
                        None => {
                            let latest = wallets[payer].virtual_record(p.id).expect("record").latest.state;
                            if latest.outcome.balances[0][payer] < amount {
                                break None;
                            }
                            (wallets[payer].pay(p.id, eth(), amount).await.expect("pay"), true)
                        }
                    };
                    sign(from, &payment.state)?;
                    if fresh && crash == Crash::PayerBeforeSend {
                        storages[payer].crash();
                        break None;
                    }
                    let before = wallets[to].virtual_record(p.id).expect("record").latest.state;
                    match wallets[to].receive_payment(&payment, eth(), U256::ZERO).await {
                        Ok(receipt) => {
                            sign(to, &payment.state)?;
                            let paid = payment.state.outcome.balances[0][to] - before.outcome.balances[0][to];
                            receipted[to] = receipt.version;
                            owed[from] -= paid;
                            owed[to] += paid;
                            if fresh {
                                break Some(receipt);
                            }
                            wallets[from].accept_receipt(&receipt).await.expect("receipt");
                        }
                        Err(PaymentRefusal::WrongVersion { latest, .. }) => {
                            let mine = wallets[from].virtual_record(p.id).expect("record").latest;
                            if latest.state.version >= mine.state.version {
                                wallets[from].resync(p.id, &latest).await.expect("payer resyncs");
                            } else {
                                wallets[to].resync(p.id, &mine).await.expect("payee resyncs");
                            }
                        }
                        Err(e) => panic!("receive: {e:?}"),
                    }
                };
                let Some(receipt) = receipt else { continue };
                match crash {
                    Crash::PayerBeforeReceipt => storages[payer].crash(),
                    Crash::PayeeAfterAnswer => {
                        storages[payee].crash();
                        wallets[payer].accept_receipt(&receipt).await.expect("receipt");
                    }
                    _ => {
                        wallets[payer].accept_receipt(&receipt).await.expect("receipt");
                        if crash == Crash::PayerAfterReceipt {
                            storages[payer].crash();
                        }
                    }
                }
                // The payee holds every payment it countersigned, durably.
                prop_assert!(storages[payee].durable_latest(p.id).state.version >= receipted[payee]);
                // Each side's durable state (its pending payment completed, when it has one)
                // gives it at least what it is owed.
                for side in 0..2 {
                    let record = storages[side].durable.get_virtual(p.id).expect("read").expect("stored");
                    let state = record.pending.as_ref().unwrap_or(&record.latest.state);
                    let durable = state.outcome.balances[0][side];
                    prop_assert!(durable >= owed[side], "side {side} durably holds {durable}, is owed {}", owed[side]);
                }
            }
            // In the end each side sends its pending payment again, as after a restart, and
            // both agree on the latest state: the newer one of the two.
            for from in [0, 1] {
                let to = 1 - from;
                let Some(payment) = wallets[from].pending_payment(p.id).await.expect("pending") else { continue };
                let before = wallets[to].virtual_record(p.id).expect("record").latest.state;
                match wallets[to].receive_payment(&payment, eth(), U256::ZERO).await {
                    Ok(receipt) => {
                        sign(to, &payment.state)?;
                        let paid = payment.state.outcome.balances[0][to] - before.outcome.balances[0][to];
                        owed[from] -= paid;
                        owed[to] += paid;
                        wallets[from].accept_receipt(&receipt).await.expect("receipt");
                    }
                    Err(PaymentRefusal::WrongVersion { latest, .. }) if latest.state.version >= payment.state.version => {
                        wallets[from].resync(p.id, &latest).await.expect("resync");
                    }
                    Err(e) => panic!("the pending payment: {e:?}"),
                }
            }
            let latest = [0, 1].map(|s| wallets[s].virtual_record(p.id).expect("record"));
            let newest = if latest[0].latest.state.version >= latest[1].latest.state.version { 0 } else { 1 };
            wallets[1 - newest].resync(p.id, &latest[newest].latest).await.expect("resync");
            let [a, b] = [0, 1].map(|s| wallets[s].virtual_record(p.id).expect("record"));
            prop_assert_eq!(&a.latest, &b.latest);
            prop_assert_eq!(a.latest.state.outcome.balances[0], [owed[0], owed[1]]);
            prop_assert_eq!(hits.load(Ordering::SeqCst), 0);
            Ok(())
        })?;
    });
}
