//! Background workers that drain queues living in the database: runs, connector jobs and
//! webhook deliveries. Work survives restarts; on PostgreSQL several instances share the
//! queues, each row claimed by exactly one (`FOR UPDATE SKIP LOCKED`, in `db::queue`).

pub mod deliveries;
pub mod jobs;
pub mod runs;

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

/// How often an idle worker looks for work another instance queued.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Waits for a wake-up or the poll interval, whichever comes first.
pub async fn idle(wake: &Arc<Notify>) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(POLL_INTERVAL) => {}
    }
}
