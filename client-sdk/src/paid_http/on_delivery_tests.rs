//! Tests of selling requests paid on delivery (conditional-payment channels) over HTTP.

use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::primitives::{Bytes, keccak256};
use axum::extract::Path;
use axum::routing::get;

use super::*;
use crate::Role;
use crate::State;
use crate::app::AppKind;
use crate::app::conditional_payment;
use crate::p2p::tests::{Pair, app_pair, eth, pair, token, u, unreachable_hub};
use crate::virtual_channel::VirtualRecord;

const PRICE: u64 = 3;

fn chunk(n: usize) -> Bytes {
    Bytes::from(format!("chunk {n} of the file").into_bytes())
}

/// The seller's shop: `GET /chunks/{n}` (`n` bytes long from 1,000 on; 404 above 5,000) sold
/// on delivery for `PRICE` ETH, the seller's routes, and a counter of the handler's runs.
async fn shop(seller: Arc<Wallet>, parent: B256) -> (String, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let chunks = get(move |Path(n): Path<usize>, paid: PaidRequest| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            assert_eq!(paid.price, u(PRICE));
            match n {
                0..1_000 => Ok(chunk(n).to_vec()),
                1_000..=5_000 => Ok(vec![b'x'; n]),
                _ => Err(StatusCode::NOT_FOUND),
            }
        }
    });
    let router = Router::new()
        .route("/chunks/{n}", chunks)
        .route_layer(PaymentLayer::on_delivery(seller.clone(), u(PRICE), eth()))
        .merge(seller_routes(seller, SellerConfig { parent, max_buyer_deposit: u(1000) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, served)
}

async fn setup() -> (Pair, Arc<AtomicUsize>, String, Arc<AtomicUsize>) {
    let (hub, hits) = unreachable_hub().await;
    let p = app_pair(&hub, 100, AppKind::ConditionalPayment, conditional_payment::opening(Role::First));
    let (url, served) = shop(p.bob.clone(), p.parents[1].id()).await;
    (p, hits, url, served)
}

fn records(p: &Pair) -> (VirtualRecord, VirtualRecord) {
    (p.alice.virtual_record(p.id).expect("a"), p.bob.virtual_record(p.id).expect("b"))
}

async fn raw(url: &str, offer: &Offer) -> (StatusCode, Option<DeliveryNote>, Vec<u8>) {
    let response = crate::tls::http_client()
        .get(url)
        .header(OFFER_HEADER, encode_header(offer).expect("encode"))
        .send()
        .await
        .expect("send");
    let status = response.status();
    let delivery = response.headers().get(DELIVERY_HEADER).map(|v| decode_header(v.as_bytes()).expect("delivery"));
    (status, delivery, response.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn chunks_named_by_hash_are_paid_only_on_delivery_and_close_with_both_sides_agreeing() {
    let (p, hits, url, served) = setup().await;
    let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
    for n in 1..=10 {
        let answer = buyer.get_on_delivery(&format!("{url}/chunks/{n}"), keccak256(chunk(n))).await.expect("bought");
        assert_eq!((answer.status, answer.body.as_slice()), (StatusCode::OK, chunk(n).as_ref()));
        assert_eq!(answer.receipt.map(|r| r.version), Some(2 * n as u64 - 1), "the offer's receipt");
    }
    assert_eq!(served.load(Ordering::SeqCst), 10, "the price was learnt from a 402 that ran no handler");
    let (a, b) = records(&p);
    assert_eq!(a.latest.state.version, 20, "ten offers and ten claims");
    assert_eq!(a.latest.state.outcome.balances[0], [u(100 - 10 * PRICE), u(10 * PRICE)]);
    assert!(a.pending.is_none());
    // The seller's last claim waits for the buyer's acknowledgement (sent with a next offer).
    assert_eq!(b.latest.state.version, 19);
    assert_eq!(b.pending.as_ref(), Some(&a.latest.state), "the buyer countersigned the seller's claim");

    // The buyer closes over HTTP; the seller accepts the final state of its own claim.
    let close = p.alice.close_request(p.id).await.expect("close request");
    let response =
        crate::tls::http_client().post(format!("{url}/ingrid/close")).json(&close).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let answer: CloseAnswer = response.json().await.expect("answer");
    p.deployment.verify_state(&close.state, &answer.signature, p.bob.address()).expect("countersigned");
    assert_eq!(close.state.outcome.balances[0], [u(100 - 10 * PRICE), u(10 * PRICE)]);
    assert_eq!(p.bob.virtual_record(p.id).expect("b").latest.state, close.state, "both hold the final state");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
}

#[tokio::test]
async fn a_seller_closes_from_its_last_claim_once_the_buyer_holds_it() {
    let (p, _, url, _) = setup().await;
    let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
    for n in [1, 2] {
        buyer.get_on_delivery(&format!("{url}/chunks/{n}"), keccak256(chunk(n))).await.expect("bought");
    }
    let latest = p.alice.virtual_record(p.id).expect("a").latest;
    // The acknowledgement rides with the next offer; a refused one (402) stores nothing.
    let short = p.alice.offer(p.id, eth(), u(1), keccak256(chunk(3))).await.expect("offer");
    assert_eq!(short.ack.as_ref().map(|a| a.version), Some(4));
    let (status, delivery, body) = raw(&format!("{url}/chunks/3"), &short).await;
    assert_eq!((status, delivery), (StatusCode::PAYMENT_REQUIRED, None));
    let body: PaymentRequired = serde_json::from_slice(&body).expect("refusal");
    assert_eq!(body.error, "payment_short");
    assert_eq!(body.latest.as_ref(), Some(&latest), "the seller's latest once acknowledged");
    p.alice.drop_pending(p.id).await.expect("drop");
    let offer = p.bob.offer(p.id, eth(), u(PRICE), keccak256(chunk(3))).await;
    assert!(offer.is_err(), "the seller is not the payer");

    // The seller's last claim is unacknowledged: it asks to close with the claim made final,
    // and keeps the claim pending (to force on chain should the buyer refuse).
    let close = p.bob.close_request(p.id).await.expect("close request");
    assert_eq!(close.state.version, 5);
    let claim = p.bob.virtual_record(p.id).expect("b").pending.expect("the claim stays pending");
    assert_eq!(claim, latest.state);
    let answer = p.alice.answer_close(&close).await.expect("with no offer pending, the buyer's move is optional");
    p.deployment.verify_state(&close.state, &answer.signature, p.alice.address()).expect("countersigned");
    assert_eq!(close.state.outcome.balances[0], [u(100 - 2 * PRICE), u(2 * PRICE)]);
}

#[tokio::test]
async fn a_buyer_refuses_a_close_from_a_claim_it_never_received() {
    let (p, _, url, _) = setup().await;
    let lock = keccak256(chunk(1));
    let offer = p.alice.offer(p.id, eth(), u(PRICE), lock).await.expect("offer");
    let (status, note, _) = raw(&format!("{url}/chunks/1"), &offer).await;
    assert!(status.is_success() && note.is_some(), "delivered, but the answer never reaches the buyer");
    let close = p.bob.close_request(p.id).await.expect("close request");
    let before = records(&p);
    assert!(p.alice.answer_close(&close).await.is_err(), "the buyer does not pay for what it has not got");
    // Nor once it has the seller's receipt of the offer, without the claim.
    p.alice.accept_receipt(&note.expect("note").receipt).await.expect("receipt");
    assert!(p.alice.answer_close(&close).await.is_err());
    assert_eq!(records(&p).1, before.1, "the seller's record is unchanged");
}

#[tokio::test]
async fn bad_offers_and_undeliverable_answers_are_refused_with_a_reason_and_change_nothing() {
    let (p, hits, url, served) = setup().await;
    let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
    buyer.get_on_delivery(&format!("{url}/chunks/1"), keccak256(chunk(1))).await.expect("bought");
    let before = records(&p);
    let runs = served.load(Ordering::SeqCst);
    let unchanged = |why: &str| {
        assert_eq!(records(&p), before, "{why} changed a record");
    };

    // An offer for content the seller does not serve under that name: the handler runs, the
    // body does not open the lock, nothing is signed, the buyer drops its offer.
    let err = buyer.get_on_delivery(&format!("{url}/chunks/2"), keccak256(chunk(7))).await.expect_err("refused");
    assert!(matches!(&err, PayingError::Refused { status: 422, body } if body.error == "not_deliverable"), "{err}");
    unchanged("a wrong lock");
    // A 404 from the handler goes back as it is.
    let answer = buyer.get_on_delivery(&format!("{url}/chunks/9000"), keccak256(chunk(9))).await.expect("answer");
    assert_eq!((answer.status, answer.receipt), (StatusCode::NOT_FOUND, None));
    unchanged("a 404");
    // A body too long to reveal in a claim.
    let long = vec![b'x'; 1_000];
    let err = buyer.get_on_delivery(&format!("{url}/chunks/1000"), keccak256(&long)).await.expect_err("refused");
    assert!(matches!(&err, PayingError::Refused { status: 422, body } if body.error == "not_deliverable"), "{err}");
    unchanged("a body over the claim's bound");
    assert_eq!(served.load(Ordering::SeqCst), runs + 3, "the handler ran three times");
    let runs = runs + 3;

    // Offers refused before the handler runs.
    let lock = keccak256(chunk(2));
    let target = format!("{url}/chunks/2");
    let good = p.alice.offer(p.id, eth(), u(PRICE), lock).await.expect("offer");
    p.alice.drop_pending(p.id).await.expect("drop");
    let before = records(&p);
    let mut cases: Vec<(&str, Offer, StatusCode, &str)> = Vec::new();
    let mut forged = good.clone();
    forged.offer.signature = p.deployment.sign_state(&p.hub_key, &good.offer.state).expect("sign");
    cases.push(("signed by another key", forged, StatusCode::UNPROCESSABLE_ENTITY, "bad_signature"));
    let mut stale = good.clone();
    stale.offer.state.version -= 1;
    stale.offer.signature = p.deployment.sign_state(&p.alice.key, &stale.offer.state).expect("sign");
    cases.push(("stale", stale, StatusCode::CONFLICT, "payment_out_of_sync"));
    let short = {
        let mut s = good.clone();
        let data = conditional_payment::offer(&before.0.latest.state, lock, vec![u(PRICE - 1), u(0)]).expect("data");
        s.offer.state.appData = data;
        s.offer.signature = p.deployment.sign_state(&p.alice.key, &s.offer.state).expect("sign");
        s
    };
    cases.push(("short", short, StatusCode::PAYMENT_REQUIRED, "payment_short"));
    let in_tokens = {
        let mut s = good.clone();
        let data = conditional_payment::offer(&before.0.latest.state, lock, vec![u(0), u(PRICE)]).expect("data");
        s.offer.state.appData = data;
        s.offer.signature = p.deployment.sign_state(&p.alice.key, &s.offer.state).expect("sign");
        s
    };
    cases.push(("in the other asset", in_tokens, StatusCode::PAYMENT_REQUIRED, "payment_short"));
    let takes = {
        let mut s = good.clone();
        s.offer.state.outcome.balances[0] = [u(100), u(0)];
        s.offer.signature = p.deployment.sign_state(&p.alice.key, &s.offer.state).expect("sign");
        s
    };
    cases.push(("an offer that moves coins", takes, StatusCode::UNPROCESSABLE_ENTITY, "wrong_allocation"));
    let mut bad_ack = good.clone();
    let ack = bad_ack.ack.as_mut().expect("the offer acknowledges the seller's claim");
    assert_eq!(ack.version, 2);
    ack.signature = p.deployment.sign_state(&p.hub_key, &before.0.latest.state).expect("sign");
    cases.push(("a forged acknowledgement", bad_ack, StatusCode::UNPROCESSABLE_ENTITY, "bad_signature"));
    for (why, offer, status, code) in cases {
        let (got, delivery, body) = raw(&target, &offer).await;
        let body: PaymentRequired = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{why}: a refusal"));
        assert_eq!((got, body.error.as_str(), delivery), (status, code, None), "{why}");
        assert_eq!(records(&p), before, "{why} changed a record");
    }
    let missing = crate::tls::http_client().get(&target).send().await.expect("send");
    assert_eq!(missing.status(), StatusCode::PAYMENT_REQUIRED);
    let garbage =
        crate::tls::http_client().get(&target).header(OFFER_HEADER, "not base64!").send().await.expect("send");
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    assert_eq!(served.load(Ordering::SeqCst), runs, "no refused offer ran the handler");
    assert_eq!(records(&p), before);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
}

#[tokio::test]
async fn a_lost_delivery_is_delivered_again_and_paid_once() {
    let (p, _, url, served) = setup().await;
    let lock = keccak256(chunk(4));
    let offer = p.alice.offer(p.id, eth(), u(PRICE), lock).await.expect("offer");
    let target = format!("{url}/chunks/4");
    let (status, first, body) = raw(&target, &offer).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, chunk(4).as_ref()));
    assert!(first.as_ref().is_some_and(|n| encode_header(n).expect("encode").len() < 600), "a small header");
    // The answer never reached the buyer: the same call sends the same offer again.
    let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
    let answer = buyer.get_on_delivery(&target, lock).await.expect("delivered again");
    assert_eq!(answer.body, chunk(4).to_vec());
    assert_eq!(answer.receipt, first.map(|d| d.receipt), "the same delivery");
    assert_eq!(served.load(Ordering::SeqCst), 1, "the work was done once");
    let (a, _) = records(&p);
    assert_eq!(a.latest.state.outcome.balances[0], [u(100 - PRICE), u(PRICE)], "paid once");
    // Another offer while one is pending is refused by the buyer's wallet.
    p.alice.offer(p.id, eth(), u(PRICE), keccak256(chunk(5))).await.expect("a new offer after the delivery");
    assert!(p.alice.offer(p.id, eth(), u(PRICE), keccak256(chunk(6))).await.is_err(), "one offer at a time");
}

#[tokio::test]
async fn a_delivery_lost_behind_a_proxy_error_or_without_its_claim_is_delivered_again_and_paid_once() {
    let (hub, _) = unreachable_hub().await;
    let p = app_pair(&hub, 100, AppKind::ConditionalPayment, conditional_payment::opening(Role::First));
    let (url, served) = shop(p.bob.clone(), p.parents[1].id()).await;
    // A proxy in front of the seller that answers 502 to the first request for chunk 5,
    // after the seller stored its delivery.
    let broken = Arc::new(AtomicUsize::new(0));
    let counter = broken.clone();
    let proxy = Router::new().fallback(move |request: axum::extract::Request| {
        let (url, counter) = (url.clone(), counter.clone());
        async move {
            let mut forward = crate::tls::http_client().get(format!("{url}{}", request.uri()));
            if let Some(offer) = request.headers().get(OFFER_HEADER) {
                forward = forward.header(OFFER_HEADER, offer.clone());
            }
            let answer = forward.send().await.expect("forward");
            let status = answer.status();
            let delivery = answer.headers().get(DELIVERY_HEADER).cloned();
            let body = answer.bytes().await.expect("body").to_vec();
            if request.uri().path() == "/chunks/5" && delivery.is_some() && counter.fetch_add(1, Ordering::SeqCst) == 0
            {
                return StatusCode::BAD_GATEWAY.into_response();
            }
            let mut response = (status, body).into_response();
            if let Some(delivery) = delivery {
                response.headers_mut().insert(DELIVERY_HEADER, delivery);
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let front = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, proxy).await });
    let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
    let target = format!("{front}/chunks/5");
    let answer = buyer.get_on_delivery(&target, keccak256(chunk(5))).await.expect("an answer");
    assert_eq!((answer.status, answer.receipt), (StatusCode::BAD_GATEWAY, None));
    assert!(p.alice.virtual_record(p.id).expect("a").pending.is_some(), "the offer stays pending");
    let err = buyer.get_on_delivery(&format!("{front}/chunks/6"), keccak256(chunk(6))).await;
    assert!(err.is_err(), "another lock waits until the pending offer is answered");
    let answer = buyer.get_on_delivery(&target, keccak256(chunk(5))).await.expect("delivered again");
    assert_eq!(answer.body, chunk(5).to_vec());
    assert_eq!(served.load(Ordering::SeqCst), 1, "the work was done once");

    // The buyer holds the seller's receipt of its next offer but not the claim (a wallet
    // that took the receipt alone): its latest is its countersigned offer, sent again.
    let offer = p.alice.offer(p.id, eth(), u(PRICE), keccak256(chunk(6))).await.expect("offer");
    let (status, note, _) = raw(&format!("{front}/chunks/6"), &offer).await;
    assert_eq!(status, StatusCode::OK);
    p.alice.accept_receipt(&note.expect("a delivery").receipt).await.expect("receipt");
    let answer = buyer.get_on_delivery(&format!("{front}/chunks/6"), keccak256(chunk(6))).await.expect("again");
    assert_eq!(answer.body, chunk(6).to_vec());
    assert_eq!(served.load(Ordering::SeqCst), 2);
    let (a, b) = records(&p);
    assert_eq!(a.latest.state.outcome.balances[0], [u(100 - 2 * PRICE), u(2 * PRICE)], "paid twice for two chunks");
    assert_eq!(b.pending.as_ref(), Some(&a.latest.state));
}

#[tokio::test]
async fn who_did_not_sign_the_offer_learns_nothing_and_a_price_over_the_cap_is_not_offered() {
    let (p, _, url, served) = setup().await;
    let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
    let target = format!("{url}/chunks/3");
    buyer.get_on_delivery(&target, keccak256(chunk(3))).await.expect("bought");
    // The seller's latest is the offer it claimed: a stranger replays its state with a
    // signature of its own, or asks at another version, to get the content or the latest.
    let latest = p.bob.virtual_record(p.id).expect("b").latest;
    let stranger = alloy::signers::local::PrivateKeySigner::random();
    for version in [latest.state.version, latest.state.version + 2] {
        let state = State { version, ..latest.state.clone() };
        let signature = p.deployment.sign_state(&stranger, &state).expect("sign");
        let offer = Offer { ack: None, offer: Payment { channel: p.id, state, signature } };
        let (status, note, body) = raw(&target, &offer).await;
        assert_eq!((status, note), (StatusCode::UNPROCESSABLE_ENTITY, None));
        let body: PaymentRequired = serde_json::from_slice(&body).expect("refusal");
        assert_eq!((body.error.as_str(), body.latest), ("bad_signature", None), "version {version}");
    }
    assert_eq!(served.load(Ordering::SeqCst), 1);
    // A price above the buyer's cap: nothing offered.
    let before = records(&p);
    let cheap = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE - 1));
    let err = cheap.get_on_delivery(&target, keccak256(chunk(4))).await.expect_err("too dear");
    assert!(matches!(err, PayingError::TooDear { .. }), "{err}");
    assert_eq!(records(&p), before);
}

