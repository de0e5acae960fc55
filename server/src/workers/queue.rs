//! Claiming the next queued row of a table, atomically, on SQLite and PostgreSQL.

use std::{sync::Arc, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::sync::Notify;

/// How often an idle worker looks for work another instance queued.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Moves the oldest row of `table` with `status = 'queued'` (and `extra`, an SQL condition
/// or `TRUE`) to `running`; returns its id. Ids sort by creation time.
pub async fn claim(
    db: &DatabaseConnection,
    table: &str,
    extra: &str,
) -> Result<Option<String>, DbErr> {
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE {table} SET status = 'running' \
         WHERE status = 'queued' AND id = (\
           SELECT id FROM {table} WHERE status = 'queued' AND ({extra}) ORDER BY id LIMIT 1{lock}\
         ) RETURNING id"
    );
    let row = db.query_one(Statement::from_string(backend, sql)).await?;
    row.map(|r| r.try_get_by_index::<String>(0)).transpose()
}

/// Waits for a wake-up or the poll interval, whichever comes first.
pub async fn idle(wake: &Arc<Notify>) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(POLL_INTERVAL) => {}
    }
}

/// Cancels a queued or running row of `table`; false when it was in another status.
pub async fn cancel(db: &DatabaseConnection, table: &str, id: &str) -> Result<bool, DbErr> {
    use sea_orm::sea_query::{Alias, Expr, Query};
    let statement = Query::update()
        .table(Alias::new(table))
        .values([
            (Alias::new("status"), "cancelled".into()),
            (Alias::new("finished_at"), chrono::Utc::now().into()),
        ])
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .and_where(Expr::col(Alias::new("status")).is_in(["queued", "running"]))
        .to_owned();
    let result = db
        .execute(db.get_database_backend().build(&statement))
        .await?;
    Ok(result.rows_affected() == 1)
}
