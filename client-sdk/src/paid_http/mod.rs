//! The seed's nanoservice sale over HTTP: every request to the seller carries a payment in
//! the virtual channel between buyer and seller, and the answer carries the seller's receipt.
//!
//! - Seller: [`PaymentLayer`] (a tower layer for axum routers) answers `402` when the payment
//!   is missing or short, `409` with the seller's latest state when it is out of sync, and
//!   `400`/`422` when it is bad; a good payment is countersigned and stored before the inner
//!   service runs, and its [`Receipt`] rides back in [`RECEIPT_HEADER`]. Handlers can read
//!   what was paid with the [`PaidRequest`] extractor. [`seller_routes`] serves the direct
//!   close and accepts the buyers' virtual channel proposals.
//! - Buyer: [`PayingClient`] attaches payments, learns prices from `402`s, resyncs after a
//!   `409`, and stores every receipt.
//! - Pay on delivery, in a conditional-payment channel ([`crate::p2p::Offer`]): the seller's
//!   [`PaymentLayer::on_delivery`] takes an offer in [`OFFER_HEADER`] against the hash of the
//!   body the buyer expects, runs the handler, and answers a body that opens the lock with
//!   its claim in [`DELIVERY_HEADER`]; [`PayingClient::get_on_delivery`] makes the offer and
//!   takes the delivery. The buyer pays only for the content it named, the seller is paid
//!   by delivering it.
//!
//! Headers hold the JSON of a [`Payment`] or [`Receipt`] in base64url without padding.
//!
//! Modules: [`paywall`] (the seller's layer and extractor), [`seller`] (the seller's routes and
//! its terms for proposals), [`buyer`] (the paying client). Built with the `paid-http`
//! feature, the only part of the SDK that needs axum and tower.

mod buyer;
mod paywall;
mod seller;

pub use buyer::*;
pub use paywall::*;
pub use seller::*;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use alloy::primitives::{Address, B256, U256};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::api::{ErrorBody, FullySignedState, VirtualStatus, VirtualView};
use crate::app::conditional_payment::MAX_PREIMAGE;
use crate::client::ClientError;
use crate::p2p::{CloseAnswer, Delivery, DeliveryNote, Offer, OfferCheck, P2pClose, Payment, PaymentRefusal, Receipt};
use crate::wallet::{Wallet, WalletError};

/// Request header carrying a [`Payment`].
pub const PAYMENT_HEADER: &str = "x-ingrid-payment";
/// Response header carrying the seller's [`Receipt`].
pub const RECEIPT_HEADER: &str = "x-ingrid-receipt";
/// Request header carrying an [`Offer`] (paid on delivery).
pub const OFFER_HEADER: &str = "x-ingrid-offer";
/// Response header carrying the seller's [`DeliveryNote`] (its signatures on the offer and on
/// its claim, whose preimage is the body).
pub const DELIVERY_HEADER: &str = "x-ingrid-delivery";
/// Response header of a seller's unsuccessful answer to an offer: nothing was signed.
pub const NOT_DELIVERED_HEADER: &str = "x-ingrid-not-delivered";

/// Why a payment or receipt header could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// Not base64url without padding.
    #[error("header is not base64url: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not the expected JSON.
    #[error("header is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not a valid header value.
    #[error("invalid header value: {0}")]
    Value(#[from] axum::http::header::InvalidHeaderValue),
}

/// Encodes `value` for a header: base64url (no padding) of its JSON.
pub fn encode_header<T: Serialize>(value: &T) -> Result<HeaderValue, HeaderError> {
    Ok(HeaderValue::try_from(URL_SAFE_NO_PAD.encode(serde_json::to_vec(value)?))?)
}

/// Decodes a header written by [`encode_header`].
pub fn decode_header<T: DeserializeOwned>(value: &[u8]) -> Result<T, HeaderError> {
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(value)?)?)
}

