//! A typed HTTP client for every endpoint of the hub's API.

use alloy::primitives::{Address, B256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use ingrid_protocol::login::{ChallengeError, ExpectedChallenge, LoginChallenge};

use crate::api::{
    ChallengeRequest, ChallengeResponse, ChannelList, ChannelView, ErrorBody, HubInfo, IDEMPOTENCY_KEY,
    OpenChannelRequest, Quote, QuoteRequest, SignatureResponse, StateRequest, TokenRequest, TokenResponse,
    VirtualAccept, VirtualClose, VirtualCloseResponse, VirtualList, VirtualProposal, VirtualStatus, VirtualView,
};

/// Why a request to the hub failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The hub could not be reached, or the connection broke.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The hub refused the request.
    #[error("hub answered {status}: {} ({})", body.message, body.error)]
    Refused {
        /// HTTP status.
        status: u16,
        /// The hub's reason.
        body: ErrorBody,
        /// Seconds the hub asked to wait before asking again (`Retry-After`, on 429 and 503).
        retry_after: Option<u64>,
    },
    /// The hub's answer could not be understood.
    #[error("unexpected answer ({status}): {text}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// Body text.
        text: String,
    },
    /// The login challenge could not be signed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The hub's login challenge is not of the expected form; it was not signed.
    #[error("refused to sign the hub's login challenge: {0}")]
    Challenge(#[from] ChallengeError),
    /// The TLS configuration (an extra root certificate) could not be used.
    #[error("TLS configuration: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

impl ClientError {
    /// The hub's reason code, for a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { body, .. } => Some(&body.error),
            _ => None,
        }
    }
}

/// A client of one hub, authenticated once [`HubClient::login`] succeeded.
///
/// It speaks `http://` and `https://` (rustls): a server certificate must chain to a root of
/// the platform's trust store, or to one added with [`HubClient::with_root_certificate`]
/// (private deployments, tests).
#[derive(Debug, Clone)]
pub struct HubClient {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    retry: RetryPolicy,
    /// Roots trusted besides the platform's.
    roots: Vec<reqwest::Certificate>,
    /// What a login challenge must name besides the client's address.
    expect_hub: Option<Address>,
    expect_chain: Option<u64>,
}

/// How requests that are safe to repeat (reads, and writes with an idempotency key) are
/// retried when the hub cannot be reached or answers 5xx/429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included. Default 8.
    pub attempts: u32,
    /// Delay before the first retry, doubled each time up to 5 s. Default 100 ms.
    pub first_delay: std::time::Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 8, first_delay: std::time::Duration::from_millis(100) }
    }
}

