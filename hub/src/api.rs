//! The HTTP API (axum). Handlers parse, authenticate, call the pure decisions in
//! [`crate::core`], then store and sign in one transaction: the hub's signature leaves the
//! process only after the state it signs is committed.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::local::PrivateKeySigner;
use axum::body::Bytes as Body;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ingrid_client_sdk::api::{
    ChallengeRequest, ChallengeResponse, ChannelList, ChannelStatus, ErrorBody, FullySignedState, HubInfo,
    IDEMPOTENCY_KEY, OpenChannelRequest, SignatureResponse, StateRequest, TokenRequest, TokenResponse, VirtualAccept,
    VirtualClose, VirtualCloseResponse, VirtualList, VirtualProposal, VirtualStatus, VirtualView,
};
use ingrid_client_sdk::state::sign_digest;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use sqlx::postgres::PgConnection;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Challenges;
use crate::chain::Action;
use crate::config::AuthConfig;
use crate::core::{Parent, Rules};
use crate::db;
use crate::disputes::OnChain;
use crate::error::ApiError;
use ingrid_client_sdk::virtual_channel::Side;
use ingrid_protocol::machine::{self, ChannelEvent, VirtualEvent};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// The hub's identity and rules.
    pub hub: Arc<Hub>,
}

/// The hub's identity, rules and public description.
pub struct Hub {
    /// The hub's channel key.
    pub key: PrivateKeySigner,
    /// Decision rules (replaced by a reload; a request keeps the ones it started with).
    pub rules: std::sync::RwLock<Arc<Rules>>,
    /// What `GET /v1/hub` answers.
    pub info: HubInfo,
    /// Authentication settings.
    pub auth: AuthConfig,
    /// Bearer token of the operator API, if enabled.
    pub operator_token: Option<String>,
    /// Login challenges.
    pub challenges: Challenges,
    /// HTTP requests received since start.
    pub requests: std::sync::atomic::AtomicU64,
    /// Woken after every committed change of a virtual channel's status (long polls wait on it).
    pub virtual_changed: tokio::sync::Notify,
    /// The Prometheus metrics (`GET /metrics`).
    pub metrics: crate::metrics::Metrics,
    /// New virtual channels refused (the operator's pause; refreshed from the database).
    pub paused: std::sync::atomic::AtomicBool,
    /// The chain node, for readiness.
    pub provider: alloy::providers::DynProvider,
    /// The configuration file, read again by a reload.
    pub config_source: Option<std::path::PathBuf>,
}

impl Hub {
    /// The rules in force now.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().map(|r| r.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Takes the policy of `config` (assets' collateral, limits and fees; channel rules) for
    /// every decision from now on. Decisions already taken (proposals with their fees, quotes
    /// until they expire) keep theirs. The set of assets cannot change without a restart.
    pub fn reload_from(&self, config: &crate::config::Config) -> anyhow::Result<()> {
        let current = self.rules();
        let holders = |assets: &[crate::config::AssetConfig]| assets.iter().map(|a| a.holder).collect::<Vec<_>>();
        anyhow::ensure!(
            holders(&config.assets) == holders(&current.assets),
            "assets: the list of asset holders cannot change without a restart"
        );
        let next = Rules { assets: config.assets.clone(), channels: config.channels.clone(), ..(*current).clone() };
        match self.rules.write() {
            Ok(mut rules) => *rules = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        tracing::info!("policy reloaded");
        Ok(())
    }

    /// Reads the configuration file (and `INGRID_*`) again and takes its policy; see
    /// [`Hub::reload_from`].
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = crate::config::Config::load(self.config_source.as_deref())?;
        self.reload_from(&config)
    }

    pub(crate) fn sign(&self, digest: &B256) -> Result<Bytes, ApiError> {
        sign_digest(&self.key, digest).map_err(|e| ApiError::Internal(e.into()))
    }
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], crate::openapi::json()) }),
        )
        .route("/v1/hub", get(hub_info))
        .route("/v1/auth/challenge", post(challenge))
        .route("/v1/auth/token", post(token))
        .route("/v1/channels", get(list_channels).post(open_channel))
        .route("/v1/channels/{id}", get(get_channel))
        .route("/v1/channels/{id}/updates", post(update_channel))
        .route("/v1/channels/{id}/close", post(close_channel))
        .route("/v1/channels/{id}/top-up", post(top_up_channel))
        .route("/v1/virtual-channels", get(list_virtual).post(propose_virtual))
        .route("/v1/virtual-channels/quote", post(quote_virtual))
        .route("/v1/virtual-channels/{id}", get(get_virtual))
        .route("/v1/virtual-channels/{id}/accept", post(accept_virtual))
        .route("/v1/virtual-channels/{id}/reject", post(reject_virtual))
        .route("/v1/virtual-channels/{id}/close", post(close_virtual))
        .route("/v1/admin/channels", get(admin_channels))
        .route("/v1/admin/outbox", get(admin_outbox))
        .route("/v1/admin/clients", get(crate::admin::clients))
        .route("/v1/admin/virtual-channels", get(crate::admin::virtual_channels))
        .route("/v1/admin/collateral", get(crate::admin::collateral))
        .route("/v1/admin/disputes", get(crate::admin::disputes))
        .route("/v1/admin/status", get(crate::admin::status))
        .route("/v1/admin/pause", post(crate::admin::pause))
        .route("/v1/admin/resume", post(crate::admin::resume))
        .route("/v1/admin/reload", post(crate::admin::reload))
        .route("/v1/admin/channels/{id}/close", post(crate::admin::close_channel))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(RequestBodyLimitLayer::new(1 << 20))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<axum::body::Body>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Readiness: the database answers and the chain node answers (each within 2 seconds).
