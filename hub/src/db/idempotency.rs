//! Idempotency keys: the first answer of a request, replayed to its retries.

use super::*;

/// A stored answer to an earlier request with the same idempotency key.
pub struct StoredAnswer {
    /// Hash of the earlier request.
    pub request_hash: B256,
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
}

/// Claims `key` for this request inside the caller's transaction. Returns the earlier
/// answer when the key was used before (waiting for a concurrent holder to finish).
pub async fn claim_idempotency_key(
    db: &mut PgConnection,
    client: Address,
    key: &str,
    request_hash: B256,
) -> sqlx::Result<Option<StoredAnswer>> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (client, key, request_hash, status, body) VALUES ($1, $2, $3, 0, 'null')
         ON CONFLICT DO NOTHING",
    )
    .bind(client.as_slice())
    .bind(key)
    .bind(request_hash.as_slice())
    .execute(&mut *db)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT request_hash, status, body FROM idempotency_keys WHERE client = $1 AND key = $2")
        .bind(client.as_slice())
        .bind(key)
        .fetch_one(db)
        .await?;
    Ok(Some(StoredAnswer {
        request_hash: b256(row.get::<&[u8], _>("request_hash"))?,
        status: row.get::<i16, _>("status") as u16,
        body: row.get("body"),
    }))
}

/// Deletes a claimed key (its answer is not to be replayed).
pub async fn release_idempotency_key(db: &mut PgConnection, client: Address, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE client = $1 AND key = $2")
        .bind(client.as_slice())
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// Stores the answer for a claimed key.
pub async fn store_idempotent_answer(
    db: &mut PgConnection,
    client: Address,
    key: &str,
    status: u16,
    body: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE idempotency_keys SET status = $3, body = $4 WHERE client = $1 AND key = $2")
        .bind(client.as_slice())
        .bind(key)
        .bind(status as i16)
        .bind(body)
        .execute(db)
        .await?;
    Ok(())
}
