//! What the metrics read: counts by status, disputes by result, the watcher's and the
//! outbox's work, and the live outcomes the collateral is summed from.

use super::*;

/// Disputes counted by kind and result.
pub async fn dispute_counts(db: &PgPool) -> sqlx::Result<Vec<(String, String, i64)>> {
    let rows =
        sqlx::query("SELECT kind, result, count(*) AS n FROM disputes GROUP BY kind, result").fetch_all(db).await?;
    rows.iter().map(|r| Ok((r.try_get("kind")?, r.try_get("result")?, r.try_get("n")?))).collect()
}

/// The watcher's and the outbox's work.
#[derive(Debug, Clone, Copy)]
pub struct ChainWork {
    /// The last block ingested (0 before the first).
    pub ingested: i64,
    /// Outbox entries pending.
    pub outbox_pending: i64,
    /// Outbox entries given up.
    pub outbox_failed: i64,
    /// Chain events skipped because they could not be applied.
    pub events_skipped: i64,
}

/// [`ChainWork`] now.
pub async fn chain_work(db: &PgPool) -> sqlx::Result<ChainWork> {
    let row = sqlx::query(
        "SELECT (SELECT block FROM chain_cursor WHERE name = 'events') AS ingested,
                (SELECT count(*) FROM outbox WHERE status = 'pending') AS pending,
                (SELECT count(*) FROM outbox WHERE status = 'failed') AS failed,
                (SELECT count(*) FROM chain_events WHERE skipped IS NOT NULL) AS skipped",
    )
    .fetch_one(db)
    .await?;
    Ok(ChainWork {
        ingested: row.try_get::<Option<i64>, _>("ingested")?.unwrap_or(0),
        outbox_pending: row.try_get("pending")?,
        outbox_failed: row.try_get("failed")?,
        events_skipped: row.try_get("skipped")?,
    })
}

/// The latest outcome of every open or closing basic channel (of `client` only, if given):
/// the hub's index, whether the channel is open, and the outcome. A scan of every channel:
/// for audits of the running books, never on a request's path.
pub async fn live_outcomes(
    db: &mut PgConnection,
    client: Option<Address>,
) -> sqlx::Result<Vec<(Role, bool, ingrid_client_sdk::Allocation)>> {
    let rows = sqlx::query(
        "SELECT b.hub_index, b.status = 'open' AS open, s.state->'outcome' AS outcome
         FROM basic_channels b JOIN channel_states s ON s.channel_id = b.id AND s.version = b.latest_version
         WHERE b.status IN ('open', 'closing') AND ($1::bytea IS NULL OR b.client = $1)",
    )
    .bind(client.as_ref().map(|c| c.as_slice()))
    .fetch_all(&mut *db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                role(r.try_get::<i16, _>("hub_index")?)?,
                r.try_get("open")?,
                r.try_get::<Json<ingrid_client_sdk::Allocation>, _>("outcome")?.0,
            ))
        })
        .collect()
}
