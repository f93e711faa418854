//! Collateral top-ups.

use super::*;

/// An open basic channel as the top-up sweep sees it.
#[derive(Debug, Clone)]
pub struct TopUpCandidate {
    /// Channel.
    pub id: B256,
    /// The hub's index.
    pub hub_index: Role,
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
            let hub_index = role(row.get::<i16, _>("hub_index"))?;
            let params = row.get::<Json<Params>, _>("params").0;
            let hub = params.participants[hub_index.index()];
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
