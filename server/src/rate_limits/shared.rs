//! The shared counter instances on one PostgreSQL database take grants from: one row per
//! subject, limit and window in `rate_limit_windows`, raised by one statement that never
//! passes the quota and says what it gave. Rows are deleted a minute after their window.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

use super::windows::GrantRequest;

/// Takes up to `want` more of the window's quota. `last_grant` is computed from the row's
/// old `granted` (every `SET` expression reads the old row), so the answer is exactly what
/// this statement gave, even with other instances asking at the same moment.
const CLAIM: &str = "INSERT INTO rate_limit_windows \
    (subject, name, window_start, ends_at, granted, last_grant) \
    VALUES ($1, $2, $3, $4, LEAST($5, $6), LEAST($5, $6)) \
    ON CONFLICT (subject, name, window_start) DO UPDATE SET \
    last_grant = GREATEST(LEAST(rate_limit_windows.granted + $5, $6) - rate_limit_windows.granted, 0), \
    granted = GREATEST(LEAST(rate_limit_windows.granted + $5, $6), rate_limit_windows.granted) \
    RETURNING granted, last_grant";

const FORGET_ENDED: &str = "DELETE FROM rate_limit_windows WHERE ends_at < $1";

/// Asks the shared counter for `request`: what this instance was granted, and what every
/// instance has been granted in the window so far.
pub async fn claim(db: &DatabaseConnection, request: &GrantRequest) -> Result<(u32, u32), DbErr> {
    let (subject, name, start) = &request.key;
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            CLAIM,
            [
                subject.as_str().into(),
                name.as_str().into(),
                (*start as i64).into(),
                (request.ends as i64).into(),
                i64::from(request.want).into(),
                i64::from(request.quota).into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("a rate limit window".into()))?;
    let total: i64 = row.try_get_by_index(0)?;
    let grant: i64 = row.try_get_by_index(1)?;
    Ok((
        u32::try_from(grant).unwrap_or(0),
        u32::try_from(total).unwrap_or(u32::MAX),
    ))
}

/// Deletes windows that ended more than a minute before `now_seconds`.
pub async fn forget_ended(db: &DatabaseConnection, now_seconds: u64) -> Result<u64, DbErr> {
    let done = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            FORGET_ENDED,
            [(now_seconds as i64 - 60).into()],
        ))
        .await?;
    Ok(done.rows_affected())
}
