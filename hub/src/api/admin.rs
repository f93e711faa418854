//! The operator's API (`/v1/admin/...`, bearer `operator_token`) and the `ingrid admin`
//! command that calls it: clients, basic and virtual channels with balances, the hub's
//! collateral per asset, the outbox and the disputes; pause and resume new virtual channels
//! (drain before maintenance); close a client's basic channel on chain.

use std::sync::atomic::Ordering;

use alloy::primitives::{Address, B256, U256};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ingrid_client_sdk::api::{ChannelList, ChannelStatus, ErrorBody, VirtualList};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ingrid_client_sdk::openapi::{HexAddress, HexB256, HexU256};

use super::{AppState, Operator, Page, now_secs, parse_id};
use crate::chain::Action;
use crate::db;
use crate::error::ApiError;

/// A client of the hub.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    /// Address.
    #[schema(value_type = HexAddress)]
    pub address: Address,
    /// Basic channels, all statuses.
    pub channels: i64,
    /// Basic channels open now.
    pub open_channels: i64,
    /// First login, Unix seconds.
    pub created_at: i64,
}

/// `GET /v1/admin/clients`: a page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientList {
    /// Clients, newest first.
    pub clients: Vec<ClientView>,
    /// When more follow: pass it as `cursor` to get the next page (opaque). Absent on the
    /// last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The hub's collateral in one asset, smallest unit.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetCollateral {
    /// The asset holder.
    #[schema(value_type = HexAddress)]
    pub asset: Address,
    /// Its symbol, if configured.
    pub symbol: Option<String>,
    /// The hub's own coins locked in virtual channels.
    #[schema(value_type = HexU256)]
    pub hub_locked: U256,
    /// The hub's balance in open basic channels.
    #[schema(value_type = HexU256)]
    pub hub_free: U256,
    /// All coins locked in virtual channels (both sides, in both parents).
    #[schema(value_type = HexU256)]
    pub locked_total: U256,
    /// `hubLocked / (hubLocked + hubFree)`, 0 when both are 0.
    pub utilisation: f64,
}

/// `GET /v1/admin/collateral`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CollateralList {
    /// One entry per asset.
    pub assets: Vec<AssetCollateral>,
}

/// A registration on chain of one of the hub's channels.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeView {
    /// The channel (basic, or virtual).
    #[schema(value_type = HexB256)]
    pub channel_id: B256,
    /// `basic` or `virtual`.
    pub kind: String,
    /// The adjudicator's record (a virtual channel's `subChannelKey`, a basic channel's id).
    #[schema(value_type = HexB256)]
    pub record_key: B256,
    /// Whether it is the record the hub's channels read (false: a virtual channel's state
    /// with other totals, registered elsewhere).
    pub ours: bool,
    /// The latest version registered on chain (uint64).
    pub registered_version: u64,
    /// The newest version the hub held when it saw the registration.
    pub hub_version: u64,
    /// Until when the record can be refuted (Unix seconds, chain time).
    pub timeout: u64,
    /// `open`, `refuted` or `concluded`.
    pub result: String,
    /// The block of the first registration.
    pub first_block: i64,
}

/// `GET /v1/admin/disputes`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DisputeList {
    /// Disputes, newest first.
    pub disputes: Vec<DisputeView>,
}

/// `GET /v1/admin/status`, and the answer to pause and resume.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// New virtual channels are refused (`virtual_channels_paused`).
    pub virtual_channels_paused: bool,
    /// This process runs the watcher, the outbox and the sweep.
    pub leader: bool,
}

/// `POST /v1/admin/channels/{id}/close`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForceClose {
    /// The channel.
    #[schema(value_type = HexB256)]
    pub channel_id: B256,
    /// What happens next.
    pub message: String,
}

/// A page of the outbox.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutboxList {
    /// Entries, newest first.
    pub entries: Vec<OutboxEntry>,
    /// When more follow: pass it as `cursor` to get the next page (opaque). Absent on the
    /// last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A transaction the hub owes the chain, and how sending it went.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// Entry id (increasing).
    pub id: i64,
    /// The action's kind (as in `action.kind`).
    pub kind: String,
    /// The action.
    // As stored: the JSON of a `chain::Action`.
    #[schema(value_type = Action)]
    pub action: serde_json::Value,
    /// Sending status.
    #[schema(value_type = OutboxStatus)]
    pub status: String,
    /// Tries so far.
    pub attempts: i32,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

