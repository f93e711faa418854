//! Login challenges and sessions.

use super::*;

/// Records a challenge nonce as used; false if it was used before (a replay).
pub async fn use_challenge(db: &mut PgConnection, nonce: &[u8], expires_at: u64) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "INSERT INTO used_challenges (nonce, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING",
    )
    .bind(nonce)
    .bind(expires_at as f64)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a client (first login or first channel).
pub async fn ensure_client(db: &mut PgConnection, client: Address) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO clients (address) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(client.as_slice())
        .execute(db)
        .await?;
    Ok(())
}

/// How many basic channels of `client` wait for their funding, with the client's row locked
/// for the rest of the transaction (so two concurrent opens cannot both pass a cap).
pub async fn lock_unfunded_count(db: &mut PgConnection, client: Address) -> sqlx::Result<u64> {
    sqlx::query("SELECT 1 FROM clients WHERE address = $1 FOR UPDATE")
        .bind(client.as_slice())
        .execute(&mut *db)
        .await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM basic_channels WHERE client = $1 AND status = 'funding'")
        .bind(client.as_slice())
        .fetch_one(db)
        .await?;
    Ok(n as u64)
}

/// The hub's own deposits into basic channel `channel` (asset, amount), once every deposit of
/// the client is confirmed and the channel still waits for its funding; empty before.
pub async fn hub_deposits_due(
    db: &mut PgConnection,
    channel: B256,
    hub: Address,
) -> sqlx::Result<Vec<(Address, U256)>> {
    let rows = sqlx::query(
        "SELECT f.asset, f.required::text AS required FROM channel_funding f
         JOIN basic_channels c ON c.id = f.channel_id AND c.status = 'funding'
         WHERE f.channel_id = $1 AND f.participant = $2 AND f.required > 0
           AND NOT EXISTS (SELECT 1 FROM channel_funding o
                           WHERE o.channel_id = $1 AND o.participant <> $2 AND o.deposited < o.required)",
    )
    .bind(channel.as_slice())
    .bind(hub.as_slice())
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            let required: String = r.get("required");
            let amount = required.parse::<U256>().map_err(|e| sqlx::Error::Decode(e.into()))?;
            Ok((Address::from_slice(r.get::<&[u8], _>("asset")), amount))
        })
        .collect()
}

/// Locks client `address`'s row until the end of the transaction: its requests that count
/// what it holds (proposals) then count one at a time.
pub async fn lock_client(db: &mut PgConnection, address: Address) -> sqlx::Result<()> {
    sqlx::query("SELECT 1 FROM clients WHERE address = $1 FOR UPDATE")
        .bind(address.as_slice())
        .execute(db)
        .await
        .map(|_| ())
}

/// Whether `address` is a client of the hub.
pub async fn is_client(db: &mut PgConnection, address: Address) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM clients WHERE address = $1)")
        .bind(address.as_slice())
        .fetch_one(db)
        .await
}

/// Stores a session; `token_hash` is the keccak256 of the bearer token.
pub async fn insert_session(
    db: &mut PgConnection,
    token_hash: B256,
    client: Address,
    ttl_secs: u64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, client, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(token_hash.as_slice())
    .bind(client.as_slice())
    .bind(ttl_secs as f64)
    .execute(db)
    .await?;
    Ok(())
}

/// Ends the sessions of `client` beyond its newest `keep` (the cap of sessions per client);
/// returns the token hashes of those that ended.
pub async fn trim_sessions(db: &mut PgConnection, client: Address, keep: u32) -> sqlx::Result<Vec<B256>> {
    let ended: Vec<Vec<u8>> = sqlx::query_scalar(
        "DELETE FROM sessions WHERE token_hash IN (
             SELECT token_hash FROM sessions WHERE client = $1 ORDER BY expires_at DESC, token_hash OFFSET $2)
         RETURNING token_hash",
    )
    .bind(client.as_slice())
    .bind(i64::from(keep))
    .fetch_all(db)
    .await?;
    ended.iter().map(|h| b256(h)).collect()
}

/// The client of a live session and the session's expiry (unix seconds).
pub async fn session_client(db: &PgPool, token_hash: B256) -> sqlx::Result<Option<(Address, u64)>> {
    let row = sqlx::query(
        "SELECT client, floor(extract(epoch FROM expires_at))::bigint AS expires_at FROM sessions
         WHERE token_hash = $1 AND expires_at > now()",
    )
    .bind(token_hash.as_slice())
    .fetch_optional(db)
    .await?;
    row.map(|r| Ok((address(r.get::<&[u8], _>("client"))?, r.get::<i64, _>("expires_at").max(0) as u64))).transpose()
}
