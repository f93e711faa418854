//! What the watcher remembers of the chain (the hashes of the blocks it ingested), and the
//! books' side of undoing a chain reorganisation: the events of replaced blocks leave
//! `chain_events` for a `chain_reorgs` record, and the confirmed deposits and standbys of the
//! channels they touched are derived again from the events that remain.

use super::*;

/// The highest remembered block: its number and hash.
pub async fn highest_block(db: &PgPool) -> sqlx::Result<Option<(u64, B256)>> {
    let row =
        sqlx::query("SELECT number, hash FROM chain_blocks ORDER BY number DESC LIMIT 1").fetch_optional(db).await?;
    row.map(|r| Ok((r.get::<i64, _>("number") as u64, b256(r.get::<&[u8], _>("hash"))?))).transpose()
}

/// The remembered blocks, highest first (at most `limit`).
pub async fn remembered_blocks(db: &PgPool, limit: i64) -> sqlx::Result<Vec<(u64, B256)>> {
    let rows = sqlx::query("SELECT number, hash FROM chain_blocks ORDER BY number DESC LIMIT $1")
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(|r| Ok((r.get::<i64, _>("number") as u64, b256(r.get::<&[u8], _>("hash"))?))).collect()
}

/// Remembers the hashes of ingested blocks (a block seen again takes the hash seen last).
pub async fn remember_blocks(db: &mut PgConnection, blocks: &[(u64, B256)]) -> sqlx::Result<()> {
    for (number, hash) in blocks {
        sqlx::query(
            "INSERT INTO chain_blocks (number, hash) VALUES ($1, $2) ON CONFLICT (number) DO UPDATE SET hash = EXCLUDED.hash",
        )
        .bind(i64::try_from(*number).unwrap_or(i64::MAX))
        .bind(hash.as_slice())
        .execute(&mut *db)
        .await?;
    }
    Ok(())
}

/// Forgets the remembered blocks below `floor` except the highest of them, which stays as
/// the anchor a search for the fork point ends at. Returns how many it forgot.
pub async fn prune_blocks(db: &PgPool, floor: u64) -> sqlx::Result<u64> {
    let floor = i64::try_from(floor).unwrap_or(i64::MAX);
    Ok(sqlx::query("DELETE FROM chain_blocks WHERE number < (SELECT max(number) FROM chain_blocks WHERE number < $1)")
        .bind(floor)
        .execute(db)
        .await?
        .rows_affected())
}

/// An ingested event that a reorganisation took away.
#[derive(Debug, Clone)]
pub struct UndoneEvent {
    /// The block it was ingested from.
    pub block_number: u64,
    /// The event's name (`Deposited`, `Registered`, …).
    pub name: String,
    /// The contract that emitted it.
    pub contract: Address,
    /// The channel it is about, if known.
    pub channel: Option<B256>,
    /// Whether it had been skipped (stored, never applied).
    pub skipped: bool,
}

/// Records that the chain replaced `replaced` (a remembered block: number and the hash the
/// watcher ingested), keeping the blocks up to `kept`; returns the record's id.
pub async fn insert_reorg(db: &mut PgConnection, kept: Option<u64>, replaced: (u64, B256)) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO chain_reorgs (kept_block, replaced_block, replaced_hash, undone_events) VALUES ($1, $2, $3, '[]')
         RETURNING id",
    )
    .bind(kept.map(|k| i64::try_from(k).unwrap_or(i64::MAX)))
    .bind(i64::try_from(replaced.0).unwrap_or(i64::MAX))
    .bind(replaced.1.as_slice())
    .fetch_one(db)
    .await
}

