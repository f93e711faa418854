//! Postgres access: the hub's books (see `migrations/`). Every function takes the executor
//! it runs on, so callers group writes into one transaction.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, Bytes, U256};
use ingrid_client_sdk::api::{
    ChannelStatus, ChannelView, FullySignedState, Funding, StateRequest, VirtualProposal, VirtualStatus, VirtualView,
};
use ingrid_client_sdk::{Params, State};
use ingrid_protocol::machine::{ChannelEvent, Move, TopUpEvent, TopUpStatus, VirtualEvent};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Row, migrate::Migrator};

use crate::core::Requirement;

/// The schema migrations in `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Opens a pool of at most `max` connections.
pub async fn connect(url: &str, max: u32) -> sqlx::Result<PgPool> {
    PgPoolOptions::new().max_connections(max).acquire_timeout(std::time::Duration::from_secs(10)).connect(url).await
}

fn address(bytes: &[u8]) -> sqlx::Result<Address> {
    Address::try_from(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn b256(bytes: &[u8]) -> sqlx::Result<B256> {
    B256::try_from(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn u256(text: &str) -> sqlx::Result<U256> {
    text.parse::<U256>().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn status_name(status: ChannelStatus) -> &'static str {
    status.as_str()
}

fn parse_status(name: &str) -> sqlx::Result<ChannelStatus> {
    ChannelStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown channel status {name}").into()))
}

/// An event's move (decided by the protocol's machine) as the database names its statuses:
/// the source statuses and the target, for a compare-and-set.
fn sql_move<S: Copy + 'static>(m: Move<S>, name: fn(S) -> &'static str) -> (Vec<&'static str>, &'static str) {
    (m.from.iter().map(|s| name(*s)).collect(), name(m.to))
}

fn channel_move(event: ChannelEvent) -> (Vec<&'static str>, &'static str) {
    sql_move(event.moves(), ChannelStatus::as_str)
}

fn virtual_move(event: VirtualEvent) -> (Vec<&'static str>, &'static str) {
    sql_move(event.moves(), VirtualStatus::as_str)
}

fn top_up_move(event: TopUpEvent) -> (Vec<&'static str>, &'static str) {
    sql_move(event.moves(), TopUpStatus::as_str)
}

// ------------------------------------------------------------------ auth

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

/// The client of a live session.
pub async fn session_client(db: &PgPool, token_hash: B256) -> sqlx::Result<Option<Address>> {
    let row = sqlx::query("SELECT client FROM sessions WHERE token_hash = $1 AND expires_at > now()")
        .bind(token_hash.as_slice())
        .fetch_optional(db)
        .await?;
    row.map(|r| address(r.get::<&[u8], _>("client"))).transpose()
}

// ------------------------------------------------------------------ idempotency

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

// ------------------------------------------------------------------ channels

/// A basic channel's row, locked or read.
#[derive(Debug, Clone)]
pub struct ChannelRow {
    /// Channel id.
    pub id: B256,
    /// The client.
    pub client: Address,
    /// The hub's participant index.
    pub hub_index: usize,
    /// Params.
    pub params: Params,
    /// Status.
    pub status: ChannelStatus,
    /// Latest fully signed version.
    pub latest_version: u64,
}

fn channel_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<ChannelRow> {
    Ok(ChannelRow {
        id: b256(row.get::<&[u8], _>("id"))?,
        client: address(row.get::<&[u8], _>("client"))?,
        hub_index: row.get::<i16, _>("hub_index") as usize,
        params: row.get::<Json<Params>, _>("params").0,
        status: parse_status(row.get::<&str, _>("status"))?,
        latest_version: row.get::<i64, _>("latest_version") as u64,
    })
}

const CHANNEL_COLUMNS: &str = "id, client, hub_index, params, status::text AS status, latest_version";

/// Inserts a new basic channel in status `funding` with its deposit requirements.
/// Returns false (and writes nothing) if the id exists.
pub async fn insert_channel(
    db: &mut PgConnection,
    id: B256,
    client: Address,
    hub_index: usize,
    params: &Params,
    requirements: &[Requirement],
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO basic_channels (id, client, hub_index, params, latest_version) VALUES ($1, $2, $3, $4, 0)
         ON CONFLICT DO NOTHING",
    )
    .bind(id.as_slice())
    .bind(client.as_slice())
    .bind(hub_index as i16)
    .bind(Json(params))
    .execute(&mut *db)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    for r in requirements {
        sqlx::query(
            "INSERT INTO channel_funding (channel_id, asset, participant, required) VALUES ($1, $2, $3, $4::numeric)",
        )
        .bind(id.as_slice())
        .bind(r.asset.as_slice())
        .bind(r.participant.as_slice())
        .bind(r.amount.to_string())
        .execute(&mut *db)
        .await?;
    }
    Ok(true)
}

/// Appends a state signed by both (signatures in participant order).
pub async fn insert_state(db: &mut PgConnection, state: &State, digest: B256, sigs: [&Bytes; 2]) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO channel_states (channel_id, version, state, digest, sig0, sig1) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(state.channelId.as_slice())
    .bind(state.version as i64)
    .bind(Json(state))
    .bind(digest.as_slice())
    .bind(sigs[0].as_ref())
    .bind(sigs[1].as_ref())
    .execute(db)
    .await?;
    Ok(())
}

/// Locks a client's channel row for the rest of the transaction.
pub async fn lock_channel(db: &mut PgConnection, id: B256, client: Address) -> sqlx::Result<Option<ChannelRow>> {
    let sql = format!("SELECT {CHANNEL_COLUMNS} FROM basic_channels WHERE id = $1 AND client = $2 FOR UPDATE");
    let row = sqlx::query(&sql).bind(id.as_slice()).bind(client.as_slice()).fetch_optional(db).await?;
    row.as_ref().map(channel_row).transpose()
}

/// Reads a channel row without locking.
pub async fn channel(db: &mut PgConnection, id: B256) -> sqlx::Result<Option<ChannelRow>> {
    let sql = format!("SELECT {CHANNEL_COLUMNS} FROM basic_channels WHERE id = $1");
    let row = sqlx::query(&sql).bind(id.as_slice()).fetch_optional(db).await?;
    row.as_ref().map(channel_row).transpose()
}

/// A stored state with both signatures.
pub async fn state(db: &mut PgConnection, id: B256, version: u64) -> sqlx::Result<FullySignedState> {
    let row = sqlx::query("SELECT state, sig0, sig1 FROM channel_states WHERE channel_id = $1 AND version = $2")
        .bind(id.as_slice())
        .bind(version as i64)
        .fetch_one(db)
        .await?;
    Ok(FullySignedState {
        state: row.get::<Json<State>, _>("state").0,
        sigs: [Bytes::from(row.get::<Vec<u8>, _>("sig0")), Bytes::from(row.get::<Vec<u8>, _>("sig1"))],
    })
}

/// Moves a channel to `version` and `status`.
pub async fn set_latest(db: &mut PgConnection, id: B256, version: u64, status: ChannelStatus) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE basic_channels SET latest_version = $2, status = $3::channel_status, updated_at = now() WHERE id = $1",
    )
    .bind(id.as_slice())
    .bind(version as i64)
    .bind(status_name(status))
    .execute(db)
    .await?;
    Ok(())
}

