//! Direct rusqlite access to the SQLite database file, for the paths where sqlx-sqlite's
//! design costs more than the work: it hands every query, and every row, to a
//! per-connection worker thread through channels. Under load those hand-offs took about
//! 45% of the server's CPU on the auth path, and an ingest batch of 1,000 segments paid
//! for thousands of them.
//!
//! Reads run on a small pool of read-only connections. In WAL mode a reader never waits
//! for a writer, so a point read (microseconds) can run on the calling thread. Writes run on
//! one write connection inside `BEGIN IMMEDIATE`, and callers put them on the blocking pool:
//! a writer can wait for the lock.
//!
//! Values are stored as sqlx-sqlite stores them (timestamps in RFC 3339), so rows written
//! here and through sea-orm read back the same either way.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::{types::Type, Connection, OpenFlags, Row, Transaction, TransactionBehavior};
use sea_orm::DbErr;

/// Idle read connections kept for reuse; more are opened under load and closed afterwards.
const MAX_IDLE_READERS: usize = 8;

/// How long a statement waits on a lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct DirectSqlite {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Option<Connection>>,
}

impl DirectSqlite {
    /// Direct access to the SQLite database `file` (see `db::backend`); connections open
    /// when first used.
    pub fn open(file: PathBuf) -> DirectSqlite {
        DirectSqlite {
            path: file,
            readers: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
        }
    }

    /// Runs `query` on a read connection, on the calling thread (a span of the trace being
    /// recorded, if any).
    pub fn read<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbErr> {
        crate::traces::database::timed("read", || self.read_untraced(query))
    }

    fn read_untraced<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbErr> {
        let reused = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match reused {
            Some(conn) => conn,
            None => open(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(to_db_err)?,
        };
        let result = query(&conn).map_err(to_db_err);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the write connection, committing
    /// when it returns `Ok`. Blocks while another writer holds the database: call it from
    /// the blocking pool (with [`crate::traces::Carried`], to stay in the caller's trace).
    pub fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbErr> {
        crate::traces::database::timed("write", || self.write_untraced(work))
    }

    fn write_untraced<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbErr> {
        let mut slot = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(open(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(to_db_err)?);
        }
        let conn = slot.as_mut().expect("just opened");
        let run = |conn: &mut Connection| {
            let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = work(&txn)?;
            txn.commit()?;
            Ok(value)
        };
        run(conn).map_err(to_db_err)
    }
}

fn open(path: &Path, mode: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // As the sqlx pool's connections are set up (see `db::connect`).
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn to_db_err(e: rusqlite::Error) -> DbErr {
    DbErr::Custom(format!("sqlite: {e}"))
}

/// A timestamp as sqlx-sqlite writes it.
pub fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

pub fn timestamp(row: &Row<'_>, column: usize) -> rusqlite::Result<DateTime<Utc>> {
    optional_timestamp(row, column)?.ok_or(rusqlite::Error::InvalidColumnType(
        column,
        "timestamp".into(),
        Type::Null,
    ))
}

/// Timestamps as sqlx-sqlite writes them (RFC 3339), or SQLite's own `YYYY-MM-DD HH:MM:SS`
/// (read as UTC).
pub fn optional_timestamp(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let Some(text) = row.get::<_, Option<String>>(column)? else {
        return Ok(None);
    };
    parse_timestamp(&text).map(Some).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            Type::Text,
            format!("not a timestamp: {text:?}").into(),
        )
    })
}

fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    ["%F %T%.f%:z", "%FT%T%.f%:z"]
        .iter()
        .find_map(|format| DateTime::parse_from_str(text, format).ok())
        .map(|at| at.with_timezone(&Utc))
        .or_else(|| {
            ["%F %T%.f", "%FT%T%.f"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .map(|at| at.and_utc())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_stored_form() {
        let expected = DateTime::parse_from_rfc3339("2026-11-27T17:14:45.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        for text in [
            "2026-11-27T17:14:45.123456+00:00",
            "2026-11-27 17:14:45.123456+00:00",
            "2026-11-27 17:14:45.123456",
            "2026-11-27T18:14:45.123456+01:00",
        ] {
            assert_eq!(parse_timestamp(text), Some(expected), "{text}");
        }
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(
            parse_timestamp(&timestamp_text(expected)),
            Some(expected),
            "round trip"
        );
    }

    #[test]
    fn writes_commit_and_reads_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (v INTEGER);")
            .unwrap();
        let direct = DirectSqlite::open(path.clone());
        direct
            .write(|txn| txn.execute("INSERT INTO t VALUES (7)", []))
            .unwrap();
        let failed = direct.write(|txn| {
            txn.execute("INSERT INTO t VALUES (8)", [])?;
            txn.execute("INSERT INTO missing VALUES (1)", [])
        });
        assert!(failed.is_err());
        let sum: i64 = direct
            .read(|conn| conn.query_row("SELECT SUM(v) FROM t", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(sum, 7, "the failed transaction left nothing behind");
    }
}
