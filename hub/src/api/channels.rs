//! Basic channels: open, update, top-up, close, list and read.

use super::*;

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
        (status = 409, description = "`channel_exists`: a channel with this id is already open; \
            `too_many_unfunded`: the client already has `channels.max_unfunded_per_client` channels waiting \
            for their funding.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "Refused. Params: `invalid_params` (zero or equal participants, not \
            exactly a ledger channel, an app, challenge duration out of the hub's bounds), \
            `hub_not_participant`, `client_not_participant` (the token's address is not the other \
            participant). State: `channel_id_mismatch`, `app_data_not_empty`, `locks_changed` (an opening \
            state holds no locks), `duplicate_asset`, `balance_shape`, `overflow`, `final_state`, \
            `no_assets`, `wrong_version` (not version 0). Terms: `unknown_asset`, `hub_deposit_above_maximum`, \
            `hub_deposit_below_minimum`, `hub_deposit_above_ratio`. \
            `bad_signature`: not the client's signature on the state. `idempotency_key_reused`.",
            body = ErrorBody),
        (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
            body = ErrorBody),
    ))]
pub(super) async fn open_channel(
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
    // Version 0: the row was just inserted at it, `funding`; this stores its books.
    let opening = StateRequest { state: req.state, signature: req.signature };
    let hub_sig =
        countersign(&app.hub, &mut tx, plan.id, plan.hub_index, &opening, plan.digest, ChannelStatus::Funding, &[])
            .await?;
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
pub(super) enum Advance {
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
pub(super) async fn advance(
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
    let hub_sig = countersign(&app.hub, &mut tx, id, channel.hub_index, &req, digest, status, &[]).await?;
    if kind == Advance::Close {
        let conclude = Action::ConcludeFinal { channel: id, version: req.state.version };
        conclude.enqueue(&mut tx, 0).await?;
        // Every asset, even where the hub's final balance is 0: the holder may credit the hub
        // more than its balance (a standby the client never took, coins given to it). A
        // withdrawal that finds nothing is done without a transaction.
        for asset in &req.state.outcome.assets {
            let withdraw = Action::Withdraw { channel: id, asset: *asset };
            withdraw.enqueue(&mut tx, 0).await?;
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
pub(super) async fn top_up_channel(
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
pub(super) async fn update_channel(
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
pub(super) async fn close_channel(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    advance(&app, client, &id, &method, &headers, &body, Advance::Close).await
}

/// List my channels
///
/// The authenticated client's basic channels, newest first.
#[utoipa::path(get, path = "/v1/channels", tag = "channels", operation_id = "list_channels",
    security(("client" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "Most channels to return; default 100, clamped to 1..=1000.",
            example = 100),
        ("cursor" = Option<String>, Query, description = "The `next` of the page before: this page starts after \
            it. Absent: the newest channels."),
    ),
    responses(
        (status = 200, description = "A page of the channels, newest first, with `next` when more follow.",
            body = ChannelList),
        (status = 400, description = "`bad_request`: `limit` is not an integer; `malformed_cursor`: `cursor` is \
            not the `next` of a page.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(super) async fn list_channels(
    State(app): State<AppState>,
    Client(client): Client,
    Query(page): Query<Page>,
) -> Result<Json<ChannelList>, ApiError> {
    let after = page.after()?;
    let mut conn = app.pool.acquire().await?;
    let page = db::channel_page(&mut conn, Some(client), after, page.limit()).await?;
    Ok(Json(ChannelList { channels: page.rows, next: page.next.map(|c| c.encode()) }))
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
pub(super) async fn get_channel(
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
