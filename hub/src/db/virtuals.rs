//! Virtual channels.

use super::*;

/// A virtual channel's row: the lists as stored (one entry per parent, per participant),
/// and the wire view the participants see.
#[derive(Debug, Clone)]
pub struct VirtualRow {
    /// The basic channels locking it, in participant order (`None` until that participant
    /// accepted).
    pub parents: Vec<Option<B256>>,
    /// Per parent, whether it is settled after the close.
    pub settled: Vec<bool>,
    /// The app it runs (zero: payments).
    pub app: Address,
    /// The hub's view of it, as its participants see it.
    pub view: VirtualView,
}

impl VirtualRow {
    /// The parents that lock it now (accepted), in order.
    pub fn locking_parents(&self) -> Vec<B256> {
        self.parents.iter().flatten().copied().collect()
    }

    /// Its book, for the protocol's transitions.
    pub fn book(&self) -> VirtualBook {
        VirtualBook {
            id: self.view.id,
            status: self.view.status,
            valid_until: self.view.valid_until,
            settled: self.settled.clone(),
        }
    }
}

pub(super) fn parse_virtual_status(name: &str) -> sqlx::Result<VirtualStatus> {
    VirtualStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown virtual status {name}").into()))
}

pub(super) const VIRTUAL_COLUMNS: &str =
    "id, params, app, parents, initial, initial_sigs, proposed_parent, valid_until, status::text AS status,
    final_state, final_sig0, final_sig1, settled, fees";

/// The first two entries of a stored list as the wire's pair (the wire shows two parents).
pub(super) fn pair<T: Clone + Default>(list: &[T]) -> [T; 2] {
    [list.first().cloned().unwrap_or_default(), list.get(1).cloned().unwrap_or_default()]
}

pub(super) fn virtual_row(row: &sqlx::postgres::PgRow, now: u64) -> sqlx::Result<VirtualRow> {
    let status = parse_virtual_status(row.get::<&str, _>("status"))?;
    let valid_until = row.get::<i64, _>("valid_until") as u64;
    let bytes = |name: &str| row.get::<Option<Vec<u8>>, _>(name).map(Bytes::from).unwrap_or_default();
    let final_state = row
        .get::<Option<Json<State>>, _>("final_state")
        .map(|s| FullySignedState { state: s.0, sigs: [bytes("final_sig0"), bytes("final_sig1")] });
    let parents = row
        .get::<Vec<Option<Vec<u8>>>, _>("parents")
        .iter()
        .map(|p| p.as_deref().map(b256).transpose())
        .collect::<sqlx::Result<Vec<_>>>()?;
    let initial_sigs: Vec<Bytes> = row
        .get::<Vec<Option<Vec<u8>>>, _>("initial_sigs")
        .into_iter()
        .map(|s| s.map(Bytes::from).unwrap_or_default())
        .collect();
    let settled: Vec<bool> = row.get("settled");
    let view = VirtualView {
        id: b256(row.get::<&[u8], _>("id"))?,
        params: row.get::<Json<Params>, _>("params").0,
        status,
        valid_until,
        close_requested: status == VirtualStatus::Open && now >= valid_until,
        parents: pair(&parents.iter().map(|p| p.unwrap_or_default()).collect::<Vec<_>>()),
        initial: row.get::<Json<State>, _>("initial").0,
        initial_sigs: pair(&initial_sigs),
        proposed_parent: row.get::<Json<StateRequest>, _>("proposed_parent").0,
        final_state,
        settled: pair(&settled),
        fees: row.get::<Json<Vec<U256>>, _>("fees").0,
    };
    Ok(VirtualRow { parents, settled, app: address(row.get::<&[u8], _>("app"))?, view })
}

