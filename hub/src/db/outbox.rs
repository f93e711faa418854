//! The outbox of on-chain actions.

use super::*;

/// A claimed outbox entry.
#[derive(Debug, Clone)]
pub struct OutboxEntry<T> {
    /// Row id.
    pub id: i64,
    /// Action.
    pub action: T,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Transaction sent by an earlier attempt, if any.
    pub tx_hash: Option<B256>,
    /// Seconds since that transaction was sent (or last replaced).
    pub tx_age_secs: f64,
}

/// Claims the due pending entry first in line (lowest `priority`, then oldest) for `lease_secs` (another worker may retry it after
/// that), counting the attempt.
pub async fn claim_outbox<T: DeserializeOwned>(db: &PgPool, lease_secs: u64) -> sqlx::Result<Option<OutboxEntry<T>>> {
    let row = sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, not_before = now() + make_interval(secs => $1), updated_at = now()
         WHERE id = (SELECT id FROM outbox WHERE status = 'pending' AND not_before <= now()
                     ORDER BY priority, id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, payload, attempts, tx_hash,
                   COALESCE(EXTRACT(EPOCH FROM now() - tx_sent_at)::float8, 0) AS tx_age",
    )
    .bind(lease_secs as f64)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(OutboxEntry {
            id: r.get("id"),
            action: r.get::<Json<T>, _>("payload").0,
            attempts: r.get("attempts"),
            tx_hash: r.get::<Option<&[u8]>, _>("tx_hash").map(b256).transpose()?,
            tx_age_secs: r.get("tx_age"),
        })
    })
    .transpose()
}

/// Remembers the transaction an attempt sent, before waiting for it.
pub async fn set_outbox_tx(db: &PgPool, id: i64, tx_hash: Option<B256>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET tx_hash = $2, tx_sent_at = CASE WHEN $2 IS NULL THEN NULL ELSE now() END, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(tx_hash.as_ref().map(|x| x.as_slice()))
    .execute(db)
    .await?;
    Ok(())
}

/// Records how an attempt ended, as the outbox machine decided: the move of its status (a
/// compare-and-set), when to try again, and the error of a failed or not-yet-possible
/// attempt (`None` clears it).
pub async fn finish_outbox_attempt(
    db: &PgPool,
    id: i64,
    status: Move<OutboxStatus>,
    retry_secs: f64,
    error: Option<&str>,
) -> sqlx::Result<()> {
    let (from, to) = sql_move(status, OutboxStatus::as_str);
    sqlx::query(
        "UPDATE outbox SET status = $4::outbox_status, last_error = $2, not_before = now() + make_interval(secs => $5),
                updated_at = now()
         WHERE id = $1 AND status = ANY($3::outbox_status[])",
    )
    .bind(id)
    .bind(error)
    .bind(from)
    .bind(to)
    .bind(retry_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// An outbox entry as the operator sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct OutboxView {
    /// Row id.
    pub id: i64,
    /// Action kind.
    pub kind: String,
    /// The action.
    pub action: serde_json::Value,
    /// `pending`, `done` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
}

/// A page of the outbox, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxList {
    /// Entries.
    pub entries: Vec<OutboxView>,
    /// The id the next page starts below, when more follow.
    pub next: Option<i64>,
}

/// Up to `limit` outbox entries with an id below `before` (all with `None`), newest first.
pub async fn outbox_views(db: &PgPool, before: Option<i64>, limit: i64) -> sqlx::Result<OutboxList> {
    let mut entries: Vec<OutboxView> = sqlx::query_as(
        "SELECT id, kind, payload AS action, status::text AS status, attempts, last_error FROM outbox
         WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit.max(0) as usize);
    let next = if more { entries.last().map(|e| e.id) } else { None };
    Ok(OutboxList { entries, next })
}
