//! The HTTP API (axum). Handlers parse, authenticate, call the pure decisions in
//! [`crate::core`], then store and sign in one transaction: the hub's signature leaves the
//! process only after the state it signs is committed.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::local::PrivateKeySigner;
use axum::body::Bytes as Body;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ingrid_client_sdk::api::{
    ChallengeRequest, ChallengeResponse, ChannelList, ChannelStatus, ChannelView, ErrorBody, FullySignedState, HubInfo,
    IDEMPOTENCY_KEY, OpenChannelRequest, Quote, QuoteRequest, SignatureResponse, StateRequest, TokenRequest,
    TokenResponse, VirtualAccept, VirtualClose, VirtualCloseResponse, VirtualList, VirtualProposal, VirtualStatus,
    VirtualView,
};
use ingrid_client_sdk::openapi::HexB256;
use ingrid_client_sdk::state::sign_digest;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use sqlx::postgres::PgConnection;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// Every route with its OpenAPI operation: [`router`] and [`document`] are built from this one
/// list (each handler's `#[utoipa::path]` names its method and path). Add a route here or in
/// [`crate::admin::routes`], never on the router itself: the document would miss it.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(hub_info))
        .routes(routes!(challenge))
        .routes(routes!(token))
        .routes(routes!(list_channels, open_channel))
        .routes(routes!(get_channel))
        .routes(routes!(update_channel))
        .routes(routes!(close_channel))
        .routes(routes!(top_up_channel))
        .routes(routes!(list_virtual, propose_virtual))
        .routes(routes!(quote_virtual))
        .routes(routes!(get_virtual))
        .routes(routes!(accept_virtual))
        .routes(routes!(reject_virtual))
        .routes(routes!(close_virtual))
        .merge(crate::admin::routes())
}

/// The router with every route of [`routes`] and every layer.
pub fn router(state: AppState) -> Router {
    let (routes, _) = routes().split_for_parts();
    routes
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

/// The OpenAPI document of the API: [`crate::openapi::base`] with the operations of [`routes`].
pub fn document() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// [`document`] as pretty JSON with a trailing newline: what `GET /openapi.json` answers and
/// `hub/openapi.json` holds.
pub fn document_json() -> String {
    static JSON: LazyLock<String> = LazyLock::new(|| crate::openapi::to_json(&document()));
    JSON.clone()
}

/// Liveness
///
/// Answers `ok` while the process serves requests; it does not check the database or the chain.
#[utoipa::path(get, path = "/healthz", tag = "meta", operation_id = "healthz",
    responses((status = 200, description = "The process is up.", body = String, content_type = "text/plain",
        example = json!("ok"))))]
async fn healthz() -> &'static str {
    "ok"
}

/// This document
///
/// The OpenAPI 3.1 document of this API (the same as `hub/openapi.json` in the repository).
#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document.", body = Object,
        content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document_json())
}

/// Readiness
///
/// Ready when the database and the chain node both answer within 2 seconds.
#[utoipa::path(get, path = "/readyz", tag = "meta", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready: `{\"database\": \"ok\", \"chain\": \"ok\", \"block\": <head>}`.",
            body = Object),
        (status = 503, description = "`not_ready`: the message names what is unreachable.", body = ErrorBody),
    ))]
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

/// Prometheus metrics
///
/// The hub's metrics in the Prometheus text format, for an operator dashboard: the hub's coins
/// locked in virtual channels and free in basic channels per asset, channels by status, HTTP
/// requests, the database pool, the chain watcher and the outbox (see `hub/src/metrics.rs`).
/// The gauges of collateral, channels, chain cursor and outbox are read from the database at
/// every scrape. Aggregates only: no client, channel or key appears.
#[utoipa::path(get, path = "/metrics", tag = "meta", operation_id = "metrics",
    responses((status = 200, description = "Every metric, with its help text.", body = String,
        content_type = "text/plain; version=0.0.4",
        example = json!("# HELP ingrid_hub_locked The hub's own coins locked in virtual channels, per asset ...\n# TYPE ingrid_hub_locked gauge\ningrid_hub_locked{asset=\"ETH\"} 5000000000000000000\n"))))]
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

