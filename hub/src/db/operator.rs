//! The operator's views and switches, and the policy's counters.

use super::*;

/// Every virtual channel, newest first.
pub async fn all_virtual_views(db: &PgPool, now: u64, limit: i64) -> sqlx::Result<Vec<VirtualView>> {
    let sql = format!("SELECT {VIRTUAL_COLUMNS} FROM virtual_channels ORDER BY created_at DESC, id LIMIT $1");
    let rows = sqlx::query(&sql).bind(limit).fetch_all(db).await?;
    rows.iter().map(|r| virtual_row(r, now).map(|v| v.view)).collect()
}

/// Whether new virtual channels are paused (by the operator, for every process).
pub async fn virtual_paused(db: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT virtual_paused FROM hub_settings").fetch_one(db).await
}

/// Pauses or resumes new virtual channels.
pub async fn set_virtual_paused(db: &PgPool, paused: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE hub_settings SET virtual_paused = $1, updated_at = now()").bind(paused).execute(db).await?;
    Ok(())
}

/// Virtual channels of `client` in one of `statuses`.
pub async fn virtual_count(db: &mut PgConnection, client: Address, statuses: &[&str]) -> sqlx::Result<u64> {
    let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM virtual_channels WHERE (proposer = $1 OR acceptor = $1) AND status::text = ANY($2)",
    )
    .bind(client.as_slice())
    .bind(&statuses)
    .fetch_one(db)
    .await?;
    Ok(n as u64)
}

/// Serializes, across hub processes, the decisions that read the hub's total locked coins
/// (held until the end of the transaction).
pub async fn lock_policy(db: &mut PgConnection) -> sqlx::Result<()> {
    // "INGRIDPL" as an integer.
    sqlx::query("SELECT pg_advisory_xact_lock(5281984733937389644)").execute(db).await?;
    Ok(())
}

/// Fees earned per asset: those of every accepted virtual channel.
pub async fn fees_earned(db: &PgPool) -> sqlx::Result<std::collections::BTreeMap<Address, U256>> {
    let rows = sqlx::query(
        "SELECT initial->'outcome'->'assets' AS assets, fees FROM virtual_channels
         WHERE status IN ('open', 'closing', 'closed') AND fees <> '[]'",
    )
    .fetch_all(db)
    .await?;
    let mut out = std::collections::BTreeMap::new();
    for row in rows {
        let assets = row.get::<Json<Vec<Address>>, _>("assets").0;
        let fees = row.get::<Json<Vec<U256>>, _>("fees").0;
        for (asset, fee) in assets.into_iter().zip(fees) {
            *out.entry(asset).or_insert(U256::ZERO) += fee;
        }
    }
    Ok(out)
}

/// A round trip to the database.
pub async fn ping(db: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT 1").execute(db).await.map(|_| ())
}

/// Takes the session-level advisory lock `key` on `db` if nobody holds it; held until the
/// connection closes (the leader election).
pub async fn try_advisory_lock(db: &mut PgConnection, key: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(db).await
}