/// Takes the events ingested above block `kept` (all of them for `None`) out of
/// `chain_events` into the record `reorg`, and forgets the remembered blocks above it.
/// Returns the events taken, in chain order.
pub async fn take_events_above(db: &mut PgConnection, kept: Option<u64>, reorg: i64) -> sqlx::Result<Vec<UndoneEvent>> {
    let above = kept.map_or(-1, |k| i64::try_from(k).unwrap_or(i64::MAX));
    sqlx::query(
        "UPDATE chain_reorgs SET undone_events = COALESCE(
             (SELECT jsonb_agg(to_jsonb(e) ORDER BY e.block_number, e.log_index) FROM chain_events e WHERE e.block_number > $2),
             '[]')
         WHERE id = $1",
    )
    .bind(reorg)
    .bind(above)
    .execute(&mut *db)
    .await?;
    let rows = sqlx::query(
        "DELETE FROM chain_events WHERE block_number > $1
         RETURNING block_number, log_index, name, contract, channel_id, skipped IS NOT NULL AS skipped",
    )
    .bind(above)
    .fetch_all(&mut *db)
    .await?;
    sqlx::query("DELETE FROM chain_blocks WHERE number > $1").bind(above).execute(&mut *db).await?;
    let mut events = rows
        .iter()
        .map(|r| {
            Ok((
                r.get::<i64, _>("log_index"),
                UndoneEvent {
                    block_number: r.get::<i64, _>("block_number") as u64,
                    name: r.get("name"),
                    contract: address(r.get::<&[u8], _>("contract"))?,
                    channel: r.get::<Option<&[u8]>, _>("channel_id").map(b256).transpose()?,
                    skipped: r.get("skipped"),
                },
            ))
        })
        .collect::<sqlx::Result<Vec<_>>>()?;
    events.sort_by_key(|(log_index, e)| (e.block_number, *log_index));
    Ok(events.into_iter().map(|(_, e)| e).collect())
}

/// Moves the cursor of reader `name` back to `kept` if it is past it; with `None` (nothing
/// kept) removes it, so the reader starts again from its first block.
pub async fn rewind_cursor(db: &mut PgConnection, name: &str, kept: Option<u64>) -> sqlx::Result<()> {
    match kept {
        Some(block) => {
            sqlx::query("UPDATE chain_cursor SET block = LEAST(block, $2) WHERE name = $1")
                .bind(name)
                .bind(i64::try_from(block).unwrap_or(i64::MAX))
                .execute(db)
                .await?;
        }
        None => {
            sqlx::query("DELETE FROM chain_cursor WHERE name = $1").bind(name).execute(db).await?;
        }
    }
    Ok(())
}

/// The cursor of reader `name`, if set, read inside a transaction.
pub async fn cursor_in(db: &mut PgConnection, name: &str) -> sqlx::Result<Option<u64>> {
    let block: Option<i64> =
        sqlx::query_scalar("SELECT block FROM chain_cursor WHERE name = $1").bind(name).fetch_optional(db).await?;
    Ok(block.map(|b| b as u64))
}

/// The participant and total of a `Deposited` or `StandbyDeposited` event as stored (its
/// decoded fields as JSON), if they parse.
pub fn event_total(payload: &serde_json::Value) -> Option<(Address, U256)> {
    let participant = payload.get("participant")?.as_str()?.parse::<Address>().ok()?;
    let total = payload.get("total")?.as_str()?.parse::<U256>().ok()?;
    Some((participant, total))
}

/// The highest total per (asset holder, participant) of the applied events `name`
/// (`Deposited` or `StandbyDeposited`) of `channel` that remain ingested: what the chain
/// confirms is held (or on standby) for each.
pub async fn remaining_totals(
    db: &mut PgConnection,
    channel: B256,
    name: &str,
) -> sqlx::Result<HashMap<(Address, Address), U256>> {
    let rows = sqlx::query(
        "SELECT contract, payload FROM chain_events WHERE channel_id = $1 AND name = $2 AND skipped IS NULL",
    )
    .bind(channel.as_slice())
    .bind(name)
    .fetch_all(db)
    .await?;
    let mut totals: HashMap<(Address, Address), U256> = HashMap::new();
    for row in &rows {
        let contract = address(row.get::<&[u8], _>("contract"))?;
        let payload: serde_json::Value = row.get("payload");
        let (participant, total) = event_total(&payload)
            .ok_or_else(|| sqlx::Error::Decode(format!("stored {name} event without participant and total").into()))?;
        let entry = totals.entry((contract, participant)).or_default();
        *entry = (*entry).max(total);
    }
    Ok(totals)
}

/// One deposit requirement of a basic channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundingRow {
    /// Asset holder.
    pub asset: Address,
    /// Participant.
    pub participant: Address,
    /// What the opening state needs deposited (the requirement without later collateral
    /// top-ups, which are put on standby instead).
    pub opening: U256,
    /// What the chain confirms deposited.
    pub deposited: U256,
}

