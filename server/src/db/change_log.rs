//! Compaction of `segment_changes`, the log every instance's search copy follows.
//!
//! The log would grow with every ingest batch forever. Compaction keeps the newest
//! `retained` changes and deletes the rest, recording how far it went (the horizon) in
//! `sequence_counters` (`segment_changes_compacted`) in the same transaction. A search copy
//! whose cursor is behind the horizon has missed changes that no longer exist: it rebuilds
//! from the segments themselves, which the log only points at.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};

const HORIZON: &str = "segment_changes_compacted";

/// The highest sequence number compaction has deleted through (0 before any).
pub async fn compacted_through(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT value FROM sequence_counters WHERE name = '{HORIZON}'"),
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    })
}

/// Deletes every change but the newest `retained`; returns the horizon now in force.
pub async fn compact(db: &DatabaseConnection, retained: i64) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    let current: i64 = txn
        .query_one(Statement::from_string(
            backend,
            "SELECT value FROM sequence_counters WHERE name = 'segment_changes'",
        ))
        .await?
        .map(|row| row.try_get_by_index(0))
        .transpose()?
        .unwrap_or(0);
    let horizon = current - retained.max(0);
    let before = compacted_through(&txn).await?;
    if horizon <= before {
        txn.rollback().await?;
        return Ok(before);
    }
    let (p1, p2) = match backend {
        DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    txn.execute(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO sequence_counters (name, value) VALUES ({p1}, {p2}) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        ),
        [HORIZON.into(), horizon.into()],
    ))
    .await?;
    txn.execute(Statement::from_sql_and_values(
        backend,
        format!("DELETE FROM segment_changes WHERE seq <= {p1}"),
        [horizon.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(horizon)
}
