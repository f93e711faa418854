//! The buyer's paying HTTP client.

use super::*;

/// Why a paid request failed.
#[derive(Debug, thiserror::Error)]
pub enum PayingError {
    /// The seller could not be reached, or the connection broke.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The wallet could not pay, resync or store a receipt (e.g. a bad receipt signature).
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The seller still refused the payment after the retries.
    #[error("payment refused ({status}): {} ({})", body.message, body.error)]
    Refused {
        /// HTTP status.
        status: u16,
        /// The seller's reason.
        body: Box<PaymentRequired>,
    },
    /// The seller's answer could not be understood (e.g. a malformed receipt).
    #[error("bad answer from the seller: {0}")]
    BadAnswer(String),
    /// The seller asks more than this client pays for a request; nothing was paid.
    #[error("the price {price} is above this client's maximum {max_price}")]
    TooDear {
        /// The price asked.
        price: U256,
        /// [`PayingClient::max_price`].
        max_price: U256,
    },
}

/// The most [`PayingClient::get_on_delivery`] reads of an answer: a delivery is at most
/// [`MAX_PREIMAGE`] bytes, a refusal a short JSON body.
pub const ANSWER_LIMIT: usize = 64 * 1024;

/// The body of `response` up to `limit` bytes (the rest is not read), and whether that was
/// all of it.
async fn read_at_most(mut response: reqwest::Response, limit: usize) -> Result<(Vec<u8>, bool), PayingError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// What a paid request learnt across its attempts.
#[derive(Debug, Default)]
struct Tries {
    /// The price to pay (learnt from a `402`, or before).
    price: Option<U256>,
    /// Whether a `402` already set the price.
    priced: bool,
    /// Whether a `409` already resynced this client.
    resynced: bool,
}

/// The answer to a paid request.
#[derive(Debug, Clone)]
pub struct PaidResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Vec<u8>,
    /// The seller's receipt, checked and stored, if this request paid.
    pub receipt: Option<Receipt>,
}