/// The full view of channels: one (`id`), a client's (`client`), or all, newest first.
pub async fn channel_views(
    db: &mut PgConnection,
    id: Option<B256>,
    client: Option<Address>,
    limit: i64,
) -> sqlx::Result<Vec<ChannelView>> {
    let rows = sqlx::query(
        "SELECT c.id, c.params, c.status::text AS status, c.hub_index, c.settled, s.state, s.sig0, s.sig1,
                COALESCE((SELECT json_agg(json_build_object('asset', f.asset, 'participant', f.participant, 'amount', f.deposited::text))
                          FROM channel_funding f WHERE f.channel_id = c.id), '[]') AS funding,
                (SELECT json_agg(json_build_object('asset', t.asset, 'participant', t.participant, 'amount', t.amount::text))
                 FROM top_ups t WHERE t.channel_id = c.id AND t.status = 'confirmed') AS top_up
         FROM basic_channels c
         JOIN channel_states s ON s.channel_id = c.id AND s.version = c.latest_version
         WHERE ($1::bytea IS NULL OR c.id = $1) AND ($2::bytea IS NULL OR c.client = $2)
         ORDER BY c.created_at DESC, c.id
         LIMIT $3",
    )
    .bind(id.as_ref().map(|x| x.as_slice()))
    .bind(client.as_ref().map(|x| x.as_slice()))
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            let funding: serde_json::Value = row.get("funding");
            let top_up: Option<serde_json::Value> = row.get("top_up");
            let settled: Option<Json<Vec<[String; 2]>>> = row.get("settled");
            Ok(ChannelView {
                id: b256(row.get::<&[u8], _>("id"))?,
                params: row.get::<Json<Params>, _>("params").0,
                status: parse_status(row.get::<&str, _>("status"))?,
                hub_index: row.get::<i16, _>("hub_index") as u8,
                latest: FullySignedState {
                    state: row.get::<Json<State>, _>("state").0,
                    sigs: [Bytes::from(row.get::<Vec<u8>, _>("sig0")), Bytes::from(row.get::<Vec<u8>, _>("sig1"))],
                },
                funding: parse_funding(&funding)?,
                settled: settled
                    .map(|s| s.0.iter().map(|[a, b]| Ok([u256(a)?, u256(b)?])).collect::<sqlx::Result<Vec<_>>>())
                    .transpose()?,
                top_up: match top_up {
                    Some(t) => parse_funding(&t)?
                        .into_iter()
                        .next()
                        .map(|f| ingrid_client_sdk::api::TopUp { asset: f.asset, amount: f.amount }),
                    None => None,
                },
            })
        })
        .collect()
}