impl HubClient {
    /// A client of the hub at `base_url` (e.g. `http://127.0.0.1:8547` or
    /// `https://hub.example.com`).
    pub fn new(base_url: &str) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            http: crate::tls::http_client(),
            token: None,
            retry: RetryPolicy::default(),
            roots: Vec::new(),
            expect_hub: None,
            expect_chain: None,
        }
    }

    /// Also trusts the root certificate(s) in `pem` (a PEM bundle) for `https://`, besides
    /// the platform's roots: for a hub whose certificate a private authority issued.
    pub fn with_root_certificate(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        let mut roots = self.roots.clone();
        roots.extend(crate::tls::parse_roots(pem)?);
        self.http = crate::tls::build_http(&roots)?;
        self.roots = roots;
        Ok(self)
    }

    /// From now on, signs only login challenges that name the hub `hub` and the chain
    /// `chain_id` (see [`HubClient::login`]). [`crate::wallet::Wallet`] sets them from the
    /// trusted deployment and `/v1/hub`.
    pub fn expecting(mut self, hub: Address, chain_id: u64) -> Self {
        self.expect_hub = Some(hub);
        self.expect_chain = Some(chain_id);
        self
    }

    /// Uses `retry` for requests that are safe to repeat.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The bearer token in use, if logged in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Uses `token` for the following requests.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sends a request, retrying it per the policy when repeating it is safe.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let repeatable = method == Method::GET || idempotency_key.is_some();
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            match self.call_once(method.clone(), path, body, idempotency_key).await {
                // A 429 is answered before any work (the hub's limits), so any request may be
                // repeated after it.
                Err(e) if (repeatable || is_rate_limited(&e)) && attempt < self.retry.attempts && is_retryable(&e) => {
                    let wait = retry_after(&e).map_or(delay, |asked| asked.min(MAX_RETRY_AFTER));
                    tracing::debug!(error = %e, attempt, path, ?wait, "retrying hub request");
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn call_once<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = response.bytes().await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|_| ClientError::Unexpected {
                status: status.as_u16(),
                text: String::from_utf8_lossy(&bytes).into(),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Refused { status: status.as_u16(), body, retry_after }),
            Err(_) => {
                Err(ClientError::Unexpected { status: status.as_u16(), text: String::from_utf8_lossy(&bytes).into() })
            }
        }
    }

    /// `GET /v1/hub`: the hub's address, chain, contracts, assets and rules.
    pub async fn hub_info(&self) -> Result<HubInfo, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/hub", None, None).await
    }

    /// Logs in with the channel key: asks for a challenge, signs it, keeps the token.
    ///
    /// The challenge is signed only if it has exactly the form a hub issues
    /// ([`ingrid_protocol::login`]) and names this client's address, an expiry in the next
    /// hour, and the hub and chain set by [`HubClient::expecting`] if any; otherwise
    /// [`ClientError::Challenge`], and nothing is signed.
    pub async fn login(&mut self, key: &PrivateKeySigner) -> Result<TokenResponse, ClientError> {
        let challenge: ChallengeResponse = self
            .call(Method::POST, "/v1/auth/challenge", Some(&ChallengeRequest { address: key.address() }), None)
            .await?;
        let expected = ExpectedChallenge { address: key.address(), hub: self.expect_hub, chain_id: self.expect_chain };
        let parsed = LoginChallenge::parse(&challenge.challenge)?;
        parsed.check(&expected, unix_now())?;
        if parsed.expires_at != challenge.expires_at {
            return Err(
                ChallengeError::ExpiryMismatch { text: parsed.expires_at, declared: challenge.expires_at }.into()
            );
        }
        let sig =
            key.sign_message_sync(challenge.challenge.as_bytes()).map_err(|e| ClientError::Signing(e.to_string()))?;
        let request = TokenRequest {
            address: key.address(),
            challenge: challenge.challenge,
            signature: sig.as_bytes().to_vec().into(),
        };
        let token: TokenResponse = self.call(Method::POST, "/v1/auth/token", Some(&request), None).await?;
        self.token = Some(token.token.clone());
        Ok(token)
    }

    /// `POST /v1/channels`: proposes a basic channel; returns the hub's signature on version 0.
    pub async fn open_channel(
        &self,
        request: &OpenChannelRequest,
        idempotency_key: Option<&str>,
    ) -> Result<SignatureResponse, ClientError> {
        self.call(Method::POST, "/v1/channels", Some(request), idempotency_key).await
    }

    /// `POST /v1/channels/{id}/updates`: proposes the next version.
    pub async fn update(
        &self,
        id: B256,
        request: &StateRequest,
        idempotency_key: Option<&str>,
    ) -> Result<SignatureResponse, ClientError> {
        self.call(Method::POST, &format!("/v1/channels/{id}/updates"), Some(request), idempotency_key).await
    }

    /// `POST /v1/channels/{id}/close`: proposes the final state.
    pub async fn close(
        &self,
        id: B256,
        request: &StateRequest,
        idempotency_key: Option<&str>,
    ) -> Result<SignatureResponse, ClientError> {
        self.call(Method::POST, &format!("/v1/channels/{id}/close"), Some(request), idempotency_key).await
    }

    /// `GET /v1/channels`: the first page of this client's channels (newest first).
    pub async fn channels(&self) -> Result<ChannelList, ClientError> {
        self.channels_page(None).await
    }

    /// `GET /v1/channels?cursor=..`: the page after `cursor` (a page's `next`), the first
    /// with `None`; pages of up to [`PAGE_LIMIT`].
    pub async fn channels_page(&self, cursor: Option<&str>) -> Result<ChannelList, ClientError> {
        self.call::<(), _>(Method::GET, &page_path("/v1/channels", cursor, None), None, None).await
    }

    /// `GET /v1/channels/{id}`: one of this client's channels.
    pub async fn channel(&self, id: B256) -> Result<ChannelView, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/v1/channels/{id}"), None, None).await
    }

    /// `POST /v1/virtual-channels`: proposes a virtual channel to another client.
    pub async fn propose_virtual(
        &self,
        proposal: &VirtualProposal,
        idempotency_key: Option<&str>,
    ) -> Result<VirtualView, ClientError> {
        self.call(Method::POST, "/v1/virtual-channels", Some(proposal), idempotency_key).await
    }

    /// `POST /v1/channels/{id}/top-up`: the client's signature on the hub's collateral top-up.
    pub async fn top_up(
        &self,
        id: B256,
        request: &StateRequest,
        idempotency_key: Option<&str>,
    ) -> Result<SignatureResponse, ClientError> {
        self.call(Method::POST, &format!("/v1/channels/{id}/top-up"), Some(request), idempotency_key).await
    }

    /// `POST /v1/virtual-channels/quote`: the hub's signed price for a virtual channel
    /// (a read: nothing is stored, so it is retried like one).
    pub async fn quote(&self, request: &QuoteRequest) -> Result<Quote, ClientError> {
        self.call(Method::POST, "/v1/virtual-channels/quote", Some(request), Some("quote")).await
    }

    /// `GET /v1/virtual-channels`: the virtual channels this client is a participant of,
    /// proposals to it included.
    pub async fn virtual_channels(&self) -> Result<VirtualList, ClientError> {
        self.virtual_channels_page(None, None).await
    }

    /// `GET /v1/virtual-channels?cursor=..&status=..`: the page after `cursor` (a page's
    /// `next`), the first with `None`, of the virtual channels in `status` (all with `None`);
    /// pages of up to [`PAGE_LIMIT`].
    pub async fn virtual_channels_page(
        &self,
        cursor: Option<&str>,
        status: Option<VirtualStatus>,
    ) -> Result<VirtualList, ClientError> {
        let path = page_path("/v1/virtual-channels", cursor, status.map(VirtualStatus::as_str));
        self.call::<(), _>(Method::GET, &path, None, None).await
    }

    /// `GET /v1/virtual-channels/{id}`.
    pub async fn virtual_channel(&self, id: B256) -> Result<VirtualView, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/v1/virtual-channels/{id}"), None, None).await
    }

    /// `GET /v1/virtual-channels/{id}?unlessStatus=..&waitMs=..`: answers as soon as the
    /// status is not `unless` any more, or after `wait` (long polling, at most 30 s).
    pub async fn wait_virtual_channel(
        &self,
        id: B256,
        unless: VirtualStatus,
        wait: std::time::Duration,
    ) -> Result<VirtualView, ClientError> {
        let status = serde_json::to_value(unless).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let path = format!("/v1/virtual-channels/{id}?unlessStatus={status}&waitMs={}", wait.as_millis().min(30_000));
        self.call::<(), _>(Method::GET, &path, None, None).await
    }

    /// `POST /v1/virtual-channels/{id}/accept`: returns the hub's signature on the
    /// acceptor's parent update.
    pub async fn accept_virtual(
        &self,
        id: B256,
        accept: &VirtualAccept,
        idempotency_key: Option<&str>,
    ) -> Result<SignatureResponse, ClientError> {
        self.call(Method::POST, &format!("/v1/virtual-channels/{id}/accept"), Some(accept), idempotency_key).await
    }

    /// `POST /v1/virtual-channels/{id}/reject`: declines a proposal.
    pub async fn reject_virtual(&self, id: B256) -> Result<VirtualView, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/v1/virtual-channels/{id}/reject"), None, None).await
    }

    /// `POST /v1/virtual-channels/{id}/close`: settles one or both parents from the final state.
    pub async fn close_virtual(
        &self,
        id: B256,
        close: &VirtualClose,
        idempotency_key: Option<&str>,
    ) -> Result<VirtualCloseResponse, ClientError> {
        self.call(Method::POST, &format!("/v1/virtual-channels/{id}/close"), Some(close), idempotency_key).await
    }

    /// `GET /v1/admin/channels` with the operator token set by [`HubClient::with_token`].
    pub async fn admin_channels(&self) -> Result<ChannelList, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/admin/channels", None, None).await
    }
}

