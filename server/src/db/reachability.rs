//! Which database errors mean "the database cannot be reached right now" (the server is
//! down, restarting or out of connections), as opposed to a fault in a statement: a request
//! that meets one is answered 503 `unavailable` with `Retry-After`, which tells a client to
//! try again, instead of a 500.

use sea_orm::{DbErr, RuntimeErr};

/// How long a request waits for a pooled connection (or for a new one to open) before it
/// is answered 503. A restart of the database shorter than this is a pause to a client;
/// a longer outage is a prompt 503 rather than a request hanging until its own timeout.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether `error` says the database is unreachable or going away.
pub fn is_unreachable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => match runtime {
            RuntimeErr::SqlxError(sqlx) => sqlx_unreachable(sqlx),
            RuntimeErr::Internal(_) => false,
        },
        // The direct SQLite path: the file is locked by another writer past the busy
        // timeout.
        DbErr::Custom(text) => text.starts_with("sqlite: database is locked"),
        _ => false,
    }
}

fn sqlx_unreachable(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match error {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed => true,
        Error::Protocol(_) | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL: class 08 connection exceptions; 57P01-57P03 the server shutting
            // down, crashed or starting. SQLite: 5 SQLITE_BUSY (locked past the timeout).
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "5")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnAcquireErr;

    #[test]
    fn connection_failures_are_unreachable_and_statement_faults_are_not() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        for unreachable in [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::Conn(RuntimeErr::SqlxError(sea_orm::sqlx::Error::Io(io()))),
            DbErr::Query(RuntimeErr::SqlxError(sea_orm::sqlx::Error::PoolTimedOut)),
            DbErr::Custom("sqlite: database is locked".into()),
        ] {
            assert!(is_unreachable(&unreachable), "{unreachable}");
        }
        for fault in [
            DbErr::Custom("sqlite: no such column".into()),
            DbErr::Query(RuntimeErr::Internal("bad".into())),
            DbErr::RecordNotFound("x".into()),
            DbErr::Exec(RuntimeErr::SqlxError(sea_orm::sqlx::Error::RowNotFound)),
        ] {
            assert!(!is_unreachable(&fault), "{fault}");
        }
    }
}