#[tokio::test]
async fn a_payment_channel_is_not_sold_on_delivery() {
    let (hub, _) = unreachable_hub().await;
    let p = pair(&hub, 100);
    let (url, served) = shop(p.bob.clone(), p.parents[1].id()).await;
    assert!(p.alice.offer(p.id, eth(), u(PRICE), keccak256(chunk(1))).await.is_err(), "no offers without the app");
    // A payment dressed as an offer.
    let payment = p.alice.pay(p.id, token(), u(PRICE)).await.expect("pay");
    let (status, _, body) = raw(&format!("{url}/chunks/1"), &Offer { ack: None, offer: payment }).await;
    let body: PaymentRequired = serde_json::from_slice(&body).expect("refusal");
    assert_eq!((status, body.error.as_str()), (StatusCode::BAD_REQUEST, "malformed_payment"));
    assert_eq!(served.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_buyer_reads_no_answer_past_its_limit_and_keeps_its_offer() {
    let (hub, _) = unreachable_hub().await;
    let p = app_pair(&hub, 100, AppKind::ConditionalPayment, conditional_payment::opening(Role::First));
    // A seller that asks the price, then answers an offer with far more than a delivery.
    let flood = get(|headers: HeaderMap| async move {
        if headers.contains_key(OFFER_HEADER) {
            return (StatusCode::OK, vec![b'x'; ANSWER_LIMIT * 4]).into_response();
        }
        let body = PaymentRequired {
            error: "payment_required".into(),
            message: "pay".into(),
            price: u(PRICE),
            asset: eth(),
            latest: None,
        };
        (StatusCode::PAYMENT_REQUIRED, Json(body)).into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/flood", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/flood", flood)).await });
    let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
    let err = buyer.get_on_delivery(&url, keccak256(chunk(1))).await.expect_err("not a delivery");
    assert!(matches!(&err, PayingError::BadAnswer(m) if m.contains("bytes")), "{err}");
    let a = p.alice.virtual_record(p.id).expect("a");
    assert!(a.pending.is_some(), "the offer stays pending, to send again");
    assert_eq!(a.latest.state.version, 0, "nothing paid");
}

