//! Disputes: registrations seen on chain and the hub's answers.

use super::*;

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
        "SELECT id, params, initial, initial_sigs, final_state, final_sig0, final_sig1
         FROM virtual_channels WHERE id = ANY($1) AND array_position(initial_sigs, NULL) IS NULL",
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
                sigs: pair(
                    &row.get::<Vec<Vec<u8>>, _>("initial_sigs").into_iter().map(Bytes::from).collect::<Vec<_>>(),
                ),
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
    /// Whether the registered state is the hub's newest (version and digest): an app's forced
    /// move to the hub's version is not the hub's state and refutes nothing.
    pub hubs_state: bool,
    /// The block of the event.
    pub block: u64,
}

/// Records a registration (or a refutation) seen on chain, keyed by its record. Versions and
/// timeouts are uint64 on chain and stored as such (NUMERIC), whatever their value.
pub async fn record_dispute(db: &mut PgConnection, r: &SeenRegistration) -> sqlx::Result<()> {
    // The dispute machine decides the result from what is recorded (locked until commit).
    let prior = sqlx::query(
        "SELECT result, registered_version::text AS registered_version, hub_version::text AS hub_version
         FROM disputes WHERE record_key = $1 FOR UPDATE",
    )
    .bind(r.record_key.as_slice())
    .fetch_optional(&mut *db)
    .await?;
    let result = match &prior {
        None => DisputeResult::Open,
        Some(p) => {
            let stored = p.get::<&str, _>("result");
            let result = DisputeResult::parse(stored)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown dispute result {stored}").into()))?;
            let (before, hub_version) = (u64_column(p, "registered_version")?, u64_column(p, "hub_version")?);
            dispute(
                result,
                DisputeEvent::Registered { before, after: r.version, hub_version, hubs_state: r.hubs_state },
            )
        }
    };
    sqlx::query(
        "INSERT INTO disputes (record_key, channel_id, kind, ours, registered_version, registered_digest,
                               registered_final, timeout, hub_version, first_block, result)
         VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8::numeric, $9::numeric, $10, $11)
         ON CONFLICT (record_key) DO UPDATE SET
            result = EXCLUDED.result,
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
    .bind(result.as_str())
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
        "UPDATE virtual_channels v SET
            settled = s.settled,
            status = CASE WHEN s.all_settled THEN $3::virtual_status ELSE $4::virtual_status END,
            updated_at = now()
         FROM (SELECT id,
                      array_agg(u.settled OR coalesce(u.parent = $1, false) ORDER BY u.i) AS settled,
                      bool_and(u.settled OR coalesce(u.parent = $1, false)) AS all_settled
               FROM virtual_channels, unnest(parents, settled) WITH ORDINALITY AS u (parent, settled, i)
               WHERE parents @> ARRAY[$1::bytea]
               GROUP BY id) s
         WHERE v.id = s.id AND v.status = ANY($2::virtual_status[])
         RETURNING v.id",
    )
    .bind(channel.as_slice())
    .bind(from)
    .bind(both)
    .bind(one)
    .fetch_all(&mut *db)
    .await?;
    let (from, to) = sql_move(DisputeEvent::concluded_moves(), DisputeResult::as_str);
    sqlx::query("UPDATE disputes SET result = $3, updated_at = now() WHERE channel_id = ANY($1) AND result = ANY($2)")
        .bind([vec![channel.to_vec()], settled].concat())
        .bind(from)
        .bind(to)
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
pub async fn overdue_virtual(db: &PgPool, now: u64, grace: u64, limit: i64) -> sqlx::Result<Vec<(B256, Vec<B256>)>> {
    let rows = sqlx::query(
        "SELECT v.id, v.parents FROM virtual_channels v
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
            let parents = r.get::<Vec<Option<Vec<u8>>>, _>("parents");
            let parents = parents.iter().flatten().map(|p| b256(p)).collect::<sqlx::Result<Vec<_>>>()?;
            Ok((b256(r.get::<&[u8], _>("id"))?, parents))
        })
        .collect()
}
