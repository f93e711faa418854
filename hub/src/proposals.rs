//! Proposals whose validity ended unaccepted become `expired` (the virtual channel's machine
//! decides; this drives it): they stop counting against their proposer's caps and can no
//! longer be accepted. Counting ignores them from the moment their validity ends; this
//! sweep makes the status say so.

use anyhow::bail;
use ingrid_protocol::machine::{Effect, VirtualEvent, VirtualInput};
use sqlx::PgPool;

use crate::db;

/// Expires at most `limit` proposals whose validity ended by unix time `now`. Returns how
/// many it expired.
pub async fn expire_once(pool: &PgPool, now: u64, limit: i64) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let rows = db::lock_ended_proposals(&mut tx, now, limit).await?;
    let mut expired = 0;
    for row in &rows {
        let transition = row.book().apply(&VirtualInput::Expire, now)?;
        for effect in &transition.effects {
            match effect {
                Effect::StoreExpiry => {
                    db::end_proposal(&mut tx, row.view.id, VirtualEvent::Expire).await?;
                    expired += 1;
                }
                other => bail!("an expiry does not {other:?}"),
            }
        }
    }
    tx.commit().await?;
    Ok(expired)
}