async fn readyz(State(app): State<AppState>) -> Response {
    use alloy::providers::Provider;
    let limit = Duration::from_secs(2);
    let database = tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&app.pool)).await;
    let chain = tokio::time::timeout(limit, app.hub.provider.get_block_number()).await;
    match (database, chain) {
        (Ok(Ok(_)), Ok(Ok(block))) => {
            Json(serde_json::json!({ "database": "ok", "chain": "ok", "block": block })).into_response()
        }
        (database, chain) => {
            let failing: Vec<&str> =
                [(matches!(database, Ok(Ok(_))), "database"), (matches!(chain, Ok(Ok(_))), "chain")]
                    .into_iter()
                    .filter(|(ok, _)| !ok)
                    .map(|(_, what)| what)
                    .collect();
            let body = ErrorBody { error: "not_ready".into(), message: format!("unreachable: {}", failing.join(", ")) };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// Refuses new virtual channels while the operator paused them.
fn refuse_if_paused(app: &AppState) -> Result<(), ApiError> {
    if app.hub.paused.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::conflict(
            "virtual_channels_paused",
            "the operator paused new virtual channels (maintenance); open and closing ones are served; try later",
        ));
    }
    Ok(())
}

/// Gives every error answer an [`ErrorBody`], also those made by layers and extractors
/// (body too large, timeout, a malformed query string), keeping their status and headers.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text =
        axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "timeout",
        StatusCode::BAD_REQUEST => "bad_request",
        _ => "error",
    };
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&ErrorBody { error: code.into(), message }).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Counts every request (the demo and the tests read it: payments must not reach the hub),
/// and records it in the metrics by route template (bounded labels) and status class.
async fn count_requests(
    State(app): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    app.hub.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or("unmatched");
    app.hub.metrics.http_request(method.as_str(), route, response.status().as_u16(), started.elapsed());
    response
}

/// The Prometheus metrics, the database-backed gauges read now. Unauthenticated: aggregates only.
async fn metrics(State(app): State<AppState>) -> Response {
    if let Err(e) = app.hub.metrics.refresh(&app.pool).await {
        tracing::warn!(error = ?e, "metrics: reading the database failed");
    }
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], app.hub.metrics.render()).into_response()
}

// ------------------------------------------------------------------ extraction

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("malformed_json", format!("request body: {e}")))
}

pub(crate) fn parse_id(text: &str) -> Result<B256, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("malformed_channel_id", format!("{text:?} is not a 32-byte hex channel id")))
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// The authenticated client of a request (`Authorization: Bearer <token>`).
pub struct Client(pub Address);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let client = db::session_client(&app.pool, keccak256(token.as_bytes()))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or expired token".into()))?;
        Ok(Self(client))
    }
}

/// A request authenticated with the operator token.
pub(crate) struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let expected = app
            .hub
            .operator_token
            .as_deref()
            .ok_or_else(|| ApiError::NotFound("the operator API is disabled".into()))?;
        match bearer(parts) {
            // Compare hashes so the comparison time does not depend on the token's prefix.
            Some(token) if keccak256(token.as_bytes()) == keccak256(expected.as_bytes()) => Ok(Self),
            _ => Err(ApiError::Unauthorized("operator token required".into())),
        }
    }
}

// ------------------------------------------------------------------ idempotency

/// An idempotent request: its key (if the client sent one) and its hash.
struct Idempotent {
    client: Address,
    key: Option<String>,
    hash: B256,
}

impl Idempotent {
    fn new(client: Address, headers: &HeaderMap, method: &Method, path: &str, body: &[u8]) -> Result<Self, ApiError> {
        let key = match headers.get(IDEMPOTENCY_KEY) {
            None => None,
            Some(v) => {
                let visible = |k: &&str| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic());
                let k = v.to_str().ok().filter(visible).ok_or_else(|| {
                    ApiError::bad_request(
                        "malformed_idempotency_key",
                        "idempotency key must be 1 to 255 visible ASCII characters",
                    )
                })?;
                Some(k.to_string())
            }
        };
        let hash = keccak256([method.as_str().as_bytes(), b" ", path.as_bytes(), b"\n", body].concat());
        Ok(Self { client, key, hash })
    }

    /// Claims the key in `tx`; returns the earlier answer to replay, if any.
    async fn replay(&self, tx: &mut PgConnection) -> Result<Option<Response>, ApiError> {
        let Some(key) = &self.key else { return Ok(None) };
        let Some(stored) = db::claim_idempotency_key(tx, self.client, key, self.hash).await? else { return Ok(None) };
        if stored.request_hash != self.hash {
            return Err(ApiError::unprocessable(
                "idempotency_key_reused",
                "this idempotency key was used for a different request",
            ));
        }
        let status = StatusCode::from_u16(stored.status).map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Some((status, Json(stored.body)).into_response()))
    }

    /// Gives the key back in `tx`: the answer is provisional, so a retry with the same key
    /// runs again instead of replaying it.
    async fn release(&self, tx: &mut PgConnection) -> Result<(), ApiError> {
        if let Some(key) = &self.key {
            db::release_idempotency_key(tx, self.client, key).await?;
        }
        Ok(())
    }

    /// Stores the answer in `tx` and returns it.
    async fn answer<T: Serialize>(
        &self,
        tx: &mut PgConnection,
        status: StatusCode,
        body: &T,
    ) -> Result<Response, ApiError> {
        let value = serde_json::to_value(body).map_err(|e| ApiError::Internal(e.into()))?;
        if let Some(key) = &self.key {
            db::store_idempotent_answer(tx, self.client, key, status.as_u16(), &value).await?;
        }
        Ok((status, Json(value)).into_response())
    }
}

