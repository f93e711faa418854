//! One leader among the hub processes sharing a database: the one holding a Postgres
//! session-level advisory lock runs the chain watcher, the outbox and the expiry sweep.
//! The lock lives on a connection of its own; when the leader dies, Postgres drops the
//! connection and the lock with it, and another process takes over within one poll.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The advisory lock key of Ingrid's leader ("INGRID01" as an integer).
pub const LOCK_KEY: i64 = 0x494E_4752_4944_3031;

/// Runs `work` whenever this process holds the leader lock, until `stop` turns true. `work`
/// gets a stop signal of its own that turns true when leadership is lost (the lock's
/// connection failed) or the process stops; its tasks are awaited before trying again.
/// `leading` tells whether this process leads right now.
pub async fn run<F, Fut>(
    database_url: String,
    poll: Duration,
    leading: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
    work: F,
) where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Vec<JoinHandle<()>>>,
{
    let mut idle: Option<PgConnection> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        match try_lead(&database_url, idle.take()).await {
            Ok(Ok(mut conn)) => {
                tracing::info!("leader: this process runs the watcher and the outbox");
                leading.store(true, Ordering::Relaxed);
                let (inner_stop, inner) = watch::channel(false);
                let tasks = work(inner).await;
                loop {
                    let stopped = tokio::select! {
                        _ = stop.wait_for(|s| *s) => true,
                        _ = tokio::time::sleep(poll) => false,
                    };
                    if stopped {
                        break;
                    }
                    if let Err(e) = crate::db::ping(&mut conn).await {
                        tracing::error!(error = %e, "leader: lost the lock's connection; stepping down");
                        break;
                    }
                }
                let _ = inner_stop.send(true);
                for task in tasks {
                    let _ = task.await;
                }
                leading.store(false, Ordering::Relaxed);
                // Closing the connection releases the lock at once.
                let _ = conn.close().await;
            }
            // Another process leads: keep the connection for the next try.
            Ok(Err(conn)) => idle = Some(conn),
            Err(e) => tracing::warn!(error = %e, "leader: cannot reach the database"),
        }
        let stopped = tokio::select! {
            _ = stop.wait_for(|s| *s) => true,
            _ = tokio::time::sleep(poll) => false,
        };
        if stopped {
            return;
        }
    }
}

/// Tries to take the leader lock on `conn` (or a new connection): `Ok(conn)` holding it,
/// `Err(conn)` if another process holds it.
async fn try_lead(database_url: &str, conn: Option<PgConnection>) -> sqlx::Result<Result<PgConnection, PgConnection>> {
    let mut conn = match conn {
        Some(conn) => conn,
        None => PgConnection::connect(database_url).await?,
    };
    let got = crate::db::try_advisory_lock(&mut conn, LOCK_KEY).await?;
    Ok(if got { Ok(conn) } else { Err(conn) })
}
