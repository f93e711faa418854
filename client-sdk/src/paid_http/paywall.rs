//! The seller's side of a paid request: the payment layer and the `PaidRequest` extractor.

use super::*;

/// What a request behind a [`PaymentLayer`] paid; an axum extractor (the request is
/// refused with `500` if no payment layer runs before the handler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidRequest {
    /// The virtual channel paid through.
    pub channel: B256,
    /// The channel version the payment created.
    pub version: u64,
    /// The price paid (at least).
    pub price: U256,
    /// The asset paid in.
    pub asset: Address,
}

impl<S: Send + Sync> FromRequestParts<S> for PaidRequest {
    type Rejection = (StatusCode, Json<ErrorBody>);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<PaidRequest>().cloned().ok_or_else(|| {
            error_body(StatusCode::INTERNAL_SERVER_ERROR, "no_payment_layer", "the route has no payment layer")
        })
    }
}

pub(super) fn error_body(status: StatusCode, error: &str, message: impl Into<String>) -> (StatusCode, Json<ErrorBody>) {
    (status, Json(ErrorBody { error: error.into(), message: message.into() }))
}

/// When a request is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terms {
    /// Up front: a payment in [`PAYMENT_HEADER`], countersigned before the handler runs.
    Upfront,
    /// On delivery: an offer in [`OFFER_HEADER`] against the hash of the response body, which
    /// the seller claims by revealing the body.
    OnDelivery,
}

pub(super) struct Paywall {
    wallet: Arc<Wallet>,
    price: U256,
    asset: Address,
    terms: Terms,
}

impl Paywall {
    fn refuse(&self, status: StatusCode, error: &str, message: String, latest: Option<FullySignedState>) -> Response {
        let body = PaymentRequired { error: error.into(), message, price: self.price, asset: self.asset, latest };
        (status, Json(body)).into_response()
    }

    fn refused(&self, refusal: &PaymentRefusal) -> Response {
        let latest = refusal.latest().cloned();
        self.refuse(refusal_status(refusal), refusal.code(), refusal.to_string(), latest)
    }