// ------------------------------------------------------------------ handlers

async fn hub_info(State(app): State<AppState>) -> Json<HubInfo> {
    let virtual_fees = app.hub.rules().assets.iter().any(|a| a.charges_fees());
    Json(HubInfo { virtual_fees, ..app.hub.info.clone() })
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn challenge(State(app): State<AppState>, body: Body) -> Result<Json<ChallengeResponse>, ApiError> {
    let req: ChallengeRequest = parse(&body)?;
    let expires_at = now_secs() + app.hub.auth.challenge_ttl;
    let challenge = app.hub.challenges.issue(req.address, rand::random(), expires_at);
    Ok(Json(ChallengeResponse { challenge, expires_at }))
}

async fn token(State(app): State<AppState>, body: Body) -> Result<Json<TokenResponse>, ApiError> {
    let req: TokenRequest = parse(&body)?;
    let (nonce, expires_at) = app
        .hub
        .challenges
        .check(req.address, &req.challenge, &req.signature, now_secs())
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let mut tx = app.pool.begin().await?;
    if !db::use_challenge(&mut tx, &nonce, expires_at).await? {
        return Err(ApiError::Unauthorized("the challenge was used already".into()));
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    db::ensure_client(&mut tx, req.address).await?;
    db::insert_session(&mut tx, keccak256(token.as_bytes()), req.address, app.hub.auth.session_ttl).await?;
    tx.commit().await?;
    Ok(Json(TokenResponse { token, expires_at: now_secs() + app.hub.auth.session_ttl }))
}

/// Countersigns `update` (signed by the client, digest checked by the caller) and stores it
/// with both signatures in `tx`, moving the channel to its version and `status`. The
/// signature is returned to the caller, who hands it out only after committing `tx`.
async fn countersign(
    hub: &Hub,
    tx: &mut PgConnection,
    channel: B256,
    hub_index: usize,
    update: &StateRequest,
    digest: B256,
    status: Option<ChannelStatus>,
) -> Result<Bytes, ApiError> {
    let hub_sig = hub.sign(&digest)?;
    let sigs = ordered(hub_index, update.signature.clone(), hub_sig.clone());
    db::insert_state(tx, &update.state, digest, [&sigs[0], &sigs[1]]).await?;
    if let Some(status) = status {
        db::set_latest(tx, channel, update.state.version, status).await?;
    }
    Ok(hub_sig)
}

/// Signatures in participant order, given the hub's index.
fn ordered(hub_index: usize, client_sig: Bytes, hub_sig: Bytes) -> [Bytes; 2] {
    if hub_index == 0 { [hub_sig, client_sig] } else { [client_sig, hub_sig] }
}

async fn open_channel(
    State(app): State<AppState>,
    Client(client): Client,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let idem = Idempotent::new(client, &headers, &method, "/v1/channels", &body)?;
    let req: OpenChannelRequest = parse(&body)?;
    let mut tx = app.pool.begin().await?;
    if let Some(answer) = idem.replay(&mut tx).await? {
        return Ok(answer);
    }
    let rules = app.hub.rules();
    let plan = rules.check_open(client, &req.params, &req.state, &req.signature)?;
    db::ensure_client(&mut tx, client).await?;
    let unfunded = db::lock_unfunded_count(&mut tx, client).await?;
    let cap = rules.channels.max_unfunded_per_client;
    if unfunded >= cap {
        return Err(ApiError::conflict(
            "too_many_unfunded",
            format!(
                "{unfunded} of your basic channels wait for their funding (at most {cap}): fund or close them first"
            ),
        ));
    }
    if !db::insert_channel(&mut tx, plan.id, client, plan.hub_index, &req.params, &plan.requirements).await? {
        return Err(ApiError::conflict("channel_exists", format!("channel {} already exists", plan.id)));
    }
    // Version 0: the row was just inserted at it, so the channel does not move.
    let opening = StateRequest { state: req.state, signature: req.signature };
    let hub_sig = countersign(&app.hub, &mut tx, plan.id, plan.hub_index, &opening, plan.digest, None).await?;
    // The hub's own deposits wait until the client's are confirmed (the watcher enqueues them),
    // so a client cannot lock the hub's coins in channels it never funds.
    if plan.requirements.iter().all(|r| r.participant == app.hub.info.address) {
        for r in plan.hub_deposits(app.hub.info.address) {
            let action = Action::Deposit { channel: plan.id, asset: r.asset, amount: r.amount };
            action.enqueue(&mut tx, 0).await?;
        }
    }
    let response = SignatureResponse { channel_id: plan.id, version: 0, signature: hub_sig };
    let answer = idem.answer(&mut tx, StatusCode::CREATED, &response).await?;
    tx.commit().await?;
    Ok(answer)
}

/// What a client asks of its basic channel: an update, the close, or its signature on the
/// hub's confirmed collateral top-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Advance {
    Update,
    Close,
    TopUp,
}

impl Advance {
    fn path(self) -> &'static str {
        match self {
            Self::Update => "updates",
            Self::Close => "close",
            Self::TopUp => "top-up",
        }
    }
}