fn parse_funding(value: &serde_json::Value) -> sqlx::Result<Vec<Funding>> {
    // json_build_object renders bytea as "\\x…" hex text.
    fn hex_bytes(v: &serde_json::Value) -> sqlx::Result<Vec<u8>> {
        let s = v.as_str().unwrap_or_default();
        hex::decode(s.trim_start_matches("\\x")).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
    let items = value.as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|f| {
            Ok(Funding {
                asset: address(&hex_bytes(&f["asset"])?)?,
                participant: address(&hex_bytes(&f["participant"])?)?,
                amount: u256(f["amount"].as_str().unwrap_or("0"))?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------ chain effects

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

/// Opens a channel in `funding` whose every requirement is met (the machine's `Funded`).
/// Returns whether it opened.
pub async fn open_if_funded(db: &mut PgConnection, channel: B256) -> sqlx::Result<bool> {
    let (from, to) = channel_move(ChannelEvent::Funded);
    let n = sqlx::query(
        "UPDATE basic_channels SET status = $3::channel_status, updated_at = now()
         WHERE id = $1 AND status = ANY($2::channel_status[])
           AND NOT EXISTS (SELECT 1 FROM channel_funding WHERE channel_id = $1 AND deposited < required)",
    )
    .bind(channel.as_slice())
    .bind(from)
    .bind(to)
    .execute(db)
    .await?
    .rows_affected();
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

// ------------------------------------------------------------------ outbox

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

/// Marks an entry done.
pub async fn complete_outbox(db: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE outbox SET status = 'done', last_error = NULL, updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records a failed or not-yet-possible attempt: retried after `retry_secs`, or marked
/// failed for the operator when `give_up`.
pub async fn retry_outbox(db: &PgPool, id: i64, error: &str, retry_secs: f64, give_up: bool) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET last_error = $2, not_before = now() + make_interval(secs => $3),
                status = CASE WHEN $4 THEN 'failed'::outbox_status ELSE status END, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_secs)
    .bind(give_up)
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

/// The outbox, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxList {
    /// Entries.
    pub entries: Vec<OutboxView>,
}

/// The newest `limit` outbox entries.
pub async fn outbox_views(db: &PgPool, limit: i64) -> sqlx::Result<OutboxList> {
    let entries = sqlx::query_as(
        "SELECT id, kind, payload AS action, status::text AS status, attempts, last_error FROM outbox ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(OutboxList { entries })
}

// ------------------------------------------------------------------ virtual channels

/// A virtual channel's row.
#[derive(Debug, Clone)]
pub struct VirtualRow {
    /// The hub's view of it.
    pub view: VirtualView,
}

fn parse_virtual_status(name: &str) -> sqlx::Result<VirtualStatus> {
    VirtualStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown virtual status {name}").into()))
}

const VIRTUAL_COLUMNS: &str =
    "id, params, parent_proposer, parent_acceptor, initial, sig_proposer, sig_acceptor, proposed_parent,
    valid_until, status::text AS status, final_state, final_sig0, final_sig1, settled_proposer, settled_acceptor, fees";

fn virtual_row(row: &sqlx::postgres::PgRow, now: u64) -> sqlx::Result<VirtualRow> {
    let status = parse_virtual_status(row.get::<&str, _>("status"))?;
    let valid_until = row.get::<i64, _>("valid_until") as u64;
    let bytes = |name: &str| row.get::<Option<Vec<u8>>, _>(name).map(Bytes::from).unwrap_or_default();
    let final_state = row
        .get::<Option<Json<State>>, _>("final_state")
        .map(|s| FullySignedState { state: s.0, sigs: [bytes("final_sig0"), bytes("final_sig1")] });
    Ok(VirtualRow {
        view: VirtualView {
            id: b256(row.get::<&[u8], _>("id"))?,
            params: row.get::<Json<Params>, _>("params").0,
            status,
            valid_until,
            close_requested: status == VirtualStatus::Open && now >= valid_until,
            parents: [
                b256(row.get::<&[u8], _>("parent_proposer"))?,
                row.get::<Option<&[u8]>, _>("parent_acceptor").map(b256).transpose()?.unwrap_or_default(),
            ],
            initial: row.get::<Json<State>, _>("initial").0,
            initial_sigs: [bytes("sig_proposer"), bytes("sig_acceptor")],
            proposed_parent: row.get::<Json<StateRequest>, _>("proposed_parent").0,
            final_state,
            settled: [row.get("settled_proposer"), row.get("settled_acceptor")],
            fees: row.get::<Json<Vec<U256>>, _>("fees").0,
        },
    })
}

/// Inserts a proposed virtual channel; false (nothing written) if the id exists.
pub async fn insert_virtual(
    db: &mut PgConnection,
    proposal: &VirtualProposal,
    id: B256,
    parent: B256,
    fees: &[U256],
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "INSERT INTO virtual_channels (id, params, proposer, acceptor, parent_proposer, initial, sig_proposer, proposed_parent, valid_until, fees)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(id.as_slice())
    .bind(Json(&proposal.params))
    .bind(proposal.params.participants[0].as_slice())
    .bind(proposal.params.participants[1].as_slice())
    .bind(parent.as_slice())
    .bind(Json(&proposal.state))
    .bind(proposal.signature.as_ref())
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
    let sql = format!(
        "SELECT {VIRTUAL_COLUMNS} FROM virtual_channels WHERE id = $1 AND (proposer = $2 OR acceptor = $2) FOR UPDATE"
    );
    let row = sqlx::query(&sql).bind(id.as_slice()).bind(participant.as_slice()).fetch_optional(db).await?;
    row.as_ref().map(|r| virtual_row(r, now)).transpose()
}

/// The virtual channels of `participant` (one, with `id`), newest first.
pub async fn virtual_views(
    db: impl sqlx::PgExecutor<'_>,
    id: Option<B256>,
    participant: Address,
    now: u64,
    limit: i64,
) -> sqlx::Result<Vec<VirtualView>> {
    let sql = format!(
        "SELECT {VIRTUAL_COLUMNS} FROM virtual_channels
         WHERE (proposer = $2 OR acceptor = $2) AND ($1::bytea IS NULL OR id = $1)
         ORDER BY created_at DESC, id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(id.as_ref().map(|x| x.as_slice()))
        .bind(participant.as_slice())
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(|r| virtual_row(r, now).map(|v| v.view)).collect()
}

/// Marks a proposal accepted (the machine's `Accept`): open, with the acceptor's parent and
/// signature.
pub async fn open_virtual(db: &mut PgConnection, id: B256, parent: B256, signature: &Bytes) -> sqlx::Result<()> {
    let (from, to) = virtual_move(VirtualEvent::Accept);
    sqlx::query(
        "UPDATE virtual_channels SET status = $5::virtual_status, parent_acceptor = $2, sig_acceptor = $3, updated_at = now()
         WHERE id = $1 AND status = ANY($4::virtual_status[])",
    )
    .bind(id.as_slice())
    .bind(parent.as_slice())
    .bind(signature.as_ref())
    .bind(from)
    .bind(to)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks a proposal rejected (the machine's `Reject`).
pub async fn reject_virtual(db: &mut PgConnection, id: B256) -> sqlx::Result<()> {
    let (from, to) = virtual_move(VirtualEvent::Reject);
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

/// Records a close: the final state and which parents are settled now.
pub async fn close_virtual(
    db: &mut PgConnection,
    id: B256,
    last: &FullySignedState,
    settled: [bool; 2],
) -> sqlx::Result<()> {
    let status = if settled[0] && settled[1] { "closed" } else { "closing" };
    sqlx::query(
        "UPDATE virtual_channels SET final_state = $2, final_sig0 = $3, final_sig1 = $4, settled_proposer = $5,
                settled_acceptor = $6, status = $7::virtual_status, updated_at = now()
         WHERE id = $1",
    )
    .bind(id.as_slice())
    .bind(Json(&last.state))
    .bind(last.sigs[0].as_ref())
    .bind(last.sigs[1].as_ref())
    .bind(settled[0])
    .bind(settled[1])
    .bind(status)
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

/// How long an idempotency key's answer is kept for retries.
pub const IDEMPOTENCY_RETENTION_HOURS: i32 = 24;

/// Deletes what has expired: sessions, used login challenges (past their expiry they can no
/// longer be replayed anyway), and idempotency answers older than the retention. Returns
/// the number of rows deleted.
pub async fn prune_expired(db: &PgPool) -> sqlx::Result<u64> {
    let mut deleted = 0;
    deleted += sqlx::query("DELETE FROM sessions WHERE expires_at < now()").execute(db).await?.rows_affected();
    deleted += sqlx::query("DELETE FROM used_challenges WHERE expires_at < now()").execute(db).await?.rows_affected();
    deleted += sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)")
        .bind(IDEMPOTENCY_RETENTION_HOURS)
        .execute(db)
        .await?
        .rows_affected();
    Ok(deleted)
}

// ------------------------------------------------------------------ disputes

/// A virtual channel's row, whoever asks.
pub async fn virtual_by_id(db: &mut PgConnection, id: B256, now: u64) -> sqlx::Result<Option<VirtualRow>> {
    let sql = format!("SELECT {VIRTUAL_COLUMNS} FROM virtual_channels WHERE id = $1");
    let row = sqlx::query(&sql).bind(id.as_slice()).fetch_optional(db).await?;
    row.as_ref().map(|r| virtual_row(r, now)).transpose()
}

/// The newest state signed by both that the hub holds of each virtual channel in `ids`
/// (the final state if one was recorded, else the opening state), with its params.
pub async fn best_virtual_states(
    db: &mut PgConnection,
    ids: &[B256],
) -> sqlx::Result<HashMap<B256, (Params, FullySignedState)>> {
    let keys: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
    let rows = sqlx::query(
        "SELECT id, params, initial, sig_proposer, sig_acceptor, final_state, final_sig0, final_sig1
         FROM virtual_channels WHERE id = ANY($1) AND sig_acceptor IS NOT NULL",
    )
    .bind(&keys)
    .fetch_all(db)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let bytes = |name: &str| row.get::<Option<Vec<u8>>, _>(name).map(Bytes::from).unwrap_or_default();
        let best = match row.get::<Option<Json<State>>, _>("final_state") {
            Some(f) => FullySignedState { state: f.0, sigs: [bytes("final_sig0"), bytes("final_sig1")] },
            None => FullySignedState {
                state: row.get::<Json<State>, _>("initial").0,
                sigs: [bytes("sig_proposer"), bytes("sig_acceptor")],
            },
        };
        out.insert(b256(row.get::<&[u8], _>("id"))?, (row.get::<Json<Params>, _>("params").0, best));
    }
    Ok(out)
}

/// A registration on chain, as the watcher records it.
#[derive(Debug, Clone)]
pub struct DisputeRow {
    /// `basic` or `virtual`.
    pub kind: String,
    /// The latest registered version.
    pub registered_version: u64,
    /// Its digest.
    pub registered_digest: B256,
    /// Whether it is final (fixed at once).
    pub registered_final: bool,
    /// Until when it can be refuted.
    pub timeout: u64,
    /// `open`, `refuted` or `concluded`.
    pub result: String,
}

/// A registration or refutation seen on chain, as [`record_dispute`] stores it.
#[derive(Debug, Clone)]
pub struct SeenRegistration {
    /// The adjudicator's record: a basic channel's id, a virtual channel's
    /// `subChannelKey(id, assets, totals)`.
    pub record_key: B256,
    /// The channel.
    pub channel: B256,
    /// `basic` or `virtual`.
    pub kind: &'static str,
    /// Whether it is the record the hub's channels read (false: a virtual channel's state with
    /// other totals than its parents lock, kept for the operator only).
    pub ours: bool,
    /// The registered version.
    pub version: u64,
    /// Its digest (`hashState`).
    pub digest: B256,
    /// Whether the registered state is final.
    pub is_final: bool,
    /// Until when the record can be refuted.
    pub timeout: u64,
    /// The newest version the hub held.
    pub hub_version: u64,
    /// The block of the event.
    pub block: u64,
}

/// Records a registration (or a refutation) seen on chain, keyed by its record. Versions and
/// timeouts are uint64 on chain and stored as such (NUMERIC), whatever their value.
pub async fn record_dispute(db: &mut PgConnection, r: &SeenRegistration) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO disputes (record_key, channel_id, kind, ours, registered_version, registered_digest,
                               registered_final, timeout, hub_version, first_block)
         VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8::numeric, $9::numeric, $10)
         ON CONFLICT (record_key) DO UPDATE SET
            result = CASE WHEN disputes.result = 'open' AND disputes.registered_version < disputes.hub_version
                               AND EXCLUDED.registered_version >= disputes.hub_version
                          THEN 'refuted' ELSE disputes.result END,
            registered_version = EXCLUDED.registered_version, registered_digest = EXCLUDED.registered_digest,
            registered_final = EXCLUDED.registered_final, timeout = EXCLUDED.timeout, updated_at = now()
         WHERE EXCLUDED.registered_version > disputes.registered_version",
    )
    .bind(r.record_key.as_slice())
    .bind(r.channel.as_slice())
    .bind(r.kind)
    .bind(r.ours)
    .bind(r.version.to_string())
    .bind(r.digest.as_slice())
    .bind(r.is_final)
    .bind(r.timeout.to_string())
    .bind(r.hub_version.to_string())
    .bind(i64::try_from(r.block).unwrap_or(i64::MAX))
    .execute(db)
    .await?;
    Ok(())
}

/// Parses a NUMERIC(20, 0) column read as text into the uint64 it holds.
pub(crate) fn u64_column(row: &sqlx::postgres::PgRow, name: &str) -> sqlx::Result<u64> {
    let text: String = row.try_get(name)?;
    text.parse()
        .map_err(|e: std::num::ParseIntError| sqlx::Error::ColumnDecode { index: name.into(), source: e.into() })
}

/// The recorded registration of the record `record_key`, if any.
pub async fn dispute_of(db: &mut PgConnection, record_key: B256) -> sqlx::Result<Option<DisputeRow>> {
    let row = sqlx::query(
        "SELECT kind, registered_version::text AS registered_version, registered_digest, registered_final,
                timeout::text AS timeout, result
         FROM disputes WHERE record_key = $1",
    )
    .bind(record_key.as_slice())
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(DisputeRow {
            kind: r.get("kind"),
            registered_version: u64_column(&r, "registered_version")?,
            registered_digest: b256(r.get::<&[u8], _>("registered_digest"))?,
            registered_final: r.get("registered_final"),
            timeout: u64_column(&r, "timeout")?,
            result: r.get("result"),
        })
    })
    .transpose()
}

/// Virtual channels whose dispute rows were written before disputes were keyed by record
/// (their record key is still unknown), with their params and opening state.
pub async fn disputes_without_key(db: &PgPool) -> sqlx::Result<Vec<(B256, Params, State)>> {
    let rows = sqlx::query(
        "SELECT v.id, v.params, v.initial FROM disputes d JOIN virtual_channels v ON v.id = d.channel_id
         WHERE d.record_key IS NULL",
    )
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                b256(r.get::<&[u8], _>("id"))?,
                r.get::<Json<Params>, _>("params").0,
                r.get::<Json<State>, _>("initial").0,
            ))
        })
        .collect()
}

