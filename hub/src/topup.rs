//! Collateral top-ups: when the hub's free balance in an open basic channel falls below its
//! asset's `top_up_below`, the hub puts `top_up_amount` more on standby in the channel on
//! chain (through the outbox); once that is confirmed, the channel offers the client the next
//! state with the hub's balance raised, which the client countersigns after seeing the
//! standby on chain (`POST /v1/channels/{id}/top-up`, `Wallet::accept_top_up`). A standby
//! funds only a state whose raised total both signed: if the client never countersigns and
//! the channel ends with an earlier state, the asset holder returns it all to the hub.

use sqlx::PgPool;

use crate::chain::Action;
use crate::core::Rules;
use crate::db;
use crate::policy::top_up_due;

/// Starts a top-up in every open channel that needs one (at most `limit` channels looked
/// at, the most recently updated first). Returns how many it started.
pub async fn sweep_once(pool: &PgPool, rules: &Rules, limit: i64) -> anyhow::Result<usize> {
    if !rules.assets.iter().any(|a| a.top_up_below.is_some() && !a.top_up_amount.is_zero()) {
        return Ok(0);
    }
    let mut started = 0;
    for c in db::top_up_candidates(pool, limit).await? {
        for (k, asset) in c.outcome.assets.iter().enumerate() {
            let Some(config) = rules.assets.iter().find(|a| a.holder == *asset) else { continue };
            let Some(balances) = c.outcome.balances.get(k) else { continue };
            let required = c.required.get(asset).copied().unwrap_or_default();
            // Only a channel the hub lends in: one it did not fund at open gets no collateral
            // later either (a client could otherwise draw the hub's coins into any channel).
            if required.is_zero() {
                continue;
            }
            let free = balances[c.hub_index.index()];
            let Some(target) =
                top_up_due(free, required, config.top_up_below, config.top_up_amount, config.max_hub_deposit)
            else {
                continue;
            };
            let mut tx = pool.begin().await?;
            if let Some(standby) = db::start_top_up(&mut tx, c.id, *asset, c.hub, config.top_up_amount, target).await? {
                let action = Action::TopUp { channel: c.id, asset: *asset, amount: standby };
                action.enqueue(&mut tx, 0).await?;
                tracing::info!(channel = %c.id, %asset, %free, amount = %config.top_up_amount, "collateral top-up started");
                started += 1;
            }
            tx.commit().await?;
            break; // one top-up under way per channel
        }
    }
    Ok(started)
}
