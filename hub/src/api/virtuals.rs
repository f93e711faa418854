//! Virtual channels: quote, propose, accept and reject.

use super::*;

// ------------------------------------------------------------------ virtual channels

/// The caps on the virtual channels of a proposal's or an acceptance's participants
/// (`participants[asker]` asks): the channels each one holds `open` or `closing` count against
/// `channels.max_virtual_per_client`, a proposer's waiting proposals against
/// `limits.proposals_per_proposer`. A proposal never counts against its peer, so nobody can
/// fill another client's quota by proposing to it. At a proposal only the proposer is
/// checked; at an acceptance both.
pub(super) async fn check_counts(
    app: &AppState,
    rules: &Rules,
    tx: &mut PgConnection,
    participants: [Address; 2],
    asker: Role,
    now: u64,
) -> Result<(), ApiError> {
    let proposing = asker == Role::First;
    let asked = if proposing { &participants[..1] } else { &participants[..] };
    let counts = db::virtual_counts(tx, asked, now).await?;
    if proposing {
        let max = app.hub.limits.config().proposals_per_proposer;
        let proposed = counts[0].1;
        if proposed >= u64::from(max) {
            return Err(ApiError::conflict(
                "too_many_proposals",
                format!(
                    "you have {proposed} proposals waiting for their peers, the limit is {max}; they stop counting \
                     when accepted, rejected or expired"
                ),
            ));
        }
    }
    let Some(max) = rules.channels.max_virtual_per_client else { return Ok(()) };
    for ((role, who), (held, _)) in [(Role::First, "proposer"), (Role::Second, "acceptor")].into_iter().zip(counts) {
        crate::policy::check_open_count(who, participants[role.index()], held, Some(max), role == asker)?;
    }
    Ok(())
}

/// The books the policy reads, per asset of `assets`: the hub's locked and free coins in
/// total and the coins it locked for each of `clients` ([proposer, acceptor]). Read only when
/// a limit needs them (they scan the open channels).
pub(super) async fn policy_books(
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
pub(super) async fn quote_virtual(
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
    let fees = rules.check_virtual_policy(&opening, request.valid_until - now, &books, Role::First)?;
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
pub(super) async fn parent_snapshot(
    tx: &mut PgConnection,
    row: &db::ChannelRow,
) -> Result<(ingrid_client_sdk::State, bool), ApiError> {
    let latest = db::state(tx, row.id, row.latest_version).await?.state;
    let in_dispute = db::in_dispute(tx, row.id).await?;
    Ok((latest, in_dispute))
}

/// The longest the hub waits for the chain's holdings of an acceptance's parents.
const CHAIN_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Before the hub locks coins in `parents` (open ones): the chain still holds every opening
/// deposit the hub counted for them. The watcher undoes a deposit that a reorganisation took
/// away, but only at its next poll; this closes that window. Parents whose deposits are all
/// at or below the finalized block cost no call (the hub never undoes those). The refusal names no channel and
/// no amount: one of the parents is the other party's.
pub(super) async fn check_funding_on_chain(
    app: &AppState,
    tx: &mut PgConnection,
    parents: &[B256],
) -> Result<(), ApiError> {
    let deposits = db::opening_deposits_to_check(tx, parents).await?;
    if deposits.is_empty() {
        return Ok(());
    }
    let provider = &app.hub.provider;
    let reads = deposits.iter().map(|d| async move {
        let holder = ingrid_client_sdk::bindings::eth_holder::EthAssetHolder::new(d.asset, provider);
        holder.holdings(ingrid_client_sdk::state::funding_id(d.channel, d.participant)).call().await
    });
    // The parents' rows are locked meanwhile: a node that does not answer fails the request.
    let held = tokio::time::timeout(CHAIN_READ_TIMEOUT, futures::future::try_join_all(reads))
        .await
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("the chain node did not answer the holdings read in time")))?
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reading the parents' holdings")))?;
    if let Some((d, held)) = deposits.iter().zip(held).find(|(d, held)| *held < d.required) {
        tracing::warn!(
            channel = %d.channel, asset = %d.asset, participant = %d.participant, %held, required = %d.required,
            "the chain no longer holds a parent's opening deposit (a reorganisation the watcher has not undone yet)"
        );
        return Err(ApiError::conflict(
            "parent_not_funded",
            "the chain no longer holds all of a parent's opening deposits (a chain reorganisation); nothing was \
             locked; try again once the deposits are on chain again",
        ));
    }
    Ok(())
}