/// Sets the record key of a virtual channel's dispute row written before disputes were keyed
/// by record.
pub async fn set_dispute_key(db: &PgPool, channel: B256, record_key: B256) -> sqlx::Result<()> {
    sqlx::query("UPDATE disputes SET record_key = $2 WHERE channel_id = $1 AND record_key IS NULL")
        .bind(channel.as_slice())
        .bind(record_key.as_slice())
        .execute(db)
        .await?;
    Ok(())
}

/// A basic channel registered on chain takes no more off-chain updates (the machine's
/// `Registered`: `closing`).
pub async fn mark_registered(db: &mut PgConnection, channel: B256) -> sqlx::Result<()> {
    let (from, to) = channel_move(ChannelEvent::Registered);
    sqlx::query(
        "UPDATE basic_channels SET status = $3::channel_status, updated_at = now()
         WHERE id = $1 AND status = ANY($2::channel_status[])",
    )
    .bind(channel.as_slice())
    .bind(from)
    .bind(to)
    .execute(db)
    .await?;
    Ok(())
}

/// After basic channel `channel` concluded on chain: its dispute and those of the virtual
/// channels it settled are concluded, and those virtual channels are settled on its side.
pub async fn record_dispute_conclusion(db: &mut PgConnection, channel: B256) -> sqlx::Result<()> {
    // The machine's `Settled { both }`: the same sources either way, the target by `both`.
    let (from, both) = virtual_move(VirtualEvent::Settled { both: true });
    let (_, one) = virtual_move(VirtualEvent::Settled { both: false });
    let settled: Vec<Vec<u8>> = sqlx::query_scalar(
        "UPDATE virtual_channels SET
            settled_proposer = settled_proposer OR parent_proposer = $1,
            settled_acceptor = settled_acceptor OR parent_acceptor = $1,
            status = CASE WHEN (settled_proposer OR parent_proposer = $1) AND (settled_acceptor OR parent_acceptor = $1)
                          THEN $3::virtual_status ELSE $4::virtual_status END,
            updated_at = now()
         WHERE (parent_proposer = $1 OR parent_acceptor = $1) AND status = ANY($2::virtual_status[])
         RETURNING id",
    )
    .bind(channel.as_slice())
    .bind(from)
    .bind(both)
    .bind(one)
    .fetch_all(&mut *db)
    .await?;
    sqlx::query("UPDATE disputes SET result = 'concluded', updated_at = now() WHERE channel_id = ANY($1)")
        .bind([vec![channel.to_vec()], settled].concat())
        .execute(db)
        .await?;
    Ok(())
}