/// The hub's identity and terms
///
/// The hub's participant address, the chain and adjudicator signatures are bound to, the
/// accepted assets and challenge durations: what a client needs to open a channel.
#[utoipa::path(get, path = "/v1/hub", tag = "hub", operation_id = "hub_info",
    responses((status = 200, description = "The hub's description.", body = HubInfo)))]
async fn hub_info(State(app): State<AppState>) -> Json<HubInfo> {
    let virtual_fees = app.hub.rules().assets.iter().any(|a| a.charges_fees());
    Json(HubInfo { virtual_fees, ..app.hub.info.clone() })
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Get a login challenge
///
/// Returns a text for the client's channel key to sign with EIP-191 `personal_sign`;
/// exchange the signature at `POST /v1/auth/token` before `expiresAt`. A challenge is good
/// for one login; issuing one stores nothing.
#[utoipa::path(post, path = "/v1/auth/challenge", tag = "auth", operation_id = "challenge",
    request_body = ChallengeRequest,
    responses(
        (status = 200, description = "The challenge to sign.", body = ChallengeResponse),
        (status = 400, description = "`malformed_json`: the body is not a `ChallengeRequest`.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 500, description = "`internal`: an unexpected failure; the cause is logged.", body = ErrorBody),
    ))]
async fn challenge(State(app): State<AppState>, body: Body) -> Result<Json<ChallengeResponse>, ApiError> {
    let req: ChallengeRequest = parse(&body)?;
    let expires_at = now_secs() + app.hub.auth.challenge_ttl;
    let challenge = app.hub.challenges.issue(req.address, rand::random(), expires_at);
    Ok(Json(ChallengeResponse { challenge, expires_at }))
}

/// Log in
///
/// Exchanges a challenge signed by `address` for a bearer token of the client routes.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", operation_id = "token",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "The session token.", body = TokenResponse),
        (status = 400, description = "`malformed_json`: the body is not a `TokenRequest`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the challenge was not issued by this hub for `address` \
            or was altered, expired, was used already, or is not signed by `address`.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
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

/// Open a channel
///
/// Proposes a basic channel between the client and the hub: its params, the opening state
/// (version 0, both parties' deposits as balances) and the client's signature on it. The
/// hub checks it against its terms, stores it, countersigns and queues its own deposit;
/// the channel is `funding` until both deposits are confirmed on chain.
#[utoipa::path(post, path = "/v1/channels", tag = "channels", operation_id = "open_channel",
    security(("client" = [])),
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
        description = "Makes retries safe: a retry with the same key and request replays the first answer.")),
    request_body = OpenChannelRequest,
    responses(
        (status = 201, description = "Accepted: the hub's signature on the opening state (version 0).",
            body = SignatureResponse),
        (status = 400, description = "`malformed_idempotency_key`: not 1 to 255 visible ASCII characters; \
            `malformed_json`: the body is not an `OpenChannelRequest`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 409, description = "`channel_exists`: a channel with this id is already open.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "Refused. Params: `invalid_params` (zero or equal participants, not \
            exactly a ledger channel, an app, challenge duration out of the hub's bounds), \
            `hub_not_participant`, `client_not_participant` (the token's address is not the other \
            participant). State: `channel_id_mismatch`, `app_data_not_empty`, `locks_changed` (an opening \
            state holds no locks), `duplicate_asset`, `balance_shape`, `overflow`, `final_state`, \
            `no_assets`, `wrong_version` (not version 0). Terms: `unknown_asset`, `hub_deposit_above_maximum`, `hub_deposit_above_ratio`. \
            `bad_signature`: not the client's signature on the state. `idempotency_key_reused`.",
            body = ErrorBody),
        (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
            body = ErrorBody),
    ))]
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

