//! Basic channels and their signed states.

use super::*;

/// A basic channel's row, locked or read.
#[derive(Debug, Clone)]
pub struct ChannelRow {
    /// Channel id.
    pub id: B256,
    /// The client.
    pub client: Address,
    /// The hub's participant index.
    pub hub_index: Role,
    /// Params.
    pub params: Params,
    /// Status.
    pub status: ChannelStatus,
    /// Latest fully signed version.
    pub latest_version: u64,
}

pub(super) fn channel_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<ChannelRow> {
    Ok(ChannelRow {
        id: b256(row.get::<&[u8], _>("id"))?,
        client: address(row.get::<&[u8], _>("client"))?,
        hub_index: role(row.get::<i16, _>("hub_index"))?,
        params: row.get::<Json<Params>, _>("params").0,
        status: parse_status(row.get::<&str, _>("status"))?,
        latest_version: row.get::<i64, _>("latest_version") as u64,
    })
}

pub(super) const CHANNEL_COLUMNS: &str = "id, client, hub_index, params, status::text AS status, latest_version";

/// Inserts a new basic channel in status `funding` with its deposit requirements.
/// Returns false (and writes nothing) if the id exists.
pub async fn insert_channel(
    db: &mut PgConnection,
    id: B256,
    client: Address,
    hub_index: Role,
    params: &Params,
    requirements: &[Requirement],
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO basic_channels (id, client, hub_index, params, latest_version) VALUES ($1, $2, $3, $4, 0)
         ON CONFLICT DO NOTHING",
    )
    .bind(id.as_slice())
    .bind(client.as_slice())
    .bind(hub_index.index() as i16)
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

/// The full view of channels: one (`id`), a client's (`client`), or all, newest first.
pub async fn channel_views(
    db: &mut PgConnection,
    id: Option<B256>,
    client: Option<Address>,
    limit: i64,
) -> sqlx::Result<Vec<ChannelView>> {
    Ok(channel_rows(db, id, client, None, limit).await?.into_iter().map(|(_, v)| v).collect())
}

/// A page of a client's channels (`client`) or of all, newest first, after `after`.
pub async fn channel_page(
    db: &mut PgConnection,
    client: Option<Address>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Page<ChannelView>> {
    Ok(page_of(channel_rows(db, None, client, after, limit + 1).await?, limit))
}

async fn channel_rows(
    db: &mut PgConnection,
    id: Option<B256>,
    client: Option<Address>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<(Cursor, ChannelView)>> {
    let sql = format!(
        "SELECT {cursor}, c.id, c.params, c.status::text AS status, c.hub_index, c.settled, s.state, s.sig0, s.sig1,
                COALESCE((SELECT json_agg(json_build_object('asset', f.asset, 'participant', f.participant, 'amount', f.deposited::text))
                          FROM channel_funding f WHERE f.channel_id = c.id), '[]') AS funding,
                (SELECT json_agg(json_build_object('asset', t.asset, 'participant', t.participant, 'amount', t.amount::text))
                 FROM top_ups t WHERE t.channel_id = c.id AND t.status = 'confirmed') AS top_up
         FROM basic_channels c
         JOIN channel_states s ON s.channel_id = c.id AND s.version = c.latest_version
         WHERE ($1::bytea IS NULL OR c.id = $1) AND ($2::bytea IS NULL OR c.client = $2) AND {after}
         ORDER BY c.created_at DESC, c.id
         LIMIT $3",
        cursor = cursor_micros("c"),
        after = after_cursor("c", 4, 5),
    );
    let rows = sqlx::query(&sql)
        .bind(id.as_ref().map(|x| x.as_slice()))
        .bind(client.as_ref().map(|x| x.as_slice()))
        .bind(limit)
        .bind(after.map(|c| c.micros))
        .bind(after.map(|c| c.id.to_vec()))
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|row| {
            let funding: serde_json::Value = row.get("funding");
            let top_up: Option<serde_json::Value> = row.get("top_up");
            let settled: Option<Json<Vec<[String; 2]>>> = row.get("settled");
            Ok((
                cursor_of(row)?,
                ChannelView {
                    id: b256(row.get::<&[u8], _>("id"))?,
                    params: row.get::<Json<Params>, _>("params").0,
                    status: parse_status(row.get::<&str, _>("status"))?,
                    hub_index: role(row.get::<i16, _>("hub_index"))?,
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
                },
            ))
        })
        .collect()
}

pub(super) fn parse_funding(value: &serde_json::Value) -> sqlx::Result<Vec<Funding>> {
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
