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
use crate::core::{Parent, ParentUpdate, Rules};
use crate::db;
use crate::error::ApiError;
use ingrid_protocol::Role;
use ingrid_protocol::machine::{self, ChannelEvent, Effect, VirtualEvent, VirtualInput};

pub mod admin;
mod auth;
pub mod changes;
mod channels;
pub mod limits;
mod meta;
#[cfg(test)]
pub(crate) mod tests;
mod virtual_close;
mod virtuals;

use auth::*;
use channels::*;
use meta::*;
use virtual_close::*;
use virtuals::*;

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
    /// Wakes the long polls of a virtual channel after a committed change of its status.
    pub virtual_changed: changes::Changes,
    /// The Prometheus metrics (`GET /metrics`).
    pub metrics: crate::metrics::Metrics,
    /// New virtual channels refused (the operator's pause; refreshed from the database).
    pub paused: std::sync::atomic::AtomicBool,
    /// The chain node, for readiness.
    pub provider: alloy::providers::DynProvider,
    /// The configuration file, read again by a reload.
    pub config_source: Option<std::path::PathBuf>,
    /// Rates and caps of requests (see [`limits`]).
    pub limits: limits::Limits,
    /// The last probe of the database and the chain (`GET /readyz` answers it).
    pub readiness: std::sync::RwLock<Readiness>,
    /// How often readiness and metrics are refreshed.
    pub refresh: Duration,
    /// Live sessions, cached (see [`crate::sessions`]).
    pub sessions: Arc<crate::sessions::Sessions>,
}

impl AppState {
    /// The client of the live session of bearer `token`: from the cache, or read from the
    /// database and cached.
    pub(crate) async fn session(&self, token: &str) -> sqlx::Result<Option<Address>> {
        let hash = keccak256(token.as_bytes());
        let now = now_secs();
        if let Some(client) = self.hub.sessions.get(&hash, now) {
            return Ok(Some(client));
        }
        let generation = self.hub.sessions.generation();
        let found = db::session_client(&self.pool, hash).await?;
        if let Some((client, expires_at)) = found {
            self.hub.sessions.put(hash, client, expires_at, now, generation);
        }
        Ok(found.map(|(client, _)| client))
    }
}

/// The last probe of the database and the chain, made every `metrics_refresh_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    /// The database answered.
    pub database: bool,
    /// The chain node answered.
    pub chain: bool,
    /// The chain head it reported.
    pub block: u64,
    /// Unix time of the probe (0: none yet).
    pub at: u64,
}

/// The listener a request came in on: what it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The public API (with the operator API and `/metrics` unless they listen apart).
    Public {
        /// The operator API listens on its own address.
        operator_apart: bool,
        /// `/metrics` listens on its own address.
        metrics_apart: bool,
    },
    /// The operator API only.
    Operator,
    /// `/metrics`, `/readyz` and `/healthz` only.
    Metrics,
}

impl Listener {
    /// Whether requests of `path` are served here.
    pub fn serves(self, path: &str) -> bool {
        let admin = path.starts_with("/v1/admin/");
        let probe = matches!(path, "/healthz" | "/readyz");
        match self {
            Self::Public { operator_apart, metrics_apart } => {
                !(operator_apart && admin || metrics_apart && path == "/metrics")
            }
            Self::Operator => admin || probe,
            Self::Metrics => path == "/metrics" || probe,
        }
    }
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
/// [`admin::routes`], never on the router itself: the document would miss it.
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
        .merge(admin::routes())
}

/// The router of `listener`: [`router`], answering 404 for the routes served on another
/// listener. Limits against abuse apply on the public listener only.
pub fn router_for(state: AppState, listener: Listener) -> Router {
    router(state)
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                if listener.serves(request.uri().path()) {
                    next.run(request).await
                } else {
                    ApiError::NotFound("not served on this address".into()).into_response()
                }
            },
        ))
        .layer(axum::Extension(listener))
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
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::limit))
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
    let mut document = routes().into_openapi();
    crate::openapi::add_every_route_answers(&mut document);
    document
}