/// Enqueues an action once, due `delay_secs` from now.
pub async fn enqueue_after<T: Serialize>(
    db: &mut PgConnection,
    dedup_key: &str,
    kind: &str,
    priority: i16,
    channel: Option<B256>,
    action: &T,
    delay_secs: u64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (dedup_key, kind, priority, channel_id, payload, not_before)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(dedup_key)
    .bind(kind)
    .bind(priority)
    .bind(channel.as_ref().map(|x| x.as_slice()))
    .bind(Json(action))
    .bind(delay_secs as f64)
    .execute(db)
    .await?;
    Ok(())
}

/// Open virtual channels past their validity by more than `grace` seconds at `now` that
/// are not registered on chain, with their parents.
pub async fn overdue_virtual(db: &PgPool, now: u64, grace: u64, limit: i64) -> sqlx::Result<Vec<(B256, [B256; 2])>> {
    let rows = sqlx::query(
        "SELECT v.id, v.parent_proposer, v.parent_acceptor FROM virtual_channels v
         WHERE v.status = 'open' AND v.valid_until + $2 < $1
           AND NOT EXISTS (SELECT 1 FROM disputes d WHERE d.channel_id = v.id AND d.ours)
         ORDER BY v.valid_until LIMIT $3",
    )
    .bind(now as i64)
    .bind(grace as i64)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            let parent =
                |name: &str| r.get::<Option<&[u8]>, _>(name).map(b256).transpose().map(Option::unwrap_or_default);
            Ok((b256(r.get::<&[u8], _>("id"))?, [parent("parent_proposer")?, parent("parent_acceptor")?]))
        })
        .collect()
}

