//! The HTTP API (axum). Handlers parse, authenticate, call the pure decisions in
//! [`crate::core`], then store and sign in one transaction: the hub's signature leaves the
//! process only after the state it signs is committed.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::local::PrivateKeySigner;
use axum::body::Bytes as Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ingrid_client_sdk::api::{
    ChallengeRequest, ChallengeResponse, ChannelList, ChannelStatus, HubInfo, IDEMPOTENCY_KEY, OpenChannelRequest,
    SignatureResponse, StateRequest, TokenRequest, TokenResponse,
};
use ingrid_client_sdk::state::sign_digest;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use sqlx::postgres::PgConnection;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::chain::Action;
use crate::config::AuthConfig;
use crate::core::Rules;
use crate::db;
use crate::error::ApiError;

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
    /// Decision rules.
    pub rules: Rules,
    /// What `GET /v1/hub` answers.
    pub info: HubInfo,
    /// Authentication settings.
    pub auth: AuthConfig,
    /// Bearer token of the operator API, if enabled.
    pub operator_token: Option<String>,
}

impl Hub {
    fn sign(&self, digest: &B256) -> Result<Bytes, ApiError> {
        sign_digest(&self.key, digest).map_err(|e| ApiError::Internal(e.into()))
    }
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
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
        .route("/v1/admin/channels", get(admin_channels))
        .route("/v1/admin/outbox", get(admin_outbox))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(RequestBodyLimitLayer::new(1 << 20))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

// ------------------------------------------------------------------ extraction

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("malformed_json", format!("request body: {e}")))
}