/// The body of every payment refusal (`402`, `409`, `400`, `422`, and `500` when the seller
/// fails): the reason, the price, and the seller's latest state when the buyer should resync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Machine-readable reason: `payment_required`, `payment_short`, `payment_out_of_sync`,
    /// `malformed_payment`, `bad_signature`, or another [`PaymentRefusal::code`].
    pub error: String,
    /// Human-readable explanation with the numbers involved.
    pub message: String,
    /// The price of this request.
    pub price: U256,
    /// The asset (holder address) the price is in.
    pub asset: Address,
    /// The seller's latest state signed by both (for `payment_out_of_sync`, and for
    /// `payment_short` so a buyer can drop a stale payment).
    #[serde(default)]
    pub latest: Option<FullySignedState>,
}

/// The HTTP status of a payment refusal.
pub fn refusal_status(refusal: &PaymentRefusal) -> StatusCode {
    match refusal {
        PaymentRefusal::Short { .. } => StatusCode::PAYMENT_REQUIRED,
        PaymentRefusal::WrongVersion { .. } | PaymentRefusal::Busy { .. } => StatusCode::CONFLICT,
        PaymentRefusal::Malformed(_) => StatusCode::BAD_REQUEST,
        PaymentRefusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        PaymentRefusal::UnknownChannel(_)
        | PaymentRefusal::ChannelFinal(_)
        | PaymentRefusal::BadSignature(_)
        | PaymentRefusal::Invalid(_)
        | PaymentRefusal::WrongAsset(_)
        | PaymentRefusal::TakesFromPayee(_)
        | PaymentRefusal::Move(_)
        | PaymentRefusal::Undeliverable(_)
        | PaymentRefusal::OnChain(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

#[cfg(test)]
mod on_delivery_tests;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use alloy::primitives::Bytes;
    use alloy::signers::local::PrivateKeySigner;
    use axum::routing::get;

    use super::*;
    use crate::Role;
    use crate::api::{SignatureResponse, StateRequest, VirtualAccept};
    use crate::client::HubClient;
    use crate::p2p::tests::{Pair, eth, opening, pair, u, unreachable_hub};
    use crate::virtual_channel::{Link, lock_in_parent, settle_in_parent, transfer};

    const PRICE: u64 = 3;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    /// The seller's app: `GET /data` for `PRICE` ETH, the seller's routes, and counters of
    /// the requests received and of those served.
    async fn shop(seller: Arc<Wallet>, parent: B256) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (received, served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let counter = served.clone();
        let data = get(move |paid: PaidRequest| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                format!("data at version {}", paid.version)
            }
        });
        let router = Router::new()
            .route("/data", data)
            .route_layer(PaymentLayer::new(seller.clone(), u(PRICE), eth()))
            .merge(seller_routes(seller, SellerConfig { parent, max_buyer_deposit: u(1000) }))
            .layer(axum::middleware::from_fn_with_state(
                received.clone(),
                |State(received): State<Arc<AtomicUsize>>,
                 request: axum::extract::Request,
                 next: axum::middleware::Next| async move {
                    received.fetch_add(1, Ordering::SeqCst);
                    next.run(request).await
                },
            ));
        (serve(router).await, received, served)
    }

    async fn setup() -> (Pair, Arc<AtomicUsize>, String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (hub, hits) = unreachable_hub().await;
        let p = pair(&hub, 100);
        let (url, received, served) = shop(p.bob.clone(), p.parents[1].id()).await;
        (p, hits, url, received, served)
    }

    fn refusal(bytes: &[u8]) -> PaymentRequired {
        serde_json::from_slice(bytes).expect("a PaymentRequired body")
    }

    #[tokio::test]
    async fn twenty_paid_gets_through_the_layer() {
        let (p, hits, url, received, served) = setup().await;
        let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
        let data = format!("{url}/data");
        for i in 1..=20u64 {
            let answer = buyer.get(&data).await.expect("paid get");
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(answer.text(), format!("data at version {i}"));
            let receipt = answer.receipt.expect("a receipt");
            assert_eq!((receipt.channel, receipt.version), (p.id, i));
        }
        assert_eq!(buyer.price(&data), Some(u(PRICE)), "the price was learnt from the 402");
        assert_eq!(received.load(Ordering::SeqCst), 21, "one 402, then 20 paid requests");
        assert_eq!(served.load(Ordering::SeqCst), 20);
        let (a, b) = (p.alice.virtual_record(p.id).expect("a"), p.bob.virtual_record(p.id).expect("b"));
        assert_eq!(a.latest, b.latest, "every receipt was stored");
        assert!(a.pending.is_none());
        assert_eq!(a.latest.state.version, 20);
        assert_eq!(a.latest.state.outcome.balances[0], [u(100 - 20 * PRICE), u(20 * PRICE)]);
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
    }

    #[tokio::test]
    async fn bad_payments_are_refused_with_a_reason_and_never_served() {
        let (p, hits, url, _, served) = setup().await;
        let http = crate::tls::http_client();
        let data = format!("{url}/data");
        let send = |payment: Option<HeaderValue>| {
            let mut request = http.get(&data);
            if let Some(value) = payment {
                request = request.header(PAYMENT_HEADER, value);
            }
            async move {
                let response = request.send().await.expect("send");
                let receipt = response.headers().get(RECEIPT_HEADER).cloned();
                (response.status(), receipt, response.bytes().await.expect("body"))
            }
        };
        let header = |payment: &Payment| encode_header(payment).expect("encode");

        let (status, _, body) = send(None).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
        let body = refusal(&body);
        assert_eq!(
            (body.error.as_str(), body.price, body.asset, body.latest),
            ("payment_required", u(PRICE), eth(), None)
        );

        let (status, _, body) = send(Some(HeaderValue::from_static("not-a-payment!"))).await;
        assert_eq!((status, refusal(&body).error.as_str()), (StatusCode::BAD_REQUEST, "malformed_payment"));

        let opened = p.bob.virtual_record(p.id).expect("record");
        let state = transfer(&opened.latest.state, Role::First, eth(), u(PRICE)).expect("transfer");
        let forged = Payment {
            channel: p.id,
            signature: p.deployment.sign_state(&PrivateKeySigner::random(), &state).expect("sign"),
            state,
        };
        let (status, _, body) = send(Some(header(&forged))).await;
        assert_eq!((status, refusal(&body).error.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "bad_signature"));

        let short = p.alice.pay(p.id, eth(), u(PRICE - 1)).await.expect("pay");
        let (status, receipt, body) = send(Some(header(&short))).await;
        let body = refusal(&body);
        assert_eq!((status, body.error.as_str(), receipt), (StatusCode::PAYMENT_REQUIRED, "payment_short", None));
        assert_eq!(body.latest.as_ref(), Some(&opened.latest));
        assert_eq!(p.bob.virtual_record(p.id).expect("record"), opened, "nothing stored");
        assert_eq!(served.load(Ordering::SeqCst), 0, "nothing served");

        // The buyer drops its short payment and pays the price; a replay is out of sync.
        p.alice.resync(p.id, &opened.latest).await.expect("resync");
        let good = p.alice.pay(p.id, eth(), u(PRICE)).await.expect("pay");
        let (status, receipt, _) = send(Some(header(&good))).await;
        assert_eq!(status, StatusCode::OK);
        let receipt: Receipt = decode_header(receipt.expect("a receipt").as_bytes()).expect("decode");
        p.alice.accept_receipt(&receipt).await.expect("receipt");
        let (status, _, body) = send(Some(header(&good))).await;
        let body = refusal(&body);
        assert_eq!((status, body.error.as_str()), (StatusCode::CONFLICT, "payment_out_of_sync"));
        assert_eq!(body.latest.map(|l| l.state.version), Some(1));
        assert_eq!(served.load(Ordering::SeqCst), 1, "served once");
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
    }

    #[tokio::test]
    async fn a_price_above_the_buyer_s_maximum_is_not_paid() {
        let (p, _, url, received, served) = setup().await;
        let before = (p.alice.virtual_record(p.id).expect("a"), p.bob.virtual_record(p.id).expect("b"));
        let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE - 1));
        let err = buyer.get(&format!("{url}/data")).await.expect_err("too dear");
        assert!(matches!(err, PayingError::TooDear { price, .. } if price == u(PRICE)), "{err}");
        assert_eq!((p.alice.virtual_record(p.id).expect("a"), p.bob.virtual_record(p.id).expect("b")), before);
        assert_eq!((received.load(Ordering::SeqCst), served.load(Ordering::SeqCst)), (1, 0), "the 402 only");
    }

    #[tokio::test]
    async fn the_paying_client_recovers_from_lost_receipts_and_lost_payments() {
        let (p, hits, url, _, served) = setup().await;
        let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
        let data = format!("{url}/data");

        // A payment the seller took whose receipt was lost: 409, resync, 402, pay.
        let taken = p.alice.pay(p.id, eth(), u(PRICE)).await.expect("pay");
        p.bob.receive_payment(&taken, eth(), u(PRICE)).await.expect("receive");
        let answer = buyer.get(&data).await.expect("get");
        assert_eq!((answer.status, answer.receipt.map(|r| r.version)), (StatusCode::OK, Some(2)));

        // A payment that never arrived and covers the price: sent again and accepted.
        p.alice.pay(p.id, eth(), u(PRICE)).await.expect("pay");
        let answer = buyer.get(&data).await.expect("get");
        assert_eq!(answer.receipt.map(|r| r.version), Some(3));

        // A short payment that never arrived: refused with the latest, dropped, paid afresh.
        p.alice.pay(p.id, eth(), u(1)).await.expect("pay");
        let answer = buyer.get(&data).await.expect("get");
        assert_eq!(answer.receipt.map(|r| r.version), Some(4));

        let (a, b) = (p.alice.virtual_record(p.id).expect("a"), p.bob.virtual_record(p.id).expect("b"));
        assert_eq!(a.latest, b.latest);
        assert!(a.pending.is_none());
        assert_eq!(a.latest.state.outcome.balances[0], [u(100 - 4 * PRICE), u(4 * PRICE)]);
        assert_eq!(served.load(Ordering::SeqCst), 3);
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
    }

    #[tokio::test]
    async fn the_seller_answers_a_close_over_http() {
        let (p, hits, url, _, _) = setup().await;
        let buyer = PayingClient::new(crate::tls::http_client(), p.alice.clone(), p.id, eth(), u(PRICE));
        for _ in 0..5 {
            buyer.get(&format!("{url}/data")).await.expect("get");
        }
        let http = crate::tls::http_client();
        let close = p.alice.close_request(p.id).await.expect("close request");
        let response = http.post(format!("{url}/ingrid/close")).json(&close).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::OK);
        let answer: CloseAnswer = response.json().await.expect("answer");
        p.deployment.verify_state(&close.state, &answer.signature, p.bob.address()).expect("countersigned");
        assert_eq!(answer.parent.state, settle_in_parent(&p.parents[1].latest.state, &close.state).expect("settle"));
        assert_eq!(close.state.outcome.balances[0], [u(100 - 5 * PRICE), u(5 * PRICE)]);

        let mut unknown = close.clone();
        unknown.channel = B256::repeat_byte(5);
        let response = http.post(format!("{url}/ingrid/close")).json(&unknown).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: ErrorBody = response.json().await.expect("error body");
        assert_eq!(body.error, "unknown_channel");
        let response = http.post(format!("{url}/ingrid/close")).body("{").header(CONTENT_TYPE, "application/json");
        let response = response.send().await.expect("send");
        assert!(response.status().is_client_error());
        assert_eq!(response.json::<ErrorBody>().await.expect("error body").error, "malformed_request");
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
    }

    /// A proposal from Alice to Bob of a second virtual channel with `deposits`, as the hub
    /// shows it to Bob.
    fn proposal_view(p: &Pair, deposits: Vec<[U256; 2]>) -> VirtualView {
        let d = p.deployment;
        let params = crate::bindings::Channel::Params {
            challengeDuration: 600,
            nonce: U256::from_be_bytes(rand::random::<[u8; 32]>()),
            participants: [p.alice.address(), p.bob.address()],
            ledger: false,
            isVirtual: true,
            app: Address::ZERO,
        };
        let initial = opening(&params, deposits);
        let x = &p.parents[0];
        // (A proposal the seller refuses may not even fit in the parent.)
        let update = lock_in_parent(&x.latest.state, Link::client_parent(Role::First, Role::Second), &initial)
            .unwrap_or_else(|_| x.latest.state.clone());
        VirtualView {
            id: initial.channelId,
            params,
            status: VirtualStatus::Proposed,
            valid_until: 4_000_000_000,
            close_requested: false,
            parents: [x.id(), B256::ZERO],
            initial_sigs: [d.sign_state(&p.alice.key, &initial).expect("sign"), Bytes::new()],
            proposed_parent: StateRequest {
                signature: d.sign_state(&p.alice.key, &update).expect("sign"),
                state: update,
            },
            initial,
            final_state: None,
            settled: [false, false],
            fees: Vec::new(),
        }
    }

    /// A stand-in for the hub's proposal endpoints: shows `views`, countersigns acceptances.
    async fn proposal_hub(p: &Pair, views: Vec<VirtualView>) -> (String, Arc<AtomicUsize>) {
        let views: Arc<HashMap<B256, VirtualView>> = Arc::new(views.into_iter().map(|v| (v.id, v)).collect());
        let accepted = Arc::new(AtomicUsize::new(0));
        let (hub_key, d, counter) = (p.hub_key.clone(), p.deployment, accepted.clone());
        let show = move |axum::extract::Path(id): axum::extract::Path<B256>| {
            let views = views.clone();
            async move {
                views
                    .get(&id)
                    .cloned()
                    .map(Json)
                    .ok_or_else(|| error_body(StatusCode::NOT_FOUND, "not_found", "no such proposal"))
            }
        };
        let accept = move |axum::extract::Path(id): axum::extract::Path<B256>, Json(accept): Json<VirtualAccept>| {
            let (hub_key, counter) = (hub_key.clone(), counter.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = id;
                Json(SignatureResponse {
                    channel_id: accept.parent.state.channelId,
                    version: accept.parent.state.version,
                    signature: d.sign_state(&hub_key, &accept.parent.state).expect("sign"),
                })
            }
        };
        let router = Router::new()
            .route("/v1/virtual-channels/{id}", get(show))
            .route("/v1/virtual-channels/{id}/accept", post(accept));
        (serve(router).await, accepted)
    }

    #[tokio::test]
    async fn the_seller_accepts_proposals_within_its_terms() {
        let (placeholder, _) = unreachable_hub().await;
        let mut p = pair(&placeholder, 100);
        let good = proposal_view(&p, vec![[u(40), u(0)], [u(0), u(0)]]);
        let seller_pays = proposal_view(&p, vec![[u(40), u(1)], [u(0), u(0)]]);
        let too_large = proposal_view(&p, vec![[u(40), u(0)], [u(1001), u(0)]]);
        let mut game = proposal_view(&p, vec![[u(40), u(0)], [u(0), u(0)]]);
        game.params.app = Address::repeat_byte(0xc0);
        let views = vec![good.clone(), seller_pays.clone(), too_large.clone(), game.clone()];
        let (hub, accepted) = proposal_hub(&p, views).await;
        Arc::get_mut(&mut p.bob).expect("sole owner").hub = HubClient::new(&hub);
        let (url, _, _) = shop(p.bob.clone(), p.parents[1].id()).await;
        let http = crate::tls::http_client();
        let notify = |id: B256| http.post(format!("{url}/ingrid/proposals")).json(&ProposalNotice { id }).send();

        let refused = [(&seller_pays, "seller_deposit"), (&too_large, "deposit_too_large"), (&game, "app_not_sold")];
        for (view, code) in refused {
            let response = notify(view.id).await.expect("send");
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(response.json::<ErrorBody>().await.expect("error body").error, code);
        }
        let response = notify(B256::repeat_byte(9)).await.expect("send");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing accepted yet");

        let response = notify(good.id).await.expect("send");
        assert_eq!(response.status(), StatusCode::OK);
        let answer: ProposalAccepted = response.json().await.expect("answer");
        for (sig, who) in answer.latest.sigs.iter().zip([p.alice.address(), p.bob.address()]) {
            p.deployment.verify_state(&good.initial, sig, who).expect("opening signed by both");
        }
        let record = p.bob.virtual_record(good.id).expect("stored");
        assert_eq!((record.my_index, record.parents), (Role::Second, vec![p.parents[0].id(), p.parents[1].id()]));
        let y = p.bob.record(p.parents[1].id()).expect("parent");
        let expected =
            lock_in_parent(&p.parents[1].latest.state, Link::client_parent(Role::Second, Role::Second), &good.initial)
                .expect("lock");
        assert_eq!(y.latest.state, expected, "the parent locks the new channel, countersigned by the hub");
        // A retried notice gets the same answer without a second acceptance.
        let again: ProposalAccepted = notify(good.id).await.expect("send").json().await.expect("answer");
        assert_eq!(again, answer);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn proposal_terms() {
        let config = SellerConfig { parent: B256::ZERO, max_buyer_deposit: u(10) };
        let seller = Address::repeat_byte(2);
        let params = crate::bindings::Channel::Params {
            challengeDuration: 1,
            nonce: U256::ZERO,
            participants: [Address::repeat_byte(1), seller],
            ledger: false,
            isVirtual: true,
            app: Address::ZERO,
        };
        let initial = opening(&params, vec![[u(10), u(0)], [u(0), u(0)]]);
        let mut view = VirtualView {
            id: initial.channelId,
            params,
            status: VirtualStatus::Proposed,
            valid_until: 0,
            close_requested: false,
            parents: [B256::ZERO; 2],
            initial_sigs: [Bytes::new(), Bytes::new()],
            proposed_parent: StateRequest { state: initial.clone(), signature: Bytes::new() },
            initial,
            final_state: None,
            settled: [false, false],
            fees: Vec::new(),
        };
        assert_eq!(check_proposal(&view, seller, &config), Ok(()));
        assert_eq!(check_proposal(&view, Address::repeat_byte(3), &config).map_err(|e| e.0), Err("not_a_proposal"));
        view.initial.outcome.balances[1][0] = u(11);
        assert_eq!(check_proposal(&view, seller, &config).map_err(|e| e.0), Err("deposit_too_large"));
        view.initial.outcome.balances[1] = [u(0), u(1)];
        assert_eq!(check_proposal(&view, seller, &config).map_err(|e| e.0), Err("seller_deposit"));
        view.initial.outcome.balances[1] = [u(0), u(0)];
        view.status = VirtualStatus::Open;
        assert_eq!(check_proposal(&view, seller, &config).map_err(|e| e.0), Err("not_a_proposal"));
    }

    #[test]
    fn headers_round_trip_as_base64url() {
        let receipt = Receipt { channel: B256::repeat_byte(1), version: 7, signature: Bytes::from(vec![0xff; 65]) };
        let value = encode_header(&receipt).expect("encode");
        assert!(value.to_str().expect("ascii").bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(decode_header::<Receipt>(value.as_bytes()).expect("decode"), receipt);
        assert!(decode_header::<Receipt>(b"e30").is_err(), "an empty object is not a receipt");
    }
}