// ------------------------------------------------------------------ operator

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

// ------------------------------------------------------------------ policy

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

// ------------------------------------------------------------------ top-ups

/// An open basic channel as the top-up sweep sees it.
#[derive(Debug, Clone)]
pub struct TopUpCandidate {
    /// Channel.
    pub id: B256,
    /// The hub's index.
    pub hub_index: usize,
    /// The hub's address.
    pub hub: Address,
    /// The latest outcome.
    pub outcome: ingrid_client_sdk::Allocation,
    /// The hub's required holding per asset (as funded, with earlier top-ups).
    pub required: HashMap<Address, U256>,
}

/// Open basic channels without a top-up under way (at most `limit`), for the sweep.
pub async fn top_up_candidates(db: &PgPool, limit: i64) -> sqlx::Result<Vec<TopUpCandidate>> {
    let rows = sqlx::query(
        "SELECT b.id, b.hub_index, b.params, s.state->'outcome' AS outcome,
                COALESCE((SELECT json_agg(json_build_object('asset', f.asset, 'participant', f.participant, 'amount', f.required::text))
                          FROM channel_funding f WHERE f.channel_id = b.id), '[]') AS funding
         FROM basic_channels b JOIN channel_states s ON s.channel_id = b.id AND s.version = b.latest_version
         WHERE b.status = 'open'
           AND NOT EXISTS (SELECT 1 FROM top_ups t WHERE t.channel_id = b.id AND t.status <> 'applied')
         ORDER BY b.updated_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            let hub_index = row.get::<i16, _>("hub_index") as usize;
            let params = row.get::<Json<Params>, _>("params").0;
            let hub = params.participants[hub_index];
            let funding = parse_funding(&row.get::<serde_json::Value, _>("funding"))?;
            Ok(TopUpCandidate {
                id: b256(row.get::<&[u8], _>("id"))?,
                hub_index,
                hub,
                outcome: row.get::<Json<ingrid_client_sdk::Allocation>, _>("outcome").0,
                required: funding.into_iter().filter(|f| f.participant == hub).map(|f| (f.asset, f.amount)).collect(),
            })
        })
        .collect()
}