/// Take the hub's collateral top-up
///
/// When the channel's view offers a `topUp` (the hub deposited more and the deposit is
/// confirmed on chain), the client signs the latest state with the hub's balance of that
/// asset raised by the amount (version + 1) after checking the deposit on chain; the hub
/// countersigns it.
#[utoipa::path(post, path = "/v1/channels/{id}/top-up", tag = "channels", operation_id = "top_up_channel",
    security(("client" = [])),
    params(
        ("id" = HexB256, Path, description = "The channel id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
            description = "Makes retries safe: a retry with the same key and request replays the first answer."),
    ),
    request_body = StateRequest,
    responses(
        (status = 200, description = "Applied: the hub's signature on the topped-up state.", body = SignatureResponse),
        (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json`.",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel of this client.", body = ErrorBody),
        (status = 409, description = "`channel_not_open`; `no_top_up`: no confirmed top-up to apply; \
            `wrong_version`: not the latest version + 1.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "`top_up_mismatch`: not exactly the latest state with the hub's balance \
            raised by the top-up; `bad_signature`; `idempotency_key_reused`.", body = ErrorBody),
        (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
            body = ErrorBody),
    ))]
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

/// Update a channel
///
/// Proposes the next state (version + 1) of an `open` channel, signed by the client. The hub
/// countersigns transfers that keep each asset's total and locks and do not lower its own
/// balance.
#[utoipa::path(post, path = "/v1/channels/{id}/updates", tag = "channels", operation_id = "update_channel",
    security(("client" = [])),
    params(
        ("id" = HexB256, Path, description = "The channel id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
            description = "Makes retries safe: a retry with the same key and request replays the first answer."),
    ),
    request_body = StateRequest,
    responses(
        (status = 200, description = "Accepted: the hub's signature on the new state.", body = SignatureResponse),
        (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json` \
            (the body is not a `StateRequest`).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel of this client.", body = ErrorBody),
        (status = 409, description = "`channel_not_open`: the channel is not `open`; `wrong_version`: not the \
            latest version + 1 (stale or ahead); `channel_final`: the latest state is final.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "Refused: `final_state` (final states go to `/close`), \
            `channel_id_mismatch`, `app_data_not_empty`, `assets_changed`, `duplicate_asset`, `balance_shape`, \
            `invalid_index_map`, `duplicate_lock`, `overflow`, `total_changed`, `locks_changed`, \
            `hub_balance_decreased`, `bad_signature`, `idempotency_key_reused`.", body = ErrorBody),
        (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
            body = ErrorBody),
    ))]
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