    /// Sells `request` on delivery: checks the offer, runs `inner`, and delivers a successful
    /// answer's body if it opens the offer's lock (the claim and the seller's receipt of the
    /// offer ride in [`DELIVERY_HEADER`]). An unsuccessful answer goes back as it is, with
    /// nothing signed; so does the refusal of an offer, or of a body that does not open it.
    async fn on_delivery<S, B>(&self, inner: &mut S, mut request: Request<B>) -> Result<Response, S::Error>
    where
        S: tower::Service<Request<B>, Response = Response>,
    {
        let Some(header) = request.headers().get(OFFER_HEADER) else {
            let message = format!(
                "this request costs {} of asset {}, paid on delivery: offer in {OFFER_HEADER}",
                self.price, self.asset
            );
            return Ok(self.refuse(StatusCode::PAYMENT_REQUIRED, "payment_required", message, None));
        };
        let offer: Offer = match decode_header(header.as_bytes()) {
            Ok(offer) => offer,
            Err(e) => {
                let message = format!("{OFFER_HEADER}: {e}");
                return Ok(self.refuse(StatusCode::BAD_REQUEST, "malformed_payment", message, None));
            }
        };
        match self.wallet.check_offer(&offer, self.asset, self.price).await {
            Ok(OfferCheck::Deliver { .. }) => {}
            Ok(OfferCheck::Delivered(delivery)) => return Ok(self.delivered(Response::default(), &delivery)),
            Err(refusal) => return Ok(self.refused(&refusal)),
        }
        let paid = PaidRequest {
            channel: offer.offer.channel,
            version: offer.offer.state.version,
            price: self.price,
            asset: self.asset,
        };
        request.extensions_mut().insert(paid);
        let mut response = inner.call(request).await?;
        if !response.status().is_success() {
            // Nothing signed: the buyer may drop its offer.
            response.headers_mut().insert(NOT_DELIVERED_HEADER, HeaderValue::from_static("not_served"));
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let content = match axum::body::to_bytes(body, MAX_PREIMAGE).await {
            Ok(content) => content,
            Err(e) => {
                let message =
                    format!("the answer could not be delivered in a claim (at most {MAX_PREIMAGE} bytes): {e}");
                return Ok(self.refuse(StatusCode::UNPROCESSABLE_ENTITY, "not_deliverable", message, None));
            }
        };
        match self.wallet.deliver(&offer, self.asset, self.price, content.into()).await {
            Ok(delivery) => Ok(self.delivered(Response::from_parts(parts, axum::body::Body::empty()), &delivery)),
            Err(refusal) => Ok(self.refused(&refusal)),
        }
    }

    /// `answer` (the handler's status and headers) carrying `delivery`: the claim's preimage
    /// as the body (which a concurrent retry's second handler run may not have produced), its
    /// note in [`DELIVERY_HEADER`].
    fn delivered(&self, answer: Response, delivery: &Delivery) -> Response {
        let (content, note) = match (delivery.content(), encode_header(&delivery.note())) {
            (Ok(content), Ok(note)) => (content, note),
            (content, note) => {
                let message = format!("could not send a delivery: {:?} {:?}", content.err(), note.err());
                return self.refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", message, None);
            }
        };
        let (mut parts, _) = answer.into_parts();
        // The body is the preimage: the handler's length no longer holds.
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        parts.headers.insert(DELIVERY_HEADER, note);
        Response::from_parts(parts, axum::body::Body::from(content.0))
    }

    /// Checks and stores the request's payment; the refusal to send otherwise.
    async fn admit(&self, headers: &HeaderMap) -> Result<(Receipt, PaidRequest), Response> {
        let Some(header) = headers.get(PAYMENT_HEADER) else {
            let message = format!("this request costs {} of asset {}: pay in {PAYMENT_HEADER}", self.price, self.asset);
            return Err(self.refuse(StatusCode::PAYMENT_REQUIRED, "payment_required", message, None));
        };
        let payment: Payment = decode_header(header.as_bytes()).map_err(|e| {
            self.refuse(StatusCode::BAD_REQUEST, "malformed_payment", format!("{PAYMENT_HEADER}: {e}"), None)
        })?;
        match self.wallet.receive_payment(&payment, self.asset, self.price).await {
            Ok(receipt) => {
                let paid = PaidRequest {
                    channel: receipt.channel,
                    version: receipt.version,
                    price: self.price,
                    asset: self.asset,
                };
                Ok((receipt, paid))
            }
            Err(refusal) => Err(self.refused(&refusal)),
        }
    }
}

/// A tower layer that sells each request for `price` of `asset`, paid in a virtual channel
/// of `wallet`, up front ([`PaymentLayer::new`]) or on delivery ([`PaymentLayer::on_delivery`];
/// see the [module docs](self)). Use it with `Router::route_layer` (or `Router::layer`,
/// `MethodRouter::layer`).
#[derive(Clone)]
pub struct PaymentLayer {
    paywall: Arc<Paywall>,
}

impl PaymentLayer {
    /// Sells requests for `price` of `asset` (an asset holder address of the channels), paid
    /// up front.
    pub fn new(wallet: Arc<Wallet>, price: U256, asset: Address) -> Self {
        Self { paywall: Arc::new(Paywall { wallet, price, asset, terms: Terms::Upfront }) }
    }

    /// Sells requests for `price` of `asset`, paid on delivery in conditional-payment
    /// channels: the buyer offers the price against the keccak-256 of the body it expects
    /// (content it can name by hash, at most [`MAX_PREIMAGE`] bytes), the handler runs, and
    /// a successful body that opens the lock is claimed and delivered together.
    pub fn on_delivery(wallet: Arc<Wallet>, price: U256, asset: Address) -> Self {
        Self { paywall: Arc::new(Paywall { wallet, price, asset, terms: Terms::OnDelivery }) }
    }
}

impl<S> tower::Layer<S> for PaymentLayer {
    type Service = PaymentService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PaymentService { inner, paywall: self.paywall.clone() }
    }
}

/// The service of a [`PaymentLayer`].
#[derive(Clone)]
pub struct PaymentService<S> {
    inner: S,
    paywall: Arc<Paywall>,
}

impl<S, B> tower::Service<Request<B>> for PaymentService<S>
where
    S: tower::Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone is not ready; call the one that is, and keep the clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let paywall = self.paywall.clone();
        Box::pin(async move {
            if paywall.terms == Terms::OnDelivery {
                return paywall.on_delivery(&mut inner, request).await;
            }
            let (receipt, paid) = match paywall.admit(request.headers()).await {
                Ok(admitted) => admitted,
                Err(refusal) => return Ok(refusal),
            };
            request.extensions_mut().insert(paid);
            let mut response = inner.call(request).await?;
            match encode_header(&receipt) {
                Ok(value) => {
                    response.headers_mut().insert(RECEIPT_HEADER, value);
                }
                Err(e) => tracing::error!(error = %e, "could not encode a receipt"),
            }
            Ok(response)
        })
    }
}
