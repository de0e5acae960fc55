//! Failed-login rate limiting: a sliding window of attempts per key (email, client address),
//! kept in the database (`login_attempts`) so every instance on it shares one count.
//!
//! An attempt is reserved, and counted as a failure, before the password is checked: the
//! check takes hundreds of milliseconds, and counting only afterwards let a burst of
//! concurrent guesses all through. A correct password takes its reservation back.
//!
//! Check and reservation are one transaction, serialised per key: on PostgreSQL by
//! transaction-scoped advisory locks on the keys (taken in order, so two reservations never
//! wait on each other crosswise), so N instances never get more than the limit between them;
//! on SQLite, whose one file has one writer, by a lock in the process.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait, Value,
};

use crate::ids::new_id;

/// SQLite reservations in this process, one at a time (PostgreSQL uses advisory locks).
static SQLITE_RESERVATIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct LoginLimiter {
    db: DatabaseConnection,
    max_failures: u32,
    window: Duration,
    /// Reservations so far: every 256th also forgets every key's expired attempts (a key
    /// that never comes back would otherwise keep its rows).
    reservations: std::sync::atomic::AtomicU64,
}

/// An attempt reserved under each key: (key, row id).
pub struct Reservation {
    rows: Vec<(String, String)>,
}

/// `sql` with `$1, $2, ...` placeholders for `backend` (SQLite takes `?`, in order).
fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        sql.to_string()
    } else {
        let mut out = String::with_capacity(sql.len());
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push('?');
            } else {
                out.push(c);
            }
        }
        out
    };
    Statement::from_sql_and_values(backend, sql, values)
}

impl LoginLimiter {
    pub fn new(db: DatabaseConnection, max_failures: u32, window: Duration) -> Self {
        LoginLimiter {
            db,
            max_failures,
            window,
            reservations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Reserves one attempt under every key, or `Ok(Err(seconds to wait))` when any key is
    /// at its limit (nothing is reserved then).
    pub async fn reserve(&self, keys: &[&str]) -> Result<Result<Reservation, u64>, DbErr> {
        let backend = self.db.get_database_backend();
        let _serial = match backend {
            DbBackend::Postgres => None,
            _ => Some(SQLITE_RESERVATIONS.lock().await),
        };
        let txn = self.db.begin().await?;
        let outcome = self.reserve_in(&txn, backend, keys).await;
        match outcome {
            Ok(Ok(reservation)) => {
                txn.commit().await?;
                Ok(Ok(reservation))
            }
            other => {
                txn.rollback().await?;
                other
            }
        }
    }

    async fn reserve_in(
        &self,
        txn: &DatabaseTransaction,
        backend: DbBackend,
        keys: &[&str],
    ) -> Result<Result<Reservation, u64>, DbErr> {
        let now = Utc::now().timestamp_millis();
        let window_ms = self.window.as_millis() as i64;
        let since = now - window_ms;
        let count = self
            .reservations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if count.is_multiple_of(256) {
            txn.execute(statement(
                backend,
                "DELETE FROM login_attempts WHERE at_ms <= $1",
                vec![since.into()],
            ))
            .await?;
        }
        if backend == DbBackend::Postgres {
            let mut sorted = keys.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            for key in sorted {
                txn.execute(statement(
                    backend,
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 7031))",
                    vec![key.into()],
                ))
                .await?;
            }
        }
        let mut wait = None;
        for key in keys {
            // What fell out of the window is forgotten.
            txn.execute(statement(
                backend,
                "DELETE FROM login_attempts WHERE key = $1 AND at_ms <= $2",
                vec![(*key).into(), since.into()],
            ))
            .await?;
            let row = txn
                .query_one(statement(
                    backend,
                    "SELECT COUNT(*), MIN(at_ms) FROM login_attempts WHERE key = $1",
                    vec![(*key).into()],
                ))
                .await?;
            let (count, oldest): (i64, Option<i64>) = match row {
                Some(row) => (row.try_get_by_index(0)?, row.try_get_by_index(1)?),
                None => (0, None),
            };
            if count >= i64::from(self.max_failures) {
                let left_ms = oldest.map_or(window_ms, |t| t + window_ms - now);
                let secs = (left_ms.max(0) / 1000) as u64 + 1;
                wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
            }
        }
        if let Some(wait) = wait {
            return Ok(Err(wait));
        }
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let id = new_id("att");
            txn.execute(statement(
                backend,
                "INSERT INTO login_attempts (id, key, at_ms) VALUES ($1, $2, $3)",
                vec![id.clone().into(), (*key).into(), now.into()],
            ))
            .await?;
            rows.push((key.to_string(), id));
        }
        Ok(Ok(Reservation { rows }))
    }

    /// The attempt reserved succeeded: `cleared` keys forget their failures, and under the
    /// other keys the attempt no longer counts.
    pub async fn succeeded(&self, reservation: Reservation, cleared: &[&str]) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        for key in cleared {
            self.db
                .execute(statement(
                    backend,
                    "DELETE FROM login_attempts WHERE key = $1",
                    vec![(*key).into()],
                ))
                .await?;
        }
        for (key, id) in reservation.rows {
            if !cleared.contains(&key.as_str()) {
                self.db
                    .execute(statement(
                        backend,
                        "DELETE FROM login_attempts WHERE id = $1",
                        vec![id.into()],
                    ))
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        let sqlite = statement(
            DbBackend::Sqlite,
            "a = $1 AND b = $12",
            vec![1.into(), 2.into()],
        );
        assert_eq!(sqlite.sql, "a = ? AND b = ?");
        let pg = statement(DbBackend::Postgres, "a = $1", vec![1.into()]);
        assert_eq!(pg.sql, "a = $1");
    }

    #[tokio::test]
    async fn reservations_count_before_the_outcome_and_success_takes_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
        let db = crate::db::connect_and_migrate(&url).await.unwrap();
        let limiter = LoginLimiter::new(db, 2, Duration::from_secs(60));
        // Two attempts in flight use up the limit: a third waits, whatever they turn out.
        let first = limiter.reserve(&["a", "c"]).await.unwrap().unwrap();
        limiter.reserve(&["a", "c"]).await.unwrap().unwrap();
        let wait = limiter.reserve(&["a", "c"]).await.unwrap().err().unwrap();
        assert!(wait > 0 && wait <= 61);
        assert!(limiter.reserve(&["b"]).await.unwrap().is_ok());
        // The first was the right password: the email forgets, the address keeps the other.
        limiter.succeeded(first, &["a"]).await.unwrap();
        assert!(limiter.reserve(&["a"]).await.unwrap().is_ok());
        assert!(limiter.reserve(&["c"]).await.unwrap().is_ok());
        assert!(limiter.reserve(&["c"]).await.unwrap().is_err());
    }
}