/// Inserts a proposed virtual channel; false (nothing written) if the id exists.
pub async fn insert_virtual(
    db: &mut PgConnection,
    proposal: &VirtualProposal,
    id: B256,
    parent: B256,
    fees: &[U256],
) -> sqlx::Result<bool> {
    // One parent per participant, in participant order: the proposer's now, the others'
    // (and their signatures on the opening state) when they accept.
    let participants: Vec<Vec<u8>> = proposal.params.participants.iter().map(|p| p.to_vec()).collect();
    let mut parents: Vec<Option<Vec<u8>>> = vec![None; participants.len()];
    parents[0] = Some(parent.to_vec());
    let mut initial_sigs: Vec<Option<Vec<u8>>> = vec![None; participants.len()];
    initial_sigs[0] = Some(proposal.signature.to_vec());
    let n = sqlx::query(
        "INSERT INTO virtual_channels (id, params, app, participants, parents, initial, initial_sigs, settled,
                proposed_parent, valid_until, fees)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
    )
    .bind(id.as_slice())
    .bind(Json(&proposal.params))
    .bind(proposal.params.app.as_slice())
    .bind(participants)
    .bind(parents)
    .bind(Json(&proposal.state))
    .bind(initial_sigs)
    .bind(vec![false; proposal.params.participants.len()])
    .bind(Json(&proposal.parent))
    .bind(proposal.valid_until as i64)
    .bind(Json(fees))
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Locks a virtual channel of `participant` for the rest of the transaction.
pub async fn lock_virtual(
    db: &mut PgConnection,
    id: B256,
    participant: Address,
    now: u64,
) -> sqlx::Result<Option<VirtualRow>> {
    let sql =
        format!("SELECT {VIRTUAL_COLUMNS} FROM virtual_channels WHERE id = $1 AND $2 = ANY(participants) FOR UPDATE");
    let row = sqlx::query(&sql).bind(id.as_slice()).bind(participant.as_slice()).fetch_optional(db).await?;
    row.as_ref().map(|r| virtual_row(r, now)).transpose()
}

/// The views of a participant's virtual channels (or the one with `id`), newest first.
pub async fn virtual_views(
    db: impl sqlx::PgExecutor<'_>,
    id: Option<B256>,
    participant: Address,
    now: u64,
    limit: i64,
) -> sqlx::Result<Vec<VirtualView>> {
    Ok(virtual_rows(db, id, Some(participant), None, None, now, limit).await?.into_iter().map(|(_, v)| v).collect())
}

/// A page of a participant's virtual channels (`participant`) or of all, newest first, after
/// `after`.
pub async fn virtual_page(
    db: impl sqlx::PgExecutor<'_>,
    participant: Option<Address>,
    status: Option<VirtualStatus>,
    after: Option<Cursor>,
    now: u64,
    limit: i64,
) -> sqlx::Result<Page<VirtualView>> {
    Ok(page_of(virtual_rows(db, None, participant, status, after, now, limit + 1).await?, limit))
}

async fn virtual_rows(
    db: impl sqlx::PgExecutor<'_>,
    id: Option<B256>,
    participant: Option<Address>,
    status: Option<VirtualStatus>,
    after: Option<Cursor>,
    now: u64,
    limit: i64,
) -> sqlx::Result<Vec<(Cursor, VirtualView)>> {
    let sql = format!(
        "SELECT {VIRTUAL_COLUMNS}, {cursor} FROM virtual_channels v
         WHERE ($2::bytea IS NULL OR participants @> ARRAY[$2::bytea]) AND ($1::bytea IS NULL OR id = $1) AND {after}
           AND ($6::text IS NULL OR v.status::text = $6)
         ORDER BY created_at DESC, id LIMIT $3",
        cursor = cursor_micros("v"),
        after = after_cursor("v", 4, 5),
    );
    let rows = sqlx::query(&sql)
        .bind(id.as_ref().map(|x| x.as_slice()))
        .bind(participant.as_ref().map(|x| x.as_slice()))
        .bind(limit)
        .bind(after.map(|c| c.micros))
        .bind(after.map(|c| c.id.to_vec()))
        .bind(status.map(VirtualStatus::as_str))
        .fetch_all(db)
        .await?;
    rows.iter().map(|r| Ok((cursor_of(r)?, virtual_row(r, now)?.view))).collect()
}