#[tokio::test]
async fn a_bad_delivery_changes_nothing_for_the_buyer() {
    let (p, _, _, _) = setup().await;
    let lock = keccak256(chunk(2));
    let offer = p.alice.offer(p.id, eth(), u(PRICE), lock).await.expect("offer");
    let good = p.bob.deliver(&offer, eth(), u(PRICE), chunk(2)).await.expect("delivered");
    let before = p.alice.virtual_record(p.id).expect("a");
    let mut forged_claim = good.clone();
    forged_claim.claim.signature = p.deployment.sign_state(&p.hub_key, &good.claim.state).expect("sign");
    let mut forged_receipt = good.clone();
    forged_receipt.receipt.signature = forged_claim.claim.signature.clone();
    let mut takes_more = good.clone();
    takes_more.claim.state.outcome.balances[0] = [u(100 - 2 * PRICE), u(2 * PRICE)];
    takes_more.claim.signature = p.deployment.sign_state(&p.bob.key, &takes_more.claim.state).expect("sign");
    for (why, bad) in
        [("a forged claim", forged_claim), ("a forged receipt", forged_receipt), ("a claim taking more", takes_more)]
    {
        assert!(p.alice.take_delivery(&offer, &bad).await.is_err(), "{why} is refused");
        assert_eq!(p.alice.virtual_record(p.id).expect("a"), before, "{why} changed the buyer's record");
    }
    assert_eq!(p.alice.take_delivery(&offer, &good).await.expect("taken"), chunk(2));
    let after = p.alice.virtual_record(p.id).expect("a");
    assert_eq!((after.latest.state, after.pending), (good.claim.state, None), "one write: the claim, signed by both");
}
