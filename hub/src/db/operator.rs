//! The operator's views and switches, and the policy's counters.

use super::*;

/// Whether new virtual channels are paused (by the operator, for every process).
pub async fn virtual_paused(db: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT virtual_paused FROM hub_settings").fetch_one(db).await
}

/// Pauses or resumes new virtual channels.
pub async fn set_virtual_paused(db: &PgPool, paused: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE hub_settings SET virtual_paused = $1, updated_at = now()").bind(paused).execute(db).await?;
    Ok(())
}

/// What counts against each of `clients`' caps of virtual channels at unix time `now`: those
/// it holds `open` or `closing` (with any peer), and the proposals it made that wait for
/// their peers (`proposed`, validity not ended). Proposals to it are not counted. Both are
/// read from partial indexes: the cost grows with what the client holds now, not with its
/// history.
pub async fn virtual_counts(db: &mut PgConnection, clients: &[Address], now: u64) -> sqlx::Result<Vec<(u64, u64)>> {
    let addresses: Vec<&[u8]> = clients.iter().map(|c| c.as_slice()).collect();
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT (SELECT count(*) FROM virtual_channels v
                 WHERE (v.participants[1] = c.address OR v.participants[2] = c.address)
                   AND v.status IN ('open', 'closing')),
                (SELECT count(*) FROM virtual_channels v
                 WHERE v.participants[1] = c.address AND v.status = 'proposed' AND v.valid_until > $2)
         FROM unnest($1::bytea[]) WITH ORDINALITY AS c (address, k) ORDER BY c.k",
    )
    .bind(addresses)
    .bind(now as i64)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(held, proposed)| (held as u64, proposed as u64)).collect())
}

/// Serializes, across hub processes, the decisions that read the hub's total locked coins
/// (held until the end of the transaction).
pub async fn lock_policy(db: &mut PgConnection) -> sqlx::Result<()> {
    // "INGRIDPL" as an integer.
    sqlx::query("SELECT pg_advisory_xact_lock(5281984733937389644)").execute(db).await?;
    Ok(())
}

/// A round trip to the database (a connection or the pool).
pub async fn ping<'e>(db: impl sqlx::PgExecutor<'e>) -> sqlx::Result<()> {
    sqlx::query("SELECT 1").execute(db).await.map(|_| ())
}

/// Whether database `name` exists on the server of `db` (the local stack).
pub async fn database_exists(db: &mut PgConnection, name: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)").bind(name).fetch_one(db).await
}

/// Creates database `name` (the local stack and the tests; `name` is the caller's own, never
/// a client's input).
pub async fn create_database(db: &mut PgConnection, name: &str) -> sqlx::Result<()> {
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(db).await.map(|_| ())
}

/// Takes the session-level advisory lock `key` on `db` if nobody holds it; held until the
/// connection closes (the leader election).
pub async fn try_advisory_lock(db: &mut PgConnection, key: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(db).await
}

/// A client with its basic channels counted.
#[derive(Debug, Clone)]
pub struct ClientSummary {
    /// Address.
    pub address: Address,
    /// When it first logged in (Unix seconds).
    pub created_at: i64,
    /// Basic channels, any status.
    pub channels: i64,
    /// Open basic channels.
    pub open_channels: i64,
}

/// A page of up to `limit` clients after `after` (the first with `None`), newest first. A
/// client's place in the order is its first login and its address; the cursor carries the
/// address left-padded to 32 bytes.
pub async fn client_page(db: &PgPool, after: Option<Cursor>, limit: i64) -> sqlx::Result<Page<ClientSummary>> {
    let rows = sqlx::query(
        "SELECT c.address, extract(epoch FROM c.created_at)::bigint AS created_at,
                (extract(epoch from c.created_at) * 1000000)::bigint AS cursor_micros,
                count(b.id) AS channels, count(b.id) FILTER (WHERE b.status = 'open') AS open_channels
         FROM clients c LEFT JOIN basic_channels b ON b.client = c.address
         WHERE ($2::bigint IS NULL OR c.created_at < 'epoch'::timestamptz + $2 * interval '1 microsecond'
                OR (c.created_at = 'epoch'::timestamptz + $2 * interval '1 microsecond' AND c.address > $3))
         GROUP BY c.address, c.created_at ORDER BY c.created_at DESC, c.address LIMIT $1",
    )
    .bind(limit + 1)
    .bind(after.map(|c| c.micros))
    .bind(after.map(|c| c.id[12..].to_vec()))
    .fetch_all(db)
    .await?;
    let rows = rows
        .iter()
        .map(|r| {
            let client = ClientSummary {
                address: address(r.try_get::<&[u8], _>("address")?)?,
                created_at: r.try_get("created_at")?,
                channels: r.try_get("channels")?,
                open_channels: r.try_get("open_channels")?,
            };
            let cursor = Cursor { micros: r.try_get("cursor_micros")?, id: client.address.into_word() };
            Ok((cursor, client))
        })
        .collect::<sqlx::Result<Vec<_>>>()?;
    Ok(page_of(rows, limit))
}

/// A dispute as the operator sees it.
#[derive(Debug, Clone)]
pub struct DisputeSummary {
    /// The channel.
    pub channel_id: B256,
    /// The adjudicator's record (zero if not keyed).
    pub record_key: B256,
    /// Whether the record is the one the hub's channels read.
    pub ours: bool,
    /// `basic` or `virtual`.
    pub kind: String,
    /// The version registered on chain.
    pub registered_version: u64,
    /// The newest version the hub holds.
    pub hub_version: u64,
    /// When the record's challenge ends (chain time).
    pub timeout: u64,
    /// Where the dispute stands.
    pub result: String,
    /// The block it was first seen in.
    pub first_block: i64,
}

/// The newest `limit` disputes.
pub async fn dispute_rows(db: &PgPool, limit: i64) -> sqlx::Result<Vec<DisputeSummary>> {
    let rows = sqlx::query(
        "SELECT channel_id, record_key, ours, kind, registered_version::text AS registered_version,
                hub_version::text AS hub_version, timeout::text AS timeout, result, first_block
         FROM disputes ORDER BY first_block DESC, record_key LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DisputeSummary {
                channel_id: b256(r.try_get::<&[u8], _>("channel_id")?)?,
                record_key: r.try_get::<Option<&[u8]>, _>("record_key")?.map(b256).transpose()?.unwrap_or_default(),
                ours: r.try_get("ours")?,
                kind: r.try_get("kind")?,
                registered_version: u64_column(r, "registered_version")?,
                hub_version: u64_column(r, "hub_version")?,
                timeout: u64_column(r, "timeout")?,
                result: r.try_get("result")?,
                first_block: r.try_get("first_block")?,
            })
        })
        .collect()
}