/// Starts a top-up of `amount` in `channel`: records it and raises the hub's required
/// collateral (deposit and standby) to `target`. Returns the hub's standby target (all its
/// top-ups of this channel and asset), or `None` if a top-up is already under way.
pub async fn start_top_up(
    db: &mut PgConnection,
    channel: B256,
    asset: Address,
    hub: Address,
    amount: U256,
    target: U256,
) -> sqlx::Result<Option<U256>> {
    let standby: Option<String> = sqlx::query_scalar(
        "INSERT INTO top_ups (channel_id, asset, participant, amount, target)
         SELECT $1, $2, $3, $4::numeric,
                $4::numeric + COALESCE((SELECT SUM(amount) FROM top_ups WHERE channel_id = $1 AND asset = $2), 0)
         ON CONFLICT DO NOTHING RETURNING target::text",
    )
    .bind(channel.as_slice())
    .bind(asset.as_slice())
    .bind(hub.as_slice())
    .bind(amount.to_string())
    .fetch_optional(&mut *db)
    .await?;
    let Some(standby) = standby else { return Ok(None) };
    sqlx::query(
        "INSERT INTO channel_funding (channel_id, asset, participant, required) VALUES ($1, $2, $3, $4::numeric)
         ON CONFLICT (channel_id, asset, participant) DO UPDATE SET required = EXCLUDED.required",
    )
    .bind(channel.as_slice())
    .bind(asset.as_slice())
    .bind(hub.as_slice())
    .bind(target.to_string())
    .execute(db)
    .await?;
    u256(&standby).map(Some)
}