/// Shared path of updates, closes and top-ups: lock, check, store, sign.
async fn advance(
    app: &AppState,
    client: Address,
    id: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    kind: Advance,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let path = format!("/v1/channels/{id}/{}", kind.path());
    let idem = Idempotent::new(client, headers, method, &path, body)?;
    let req: StateRequest = parse(body)?;
    let mut tx = app.pool.begin().await?;
    if let Some(answer) = idem.replay(&mut tx).await? {
        return Ok(answer);
    }
    let channel = db::lock_channel(&mut tx, id, client)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no channel {id} of yours")))?;
    let event = match kind {
        Advance::Close => ChannelEvent::Close,
        Advance::Update => ChannelEvent::Update,
        Advance::TopUp => ChannelEvent::TopUp,
    };
    let status = machine::channel(channel.status, event)
        .map_err(|_| ApiError::conflict("channel_not_open", format!("channel {id} is {:?}", channel.status)))?;
    let current = db::state(&mut tx, id, channel.latest_version).await?.state;
    let rules = app.hub.rules();
    let (digest, top_up) = match kind {
        Advance::Update => (rules.check_update(channel.hub_index, client, &current, &req.state, &req.signature)?, None),
        Advance::Close => (rules.check_close(client, &current, &req.state, &req.signature)?, None),
        Advance::TopUp => {
            let offer = db::confirmed_top_up(&mut tx, id).await?.ok_or_else(|| {
                ApiError::conflict("no_top_up", format!("channel {id} has no confirmed top-up to apply"))
            })?;
            let hub = channel.hub_index;
            (rules.check_top_up(hub, client, &current, &req.state, &req.signature, offer)?, Some(offer.0))
        }
    };
    let hub_sig = countersign(&app.hub, &mut tx, id, channel.hub_index, &req, digest, Some(status)).await?;
    if kind == Advance::Close {
        let conclude = Action::ConcludeFinal { channel: id, version: req.state.version };
        conclude.enqueue(&mut tx, 0).await?;
        for (asset, balances) in req.state.outcome.assets.iter().zip(&req.state.outcome.balances) {
            if !balances[channel.hub_index].is_zero() {
                let withdraw = Action::Withdraw { channel: id, asset: *asset };
                withdraw.enqueue(&mut tx, 0).await?;
            }
        }
    }
    if let Some(asset) = top_up {
        db::apply_top_up(&mut tx, id, asset).await?;
    }
    let response = SignatureResponse { channel_id: id, version: req.state.version, signature: hub_sig };
    let answer = idem.answer(&mut tx, StatusCode::OK, &response).await?;
    tx.commit().await?;
    Ok(answer)
}

/// `POST /v1/channels/{id}/top-up`: the client countersigns the hub's confirmed top-up.
async fn top_up_channel(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    advance(&app, client, &id, &method, &headers, &body, Advance::TopUp).await
}

async fn update_channel(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    advance(&app, client, &id, &method, &headers, &body, Advance::Update).await
}

async fn close_channel(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    advance(&app, client, &id, &method, &headers, &body, Advance::Close).await
}

/// Paging of lists.
#[derive(serde::Deserialize)]
pub(crate) struct Page {
    limit: Option<i64>,
}

impl Page {
    pub(crate) fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

async fn list_channels(
    State(app): State<AppState>,
    Client(client): Client,
    Query(page): Query<Page>,
) -> Result<Json<ChannelList>, ApiError> {
    let mut conn = app.pool.acquire().await?;
    Ok(Json(ChannelList { channels: db::channel_views(&mut conn, None, Some(client), page.limit()).await? }))
}

async fn get_channel(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut conn = app.pool.acquire().await?;
    let view = db::channel_views(&mut conn, Some(id), Some(client), 1)
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("no channel {id} of yours")))?;
    Ok(Json(view).into_response())
}

async fn admin_channels(
    State(app): State<AppState>,
    _: Operator,
    Query(page): Query<Page>,
) -> Result<Json<ChannelList>, ApiError> {
    let mut conn = app.pool.acquire().await?;
    Ok(Json(ChannelList { channels: db::channel_views(&mut conn, None, None, page.limit()).await? }))
}

async fn admin_outbox(
    State(app): State<AppState>,
    _: Operator,
    Query(page): Query<Page>,
) -> Result<Json<db::OutboxList>, ApiError> {
    Ok(Json(db::outbox_views(&app.pool, page.limit()).await?))
}

