//! The running books (see `migrations/20261203000001_running_books.sql`): each basic
//! channel's latest state in the books, the hub's totals per asset kept by a trigger in
//! shards, counts by status and fees earned.

use std::collections::BTreeMap;

use super::*;
use crate::core::ChannelBooks;

fn decimals(values: &[U256]) -> Vec<String> {
    values.iter().map(U256::to_string).collect()
}

fn amounts(texts: Option<Vec<String>>) -> sqlx::Result<Vec<U256>> {
    texts.unwrap_or_default().iter().map(|t| u256(t)).collect()
}

/// Moves a channel to `version` and `status`, with the books of that version's state.
pub async fn set_latest(
    db: &mut PgConnection,
    id: B256,
    version: u64,
    status: ChannelStatus,
    books: &ChannelBooks,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE basic_channels SET latest_version = $2, status = $3::channel_status, assets = $4,
             hub_free = $5::numeric[], hub_locked = $6::numeric[], locked_total = $7::numeric[], books_version = $2,
             updated_at = now()
         WHERE id = $1",
    )
    .bind(id.as_slice())
    .bind(version as i64)
    .bind(status_name(status))
    .bind(books.assets.iter().map(|a| a.to_vec()).collect::<Vec<_>>())
    .bind(decimals(&books.hub_free))
    .bind(decimals(&books.hub_locked))
    .bind(decimals(&books.locked_total))
    .execute(db)
    .await?;
    Ok(())
}

/// The opening allocations of the virtual channels `ids`, by id.
pub async fn openings(
    db: &mut PgConnection,
    ids: &[B256],
) -> sqlx::Result<HashMap<B256, ingrid_client_sdk::Allocation>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let ids: Vec<&[u8]> = ids.iter().map(|i| i.as_slice()).collect();
    let rows = sqlx::query("SELECT id, initial->'outcome' AS outcome FROM virtual_channels WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(db)
        .await?;
    for r in rows {
        out.insert(b256(r.get::<&[u8], _>("id"))?, r.try_get::<Json<ingrid_client_sdk::Allocation>, _>("outcome")?.0);
    }
    Ok(out)
}

/// The hub's coins per asset in total: locked, locked by both sides, and free.
pub async fn hub_totals(
    db: &mut PgConnection,
) -> sqlx::Result<(BTreeMap<Address, U256>, BTreeMap<Address, U256>, BTreeMap<Address, U256>)> {
    let rows = sqlx::query(
        "SELECT asset, sum(hub_locked)::text AS locked, sum(locked_total)::text AS total, sum(hub_free)::text AS free
         FROM hub_books GROUP BY asset",
    )
    .fetch_all(db)
    .await?;
    let (mut locked, mut total, mut free) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for r in rows {
        let asset = address(r.get::<&[u8], _>("asset"))?;
        locked.insert(asset, u256(r.get("locked"))?);
        total.insert(asset, u256(r.get("total"))?);
        free.insert(asset, u256(r.get("free"))?);
    }
    Ok((locked, total, free))
}

/// The books of `client`'s open and closing basic channels (a scan of that client's
/// channels only): `(assets, hub_free if open, hub_locked, locked_total)` per channel.
pub async fn client_books(db: &mut PgConnection, client: Address) -> sqlx::Result<Vec<ChannelBooks>> {
    let rows = sqlx::query(
        "SELECT assets, CASE WHEN status = 'open' THEN hub_free::text[] END AS free,
                hub_locked::text[] AS locked, locked_total::text[] AS total
         FROM basic_channels WHERE client = $1 AND status IN ('open', 'closing') AND assets IS NOT NULL",
    )
    .bind(client.as_slice())
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            let assets: Vec<Vec<u8>> = r.try_get("assets")?;
            let n = assets.len();
            let mut free = amounts(r.try_get("free")?)?;
            free.resize(n, U256::ZERO);
            Ok(ChannelBooks {
                assets: assets.iter().map(|a| address(a)).collect::<sqlx::Result<_>>()?,
                hub_free: free,
                hub_locked: amounts(r.try_get("locked")?)?,
                locked_total: amounts(r.try_get("total")?)?,
            })
        })
        .collect()
}