/// The parent of V's participant `owner`, from its locked row and latest state.
pub(super) fn parent<'a>(
    row: &'a db::ChannelRow,
    owner: Role,
    latest: &'a ingrid_client_sdk::State,
    in_dispute: bool,
) -> Parent<'a> {
    Parent {
        params: &row.params,
        owner,
        hub: row.hub_index,
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
            participant 0), `invalid_params` (zero or equal participants, not exactly virtual, the hub \
            as a participant, challenge duration out of the hub's bounds), `app_not_allowed` (an app the \
            operator does not allow: `/v1/hub` lists the allowed ones), `challenge_too_long` (longer than \
            the parent's). Opening state: `channel_id_mismatch`, `wrong_version` (not version 0), \
            `app_data_not_empty` (app data without an app), `invalid_app_opening` (not the app's start), \
            `locks_changed` (an opening state holds no locks), `duplicate_asset`, \
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
pub(super) async fn propose_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    refuse_if_paused(&app)?;
    let idem = Idempotent::new(client, &headers, &method, "/v1/virtual-channels", &body)?;
    let proposal: VirtualProposal = parse(&body)?;
    app.hub.rules().check_signatures_first(client, &proposal.state, &proposal.signature, &proposal.parent)?;
    let mut tx = app.pool.begin().await?;
    if let Some(answer) = idem.replay(&mut tx).await? {
        return Ok(answer);
    }
    // Proposals from several parents at once count one after the other against the cap.
    db::lock_client(&mut tx, client).await?;
    let parent_id = proposal.parent.state.channelId;
    let row = db::lock_channel(&mut tx, parent_id, client)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no channel {parent_id} of yours")))?;
    let (latest, in_dispute) = parent_snapshot(&mut tx, &row).await?;
    let peer = proposal.params.participants[1];
    let rules = app.hub.rules();
    let now = now_secs();
    check_counts(&app, &rules, &mut tx, [client, peer], Role::First, now).await?;
    let books = policy_books(&rules, &mut tx, &latest.outcome.assets, [client, peer]).await?;
    let fees =
        rules.check_virtual_proposal(client, &proposal, parent(&row, Role::First, &latest, in_dispute), now, &books)?;
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
pub(super) struct VirtualRequest<T>(std::marker::PhantomData<T>);

impl<T: DeserializeOwned> VirtualRequest<T> {
    /// `Ok(Ok(..))` to go on; `Ok(Err(answer))` when the request is a retry of one answered.
    #[allow(clippy::type_complexity)]
    pub(super) async fn begin(
        app: &AppState,
        client: Address,
        id: &str,
        action: &str,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Result<(Idempotent, T, sqlx::Transaction<'static, sqlx::Postgres>, db::VirtualRow), Response>, ApiError>
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
            .ok_or_else(|| ApiError::NotFound(format!("no virtual channel {id} of yours")))?;
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
            rejected or closed already); `proposal_expired`: its `validUntil` has passed; `parent_not_open`: a parent is not `open`; `parent_not_funded`: \
            the chain no longer holds all of a parent's opening deposits (a reorganisation); `parent_in_dispute`: a \
            parent is registered on chain and not concluded; `wrong_version`: the parent update is not its \
            parent's latest version + 1, or the proposer's parent has moved on since the proposal; \
            `insufficient_hub_balance`: the hub's balance in the peer's parent is below the proposer's \
            deposit, which the hub locks; `virtual_channels_paused`: the operator paused new virtual \
            channels; the operator's limits, checked again at accept: `client_limit_exceeded`, \
            `total_limit_exceeded`, `fraction_limit_exceeded`, `too_many_virtual_channels`.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 422, description = "Refused: `wrong_parent` (the parent update is for the proposer's \
            parent), `assets_mismatch` (the parent does not hold the \
            virtual channel's assets in their order), `challenge_too_long` (the virtual channel's challenge \
            duration is longer than the parent's), `insufficient_balance` (the client's balance in the parent \
            is below its deposit), `parent_update_mismatch` (not exactly the parent's latest state with this \
            lock applied), `bad_signature` (not the client's signature on the opening state or on the parent \
            update), `virtual_amount_below_minimum`, `virtual_amount_above_maximum` (the operator's limits, \
            checked again at accept), `idempotency_key_reused`.", body = ErrorBody),
        (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
            body = ErrorBody),
    ))]