/// The part of a requirement that the opening state needs: the requirement less the top-ups
/// of the same asset and participant (each raised it when it started).
pub(super) const OPENING_REQUIRED: &str = "f.required - COALESCE((SELECT SUM(t.amount) FROM top_ups t
     WHERE t.channel_id = f.channel_id AND t.asset = f.asset AND t.participant = f.participant), 0)";

/// The deposit requirements of `channel` with what is confirmed deposited.
pub async fn funding_rows(db: &mut PgConnection, channel: B256) -> sqlx::Result<Vec<FundingRow>> {
    let sql = format!(
        "SELECT f.asset, f.participant, ({OPENING_REQUIRED})::text AS opening, f.deposited::text AS deposited
         FROM channel_funding f WHERE f.channel_id = $1 ORDER BY f.asset, f.participant"
    );
    let rows = sqlx::query(&sql).bind(channel.as_slice()).fetch_all(db).await?;
    rows.iter()
        .map(|r| {
            Ok(FundingRow {
                asset: address(r.get::<&[u8], _>("asset"))?,
                participant: address(r.get::<&[u8], _>("participant"))?,
                opening: u256(r.get::<&str, _>("opening"))?,
                deposited: u256(r.get::<&str, _>("deposited"))?,
            })
        })
        .collect()
}

/// Sets what the chain confirms deposited for one requirement of `channel`.
pub async fn set_deposited(
    db: &mut PgConnection,
    channel: B256,
    asset: Address,
    participant: Address,
    deposited: U256,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE channel_funding SET deposited = $4::numeric WHERE channel_id = $1 AND asset = $2 AND participant = $3",
    )
    .bind(channel.as_slice())
    .bind(asset.as_slice())
    .bind(participant.as_slice())
    .bind(deposited.to_string())
    .execute(db)
    .await?;
    Ok(())
}

/// Moves an open `channel` back to `funding` (the machine's `FundingUndone`) when a
/// requirement of its opening state is no longer confirmed deposited. Returns whether it
/// moved.
pub async fn unfund_if_short(db: &mut PgConnection, channel: B256) -> sqlx::Result<bool> {
    let (from, to) = channel_move(ChannelEvent::FundingUndone);
    let sql = format!(
        "UPDATE basic_channels SET status = $3::channel_status, updated_at = now()
         WHERE id = $1 AND status = ANY($2::channel_status[])
           AND EXISTS (SELECT 1 FROM channel_funding f WHERE f.channel_id = $1 AND f.deposited < {OPENING_REQUIRED})"
    );
    let n = sqlx::query(&sql).bind(channel.as_slice()).bind(from).bind(to).execute(db).await?.rows_affected();
    Ok(n > 0)
}

/// A collateral top-up of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopUpRow {
    /// Asset holder.
    pub asset: Address,
    /// The hub (the standby's participant).
    pub participant: Address,
    /// The hub's standby in the channel and asset once this top-up is deposited.
    pub target: U256,
    /// Status.
    pub status: TopUpStatus,
}

/// The collateral top-ups of `channel`.
pub async fn top_ups_of(db: &mut PgConnection, channel: B256) -> sqlx::Result<Vec<TopUpRow>> {
    let rows = sqlx::query(
        "SELECT asset, participant, target::text AS target, status FROM top_ups WHERE channel_id = $1 ORDER BY asset, target",
    )
    .bind(channel.as_slice())
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            let status: &str = r.get("status");
            Ok(TopUpRow {
                asset: address(r.get::<&[u8], _>("asset"))?,
                participant: address(r.get::<&[u8], _>("participant"))?,
                target: u256(r.get::<&str, _>("target"))?,
                status: TopUpStatus::ALL
                    .into_iter()
                    .find(|s| s.as_str() == status)
                    .ok_or_else(|| sqlx::Error::Decode(format!("unknown top-up status {status}").into()))?,
            })
        })
        .collect()
}