// ------------------------------------------------------------------ virtual channels

/// The per-client count limit, for each of `who` (their virtual channels in `statuses`).
async fn check_counts(
    rules: &Rules,
    tx: &mut PgConnection,
    who: [(Address, &str); 2],
    statuses: &[&str],
) -> Result<(), ApiError> {
    let Some(max) = rules.channels.max_virtual_per_client else { return Ok(()) };
    for (client, role) in who {
        let open = db::virtual_count(tx, client, statuses).await?;
        crate::policy::check_open_count(role, client, open, Some(max))?;
    }
    Ok(())
}

/// The books the policy reads, per asset of `assets`: the hub's locked and free coins in
/// total and the coins it locked for each of `clients` ([proposer, acceptor]). Read only when
/// a limit needs them (they scan the open channels).
async fn policy_books(
    rules: &Rules,
    tx: &mut PgConnection,
    assets: &[Address],
    clients: [Address; 2],
) -> Result<Vec<crate::policy::AssetBooks>, ApiError> {
    if !rules.limits_locked_coins() {
        return Ok(vec![Default::default(); assets.len()]);
    }
    let total = crate::metrics::collateral_of(tx, None).await?;
    let proposer = crate::metrics::collateral_of(tx, Some(clients[0])).await?;
    let acceptor = crate::metrics::collateral_of(tx, Some(clients[1])).await?;
    let get = |m: &std::collections::BTreeMap<Address, alloy::primitives::U256>, a: &Address| {
        m.get(a).copied().unwrap_or_default()
    };
    Ok(assets
        .iter()
        .map(|a| crate::policy::AssetBooks {
            hub_locked: get(&total.hub_locked, a),
            hub_free: get(&total.hub_free, a),
            locked_proposer: get(&proposer.hub_locked, a),
            locked_acceptor: get(&acceptor.hub_locked, a),
        })
        .collect())
}

/// `POST /v1/virtual-channels/quote`: the price and limits of a virtual channel, signed,
/// valid `channels.quote_ttl` seconds. Stores nothing.
async fn quote_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    body: Body,
) -> Result<Json<ingrid_client_sdk::api::Quote>, ApiError> {
    let request: ingrid_client_sdk::api::QuoteRequest = parse(&body)?;
    let rules = app.hub.rules();
    let now = now_secs();
    let mut tx = app.pool.begin().await?;
    let row = db::channel(&mut tx, request.parent)
        .await?
        .filter(|r| r.client == client)
        .ok_or_else(|| ApiError::NotFound(format!("no channel {} of yours", request.parent)))?;
    let latest = db::state(&mut tx, row.id, row.latest_version).await?.state;
    if request.deposits.len() != latest.outcome.assets.len() {
        return Err(ApiError::unprocessable("balance_shape", "one deposit pair per asset of the parent"));
    }
    if request.valid_until <= now || request.valid_until > now.saturating_add(rules.channels.max_virtual_validity) {
        return Err(ApiError::unprocessable(
            "invalid_validity",
            format!(
                "valid_until must be after now ({now}) and at most {} s ahead",
                rules.channels.max_virtual_validity
            ),
        ));
    }
    let opening = ingrid_client_sdk::State {
        channelId: B256::ZERO,
        version: 0,
        outcome: ingrid_client_sdk::Allocation {
            assets: latest.outcome.assets.clone(),
            balances: request.deposits.clone(),
            locked: Vec::new(),
        },
        appData: Bytes::new(),
        isFinal: false,
    };
    let books = policy_books(&rules, &mut tx, &latest.outcome.assets, [client, request.peer]).await?;
    let fees = rules.check_virtual_policy(&opening, request.valid_until - now, &books)?;
    tx.rollback().await?;
    let mut quote = ingrid_client_sdk::api::Quote {
        proposer: client,
        peer: request.peer,
        parent: request.parent,
        deposits: request.deposits,
        valid_until: request.valid_until,
        fees,
        expires_at: now + rules.channels.quote_ttl,
        signature: Bytes::new(),
    };
    quote.signature = app.hub.sign(&quote.digest(rules.deployment.chain_id, rules.hub))?;
    Ok(Json(quote))
}

/// A parent snapshot for the decisions, from its locked row and latest state.
async fn parent_snapshot(
    tx: &mut PgConnection,
    row: &db::ChannelRow,
) -> Result<(ingrid_client_sdk::State, bool), ApiError> {
    let latest = db::state(tx, row.id, row.latest_version).await?.state;
    let in_dispute = db::in_dispute(tx, row.id).await?;
    Ok((latest, in_dispute))
}

fn parent<'a>(row: &'a db::ChannelRow, latest: &'a ingrid_client_sdk::State, in_dispute: bool) -> Parent<'a> {
    Parent {
        params: &row.params,
        hub_index: row.hub_index,
        open: row.status == ChannelStatus::Open,
        in_dispute,
        latest,
    }
}