/// Marks a proposal accepted by its participant `participant` (the machine's `Accept`): open,
/// with that participant's parent and signature on the opening state.
pub async fn open_virtual(
    db: &mut PgConnection,
    id: B256,
    participant: Role,
    parent: B256,
    signature: &Bytes,
) -> sqlx::Result<()> {
    let (from, to) = virtual_move(VirtualEvent::Accept);
    sqlx::query(
        "UPDATE virtual_channels SET status = $5::virtual_status, parents[$6] = $2, initial_sigs[$6] = $3, updated_at = now()
         WHERE id = $1 AND status = ANY($4::virtual_status[])",
    )
    .bind(id.as_slice())
    .bind(parent.as_slice())
    .bind(signature.as_ref())
    .bind(from)
    .bind(to)
    .bind(participant.index() as i32 + 1)
    .execute(db)
    .await?;
    Ok(())
}

/// Ends a proposal: rejected (the machine's `StoreRejection`, `event` `Reject`) or expired
/// (`StoreExpiry`, `Expire`).
pub async fn end_proposal(db: &mut PgConnection, id: B256, event: VirtualEvent) -> sqlx::Result<()> {
    let (from, to) = virtual_move(event);
    sqlx::query(
        "UPDATE virtual_channels SET status = $3::virtual_status, updated_at = now()
         WHERE id = $1 AND status = ANY($2::virtual_status[])",
    )
    .bind(id.as_slice())
    .bind(from)
    .bind(to)
    .execute(db)
    .await?;
    Ok(())
}

/// Proposals whose validity ended by unix time `now`, at most `limit`, locked in `db`
/// (rows another transaction holds are skipped: it decides on them).
pub async fn lock_ended_proposals(db: &mut PgConnection, now: u64, limit: i64) -> sqlx::Result<Vec<VirtualRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {VIRTUAL_COLUMNS} FROM virtual_channels WHERE status = 'proposed' AND valid_until <= $1
         ORDER BY valid_until LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now as i64)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter().map(|r| virtual_row(r, now)).collect()
}

/// Records a close (the machine's `StoreClose`): the final state, which parents are settled
/// now (per parent) and the status the transition decided, as a compare-and-set from the
/// statuses a settlement moves from.
pub async fn close_virtual(
    db: &mut PgConnection,
    id: B256,
    last: &FullySignedState,
    settled: &[bool],
    status: VirtualStatus,
) -> sqlx::Result<()> {
    let (from, _) = virtual_move(VirtualEvent::Settled { both: settled.iter().all(|s| *s) });
    let to = status.as_str();
    sqlx::query(
        "UPDATE virtual_channels SET final_state = $2, final_sig0 = $3, final_sig1 = $4, settled = $5,
                status = $7::virtual_status, updated_at = now()
         WHERE id = $1 AND status = ANY($6::virtual_status[])",
    )
    .bind(id.as_slice())
    .bind(Json(&last.state))
    .bind(last.sigs[0].as_ref())
    .bind(last.sigs[1].as_ref())
    .bind(settled)
    .bind(from)
    .bind(to)
    .execute(db)
    .await?;
    Ok(())
}

/// Locks basic channels in id order (the one order every transaction uses, so concurrent
/// opens and closes never deadlock); returns them in the order of `ids`.
pub async fn lock_channels(db: &mut PgConnection, ids: &[B256]) -> sqlx::Result<Vec<Option<ChannelRow>>> {
    let mut sorted: Vec<B256> = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    let keys: Vec<Vec<u8>> = sorted.iter().map(|id| id.to_vec()).collect();
    let sql = format!("SELECT {CHANNEL_COLUMNS} FROM basic_channels WHERE id = ANY($1) ORDER BY id FOR UPDATE");
    let rows = sqlx::query(&sql).bind(&keys).fetch_all(db).await?;
    let rows = rows.iter().map(channel_row).collect::<sqlx::Result<Vec<_>>>()?;
    Ok(ids.iter().map(|id| rows.iter().find(|r| r.id == *id).cloned()).collect())
}

/// One opening deposit a basic channel requires: of `participant` in `asset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredDeposit {
    /// The channel.
    pub channel: B256,
    /// The asset holder.
    pub asset: Address,
    /// Whose deposit.
    pub participant: Address,
    /// How much opens the channel.
    pub required: U256,
}

