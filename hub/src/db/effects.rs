//! What chain events change in the books: deposits, funding, conclusions, cursors and the event log.

use super::*;

/// Records the confirmed total deposited for (`channel`, `asset`, `participant`). Returns
/// whether the channel has a matching requirement.
pub async fn record_deposit(
    db: &mut PgConnection,
    channel: B256,
    asset: Address,
    participant: Address,
    total: U256,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE channel_funding SET deposited = GREATEST(deposited, $4::numeric)
         WHERE channel_id = $1 AND asset = $2 AND participant = $3",
    )
    .bind(channel.as_slice())
    .bind(asset.as_slice())
    .bind(participant.as_slice())
    .bind(total.to_string())
    .execute(db)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Opens a channel in `funding` whose every requirement of the opening state is met (the
/// machine's `Funded`). Returns whether it opened. (Collateral top-ups raise the hub's
/// requirement but are put on standby: they do not count here, which matters for a channel
/// that went back to `funding` after a reorganisation.)
pub async fn open_if_funded(db: &mut PgConnection, channel: B256) -> sqlx::Result<bool> {
    let (from, to) = channel_move(ChannelEvent::Funded);
    let sql = format!(
        "UPDATE basic_channels SET status = $3::channel_status, updated_at = now()
         WHERE id = $1 AND status = ANY($2::channel_status[])
           AND NOT EXISTS (SELECT 1 FROM channel_funding f WHERE f.channel_id = $1 AND f.deposited < {OPENING_REQUIRED})"
    );
    let n = sqlx::query(&sql).bind(channel.as_slice()).bind(from).bind(to).execute(db).await?.rows_affected();
    Ok(n > 0)
}

/// Records a channel's on-chain conclusion with the balances pushed per asset (the machine's
/// `Concluded`). Returns whether it was not recorded before.
pub async fn record_conclusion(db: &mut PgConnection, channel: B256, balances: &[[U256; 2]]) -> sqlx::Result<bool> {
    let settled: Vec<[String; 2]> = balances.iter().map(|[a, b]| [a.to_string(), b.to_string()]).collect();
    let (from, to) = channel_move(ChannelEvent::Concluded);
    let n = sqlx::query(
        "UPDATE basic_channels SET status = $4::channel_status, settled = $2, updated_at = now()
         WHERE id = $1 AND status = ANY($3::channel_status[])",
    )
    .bind(channel.as_slice())
    .bind(Json(settled))
    .bind(from)
    .bind(to)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// The durable cursor of reader `name`, if set.
pub async fn cursor(db: &PgPool, name: &str) -> sqlx::Result<Option<u64>> {
    let row = sqlx::query("SELECT block FROM chain_cursor WHERE name = $1").bind(name).fetch_optional(db).await?;
    Ok(row.map(|r| r.get::<i64, _>("block") as u64))
}

/// Moves the cursor of reader `name` to `block`.
pub async fn set_cursor(db: &mut PgConnection, name: &str, block: u64) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO chain_cursor (name, block) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET block = EXCLUDED.block")
        .bind(name)
        .bind(block as i64)
        .execute(db)
        .await?;
    Ok(())
}

/// An ingested chain event.
pub struct EventRecord<'a> {
    /// Block number.
    pub block_number: u64,
    /// Log index in the block.
    pub log_index: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Emitting contract.
    pub contract: Address,
    /// Event name.
    pub name: &'a str,
    /// Channel the event is about.
    pub channel_id: Option<B256>,
    /// Decoded fields (the raw log if it could not be decoded).
    pub payload: serde_json::Value,
    /// Why it was not applied; `None` when it was.
    pub skipped: Option<String>,
}

/// Stores an event; returns false if it was already stored (a replay).
pub async fn insert_event(db: &mut PgConnection, e: &EventRecord<'_>) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "INSERT INTO chain_events (block_number, log_index, block_hash, tx_hash, contract, name, channel_id, payload,
                                   skipped)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(i64::try_from(e.block_number).unwrap_or(i64::MAX))
    .bind(i64::try_from(e.log_index).unwrap_or(i64::MAX))
    .bind(e.block_hash.as_slice())
    .bind(e.tx_hash.as_slice())
    .bind(e.contract.as_slice())
    .bind(e.name)
    .bind(e.channel_id.as_ref().map(|x| x.as_slice()))
    .bind(&e.payload)
    .bind(e.skipped.as_deref())
    .execute(db)
    .await?
    .rows_affected();
    Ok(n > 0)
}