async fn propose_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    refuse_if_paused(&app)?;
    let idem = Idempotent::new(client, &headers, &method, "/v1/virtual-channels", &body)?;
    let proposal: VirtualProposal = parse(&body)?;
    let mut tx = app.pool.begin().await?;
    if let Some(answer) = idem.replay(&mut tx).await? {
        return Ok(answer);
    }
    let parent_id = proposal.parent.state.channelId;
    let row = db::lock_channel(&mut tx, parent_id, client)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no channel {parent_id} of yours")))?;
    let (latest, in_dispute) = parent_snapshot(&mut tx, &row).await?;
    let peer = proposal.params.participants[1];
    let rules = app.hub.rules();
    let now = now_secs();
    check_counts(&rules, &mut tx, [(client, "proposer"), (peer, "peer")], &["proposed", "open", "closing"]).await?;
    let books = policy_books(&rules, &mut tx, &latest.outcome.assets, [client, peer]).await?;
    let fees = rules.check_virtual_proposal(client, &proposal, parent(&row, &latest, in_dispute), now, &books)?;
    if !db::is_client(&mut tx, peer).await? {
        return Err(ApiError::unprocessable("unknown_peer", format!("{peer} is not a client of this hub")));
    }
    let id = proposal.state.channelId;
    if !db::insert_virtual(&mut tx, &proposal, id, parent_id, &fees).await? {
        return Err(ApiError::conflict("virtual_exists", format!("virtual channel {id} already exists")));
    }
    let view = db::virtual_views(&mut *tx, Some(id), client, now_secs(), 1)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("inserted row missing")))?;
    let answer = idem.answer(&mut tx, StatusCode::CREATED, &view).await?;
    tx.commit().await?;
    Ok(answer)
}

/// The start every state-changing request on a virtual channel shares: its idempotency key,
/// its parsed body, a transaction, and the virtual channel's row locked in it.
struct VirtualRequest<T>(std::marker::PhantomData<T>);

impl<T: DeserializeOwned> VirtualRequest<T> {
    /// `Ok(Ok(..))` to go on; `Ok(Err(answer))` when the request is a retry of one answered.
    #[allow(clippy::type_complexity)]
    async fn begin(
        app: &AppState,
        client: Address,
        id: &str,
        action: &str,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Result<(Idempotent, T, sqlx::Transaction<'static, sqlx::Postgres>, VirtualView), Response>, ApiError>
    {
        let id = parse_id(id)?;
        let idem = Idempotent::new(client, headers, method, &format!("/v1/virtual-channels/{id}/{action}"), body)?;
        let request: T = parse(body)?;
        let mut tx = app.pool.begin().await?;
        if let Some(answer) = idem.replay(&mut tx).await? {
            return Ok(Err(answer));
        }
        let v = db::lock_virtual(&mut tx, id, client, now_secs())
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no virtual channel {id} of yours")))?
            .view;
        Ok(Ok((idem, request, tx, v)))
    }
}

async fn accept_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    refuse_if_paused(&app)?;
    let (idem, accept, mut tx, v) =
        match VirtualRequest::<VirtualAccept>::begin(&app, client, &id, "accept", &method, &headers, &body).await? {
            Ok(started) => started,
            Err(replayed) => return Ok(replayed),
        };
    let id = v.id;
    if v.params.participants[1] != client {
        return Err(ApiError::NotFound(format!("no proposal {id} to you")));
    }
    machine::virtual_channel(v.status, VirtualEvent::Accept)
        .map_err(|_| ApiError::conflict("not_proposed", format!("virtual channel {id} is {:?}", v.status)))?;
    if now_secs() >= v.valid_until {
        return Err(ApiError::conflict(
            "proposal_expired",
            format!("the proposal's validity ended at {}", v.valid_until),
        ));
    }
    let (x_id, y_id) = (v.parents[0], accept.parent.state.channelId);
    let rows = db::lock_channels(&mut tx, &[x_id, y_id]).await?;
    let (Some(x_row), Some(y_row)) = (&rows[0], &rows[1]) else {
        return Err(ApiError::NotFound("a parent channel does not exist".into()));
    };
    if y_row.client != client {
        return Err(ApiError::NotFound(format!("no channel {y_id} of yours")));
    }
    if x_id == y_id {
        return Err(ApiError::unprocessable("wrong_parent", "the accepting parent must be your own basic channel"));
    }
    let (x_latest, x_dispute) = parent_snapshot(&mut tx, x_row).await?;
    let (y_latest, y_dispute) = parent_snapshot(&mut tx, y_row).await?;
    // The hub's coins get locked now: the limits hold against the books of this moment.
    let rules = app.hub.rules();
    let participants = [v.params.participants[0], client];
    if rules.limits_locked_coins() || rules.channels.max_virtual_per_client.is_some() {
        db::lock_policy(&mut tx).await?;
    }
    check_counts(&rules, &mut tx, [(participants[0], "proposer"), (client, "acceptor")], &["open", "closing"]).await?;
    let books = policy_books(&rules, &mut tx, &v.initial.outcome.assets, participants).await?;
    rules.check_virtual_policy(&v.initial, v.valid_until.saturating_sub(now_secs()), &books)?;
    let (x_digest, y_digest) = rules.check_virtual_accept(
        client,
        &v.params,
        &v.initial,
        &v.proposed_parent,
        &accept,
        parent(x_row, &x_latest, x_dispute),
        parent(y_row, &y_latest, y_dispute),
        &v.fees,
    )?;
    countersign(&app.hub, &mut tx, x_row.id, x_row.hub_index, &v.proposed_parent, x_digest, Some(x_row.status)).await?;
    let y_sig =
        countersign(&app.hub, &mut tx, y_row.id, y_row.hub_index, &accept.parent, y_digest, Some(y_row.status)).await?;
    db::open_virtual(&mut tx, id, y_id, &accept.signature).await?;
    let response = SignatureResponse { channel_id: y_id, version: accept.parent.state.version, signature: y_sig };
    let answer = idem.answer(&mut tx, StatusCode::OK, &response).await?;
    tx.commit().await?;
    app.hub.metrics.virtual_opened();
    app.hub.virtual_changed.notify_waiters();
    Ok(answer)
}

async fn reject_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<Json<VirtualView>, ApiError> {
    let id = parse_id(&id)?;
    let mut tx = app.pool.begin().await?;
    let v = db::lock_virtual(&mut tx, id, client, now_secs())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no virtual channel {id} of yours")))?
        .view;
    // The peer declines, or the proposer withdraws its proposal.
    machine::virtual_channel(v.status, VirtualEvent::Reject)
        .map_err(|_| ApiError::conflict("not_proposed", format!("virtual channel {id} is {:?}", v.status)))?;
    db::reject_virtual(&mut tx, id).await?;
    let view = db::virtual_views(&mut *tx, Some(id), client, now_secs(), 1)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("row missing")))?;
    tx.commit().await?;
    app.hub.virtual_changed.notify_waiters();
    Ok(Json(view))
}