/// The `chain_cursor` row holding the node's finalized block as the watcher last saw it.
pub const FINALIZED_CURSOR: &str = "finalized";

/// The opening deposits (those above zero) of the basic channels `ids` that a reorganisation
/// could still take away: of the channels with a deposit ingested above the node's finalized
/// block (all of them while no finalized block is known). What opened them, without the
/// collateral top-ups since (those are standbys, not deposits). A parent funded long ago
/// costs an acceptance no call to the chain.
pub async fn opening_deposits_to_check(db: &mut PgConnection, ids: &[B256]) -> sqlx::Result<Vec<RequiredDeposit>> {
    let keys: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
    let opening = super::blocks::OPENING_REQUIRED;
    let sql = format!(
        "SELECT f.channel_id, f.asset, f.participant, ({opening})::text AS required FROM channel_funding f
         WHERE f.channel_id = ANY($1) AND ({opening}) > 0
           AND EXISTS (SELECT 1 FROM chain_events e WHERE e.channel_id = f.channel_id AND e.name = 'Deposited'
                         AND e.block_number > COALESCE(
                           (SELECT block FROM chain_cursor WHERE name = '{FINALIZED_CURSOR}'), -1))
         ORDER BY f.channel_id, f.asset, f.participant"
    );
    let rows = sqlx::query(&sql).bind(&keys).fetch_all(db).await?;
    rows.iter()
        .map(|r| {
            Ok(RequiredDeposit {
                channel: b256(r.get::<&[u8], _>("channel_id"))?,
                asset: address(r.get::<&[u8], _>("asset"))?,
                participant: address(r.get::<&[u8], _>("participant"))?,
                required: u256(r.get::<&str, _>("required"))?,
            })
        })
        .collect()
}

/// Whether a basic channel is registered on chain without a conclusion seen yet.
pub async fn in_dispute(db: &mut PgConnection, channel: B256) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM chain_events WHERE channel_id = $1 AND name = 'Registered')
            AND NOT EXISTS (SELECT 1 FROM chain_events WHERE channel_id = $1 AND name = 'Concluded')",
    )
    .bind(channel.as_slice())
    .fetch_one(db)
    .await
}

/// How long a proposal that ended unopened (rejected or expired) is kept, days.
pub const ENDED_PROPOSAL_RETENTION_DAYS: i32 = 7;

/// How long an idempotency key's answer is kept for retries.
pub const IDEMPOTENCY_RETENTION_HOURS: i32 = 24;

/// Deletes what has expired: sessions, used login challenges (past their expiry they can no
/// longer be replayed anyway), idempotency answers older than the retention, and proposals
/// that ended unopened more than [`ENDED_PROPOSAL_RETENTION_DAYS`] ago. Returns the number of
/// rows deleted.
pub async fn prune_expired(db: &PgPool) -> sqlx::Result<u64> {
    let mut deleted = 0;
    deleted += sqlx::query("DELETE FROM sessions WHERE expires_at < now()").execute(db).await?.rows_affected();
    deleted += sqlx::query("DELETE FROM used_challenges WHERE expires_at < now()").execute(db).await?.rows_affected();
    deleted += sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)")
        .bind(IDEMPOTENCY_RETENTION_HOURS)
        .execute(db)
        .await?
        .rows_affected();
    // Proposals that ended without opening locked nothing and signed nothing of the hub's.
    deleted += sqlx::query(
        "DELETE FROM virtual_channels WHERE status IN ('rejected', 'expired')
           AND updated_at < now() - make_interval(days => $1)",
    )
    .bind(ENDED_PROPOSAL_RETENTION_DAYS)
    .execute(db)
    .await?
    .rows_affected();
    Ok(deleted)
}

/// Whether the hub's latest state of a basic channel still locks virtual channel `id`.
pub async fn still_locks(db: &mut PgConnection, parent: B256, id: B256) -> sqlx::Result<bool> {
    let Some(row) = channel(db, parent).await? else { return Ok(false) };
    if row.status == ChannelStatus::Closed {
        return Ok(false);
    }
    let latest = state(db, parent, row.latest_version).await?.state;
    Ok(latest.outcome.locked.iter().any(|l| l.id == id))
}