/// [`document`] as pretty JSON with a trailing newline: what `GET /openapi.json` answers and
/// `hub/openapi.json` holds.
pub fn document_json() -> String {
    static JSON: LazyLock<String> = LazyLock::new(|| crate::openapi::to_json(&document()));
    JSON.clone()
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

// ------------------------------------------------------------------ extraction

/// Parses a JSON body. A number with a zero fraction (`1.0`, `1e3`) is taken as the integer
/// it is, as JSON Schema's `integer` allows (a client generated from the document may send
/// one); any other fraction is refused where an integer is expected.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let malformed = |e: serde_json::Error| ApiError::bad_request("malformed_json", format!("request body: {e}"));
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(malformed)?;
    integral_numbers_as_integers(&mut value);
    serde_json::from_value(value).map_err(malformed)
}

fn integral_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && (0.0..=9_007_199_254_740_992.0).contains(&f)
            {
                *n = serde_json::Number::from(f as u64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
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
        // The limits layer looked the session up already.
        let client = match parts.extensions.get::<limits::Session>() {
            Some(session) => session.0,
            None => app.session(token).await?,
        };
        Ok(Self(client.ok_or_else(|| ApiError::Unauthorized("unknown or expired token".into()))?))
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

/// Unix time now, seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Countersigns `update` (signed by the client, digest checked by the caller) and stores it
/// with both signatures in `tx`, moving the channel to its version and `status` with the
/// state's books. `openings` holds the opening allocations of virtual channels the caller
/// has at hand; those of the state's other locks are read. The signature is returned to
/// the caller, who hands it out only after committing `tx`.
#[allow(clippy::too_many_arguments)]
async fn countersign(
    hub: &Hub,
    tx: &mut PgConnection,
    channel: B256,
    hub_index: Role,
    update: &StateRequest,
    digest: B256,
    status: ChannelStatus,
    known: &[(B256, &ingrid_client_sdk::Allocation)],
) -> Result<Bytes, ApiError> {
    let outcome = &update.state.outcome;
    let missing: Vec<B256> =
        crate::core::ChannelBooks::lock_ids(outcome).filter(|id| !known.iter().any(|(k, _)| k == id)).collect();
    let mut openings = db::openings(tx, &missing).await?;
    openings.extend(known.iter().map(|(id, opening)| (*id, (*opening).clone())));
    let books = crate::core::ChannelBooks::of(outcome, hub_index, &openings).map_err(|id| {
        ApiError::Internal(anyhow::anyhow!("channel {channel} would lock {id}, which is no stored virtual channel"))
    })?;
    let hub_sig = hub.sign(&digest)?;
    let sigs = hub_index.pair(hub_sig.clone(), update.signature.clone());
    db::insert_state(tx, &update.state, digest, [&sigs[0], &sigs[1]]).await?;
    db::set_latest(tx, channel, update.state.version, status, &books).await?;
    Ok(hub_sig)
}

/// Paging of lists: at most `limit` rows, after `cursor` (the `next` of the page before).
#[derive(serde::Deserialize)]
pub(crate) struct Page {
    limit: Option<i64>,
    cursor: Option<String>,
}

impl Page {
    pub(crate) fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }

    /// Where a page of a list ordered by row id starts: below the cursor's id, or at the
    /// newest row.
    pub(crate) fn before_id(&self) -> Result<Option<i64>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>().map_err(|_| {
                    ApiError::bad_request("malformed_cursor", "cursor is not the `next` of an earlier page")
                })
            })
            .transpose()
    }

    /// Where the page starts: after the cursor, or at the newest row.
    pub(crate) fn after(&self) -> Result<Option<db::Cursor>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                db::Cursor::parse(c).ok_or_else(|| {
                    ApiError::bad_request("malformed_cursor", "cursor is not the `next` of an earlier page")
                })
            })
            .transpose()
    }
}
