//! Background workers that drain queues living in the database: runs, connector jobs,
//! re-embeddings and webhook deliveries; and the periodic ones: the announcer of keys'
//! expiry and the audit log's retention. Work survives restarts; on PostgreSQL several
//! instances share the queues, each row claimed by exactly one (`FOR UPDATE SKIP LOCKED`,
//! in `db::queue`).

pub mod audit_retention;
pub mod deliveries;
pub mod jobs;
pub mod key_expiry;
pub mod reembeddings;
pub mod runs;

use std::{future::Future, sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::Notify;

use crate::db::queue::{claim, Lease, QueueTable};

/// Runs `job` every `every` until `shutdown`, logging (as `what`) a failed round: the next
/// round tries again.
pub fn every<F, Fut, T, E>(
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
    what: &'static str,
    job: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            if let Err(e) = job().await {
                tracing::warn!(error = %e, "{what}");
            }
        }
    });
}

/// How often an idle worker looks for work another instance queued.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Drains `table` for as long as the process runs: claims each claimable row under a
/// `lease` held while `work` runs on it (`what` names that work in the log when it fails),
/// then idles until woken or the poll interval passes. The one loop of every worker.
pub fn drain<W, Fut>(
    db: DatabaseConnection,
    table: &'static QueueTable,
    lease: Duration,
    wake: Arc<Notify>,
    what: &'static str,
    work: W,
) where
    W: Fn(Lease) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), DbErr>> + Send,
{
    tokio::spawn(async move {
        loop {
            loop {
                match claim(&db, table, lease).await {
                    Ok(Some(claimed)) => {
                        let held = Lease::hold(&db, table, claimed, lease);
                        let id = held.id().to_string();
                        if let Err(e) = work(held).await {
                            tracing::error!(%id, error = %e, "{what}");
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(table = table.name, error = %e, "claiming queued work");
                        break;
                    }
                }
            }
            idle(&wake).await;
        }
    });
}

/// Waits for a wake-up or the poll interval, whichever comes first.
pub async fn idle(wake: &Arc<Notify>) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(POLL_INTERVAL) => {}
    }
}