impl PaidResponse {
    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A buyer's HTTP client that pays for each request in virtual channel `channel`, in
/// `asset`. It learns a URL's price from a first `402` and then pays up front; retries once
/// after a `402` with the price, and once after a `409` once resynced with the seller's
/// latest state; and checks and stores the receipt of every paid answer. A payment whose
/// receipt was lost (the connection broke) is sent again on the next request. Requests are
/// made one at a time: each payment needs the previous one's receipt.
pub struct PayingClient {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The buyer's wallet.
    pub wallet: Arc<Wallet>,
    /// The virtual channel with the seller.
    pub channel: B256,
    /// The asset paid in.
    pub asset: Address,
    /// The most this client pays for one request: a seller asking more (in a `402`) is
    /// refused, since the price is paid as asked.
    pub max_price: U256,
    prices: std::sync::Mutex<HashMap<String, U256>>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl PayingClient {
    /// A client paying through `channel` of `wallet` in `asset`, at most `max_price` a request.
    pub fn new(http: reqwest::Client, wallet: Arc<Wallet>, channel: B256, asset: Address, max_price: U256) -> Self {
        Self {
            http,
            wallet,
            channel,
            asset,
            max_price,
            prices: std::sync::Mutex::new(HashMap::new()),
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// The price learnt for `url`, if any.
    pub fn price(&self, url: &str) -> Option<U256> {
        self.prices.lock().ok().and_then(|p| p.get(url).copied())
    }

    fn remember(&self, url: &str, price: U256) {
        if let Ok(mut prices) = self.prices.lock() {
            prices.insert(url.to_string(), price);
        }
    }

    /// `GET url`, paid.
    pub async fn get(&self, url: &str) -> Result<PaidResponse, PayingError> {
        self.send(Method::GET, url, None).await
    }

    /// `POST url` with `body` as JSON, paid.
    pub async fn post<T: Serialize + ?Sized>(&self, url: &str, body: &T) -> Result<PaidResponse, PayingError> {
        let body = serde_json::to_vec(body).map_err(|e| PayingError::BadAnswer(format!("request body: {e}")))?;
        self.send(Method::POST, url, Some(body)).await
    }

    /// `GET url`, paid on delivery in conditional-payment channel `channel`: offers the
    /// price (learnt from a first `402`, at most [`PayingClient::max_price`]) against `lock`, the keccak-256
    /// of the body expected, and takes the seller's claim, which reveals the body; the
    /// answer's `body` is that content, checked against `lock` as the chain would check it.
    /// Resyncs once after a `409`. An offer is dropped only when the answer shows that the
    /// seller signed nothing (its refusal, or its handler's unsuccessful answer marked
    /// [`NOT_DELIVERED_HEADER`]); after any other answer (a proxy's `502`, a lost
    /// connection) it stays pending, and the same call sends it again: the seller delivers
    /// the same content again without charging twice. Until then, a call for another lock
    /// is refused. Answers are read up to [`ANSWER_LIMIT`] bytes (the body of one that is not
    /// a delivery is cut there).
    pub async fn get_on_delivery(&self, url: &str, lock: B256) -> Result<PaidResponse, PayingError> {
        let _one = self.one_at_a_time.lock().await;
        let mut tries = Tries { price: self.price(url), ..Tries::default() };
        loop {
            let offer = match tries.price {
                Some(price) => {
                    self.affordable(price)?;
                    Some(self.wallet.offer(self.channel, self.asset, price, lock).await?)
                }
                None => None,
            };
            let mut request = self.http.get(url);
            if let Some(offer) = &offer {
                let value = encode_header(offer).map_err(|e| PayingError::BadAnswer(e.to_string()))?;
                request = request.header(OFFER_HEADER, value);
            }
            let response = request.send().await?;
            let (status, headers) = (response.status(), response.headers().clone());
            let (bytes, whole) = read_at_most(response, ANSWER_LIMIT).await?;
            let refusal = serde_json::from_slice::<PaymentRequired>(&bytes).ok().filter(|_| status.is_client_error());
            if let Some(offer) = &offer {
                if status.is_success() && !whole {
                    // Kept pending: no delivery is that long.
                    return Err(PayingError::BadAnswer(format!("a {status} answer over {ANSWER_LIMIT} bytes")));
                }
                if status.is_success() {
                    let Some(value) = headers.get(DELIVERY_HEADER) else {
                        // Kept pending: sent again, the seller delivers it if it did.
                        return Err(PayingError::BadAnswer(format!(
                            "a {status} answer to an offer without {DELIVERY_HEADER}"
                        )));
                    };
                    let note: DeliveryNote = decode_header(value.as_bytes())
                        .map_err(|e| PayingError::BadAnswer(format!("{DELIVERY_HEADER}: {e}")))?;
                    let content = self.wallet.take_delivered(offer, bytes.into(), &note).await?;
                    let receipt = Some(note.receipt);
                    return Ok(PaidResponse { status, headers, body: content.to_vec(), receipt });
                }
                if refusal.is_none() && !headers.contains_key(NOT_DELIVERED_HEADER) {
                    // Not the seller's word that it signed nothing: kept pending.
                    return Ok(PaidResponse { status, headers, body: bytes.to_vec(), receipt: None });
                }
                self.wallet.drop_pending(self.channel).await?;
            }
            let Some(refusal) = refusal else {
                return Ok(PaidResponse { status, headers, body: bytes.to_vec(), receipt: None });
            };
            if !self.retry_after(url, status, &refusal, offer.is_some(), &mut tries).await? {
                return Err(PayingError::Refused { status: status.as_u16(), body: Box::new(refusal) });
            }
        }
    }

    /// After the seller refused a request to `url` (`status`, `refusal`) that carried a
    /// payment or an offer (`paid`; already dropped for an offer): adopts the seller's latest
    /// state when it is not older than this client's (which drops what was pending), learns
    /// the price of a `402`, and says whether to send once more: after the first `402` in
    /// this client's asset, or the first `409` that carries the seller's latest state.
    async fn retry_after(
        &self,
        url: &str,
        status: StatusCode,
        refusal: &PaymentRequired,
        paid: bool,
        tries: &mut Tries,
    ) -> Result<bool, PayingError> {
        if refusal.asset != self.asset {
            return Ok(false);
        }
        if paid
            && let Some(latest) = &refusal.latest
            && latest.state.version >= self.wallet.virtual_record(self.channel)?.latest.state.version
        {
            self.wallet.resync(self.channel, latest).await?;
        }
        Ok(match status {
            StatusCode::PAYMENT_REQUIRED => {
                self.remember(url, refusal.price);
                tries.price = Some(refusal.price);
                !std::mem::replace(&mut tries.priced, true)
            }
            StatusCode::CONFLICT => paid && refusal.latest.is_some() && !std::mem::replace(&mut tries.resynced, true),
            _ => false,
        })
    }

    /// Refuses a price above [`PayingClient::max_price`].
    fn affordable(&self, price: U256) -> Result<(), PayingError> {
        if price > self.max_price {
            return Err(PayingError::TooDear { price, max_price: self.max_price });
        }
        Ok(())
    }

    /// The payment to attach: the pending one if a receipt was lost, else a new one.
    async fn payment(&self, price: Option<U256>) -> Result<Option<Payment>, PayingError> {
        if let Some(pending) = self.wallet.pending_payment(self.channel).await? {
            if pending.state.isFinal {
                return Err(WalletError::Invalid(format!("virtual channel {} is being closed", self.channel)).into());
            }
            return Ok(Some(pending));
        }
        match price {
            Some(price) => {
                self.affordable(price)?;
                Ok(Some(self.wallet.pay(self.channel, self.asset, price).await?))
            }
            None => Ok(None),
        }
    }

    /// Sends `method url` with a payment, following the protocol in the type's docs.
    pub async fn send(&self, method: Method, url: &str, body: Option<Vec<u8>>) -> Result<PaidResponse, PayingError> {
        let _one = self.one_at_a_time.lock().await;
        let mut tries = Tries { price: self.price(url), ..Tries::default() };
        loop {
            let payment = self.payment(tries.price).await?;
            let mut request = self.http.request(method.clone(), url);
            if let Some(body) = &body {
                request = request.header(CONTENT_TYPE, "application/json").body(body.clone());
            }
            if let Some(payment) = &payment {
                let value = encode_header(payment).map_err(|e| PayingError::BadAnswer(e.to_string()))?;
                request = request.header(PAYMENT_HEADER, value);
            }
            let response = request.send().await?;
            let (status, headers) = (response.status(), response.headers().clone());
            let bytes = response.bytes().await?.to_vec();
            let refusal = match status {
                StatusCode::PAYMENT_REQUIRED | StatusCode::CONFLICT => {
                    serde_json::from_slice::<PaymentRequired>(&bytes).ok()
                }
                _ => None,
            };
            if let Some(refusal) = refusal {
                if self.retry_after(url, status, &refusal, payment.is_some(), &mut tries).await? {
                    continue;
                }
                return Err(PayingError::Refused { status: status.as_u16(), body: Box::new(refusal) });
            }
            let receipt = match (&payment, headers.get(RECEIPT_HEADER)) {
                (Some(payment), Some(value)) => {
                    let receipt: Receipt = decode_header(value.as_bytes())
                        .map_err(|e| PayingError::BadAnswer(format!("{RECEIPT_HEADER}: {e}")))?;
                    if receipt.channel != self.channel || receipt.version != payment.state.version {
                        return Err(PayingError::BadAnswer(format!(
                            "a receipt of version {} in {}, for a payment of version {} in {}",
                            receipt.version, receipt.channel, payment.state.version, self.channel
                        )));
                    }
                    self.wallet.accept_receipt(&receipt).await?;
                    Some(receipt)
                }
                (Some(_), None) if status.is_client_error() => {
                    // The payment layer refused the payment (it stays pending: it is sent
                    // again with the next request).
                    if let Ok(refusal) = serde_json::from_slice::<PaymentRequired>(&bytes) {
                        return Err(PayingError::Refused { status: status.as_u16(), body: Box::new(refusal) });
                    }
                    None
                }
                _ => None,
            };
            return Ok(PaidResponse { status, headers, body: bytes, receipt });
        }
    }
}