fn parse_id(text: &str) -> Result<B256, ApiError> {
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
pub struct Operator;

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
                let k = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 255).ok_or_else(|| {
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
    Json(app.hub.info.clone())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn challenge_text(hub: &Hub, address: Address, nonce: &[u8], expires_at: u64) -> String {
    format!(
        "Ingrid login\nhub: {}\nchain: {}\naddress: {}\nnonce: 0x{}\nexpires: {}",
        hub.info.address,
        hub.info.chain_id,
        address,
        hex::encode(nonce),
        expires_at
    )
}

async fn challenge(State(app): State<AppState>, body: Body) -> Result<Json<ChallengeResponse>, ApiError> {
    let req: ChallengeRequest = parse(&body)?;
    let nonce: [u8; 16] = rand::random();
    let expires_at = now_secs() + app.hub.auth.challenge_ttl;
    let mut conn = app.pool.acquire().await?;
    db::insert_challenge(&mut conn, &nonce, req.address, expires_at).await?;
    Ok(Json(ChallengeResponse { challenge: challenge_text(&app.hub, req.address, &nonce, expires_at), expires_at }))
}

async fn token(State(app): State<AppState>, body: Body) -> Result<Json<TokenResponse>, ApiError> {
    let req: TokenRequest = parse(&body)?;
    let bad = || ApiError::Unauthorized("challenge unknown, expired, or not signed by this address".into());
    let nonce = req
        .challenge
        .lines()
        .find_map(|l| l.strip_prefix("nonce: 0x"))
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| ApiError::bad_request("malformed_challenge", "the challenge text was altered"))?;
    let sig = alloy::primitives::Signature::from_raw(&req.signature)
        .map_err(|_| ApiError::bad_request("malformed_signature", "signature is not 65 bytes of r||s||v"))?;
    let signer = sig.recover_address_from_msg(req.challenge.as_bytes()).map_err(|_| bad())?;

    let mut tx = app.pool.begin().await?;
    // The challenge is consumed even when the login fails: each is good for one try.
    let (issued_to, expires) = db::take_challenge(&mut tx, &nonce).await?.ok_or_else(bad)?;
    let issued = challenge_text(&app.hub, issued_to, &nonce, expires);
    if issued_to != req.address || signer != req.address || req.challenge != issued {
        tx.commit().await?;
        return Err(bad());
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    db::ensure_client(&mut tx, req.address).await?;
    db::insert_session(&mut tx, keccak256(token.as_bytes()), req.address, app.hub.auth.session_ttl).await?;
    tx.commit().await?;
    Ok(Json(TokenResponse { token, expires_at: now_secs() + app.hub.auth.session_ttl }))
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
    let plan = app.hub.rules.check_open(client, &req.params, &req.state, &req.signature)?;
    db::ensure_client(&mut tx, client).await?;
    if !db::insert_channel(&mut tx, plan.id, client, plan.hub_index, &req.params, &plan.requirements).await? {
        return Err(ApiError::conflict("channel_exists", format!("channel {} already exists", plan.id)));
    }
    let hub_sig = app.hub.sign(&plan.digest)?;
    let sigs = ordered(plan.hub_index, req.signature, hub_sig.clone());
    db::insert_state(&mut tx, &req.state, plan.digest, [&sigs[0], &sigs[1]]).await?;
    for r in plan.hub_deposits(app.hub.info.address) {
        let action = Action::Deposit { channel: plan.id, asset: r.asset, amount: r.amount };
        db::enqueue(&mut tx, &action.dedup_key(), action.kind(), Some(plan.id), &action).await?;
    }
    let response = SignatureResponse { channel_id: plan.id, version: 0, signature: hub_sig };
    let answer = idem.answer(&mut tx, StatusCode::CREATED, &response).await?;
    tx.commit().await?;
    Ok(answer)
}

/// Shared path of updates and closes: lock, check, store, sign.
async fn advance(
    app: &AppState,
    client: Address,
    id: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    close: bool,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let path = format!("/v1/channels/{id}/{}", if close { "close" } else { "updates" });
    let idem = Idempotent::new(client, headers, method, &path, body)?;
    let req: StateRequest = parse(body)?;
    let mut tx = app.pool.begin().await?;
    if let Some(answer) = idem.replay(&mut tx).await? {
        return Ok(answer);
    }
    let channel = db::lock_channel(&mut tx, id, client)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no channel {id} of yours")))?;
    let allowed = if close {
        matches!(channel.status, ChannelStatus::Open | ChannelStatus::Funding)
    } else {
        channel.status == ChannelStatus::Open
    };
    if !allowed {
        return Err(ApiError::conflict("channel_not_open", format!("channel {id} is {:?}", channel.status)));
    }
    let current = db::state(&mut tx, id, channel.latest_version).await?.state;
    let digest = if close {
        app.hub.rules.check_close(client, &current, &req.state, &req.signature)?
    } else {
        app.hub.rules.check_update(channel.hub_index, client, &current, &req.state, &req.signature)?
    };
    let hub_sig = app.hub.sign(&digest)?;
    let sigs = ordered(channel.hub_index, req.signature, hub_sig.clone());
    db::insert_state(&mut tx, &req.state, digest, [&sigs[0], &sigs[1]]).await?;
    let status = if close { ChannelStatus::Closing } else { channel.status };
    db::set_latest(&mut tx, id, req.state.version, status).await?;
    if close {
        let conclude = Action::ConcludeFinal { channel: id, version: req.state.version };
        db::enqueue(&mut tx, &conclude.dedup_key(), conclude.kind(), Some(id), &conclude).await?;
        for (asset, balances) in req.state.outcome.assets.iter().zip(&req.state.outcome.balances) {
            if !balances[channel.hub_index].is_zero() {
                let withdraw = Action::Withdraw { channel: id, asset: *asset };
                db::enqueue(&mut tx, &withdraw.dedup_key(), withdraw.kind(), Some(id), &withdraw).await?;
            }
        }
    }
    let response = SignatureResponse { channel_id: id, version: req.state.version, signature: hub_sig };
    let answer = idem.answer(&mut tx, StatusCode::OK, &response).await?;
    tx.commit().await?;
    Ok(answer)
}

async fn update_channel(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    advance(&app, client, &id, &method, &headers, &body, false).await
}

async fn close_channel(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    advance(&app, client, &id, &method, &headers, &body, true).await
}

/// Paging of lists.
#[derive(serde::Deserialize)]
struct Page {
    limit: Option<i64>,
}

impl Page {
    fn limit(&self) -> i64 {
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