impl From<db::OutboxView> for OutboxEntry {
    fn from(v: db::OutboxView) -> Self {
        Self {
            id: v.id,
            kind: v.kind,
            action: v.action,
            status: v.status,
            attempts: v.attempts,
            last_error: v.last_error,
        }
    }
}

use ingrid_protocol::machine::OutboxStatus;

/// The operator's routes, merged into [`crate::api::routes`].
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(channels))
        .routes(routes!(outbox))
        .routes(routes!(clients))
        .routes(routes!(virtual_channels))
        .routes(routes!(collateral))
        .routes(routes!(disputes))
        .routes(routes!(status))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(reload))
        .routes(routes!(close_channel))
}

/// List all channels
///
/// Every client's basic channels, newest first.
#[utoipa::path(get, path = "/v1/admin/channels", tag = "admin", operation_id = "admin_channels",
    security(("operator" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "Most channels to return; default 100, clamped to 1..=1000.",
            example = 100),
        ("cursor" = Option<String>, Query, description = "The `next` of the page before: this page starts after \
            it. Absent: the newest."),
    ),
    responses(
        (status = 200, description = "A page of the channels, newest first, with `next` when more follow.",
            body = ChannelList),
        (status = 400, description = "`bad_request`: `limit` is not an integer; `malformed_cursor`: `cursor` is \
            not the `next` of a page.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(crate) async fn channels(
    State(app): State<AppState>,
    _: Operator,
    Query(page): Query<Page>,
) -> Result<Json<ChannelList>, ApiError> {
    let after = page.after()?;
    let mut conn = app.pool.acquire().await?;
    let page = db::channel_page(&mut conn, None, after, page.limit()).await?;
    Ok(Json(ChannelList { channels: page.rows, next: page.next.map(|c| c.encode()) }))
}

/// List the outbox
///
/// The hub's own chain transactions (deposits, conclusions, withdrawals), newest first.
#[utoipa::path(get, path = "/v1/admin/outbox", tag = "admin", operation_id = "admin_outbox",
    security(("operator" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "Most entries to return; default 100, clamped to 1..=1000.",
            example = 100),
        ("cursor" = Option<String>, Query, description = "The `next` of the page before: this page starts after \
            it. Absent: the newest."),
    ),
    responses(
        (status = 200, description = "A page of the entries, newest first, with `next` when more follow.",
            body = OutboxList),
        (status = 400, description = "`bad_request`: `limit` is not an integer; `malformed_cursor`: `cursor` is \
            not the `next` of a page.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(crate) async fn outbox(
    State(app): State<AppState>,
    _: Operator,
    Query(page): Query<Page>,
) -> Result<Json<OutboxList>, ApiError> {
    let list = db::outbox_views(&app.pool, page.before_id()?, page.limit()).await?;
    Ok(Json(OutboxList {
        entries: list.entries.into_iter().map(OutboxEntry::from).collect(),
        next: list.next.map(|id| id.to_string()),
    }))
}

/// List clients
///
/// Every client with its number of basic channels (all, and open), newest first.
#[utoipa::path(get, path = "/v1/admin/clients", tag = "admin", operation_id = "admin_clients",
    security(("operator" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "Most clients to return; default 100, clamped to 1..=1000.",
            example = 100),
        ("cursor" = Option<String>, Query, description = "The `next` of the page before: this page starts after \
            it. Absent: the newest."),
    ),
    responses(
        (status = 200, description = "A page of the clients, newest first, with `next` when more follow.",
            body = ClientList),
        (status = 400, description = "`bad_request`: `limit` is not an integer; `malformed_cursor`: `cursor` is \
            not the `next` of a page.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(crate) async fn clients(
    State(app): State<AppState>,
    _: Operator,
    Query(page): Query<Page>,
) -> Result<Json<ClientList>, ApiError> {
    let page = db::client_page(&app.pool, page.after()?, page.limit()).await?;
    let next = page.next.map(|c| c.encode());
    let clients = page
        .rows
        .into_iter()
        .map(|c| ClientView {
            address: c.address,
            channels: c.channels,
            open_channels: c.open_channels,
            created_at: c.created_at,
        })
        .collect();
    Ok(Json(ClientList { clients, next }))
}

/// List all virtual channels
///
/// Every virtual channel, newest first.
#[utoipa::path(get, path = "/v1/admin/virtual-channels", tag = "admin", operation_id = "admin_virtual_channels",
    security(("operator" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "Most virtual channels to return; default 100, clamped to 1..=1000.",
            example = 100),
        ("cursor" = Option<String>, Query, description = "The `next` of the page before: this page starts after \
            it. Absent: the newest."),
    ),
    responses(
        (status = 200, description = "A page of the virtual channels, newest first, with `next` when more \
            follow.", body = VirtualList),
        (status = 400, description = "`bad_request`: `limit` is not an integer; `malformed_cursor`: `cursor` is \
            not the `next` of a page.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(crate) async fn virtual_channels(
    State(app): State<AppState>,
    _: Operator,
    Query(page): Query<Page>,
) -> Result<Json<VirtualList>, ApiError> {
    let page = db::virtual_page(&app.pool, None, None, page.after()?, now_secs(), page.limit()).await?;
    Ok(Json(VirtualList { channels: page.rows, next: page.next.map(|c| c.encode()) }))
}

/// The hub's collateral
///
/// Per asset: the hub's coins locked in virtual channels and free in open basic channels,
/// all coins locked, and the utilisation (the same figures as the metrics).
#[utoipa::path(get, path = "/v1/admin/collateral", tag = "admin", operation_id = "admin_collateral",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Collateral per asset.", body = CollateralList),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(crate) async fn collateral(State(app): State<AppState>, _: Operator) -> Result<Json<CollateralList>, ApiError> {
    let c = crate::metrics::collateral(&app.pool).await?;
    let mut assets: Vec<Address> = app.hub.rules().assets.iter().map(|a| a.holder).collect();
    assets.extend(c.hub_locked.keys().chain(c.hub_free.keys()).chain(c.locked_total.keys()));
    assets.sort();
    assets.dedup();
    let list = assets
        .into_iter()
        .map(|asset| {
            let get = |m: &std::collections::BTreeMap<Address, U256>| m.get(&asset).copied().unwrap_or_default();
            let (locked, free) = (get(&c.hub_locked), get(&c.hub_free));
            let total = f64::from(locked) + f64::from(free);
            AssetCollateral {
                asset,
                symbol: app.hub.rules().assets.iter().find(|a| a.holder == asset).map(|a| a.symbol.clone()),
                hub_locked: locked,
                hub_free: free,
                locked_total: get(&c.locked_total),
                utilisation: if total > 0.0 { f64::from(locked) / total } else { 0.0 },
            }
        })
        .collect();
    Ok(Json(CollateralList { assets: list }))
}

/// List disputes
///
/// Registrations on chain of the hub's basic channels and brokered virtual channels.
#[utoipa::path(get, path = "/v1/admin/disputes", tag = "admin", operation_id = "admin_disputes",
    security(("operator" = [])),
    params(("limit" = Option<i64>, Query,
        description = "Most disputes to return; default 100, clamped to 1..=1000.", example = 100)),
    responses(
        (status = 200, description = "The disputes, newest first.", body = DisputeList),
        (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(crate) async fn disputes(
    State(app): State<AppState>,
    _: Operator,
    Query(page): Query<Page>,
) -> Result<Json<DisputeList>, ApiError> {
    let disputes = db::dispute_rows(&app.pool, page.limit())
        .await?
        .into_iter()
        .map(|d| DisputeView {
            channel_id: d.channel_id,
            record_key: d.record_key,
            ours: d.ours,
            kind: d.kind,
            registered_version: d.registered_version,
            hub_version: d.hub_version,
            timeout: d.timeout,
            result: d.result,
            first_block: d.first_block,
        })
        .collect();
    Ok(Json(DisputeList { disputes }))
}

fn status_of(app: &AppState) -> StatusView {
    StatusView {
        virtual_channels_paused: app.hub.paused.load(Ordering::Relaxed),
        leader: app.hub.metrics.leading.load(Ordering::Relaxed),
    }
}

/// Operator status
///
/// Whether new virtual channels are paused, and whether the answering process leads.
#[utoipa::path(get, path = "/v1/admin/status", tag = "admin", operation_id = "admin_status",
    security(("operator" = [])),
    responses(
        (status = 200, description = "The status.", body = StatusView),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 500, description = "`internal`: never expected (no I/O).", body = ErrorBody),
    ))]
pub(crate) async fn status(State(app): State<AppState>, _: Operator) -> Json<StatusView> {
    Json(status_of(&app))
}

async fn set_paused(app: &AppState, paused: bool) -> Result<Json<StatusView>, ApiError> {
    db::set_virtual_paused(&app.pool, paused).await?;
    app.hub.paused.store(paused, Ordering::Relaxed);
    tracing::warn!(paused, "operator: new virtual channels {}", if paused { "paused" } else { "resumed" });
    Ok(Json(status_of(app)))
}

/// Pause new virtual channels
///
/// Proposals and accepts are refused with `409 virtual_channels_paused` by every hub process
/// (within a second); open and closing virtual channels and basic channels are served.
#[utoipa::path(post, path = "/v1/admin/pause", tag = "admin", operation_id = "admin_pause",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Paused.", body = StatusView),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(crate) async fn pause(State(app): State<AppState>, _: Operator) -> Result<Json<StatusView>, ApiError> {
    set_paused(&app, true).await
}

/// Resume new virtual channels
#[utoipa::path(post, path = "/v1/admin/resume", tag = "admin", operation_id = "admin_resume",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Resumed.", body = StatusView),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(crate) async fn resume(State(app): State<AppState>, _: Operator) -> Result<Json<StatusView>, ApiError> {
    set_paused(&app, false).await
}