/// The standby of `participant` reached `total`: a top-up waiting for it is confirmed.
pub async fn confirm_top_up(
    db: &mut PgConnection,
    channel: B256,
    asset: Address,
    participant: Address,
    total: U256,
) -> sqlx::Result<bool> {
    let (from, to) = top_up_move(TopUpEvent::StandbyConfirmed);
    let n = sqlx::query(
        "UPDATE top_ups SET status = $6, updated_at = now()
         WHERE channel_id = $1 AND asset = $2 AND participant = $3 AND status = ANY($5) AND target <= $4::numeric",
    )
    .bind(channel.as_slice())
    .bind(asset.as_slice())
    .bind(participant.as_slice())
    .bind(total.to_string())
    .bind(from)
    .bind(to)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// The confirmed top-up of `channel` waiting for the client's signature, if any.
pub async fn confirmed_top_up(db: &mut PgConnection, channel: B256) -> sqlx::Result<Option<(Address, U256)>> {
    let row = sqlx::query(
        "SELECT asset, amount::text AS amount FROM top_ups WHERE channel_id = $1 AND status = 'confirmed' LIMIT 1",
    )
    .bind(channel.as_slice())
    .fetch_optional(db)
    .await?;
    row.map(|r| Ok((address(r.get::<&[u8], _>("asset"))?, u256(r.get::<&str, _>("amount"))?))).transpose()
}

/// Marks the confirmed top-up of `channel` in `asset` applied.
pub async fn apply_top_up(db: &mut PgConnection, channel: B256, asset: Address) -> sqlx::Result<()> {
    let (from, to) = top_up_move(TopUpEvent::Countersigned);
    sqlx::query(
        "UPDATE top_ups SET status = $4, updated_at = now() WHERE channel_id = $1 AND asset = $2 AND status = ANY($3)",
    )
    .bind(channel.as_slice())
    .bind(asset.as_slice())
    .bind(from)
    .bind(to)
    .execute(db)
    .await?;
    Ok(())
}