/// Moves a confirmed top-up back to `depositing` (the machine's `StandbyUndone`). Returns
/// whether it moved.
pub async fn undo_top_up(db: &mut PgConnection, channel: B256, asset: Address, target: U256) -> sqlx::Result<bool> {
    let (from, to) = top_up_move(TopUpEvent::StandbyUndone);
    let n = sqlx::query(
        "UPDATE top_ups SET status = $5, updated_at = now()
         WHERE channel_id = $1 AND asset = $2 AND target = $3::numeric AND status = ANY($4)",
    )
    .bind(channel.as_slice())
    .bind(asset.as_slice())
    .bind(target.to_string())
    .bind(from)
    .bind(to)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Withdraws the pending outbox entry `key`: nothing more is sent for it (a transaction an
/// earlier attempt sent stays sent). Returns whether there was one.
pub async fn withdraw_pending(db: &mut PgConnection, key: &str) -> sqlx::Result<bool> {
    let n = sqlx::query("DELETE FROM outbox WHERE dedup_key = $1 AND status = 'pending'")
        .bind(key)
        .execute(db)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Re-arms the finished (done or failed) outbox entry `key`: it stays, renamed
/// `{key}:undone-by-reorg-{reorg}`, so the same action can be enqueued again. Returns the
/// status it had, if there was one.
pub async fn rearm_finished(db: &mut PgConnection, key: &str, reorg: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "UPDATE outbox SET dedup_key = dedup_key || ':undone-by-reorg-' || $2::text, updated_at = now()
         WHERE dedup_key = $1 AND status <> 'pending' RETURNING status::text",
    )
    .bind(key)
    .bind(reorg)
    .fetch_optional(db)
    .await
}

/// The hub's finished (done or failed) outbox entries about `channel` of the `kinds` given,
/// as (key, kind, payload, priority), not counting entries re-armed before.
pub async fn finished_entries(
    db: &mut PgConnection,
    channel: B256,
    kinds: &[&str],
) -> sqlx::Result<Vec<(String, String, serde_json::Value, i16)>> {
    let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    sqlx::query_as(
        "SELECT dedup_key, kind, payload, priority FROM outbox
         WHERE channel_id = $1 AND kind = ANY($2) AND status <> 'pending'
           AND dedup_key NOT LIKE '%:undone-by-reorg-%' ORDER BY id",
    )
    .bind(channel.as_slice())
    .bind(&kinds)
    .fetch_all(db)
    .await
}

/// Enqueues an entry again as it was (key, kind, payload, priority) about `channel`, due now;
/// a no-op if one with that key exists.
pub async fn enqueue_again(
    db: &mut PgConnection,
    channel: B256,
    (key, kind, payload, priority): &(String, String, serde_json::Value, i16),
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (dedup_key, kind, channel_id, payload, priority) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(key)
    .bind(kind)
    .bind(channel.as_slice())
    .bind(payload)
    .bind(priority)
    .execute(db)
    .await
    .map(|_| ())
}

/// What a reorganisation did to one outbox entry of the hub.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxChange {
    /// The entry's key (before it was re-armed).
    pub key: String,
    /// Its status when the reorganisation was undone.
    pub status: String,
    /// `withdrawn` (it will send nothing more) or `re-armed` (the action may be taken again).
    pub change: &'static str,
}

/// Completes the record `reorg` with the channels that left `open` and the outbox changes.
pub async fn finish_reorg(
    db: &mut PgConnection,
    reorg: i64,
    unfunded: &[B256],
    outbox: &[OutboxChange],
) -> sqlx::Result<()> {
    let unfunded: Vec<Vec<u8>> = unfunded.iter().map(|c| c.to_vec()).collect();
    sqlx::query("UPDATE chain_reorgs SET unfunded = $2, outbox = $3 WHERE id = $1")
        .bind(reorg)
        .bind(&unfunded)
        .bind(Json(outbox))
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ingrid_client_sdk::bindings::eth_holder::EthAssetHolder::{Deposited, StandbyDeposited};

    /// The totals are read back from the events exactly as the watcher stores them.
    #[test]
    fn stored_deposit_events_give_back_participant_and_total() {
        let participant = Address::repeat_byte(7);
        let total = U256::from(10u64).pow(U256::from(24u64)) + U256::from(3u64);
        let channel = B256::repeat_byte(1);
        let deposited = Deposited { channelId: channel, participant, amount: U256::from(1u64), total };
        let standby = StandbyDeposited { channelId: channel, participant, amount: U256::from(1u64), total };
        for payload in [serde_json::to_value(&deposited).expect("json"), serde_json::to_value(&standby).expect("json")]
        {
            assert_eq!(event_total(&payload), Some((participant, total)), "{payload}");
        }
        assert_eq!(event_total(&serde_json::json!({ "participant": "0x12", "total": "0x1" })), None);
    }
}
