//! Failed-login rate limiting: a sliding window of attempts per key (an email and client
//! address together, a client address, an email), kept in the database (`login_attempts`)
//! so every instance on it shares one count; a key may have a hard limit or only be counted
//! (see `services::auth` for which is which, and why). The pairs of email and client that
//! logged in successfully are remembered (`login_known_clients`) for 30 days.
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
    window: Duration,
    /// Reservations so far: every 256th also forgets every key's expired attempts (a key
    /// that never comes back would otherwise keep its rows).
    reservations: std::sync::atomic::AtomicU64,
}

/// How long a successful login makes its email and client pair known.
const KNOWN_FOR_MS: i64 = 30 * 24 * 3600 * 1000;

/// A key an attempt is counted under, and its limit (`None`: counted, never refused).
#[derive(Clone, Copy)]
pub struct Counted<'a> {
    pub key: &'a str,
    pub limit: Option<u32>,
}

/// An attempt reserved under each key: (key, row id).
pub struct Reservation {
    rows: Vec<(String, String)>,
    /// The attempts each key held before this one, in the order given.
    pub before: Vec<i64>,
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
    pub fn new(db: DatabaseConnection, window: Duration) -> Self {
        LoginLimiter {
            db,
            window,
            reservations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Reserves one attempt under every key, or `Ok(Err(seconds to wait))` when any key is
    /// at its limit (nothing is reserved then).
    pub async fn reserve(&self, keys: &[Counted<'_>]) -> Result<Result<Reservation, u64>, DbErr> {
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
        keys: &[Counted<'_>],
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
            let mut sorted: Vec<&str> = keys.iter().map(|k| k.key).collect();
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
        let mut before = Vec::with_capacity(keys.len());
        for counted in keys {
            let key = counted.key;
            // What fell out of the window is forgotten.
            txn.execute(statement(
                backend,
                "DELETE FROM login_attempts WHERE key = $1 AND at_ms <= $2",
                vec![key.into(), since.into()],
            ))
            .await?;
            let row = txn
                .query_one(statement(
                    backend,
                    "SELECT COUNT(*), MIN(at_ms) FROM login_attempts WHERE key = $1",
                    vec![key.into()],
                ))
                .await?;
            let (count, oldest): (i64, Option<i64>) = match row {
                Some(row) => (row.try_get_by_index(0)?, row.try_get_by_index(1)?),
                None => (0, None),
            };
            before.push(count);
            if counted.limit.is_some_and(|limit| count >= i64::from(limit)) {
                let left_ms = oldest.map_or(window_ms, |t| t + window_ms - now);
                let secs = (left_ms.max(0) / 1000) as u64 + 1;
                wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
            }
        }
        if let Some(wait) = wait {
            return Ok(Err(wait));
        }
        let mut rows = Vec::with_capacity(keys.len());
        for counted in keys {
            let id = new_id("att");
            txn.execute(statement(
                backend,
                "INSERT INTO login_attempts (id, key, at_ms) VALUES ($1, $2, $3)",
                vec![id.clone().into(), counted.key.into(), now.into()],
            ))
            .await?;
            rows.push((counted.key.to_string(), id));
        }
        Ok(Ok(Reservation { rows, before }))
    }

    /// Whether `pair` logged in successfully within the last 30 days.
    pub async fn is_known(&self, pair: &str) -> Result<bool, DbErr> {
        let since = Utc::now().timestamp_millis() - KNOWN_FOR_MS;
        let row = self
            .db
            .query_one(statement(
                self.db.get_database_backend(),
                "SELECT 1 FROM login_known_clients WHERE key = $1 AND last_success_ms > $2",
                vec![pair.into(), since.into()],
            ))
            .await?;
        Ok(row.is_some())
    }

    /// Remembers that `pair` logged in successfully now.
    pub async fn remember(&self, pair: &str) -> Result<(), DbErr> {
        self.db
            .execute(statement(
                self.db.get_database_backend(),
                "INSERT INTO login_known_clients (key, last_success_ms) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET last_success_ms = excluded.last_success_ms",
                vec![pair.into(), Utc::now().timestamp_millis().into()],
            ))
            .await?;
        Ok(())
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
        let limiter = LoginLimiter::new(db, Duration::from_secs(60));
        let limited = |key| Counted {
            key,
            limit: Some(2),
        };
        // Two attempts in flight use up the limit: a third waits, whatever they turn out.
        let first = limiter
            .reserve(&[limited("a"), limited("c")])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.before, vec![0, 0]);
        limiter
            .reserve(&[limited("a"), limited("c")])
            .await
            .unwrap()
            .unwrap();
        let wait = limiter
            .reserve(&[limited("a"), limited("c")])
            .await
            .unwrap()
            .err()
            .unwrap();
        assert!(wait > 0 && wait <= 61);
        assert!(limiter.reserve(&[limited("b")]).await.unwrap().is_ok());
        // A key without a limit is counted and never refuses.
        let counted_only = Counted {
            key: "a",
            limit: None,
        };
        let past = limiter.reserve(&[counted_only]).await.unwrap().unwrap();
        assert_eq!(past.before, vec![2]);
        // The first was the right password: the email forgets, the address keeps the other.
        limiter.succeeded(first, &["a"]).await.unwrap();
        assert!(limiter.reserve(&[limited("a")]).await.unwrap().is_ok());
        assert!(limiter.reserve(&[limited("c")]).await.unwrap().is_ok());
        assert!(limiter.reserve(&[limited("c")]).await.unwrap().is_err());
        // Known pairs are remembered.
        assert!(!limiter.is_known("a|c").await.unwrap());
        limiter.remember("a|c").await.unwrap();
        limiter.remember("a|c").await.unwrap();
        assert!(limiter.is_known("a|c").await.unwrap());
    }
}