/// Close a channel
///
/// Proposes the final state of a `funding` or `open` channel: the latest balances, no locks,
/// `isFinal` set, signed by the client. The hub countersigns, marks the channel `closing`
/// and queues the conclusion on chain and its withdrawals.
#[utoipa::path(post, path = "/v1/channels/{id}/close", tag = "channels", operation_id = "close_channel",
    security(("client" = [])),
    params(
        ("id" = HexB256, Path, description = "The channel id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
            description = "Makes retries safe: a retry with the same key and request replays the first answer."),
    ),
    request_body = StateRequest,
    responses(
        (status = 200, description = "Accepted: the hub's signature on the final state.", body = SignatureResponse),
        (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json` \
            (the body is not a `StateRequest`).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel of this client.", body = ErrorBody),
        (status = 409, description = "`channel_not_open`: the channel is neither `funding` nor `open` (e.g. \
            already closing); `locks_held`: close its virtual channels first; `wrong_version`: not the latest \
            version + 1; `channel_final`: the latest state is final.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "Refused: `not_final`, `balances_changed`, `channel_id_mismatch`, \
            `app_data_not_empty`, `assets_changed`, `duplicate_asset`, `balance_shape`, `invalid_index_map`, \
            `duplicate_lock`, `overflow`, `total_changed`, `locks_changed`, `bad_signature`, \
            `idempotency_key_reused`.", body = ErrorBody),
        (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
            body = ErrorBody),
    ))]
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

/// List my channels
///
/// The authenticated client's basic channels, newest first.
#[utoipa::path(get, path = "/v1/channels", tag = "channels", operation_id = "list_channels",
    security(("client" = [])),
    params(("limit" = Option<i64>, Query,
        description = "Most channels to return; default 100, clamped to 1..=1000.", example = 100)),
    responses(
        (status = 200, description = "The channels.", body = ChannelList),
        (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
async fn list_channels(
    State(app): State<AppState>,
    Client(client): Client,
    Query(page): Query<Page>,
) -> Result<Json<ChannelList>, ApiError> {
    let mut conn = app.pool.acquire().await?;
    Ok(Json(ChannelList { channels: db::channel_views(&mut conn, None, Some(client), page.limit()).await? }))
}

/// Get a channel
///
/// One of the authenticated client's channels, with its latest fully signed state.
#[utoipa::path(get, path = "/v1/channels/{id}", tag = "channels", operation_id = "get_channel",
    security(("client" = [])),
    params(("id" = HexB256, Path, description = "The channel id.")),
    responses(
        (status = 200, description = "The channel.", body = ChannelView),
        (status = 400, description = "`malformed_channel_id`: `id` is not 32 bytes of hex.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel of this client.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
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

/// Quote a virtual channel
///
/// The fee per asset and the limits that apply to a virtual channel with these terms,
/// signed by the hub and valid `channels.quote_ttl` seconds (60 by default). Propose with
/// it: the parent update then also pays the fees to the hub (the client's balance down,
/// the hub's up by exactly the fee). Stores nothing; limits are checked again when the
/// virtual channel opens.
#[utoipa::path(post, path = "/v1/virtual-channels/quote", tag = "virtual-channels",
    operation_id = "quote_virtual_channel",
    security(("client" = [])),
    request_body = QuoteRequest,
    responses(
        (status = 200, description = "The signed quote.", body = Quote),
        (status = 400, description = "`malformed_json`: the body is not a `QuoteRequest`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: `parent` is not a basic channel of this client.",
            body = ErrorBody),
        (status = 409, description = "A limit would be exceeded: `client_limit_exceeded`, \
            `total_limit_exceeded`, `fraction_limit_exceeded`; the message names the numbers.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "`balance_shape` (not one deposit pair per asset of the parent), \
            `invalid_validity`, `virtual_amount_below_minimum`, `virtual_amount_above_maximum`, `overflow`.",
            body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
async fn quote_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    body: Body,
) -> Result<Json<Quote>, ApiError> {
    let request: QuoteRequest = parse(&body)?;
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
    let mut quote = Quote {
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

/// Propose a virtual channel
///
/// Proposes a virtual channel to another client of the hub (the peer). The proposer is its
/// participant 0 and sends its params (`isVirtual`, participants `[proposer, peer]`), its
/// opening state (version 0, balances per asset `[proposer's deposit, peer's deposit]`, the
/// parent's assets in their order) signed by the proposer, `validUntil`, and its parent
/// update: the next version of the proposer's own `open` basic channel with the hub in which
/// the proposer pays in its deposit and the hub the peer's, into a lock with the virtual
/// channel's id appended to `locked` (exactly what the SDK's `virtual_channel::lock_in_parent`
/// computes), signed by the proposer. The hub checks it all but signs nothing yet: it stores
/// the proposal (`proposed`) for the peer to accept or reject.
#[utoipa::path(post, path = "/v1/virtual-channels", tag = "virtual-channels",
    operation_id = "propose_virtual_channel",
    security(("client" = [])),
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
        description = "Makes retries safe: a retry with the same key and request replays the first answer.")),
    request_body = VirtualProposal,
    responses(
        (status = 201, description = "Stored: the proposal, `proposed`, as both participants see it.",
            body = VirtualView),
        (status = 400, description = "`malformed_idempotency_key`: not 1 to 255 visible ASCII characters; \
            `malformed_json`: the body is not a `VirtualProposal`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: `parent.state.channelId` is not a basic channel of this \
            client.", body = ErrorBody),
        (status = 409, description = "`parent_not_open`: the parent is not `open`; `parent_in_dispute`: the \
            parent is registered on chain and not concluded; `wrong_version`: the parent update is not the \
            parent's latest version + 1; `insufficient_hub_balance`: the hub's balance in the parent is below \
            the peer's deposit, which the hub locks; `virtual_exists`: a virtual channel with this id exists. \
            Policy: `quote_required` (the hub charges a fee: propose with a quote), `quote_expired`, \
            `client_limit_exceeded`, `total_limit_exceeded`, `fraction_limit_exceeded` (the hub's locked coins \
            per client, in total, as a share of its coins), `too_many_virtual_channels`, \
            `virtual_channels_paused` (the operator paused new virtual channels); each message names the \
            numbers.",
            body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "Refused. Params: `client_not_participant` (the client is not \
            participant 0), `invalid_params` (zero or equal participants, not exactly virtual, an app, the hub \
            as a participant, challenge duration out of the hub's bounds), `challenge_too_long` (longer than \
            the parent's). Opening state: `channel_id_mismatch`, `wrong_version` (not version 0), \
            `app_data_not_empty`, `locks_changed` (an opening state holds no locks), `duplicate_asset`, \
            `balance_shape`, `overflow`, `final_state`, `assets_mismatch` (not the parent's assets in their \
            order), `empty_virtual_channel` (nothing deposited), `virtual_amount_below_minimum`, \
            `virtual_amount_above_maximum`. Quote: `quote_altered` (not signed by this hub as it is), \
            `quote_mismatch` (other terms). `invalid_validity`: `validUntil` is not after \
            now or is further ahead than the hub allows. Parent update: `insufficient_balance` (the client's \
            balance in the parent is below the proposer's deposit), `parent_update_mismatch` (not exactly the \
            parent's latest state with this lock applied). `bad_signature`: not the client's signature on the \
            opening state or on the parent update. `unknown_peer`: participant 1 is not a client of this hub. \
            `idempotency_key_reused`.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
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

/// Accept a virtual channel
///
/// Accepts a `proposed` virtual channel; sent by its participant 1 (the peer) with its
/// signature on the opening state and its parent update: the next version of its own `open`
/// basic channel with the hub in which it pays in its deposit and the hub the proposer's,
/// into the virtual channel's lock (the SDK's `virtual_channel::lock_in_parent`), signed by
/// the peer. The hub checks both parent updates against both parents' latest states,
/// countersigns both, stores them as the parents' latest states and marks the virtual
/// channel `open`. It answers its signature on the peer's parent update; the proposer finds
/// the hub's signature on its own in its parent's latest state (`GET /v1/channels/{id}`).
#[utoipa::path(post, path = "/v1/virtual-channels/{id}/accept", tag = "virtual-channels",
    operation_id = "accept_virtual_channel",
    security(("client" = [])),
    params(
        ("id" = HexB256, Path, description = "The virtual channel id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
            description = "Makes retries safe: a retry with the same key and request replays the first answer."),
    ),
    request_body = VirtualAccept,
    responses(
        (status = 200, description = "Accepted: the hub's signature on the peer's parent update.",
            body = SignatureResponse),
        (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json` \
            (the body is not a `VirtualAccept`).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such virtual channel of this client, the client is not \
            its participant 1, or `parent.state.channelId` is no basic channel of this client.", body = ErrorBody),
        (status = 409, description = "`not_proposed`: the virtual channel is not `proposed` (accepted, \
            rejected or closed already); `proposal_expired`: its `validUntil` has passed; `parent_not_open`: a parent is not `open`; `parent_in_dispute`: a \
            parent is registered on chain and not concluded; `wrong_version`: the parent update is not its \
            parent's latest version + 1, or the proposer's parent has moved on since the proposal; \
            `insufficient_hub_balance`: the hub's balance in the peer's parent is below the proposer's \
            deposit, which the hub locks.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "Refused: `wrong_parent` (the parent update is for the proposer's \
            parent), `assets_mismatch` (the parent does not hold the \
            virtual channel's assets in their order), `challenge_too_long` (the virtual channel's challenge \
            duration is longer than the parent's), `insufficient_balance` (the client's balance in the parent \
            is below its deposit), `parent_update_mismatch` (not exactly the parent's latest state with this \
            lock applied), `bad_signature` (not the client's signature on the opening state or on the parent \
            update), `idempotency_key_reused`.", body = ErrorBody),
        (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
            body = ErrorBody),
    ))]
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

/// Reject a virtual channel
///
/// Declines a `proposed` virtual channel (its participant 1, the peer) or withdraws it (its
/// participant 0, the proposer). Nothing was signed or locked for a proposal, so nothing
/// else changes. No request body (a body is
/// ignored) and no `Idempotency-Key`: repeating it answers 409 `not_proposed`.
#[utoipa::path(post, path = "/v1/virtual-channels/{id}/reject", tag = "virtual-channels",
    operation_id = "reject_virtual_channel",
    security(("client" = [])),
    params(("id" = HexB256, Path, description = "The virtual channel id.")),
    responses(
        (status = 200, description = "Rejected: the virtual channel, now `rejected`.", body = VirtualView),
        (status = 400, description = "`malformed_channel_id`: `id` is not 32 bytes of hex.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such virtual channel of this client.", body = ErrorBody),
        (status = 409, description = "`not_proposed`: the virtual channel is not `proposed` (accepted, rejected \
            or closed already).", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
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

/// Close a virtual channel
///
/// Closes an `open` virtual channel from its final state signed by both participants, and
/// settles one or both parents; sent by either participant. Each parent update is the next
/// version of a parent with the virtual channel's lock removed and the final balances
/// credited through the lock's index map (the SDK's `virtual_channel::settle_in_parent`),
/// signed by that parent's client. The first close records the final state; the virtual
/// channel is `closed` once both parents are settled and `closing` until then, and a later
/// close with the same final state settles the other parent. The hub countersigns each
/// parent update and stores it as that parent's latest state.
#[utoipa::path(post, path = "/v1/virtual-channels/{id}/close", tag = "virtual-channels",
    operation_id = "close_virtual_channel",
    security(("client" = [])),
    params(
        ("id" = HexB256, Path, description = "The virtual channel id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
            description = "Makes retries safe: a retry with the same key and request replays the first answer."),
    ),
    request_body = VirtualClose,
    responses(
        (status = 200, description = "Accepted: the hub's signatures on the parent updates, in request order.",
            body = VirtualCloseResponse),
        (status = 202, description = "Pending (empty `signatures`): the request settles one parent while the \
            other is unsettled and the final state is not fixed on chain yet. The hub records the final state \
            and registers the other parent on chain with it (which fixes it: a final state cannot be \
            refuted); ask again once that registration is confirmed. Never replayed for its idempotency key.",
            body = VirtualCloseResponse),
        (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json` \
            (the body is not a `VirtualClose`).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such virtual channel of this client.", body = ErrorBody),
        (status = 409, description = "`not_open`: the virtual channel is neither `open` nor `closing`; \
            `final_state_differs`: another final state is recorded; `parent_settled_or_unknown`: a parent \
            update is for a parent settled already or for no parent of this virtual channel; \
            `parent_not_open`: a parent is not `open`; `parent_in_dispute`: a parent is registered on chain \
            and not concluded; `wrong_version`: a parent update is not its parent's latest version + 1; \
            `virtual_in_dispute`: the virtual channel is registered on chain with another state than this \
            final one (it settles through the chain).",
            body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "Refused. Final state: `not_final`; on the first close also \
            `invalid_final_state` (another channel's id, app data or locks), `assets_changed`, \
            `balance_shape`, `overflow`, `total_changed` (the totals differ from the opening deposits), \
            `bad_signature` (not signed by both participants). Parent updates: `no_parent_update` (`parents` \
            is empty), `duplicate_parent_update` (two updates of one parent), `parent_update_mismatch` (not \
            exactly the parent's latest state with the lock settled), `bad_signature` (not signed by the \
            parent's client). `idempotency_key_reused`.", body = ErrorBody),
        (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
            body = ErrorBody),
    ))]
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

/// List my virtual channels
///
/// The virtual channels the authenticated client proposed or was proposed, in every status,
/// newest first.
#[utoipa::path(get, path = "/v1/virtual-channels", tag = "virtual-channels", operation_id = "list_virtual_channels",
    security(("client" = [])),
    params(("limit" = Option<i64>, Query,
        description = "Most virtual channels to return; default 100, clamped to 1..=1000.", example = 100)),
    responses(
        (status = 200, description = "The virtual channels.", body = VirtualList),
        (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
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

/// Get a virtual channel
///
/// One of the authenticated client's virtual channels (as proposer or peer). With
/// `unlessStatus` and `waitMs` it is a long poll: the answer comes as soon as the status
/// is not `unlessStatus` any more, or after `waitMs` (at most 30000), e.g. a proposer
/// waiting for its peer to accept.
#[utoipa::path(get, path = "/v1/virtual-channels/{id}", tag = "virtual-channels",
    operation_id = "get_virtual_channel",
    security(("client" = [])),
    params(
        ("id" = HexB256, Path, description = "The virtual channel id."),
        ("unlessStatus" = Option<VirtualStatus>, Query, description = "Wait while the status is this one."),
        ("waitMs" = Option<u64>, Query, description = "Longest wait, milliseconds (default 0, at most 30000)."),
    ),
    responses(
        (status = 200, description = "The virtual channel.", body = VirtualView),
        (status = 400, description = "`malformed_channel_id`: `id` is not 32 bytes of hex; `bad_request`: \
            `unlessStatus` or `waitMs` is malformed.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such virtual channel of this client.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
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