pub(super) async fn accept_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    refuse_if_paused(&app)?;
    let (idem, accept, mut tx, row) =
        match VirtualRequest::<VirtualAccept>::begin(&app, client, &id, "accept", &method, &headers, &body).await? {
            Ok(started) => started,
            Err(replayed) => return Ok(replayed),
        };
    let v = &row.view;
    let id = v.id;
    if v.params.participants[Role::Second.index()] != client {
        return Err(ApiError::NotFound(format!("no proposal {id} to you")));
    }
    let t = row.book().apply(&VirtualInput::Accept { by: Role::Second }, now_secs())?;
    // Signatures before the parents' locks and the policy's global one: a badly signed
    // acceptance holds nothing up.
    app.hub.rules().check_signatures_first(client, &v.initial, &accept.signature, &accept.parent)?;
    let (x_id, y_id) = (row.parents[Role::First.index()].unwrap_or_default(), accept.parent.state.channelId);
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
    // Parents that are not open are refused below (`parent_not_open`), without asking the chain.
    if x_row.status == ChannelStatus::Open && y_row.status == ChannelStatus::Open {
        check_funding_on_chain(&app, &mut tx, &[x_id, y_id]).await?;
    }
    let rules = app.hub.rules();
    let updates = [
        ParentUpdate {
            parent: parent(x_row, Role::First, &x_latest, x_dispute),
            update: &v.proposed_parent,
            fees: &v.fees,
        },
        ParentUpdate { parent: parent(y_row, Role::Second, &y_latest, y_dispute), update: &accept.parent, fees: &[] },
    ];
    let digests = rules.check_virtual_accept(client, &v.params, &v.initial, &accept.signature, &updates)?;
    // The hub's coins get locked now: the limits hold against the books of this moment. The
    // policy's lock is taken last, after every check that does not read the books, so that
    // what waits behind it is short.
    let participants = [v.params.participants[0], client];
    if rules.limits_locked_coins() || rules.channels.max_virtual_per_client.is_some() {
        db::lock_policy(&mut tx).await?;
    }
    check_counts(&app, &rules, &mut tx, participants, Role::Second, now_secs()).await?;
    let books = policy_books(&rules, &mut tx, &v.initial.outcome.assets, participants).await?;
    rules.check_virtual_policy(&v.initial, v.valid_until.saturating_sub(now_secs()), &books, Role::Second)?;
    let parents = [(x_row, &v.proposed_parent), (y_row, &accept.parent)];
    let mut signatures = Vec::with_capacity(parents.len());
    for effect in &t.effects {
        match *effect {
            Effect::CountersignParent(p) => {
                let (row, update) = parents[p];
                let digest = digests[p];
                let known = [(id, &v.initial.outcome)];
                signatures.push(
                    countersign(&app.hub, &mut tx, row.id, row.hub_index, update, digest, row.status, &known).await?,
                );
            }
            Effect::StoreAcceptance(by) => db::open_virtual(&mut tx, id, by, y_id, &accept.signature).await?,
            other => return Err(ApiError::Internal(anyhow::anyhow!("an acceptance does not {other:?}"))),
        }
    }
    let y_sig = signatures.pop().unwrap_or_default();
    let response = SignatureResponse { channel_id: y_id, version: accept.parent.state.version, signature: y_sig };
    let answer = idem.answer(&mut tx, StatusCode::OK, &response).await?;
    tx.commit().await?;
    app.hub.metrics.virtual_opened();
    app.hub.virtual_changed.changed(id);
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
pub(super) async fn reject_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<Json<VirtualView>, ApiError> {
    let id = parse_id(&id)?;
    let mut tx = app.pool.begin().await?;
    let row = db::lock_virtual(&mut tx, id, client, now_secs())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no virtual channel {id} of yours")))?;
    // The peer declines, or the proposer withdraws its proposal.
    let t = row.book().apply(&VirtualInput::Reject, now_secs())?;
    for effect in &t.effects {
        match *effect {
            Effect::StoreRejection => db::end_proposal(&mut tx, id, VirtualEvent::Reject).await?,
            other => return Err(ApiError::Internal(anyhow::anyhow!("a rejection does not {other:?}"))),
        }
    }
    let view = db::virtual_views(&mut *tx, Some(id), client, now_secs(), 1)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("row missing")))?;
    tx.commit().await?;
    app.hub.virtual_changed.changed(id);
    Ok(Json(view))
}
