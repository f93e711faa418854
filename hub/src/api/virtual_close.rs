//! Virtual channels: close (settling one or both parents) and reads (list, and one with a
//! long poll).

use super::*;

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
        (status = 500, description = "`internal`: the database, signing or reading the virtual channel's \
            record on chain failed; the cause is logged.",
            body = ErrorBody),
    ))]
pub(super) async fn close_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (idem, close, mut tx, row) =
        match VirtualRequest::<VirtualClose>::begin(&app, client, &id, "close", &method, &headers, &body).await? {
            Ok(started) => started,
            Err(replayed) => return Ok(replayed),
        };
    let v = &row.view;
    let id = v.id;
    let book = row.book();
    book.admits(VirtualEvent::CloseRequest)?;
    // An open virtual channel has every parent: participant i's parent is parents[i].
    let parent_ids = row.locking_parents();
    if parent_ids.len() != row.parents.len() || parent_ids.len() != Role::ALL.len() {
        return Err(ApiError::Internal(anyhow::anyhow!("virtual channel {id} is open without all its parents")));
    }
    let rows = db::lock_channels(&mut tx, &parent_ids).await?;
    let mut parent_rows = Vec::with_capacity(rows.len());
    for r in rows {
        let r = r.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("parent of virtual channel {id} missing")))?;
        let snapshot = parent_snapshot(&mut tx, &r).await?;
        parent_rows.push((r, snapshot));
    }
    let snapshots: Vec<Option<Parent<'_>>> = parent_rows
        .iter()
        .zip(Role::ALL)
        .zip(&row.settled)
        .map(|(((r, (latest, dispute)), owner), settled)| (!settled).then(|| parent(r, owner, latest, *dispute)))
        .collect();
    let recorded = v.final_state.as_ref().map(|f| &f.state);
    let accepted = app.hub.rules().check_virtual_close(&v.params, &v.initial, recorded, &close, &snapshots)?;
    let last =
        v.final_state.clone().unwrap_or(FullySignedState { state: close.state.clone(), sigs: close.sigs.clone() });
    // What the chain has fixed is read from the chain (the record by its subChannelKey) when
    // the protocol asks for it; the books only tell whether a record may exist.
    let settles: Vec<usize> = accepted.iter().map(|(position, _)| *position).collect();
    let record_key = crate::disputes::virtual_record_key(&v.initial)?;
    let registered = db::dispute_of(&mut tx, record_key).await?.is_some();
    let on_chain = if book.close_needs_chain(&settles, registered) {
        let deployment = app.hub.rules().deployment;
        let record = ingrid_client_sdk::chain::dispute(&app.hub.provider, &deployment, record_key)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading the record of {id}: {e}")))?;
        let chain_now = ingrid_client_sdk::dispute::chain_time(&app.hub.provider)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading the chain's time: {e}")))?;
        Some(record.on_chain(chain_now, deployment.state_digest(&close.state)))
    } else {
        None
    };
    let t = book.apply(&VirtualInput::Close { settles, on_chain }, now_secs())?;
    let mut signatures = Vec::with_capacity(accepted.len());
    for effect in &t.effects {
        match *effect {
            Effect::CountersignParent(position) => {
                let index = accepted.iter().position(|(p, _)| *p == position).ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("no checked update of parent {position} of {id}"))
                })?;
                let (update, digest) = (&close.parents[index], accepted[index].1);
                let (parent_row, _) = &parent_rows[position];
                let (channel, hub, status) = (parent_row.id, parent_row.hub_index, parent_row.status);
                let known = [(v.id, &v.initial.outcome)];
                let hub_sig = countersign(&app.hub, &mut tx, channel, hub, update, digest, status, &known).await?;
                signatures.push(SignatureResponse {
                    channel_id: channel,
                    version: update.state.version,
                    signature: hub_sig,
                });
            }
            Effect::StoreClose => db::close_virtual(&mut tx, id, &last, &t.settled, t.status).await?,
            Effect::RegisterParent(position) => {
                Action::Register { channel: parent_ids[position], because: Some(id) }.enqueue(&mut tx, 0).await?
            }
            other => return Err(ApiError::Internal(anyhow::anyhow!("a close does not {other:?}"))),
        }
    }
    if t.pending {
        // Nothing settled: the client asks again once the final state is fixed on chain.
        idem.release(&mut tx).await?;
        tx.commit().await?;
        app.hub.virtual_changed.changed(id);
        let pending = VirtualCloseResponse { signatures: Vec::new() };
        return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
    }
    let answer = idem.answer(&mut tx, StatusCode::OK, &VirtualCloseResponse { signatures }).await?;
    tx.commit().await?;
    app.hub.metrics.virtual_closed(t.status == VirtualStatus::Closed);
    app.hub.virtual_changed.changed(id);
    Ok(answer)
}

/// List my virtual channels
///
/// The virtual channels the authenticated client proposed or was proposed, in every status,
/// newest first.
#[utoipa::path(get, path = "/v1/virtual-channels", tag = "virtual-channels", operation_id = "list_virtual_channels",
    security(("client" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "Most virtual channels to return; default 100, clamped to 1..=1000.",
            example = 100),
        ("cursor" = Option<String>, Query, description = "The `next` of the page before: this page starts after \
            it. Absent: the newest."),
        ("status" = Option<VirtualStatus>, Query, description = "Only the virtual channels of this status, e.g. \
            `proposed` for the proposals waiting for an answer."),
    ),
    responses(
        (status = 200, description = "A page of the virtual channels, newest first, with `next` when more follow.",
            body = VirtualList),
        (status = 400, description = "`bad_request`: `limit` is not an integer or `status` no status; \
            `malformed_cursor`: `cursor` is not the `next` of a page.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(super) async fn list_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Query(page): Query<Page>,
    Query(filter): Query<StatusFilter>,
) -> Result<Json<VirtualList>, ApiError> {
    let page =
        db::virtual_page(&app.pool, Some(client), filter.status, page.after()?, now_secs(), page.limit()).await?;
    Ok(Json(VirtualList { channels: page.rows, next: page.next.map(|c| c.encode()) }))
}

/// A list's filter by status.
#[derive(serde::Deserialize)]
pub(super) struct StatusFilter {
    status: Option<VirtualStatus>,
}

/// Long polling of a virtual channel's status.
#[derive(serde::Deserialize)]
pub(super) struct Wait {
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
        (status = 429, description = "`too_many_long_polls`: the client holds `limits.long_polls_per_client` \
            long polls already, or the hub `limits.long_polls_total`; try again after `Retry-After` seconds.",
            body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(super) async fn get_virtual(
    State(app): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    Query(wait): Query<Wait>,
) -> Result<Json<VirtualView>, ApiError> {
    let id = parse_id(&id)?;
    let wait_ms = wait.wait_ms.unwrap_or(0).min(30_000);
    let _long_poll = match wait.unless_status {
        Some(_) if wait_ms > 0 => Some(app.hub.limits.admit_long_poll(client)?),
        _ => None,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let watch = app.hub.virtual_changed.watch(id);
    loop {
        // Register for a change before reading, so a change in between is not missed.
        let changed = watch.notify.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let view = db::virtual_views(&app.pool, Some(id), client, now_secs(), 1)
            .await?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("no virtual channel {id} of yours")))?;
        if wait.unless_status != Some(view.status) || tokio::time::Instant::now() >= deadline {
            return Ok(Json(view));
        }
        // Another replica may change it too (its wake-ups do not reach this process): look
        // again at least every second.
        let _ =
            tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + Duration::from_secs(1)), changed).await;
    }
}