/// Entries per page the client asks list endpoints for (the hub's largest page).
pub const PAGE_LIMIT: u32 = 1000;

/// `path` with the query of one page: `limit`, and `cursor` and `status` when given.
fn page_path(path: &str, cursor: Option<&str>, status: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &PAGE_LIMIT.to_string());
    for (key, value) in [("cursor", cursor), ("status", status)] {
        if let Some(value) = value {
            query.append_pair(key, value);
        }
    }
    format!("{path}?{}", query.finish())
}

/// The longest `Retry-After` the client waits for before asking again; a hub asking for
/// longer is asked again after this.
pub const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// The wait the hub asked for with `error`, if any.
pub fn retry_after(error: &ClientError) -> Option<std::time::Duration> {
    match error {
        ClientError::Refused { retry_after: Some(secs), .. } => Some(std::time::Duration::from_secs(*secs)),
        _ => None,
    }
}

/// True if the hub refused `error`'s request for its rate or concurrency limits (429): it did
/// nothing with it.
pub fn is_rate_limited(error: &ClientError) -> bool {
    matches!(error, ClientError::Refused { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS.as_u16())
}

/// True if `error` means the request never reached a decision (worth retrying with the same
/// idempotency key).
pub fn is_retryable(error: &ClientError) -> bool {
    match error {
        ClientError::Transport(_) => true,
        ClientError::Refused { status, .. } | ClientError::Unexpected { status, .. } => {
            *status >= 500 || *status == StatusCode::TOO_MANY_REQUESTS.as_u16()
        }
        ClientError::Signing(_) | ClientError::Challenge(_) | ClientError::Tls(_) => false,
    }
}

/// The client's clock, unix seconds.
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