/// Fills in the books of channels stored before the running books (at the hub's start,
/// before it serves): up to `batch` channels per transaction, until none is left, also none
/// that another process is filling in. Returns how many this process filled in.
pub async fn fill_missing_books(pool: &PgPool, batch: i64) -> sqlx::Result<u64> {
    let mut filled = 0;
    loop {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query(
            "SELECT b.id, b.hub_index, b.latest_version, b.status::text AS status, s.state
             FROM basic_channels b JOIN channel_states s ON s.channel_id = b.id AND s.version = b.latest_version
             WHERE b.assets IS NULL ORDER BY b.id LIMIT $1 FOR UPDATE OF b SKIP LOCKED",
        )
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            // Another process starting beside this one may still be filling a batch: the
            // totals are whole only once every channel is filled in.
            while sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM basic_channels WHERE assets IS NULL)")
                .fetch_one(pool)
                .await?
            {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            return Ok(filled);
        }
        for r in &rows {
            let id = b256(r.get::<&[u8], _>("id"))?;
            let state = r.try_get::<Json<State>, _>("state")?.0;
            let locks: Vec<B256> = ChannelBooks::lock_ids(&state.outcome).collect();
            let openings = openings(&mut tx, &locks).await?;
            let books = ChannelBooks::of(&state.outcome, role(r.get("hub_index"))?, &openings).map_err(|missing| {
                sqlx::Error::Decode(format!("channel {id} locks {missing}, which is no virtual channel").into())
            })?;
            let status = parse_status(r.get("status"))?;
            set_latest(&mut tx, id, r.get::<i64, _>("latest_version") as u64, status, &books).await?;
            filled += 1;
        }
        tx.commit().await?;
    }
}

/// Folds the shards of database sessions that ended into shard 0 (the totals do not change).
pub async fn fold_book_shards(db: &PgPool) -> sqlx::Result<()> {
    let alive = "SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL";
    let mut tx = db.begin().await?;
    sqlx::query(&format!(
        "WITH gone AS (DELETE FROM hub_books WHERE shard <> 0 AND shard NOT IN ({alive}) RETURNING *)
         INSERT INTO hub_books (asset, shard, hub_locked, locked_total, hub_free)
         SELECT asset, 0, sum(hub_locked), sum(locked_total), sum(hub_free) FROM gone GROUP BY asset
         ON CONFLICT (asset, shard) DO UPDATE SET hub_locked = hub_books.hub_locked + EXCLUDED.hub_locked,
             locked_total = hub_books.locked_total + EXCLUDED.locked_total,
             hub_free = hub_books.hub_free + EXCLUDED.hub_free"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "WITH gone AS (DELETE FROM status_counts WHERE shard <> 0 AND shard NOT IN ({alive}) RETURNING *)
         INSERT INTO status_counts (kind, status, shard, n) SELECT kind, status, 0, sum(n) FROM gone GROUP BY 1, 2
         ON CONFLICT (kind, status, shard) DO UPDATE SET n = status_counts.n + EXCLUDED.n"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "WITH gone AS (DELETE FROM fees_earned WHERE shard <> 0 AND shard NOT IN ({alive}) RETURNING *)
         INSERT INTO fees_earned (asset, shard, amount) SELECT asset, 0, sum(amount) FROM gone GROUP BY asset
         ON CONFLICT (asset, shard) DO UPDATE SET amount = fees_earned.amount + EXCLUDED.amount"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Basic (`"basic"`) and virtual (`"virtual"`) channels counted by status.
pub async fn status_counts(db: &PgPool) -> sqlx::Result<Vec<(String, String, i64)>> {
    let rows = sqlx::query("SELECT kind, status, sum(n)::bigint AS n FROM status_counts GROUP BY kind, status")
        .fetch_all(db)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("kind")?, r.try_get("status")?, r.try_get("n")?))).collect()
}

/// Fees earned per asset: those of every accepted virtual channel.
pub async fn fees_earned(db: &PgPool) -> sqlx::Result<BTreeMap<Address, U256>> {
    let rows =
        sqlx::query("SELECT asset, sum(amount)::text AS amount FROM fees_earned GROUP BY asset").fetch_all(db).await?;
    rows.iter().map(|r| Ok((address(r.get::<&[u8], _>("asset"))?, u256(r.get("amount"))?))).collect()
}