/// Reload the policy
///
/// Reads the configuration file and `INGRID_*` again and takes its policy (collateral on
/// open, limits, fees, channel rules) for every new decision, without a restart; proposals
/// keep their fees and quotes stay valid until they expire. `SIGHUP` does the same. Each
/// process reloads on its own.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "admin", operation_id = "admin_reload",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Reloaded: `{\"reloaded\": true, \"virtualFees\": bool}`.", body = Object),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
        (status = 422, description = "`invalid_configuration`: the file does not load or validate, or changes \
            the assets; nothing changed.", body = ErrorBody),
        (status = 500, description = "`internal`: never expected.", body = ErrorBody),
    ))]
pub(crate) async fn reload(State(app): State<AppState>, _: Operator) -> Result<Json<serde_json::Value>, ApiError> {
    app.hub.reload().map_err(|e| ApiError::unprocessable("invalid_configuration", format!("{e:#}")))?;
    Ok(Json(
        serde_json::json!({ "reloaded": true, "virtualFees": app.hub.rules().assets.iter().any(|a| a.charges_fees()) }),
    ))
}

/// Close a client's basic channel on chain
///
/// The leader registers the channel with the hub's latest state (and the newest states of
/// its virtual channels), then concludes and withdraws after the challenge duration.
#[utoipa::path(post, path = "/v1/admin/channels/{id}/close", tag = "admin", operation_id = "admin_close_channel",
    security(("operator" = [])),
    params(("id" = HexB256, Path, description = "The basic channel id.")),
    responses(
        (status = 202, description = "Enqueued.", body = ForceClose),
        (status = 400, description = "`malformed_channel_id`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, or the operator API is disabled.",
            body = ErrorBody),
        (status = 409, description = "`channel_closed`: the channel is closed already.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(crate) async fn close_channel(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut tx = app.pool.begin().await?;
    let row = db::channel(&mut tx, id).await?.ok_or_else(|| ApiError::NotFound(format!("no channel {id}")))?;
    if row.status == ChannelStatus::Closed {
        return Err(ApiError::conflict("channel_closed", format!("channel {id} is closed")));
    }
    let action = Action::Register { channel: id, because: None };
    action.enqueue(&mut tx, 0).await?;
    tx.commit().await?;
    tracing::warn!(channel = %id, "operator: closing basic channel on chain");
    let answer = ForceClose {
        channel_id: id,
        message: "registering on chain with the latest state; concluded and withdrawn after the challenge duration"
            .into(),
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// `ingrid admin <command>`: calls the operator API of the hub at `url` and prints its JSON.
pub async fn run_cli(url: &str, token: &str, method: reqwest::Method, path: &str) -> anyhow::Result<String> {
    let response = ingrid_client_sdk::tls::http_client()
        .request(method, format!("{}{path}", url.trim_end_matches('/')))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    let text = serde_json::to_string_pretty(&body)?;
    anyhow::ensure!(status.is_success(), "{status}: {text}");
    Ok(text)
}
