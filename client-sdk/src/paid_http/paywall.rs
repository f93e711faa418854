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

pub(super) struct Paywall {
    wallet: Arc<Wallet>,
    price: U256,
    asset: Address,
}

impl Paywall {
    fn refuse(&self, status: StatusCode, error: &str, message: String, latest: Option<FullySignedState>) -> Response {
        let body = PaymentRequired { error: error.into(), message, price: self.price, asset: self.asset, latest };
        (status, Json(body)).into_response()
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
            Err(refusal) => {
                let latest = refusal.latest().cloned();
                Err(self.refuse(refusal_status(&refusal), refusal.code(), refusal.to_string(), latest))
            }
        }
    }
}

/// A tower layer that sells each request for `price` of `asset`, paid in a virtual channel
/// of `wallet` (see the [module docs](self)). Use it with `Router::route_layer` (or
/// `Router::layer`, `MethodRouter::layer`).
#[derive(Clone)]
pub struct PaymentLayer {
    paywall: Arc<Paywall>,
}

impl PaymentLayer {
    /// Sells requests for `price` of `asset` (an asset holder address of the channels).
    pub fn new(wallet: Arc<Wallet>, price: U256, asset: Address) -> Self {
        Self { paywall: Arc::new(Paywall { wallet, price, asset }) }
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