async fn close_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (idem, close, mut tx, v) =
        match VirtualRequest::<VirtualClose>::begin(&app, client, &id, "close", &method, &headers, &body).await? {
            Ok(started) => started,
            Err(replayed) => return Ok(replayed),
        };
    let id = v.id;
    machine::virtual_channel(v.status, VirtualEvent::CloseRequest)
        .map_err(|_| ApiError::conflict("not_open", format!("virtual channel {id} is {:?}", v.status)))?;
    let rows = db::lock_channels(&mut tx, &v.parents).await?;
    let (Some(x_row), Some(y_row)) = (&rows[0], &rows[1]) else {
        return Err(ApiError::Internal(anyhow::anyhow!("parent of virtual channel {id} missing")));
    };
    let (x_latest, x_dispute) = parent_snapshot(&mut tx, x_row).await?;
    let (y_latest, y_dispute) = parent_snapshot(&mut tx, y_row).await?;
    let snapshots = [
        (!v.settled[0]).then(|| parent(x_row, &x_latest, x_dispute)),
        (!v.settled[1]).then(|| parent(y_row, &y_latest, y_dispute)),
    ];
    let recorded = v.final_state.as_ref().map(|f| &f.state);
    let accepted = app.hub.rules().check_virtual_close(&v.params, &v.initial, recorded, &close, snapshots)?;
    let last =
        v.final_state.clone().unwrap_or(FullySignedState { state: close.state.clone(), sigs: close.sigs.clone() });
    // Off chain, a virtual channel settles in both parents at once, or one parent alone after
    // its final state is fixed on chain: settling one parent alone while the other end could
    // still register another state of it through the other parent would break the hub's
    // neutrality. What is fixed is read from the chain (the record by its subChannelKey), not
    // from the hub's books; the books only tell whether a record may exist.
    let deployment = app.hub.rules().deployment;
    let final_digest = deployment.state_digest(&close.state);
    let both = accepted.len() + v.settled.iter().filter(|s| **s).count() == 2;
    let record_key = crate::disputes::virtual_record_key(&v.initial)?;
    let registered = db::dispute_of(&mut tx, record_key).await?.is_some();
    if registered || !both {
        let record = ingrid_client_sdk::chain::dispute(&app.hub.provider, &deployment, record_key)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading the record of {id}: {e}")))?;
        let chain_now = ingrid_client_sdk::dispute::chain_time(&app.hub.provider)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading the chain's time: {e}")))?;
        match crate::disputes::fixed_on_chain(&record, chain_now, final_digest) {
            OnChain::Fixed => {}
            OnChain::Open { version, timeout } => {
                return Err(ApiError::conflict(
                    "virtual_in_dispute",
                    format!(
                        "virtual channel {id} is registered on chain at version {version} (fixed from {timeout}), \
                         not with this final state: it settles through the chain"
                    ),
                ));
            }
            OnChain::Unregistered if both => {}
            OnChain::Unregistered => {
                // The other end did not sign its parent's update: fix the final state on chain
                // through the other parent first. The client asks again once it is fixed.
                let other = if v.settled[0] || accepted.iter().any(|(s, _)| *s == Side::Proposer) { 1 } else { 0 };
                let register = Action::Register { channel: v.parents[other], because: Some(id) };
                db::close_virtual(&mut tx, id, &last, v.settled).await?;
                register.enqueue(&mut tx, 0).await?;
                idem.release(&mut tx).await?;
                tx.commit().await?;
                app.hub.virtual_changed.notify_waiters();
                let pending = VirtualCloseResponse { signatures: Vec::new() };
                return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
            }
        }
    }
    let mut settled = v.settled;
    let mut signatures = Vec::with_capacity(accepted.len());
    for ((side, digest), update) in accepted.into_iter().zip(&close.parents) {
        let row = if side == Side::Proposer { x_row } else { y_row };
        let hub_sig = countersign(&app.hub, &mut tx, row.id, row.hub_index, update, digest, Some(row.status)).await?;
        settled[side.virtual_index()] = true;
        signatures.push(SignatureResponse { channel_id: row.id, version: update.state.version, signature: hub_sig });
    }
    db::close_virtual(&mut tx, id, &last, settled).await?;
    let answer = idem.answer(&mut tx, StatusCode::OK, &VirtualCloseResponse { signatures }).await?;
    tx.commit().await?;
    app.hub.metrics.virtual_closed(settled[0] && settled[1]);
    app.hub.virtual_changed.notify_waiters();
    Ok(answer)
}

async fn list_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Query(page): Query<Page>,
) -> Result<Json<VirtualList>, ApiError> {
    Ok(Json(VirtualList { channels: db::virtual_views(&app.pool, None, client, now_secs(), page.limit()).await? }))
}

/// Long polling of a virtual channel's status.
#[derive(serde::Deserialize)]
struct Wait {
    /// Answer once the status differs from this one (or at the deadline).
    #[serde(rename = "unlessStatus")]
    unless_status: Option<VirtualStatus>,
    /// Longest wait, milliseconds (at most 30000).
    #[serde(rename = "waitMs")]
    wait_ms: Option<u64>,
}

async fn get_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    Query(wait): Query<Wait>,
) -> Result<Json<VirtualView>, ApiError> {
    let id = parse_id(&id)?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait.wait_ms.unwrap_or(0).min(30_000));
    loop {
        // Register for a change before reading, so a change in between is not missed.
        let changed = app.hub.virtual_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let view = db::virtual_views(&app.pool, Some(id), client, now_secs(), 1)
            .await?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("no virtual channel {id} of yours")))?;
        if wait.unless_status != Some(view.status) || tokio::time::Instant::now() >= deadline {
            return Ok(Json(view));
        }
        // Another replica may change it too: look again at least every 250 ms.
        let _ =
            tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + Duration::from_millis(250)), changed)
                .await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use axum::body::Body as HttpBody;
    use axum::http::Request;
    use tower::ServiceExt;

    /// A hub whose database pool never connects: enough for what is answered before any query.
    pub(crate) fn offline_state() -> AppState {
        let key = PrivateKeySigner::random();
        let deployment = ingrid_client_sdk::Deployment { chain_id: 31337, adjudicator: Address::repeat_byte(0xad) };
        let hub = Hub {
            rules: std::sync::RwLock::new(Arc::new(Rules {
                hub: key.address(),
                deployment,
                assets: Vec::new(),
                channels: Default::default(),
            })),
            info: HubInfo {
                address: key.address(),
                chain_id: 31337,
                adjudicator: deployment.adjudicator,
                assets: Vec::new(),
                challenge_duration: [60, 600],
                confirmations: 1,
                virtual_fees: false,
            },
            challenges: Challenges::new(&[1], key.address(), 31337),
            requests: Default::default(),
            virtual_changed: Default::default(),
            metrics: crate::metrics::Metrics::new(&[]),
            key,
            auth: AuthConfig::default(),
            operator_token: None,
            paused: Default::default(),
            config_source: None,
            provider: alloy::providers::Provider::erased(
                alloy::providers::ProviderBuilder::new().connect_http("http://127.0.0.1:1".parse().expect("url")),
            ),
        };
        let pool = sqlx::PgPool::connect_lazy("postgres://localhost:1/unused").expect("lazy pool");
        AppState { pool, hub: Arc::new(hub) }
    }

    async fn error_of(response: Response) -> (StatusCode, ErrorBody) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("an ErrorBody"))
    }

    #[tokio::test]
    async fn layer_refusals_carry_an_error_body() {
        let router = router(offline_state());
        let huge = Request::post("/v1/channels")
            .header(header::CONTENT_LENGTH, (2 << 20).to_string())
            .body(HttpBody::from(vec![b' '; 2 << 20]))
            .expect("request");
        let (status, body) = error_of(router.clone().oneshot(huge).await.expect("response")).await;
        assert_eq!((status, body.error.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));

        let malformed = Request::post("/v1/auth/challenge").body(HttpBody::from("{")).expect("request");
        let (status, body) = error_of(router.clone().oneshot(malformed).await.expect("response")).await;
        assert_eq!((status, body.error.as_str()), (StatusCode::BAD_REQUEST, "malformed_json"));

        let wrong_method = Request::delete("/v1/hub").body(HttpBody::empty()).expect("request");
        let (status, body) = error_of(router.oneshot(wrong_method).await.expect("response")).await;
        assert_eq!((status, body.error.as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    }

    #[tokio::test]
    async fn a_challenge_is_issued_without_the_database() {
        let state = offline_state();
        let hub = state.hub.info.address;
        let request = Request::post("/v1/auth/challenge")
            .body(HttpBody::from(format!("{{\"address\":\"{hub}\"}}")))
            .expect("request");
        let response = router(state).oneshot(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
