//! The lifecycle runs, jobs and webhook deliveries share, and its SQL: the typed
//! [`QueueStatus`] and its transitions, claiming the next queued row of a table atomically
//! (with its `started_at`), cancelling one, and finding the rows a stopped server left
//! running, on SQLite and PostgreSQL. The workers that drain the queues live in
//! `crate::workers`; a retry is a new row (a new attempt), made by the services.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};

/// Where a row of queued work is in its life. Stored as its [`QueueStatus::as_str`] text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl QueueStatus {
    pub const ALL: [QueueStatus; 5] = [
        QueueStatus::Queued,
        QueueStatus::Running,
        QueueStatus::Succeeded,
        QueueStatus::Failed,
        QueueStatus::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Queued => "queued",
            QueueStatus::Running => "running",
            QueueStatus::Succeeded => "succeeded",
            QueueStatus::Failed => "failed",
            QueueStatus::Cancelled => "cancelled",
        }
    }

    /// The status stored as `text`; anything unknown reads as failed (never as done).
    pub fn parse(text: &str) -> QueueStatus {
        QueueStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .unwrap_or(QueueStatus::Failed)
    }

    /// Whether a new attempt may be made of a row in this status.
    pub fn retryable(self) -> bool {
        matches!(self, QueueStatus::Failed | QueueStatus::Cancelled)
    }

    /// Whether a row in this status may still be cancelled.
    pub fn cancellable(self) -> bool {
        matches!(self, QueueStatus::Queued | QueueStatus::Running)
    }
}

/// A table of queued work.
pub struct QueueTable {
    pub name: &'static str,
    /// Whether its rows record `started_at`, set by the claim itself.
    pub has_started_at: bool,
}

pub const RUNS: QueueTable = QueueTable {
    name: "runs",
    has_started_at: true,
};
pub const JOBS: QueueTable = QueueTable {
    name: "jobs",
    has_started_at: true,
};
pub const DELIVERIES: QueueTable = QueueTable {
    name: "webhook_deliveries",
    has_started_at: false,
};

/// Moves the oldest row of `table` with `status = 'queued'` (and `extra`, an SQL condition
/// or `TRUE`) to `running`, setting `started_at` in the same statement, and returns its id.
/// Ids sort by creation time. One statement: a crash cannot leave a row `running` without
/// `started_at`, which the stale sweep (by `started_at`) would never match.
pub async fn claim(
    db: &DatabaseConnection,
    table: &QueueTable,
    extra: &str,
) -> Result<Option<String>, DbErr> {
    let backend = db.get_database_backend();
    let (lock, placeholder) = if backend == DbBackend::Postgres {
        (" FOR UPDATE SKIP LOCKED", "$1")
    } else {
        ("", "?")
    };
    let (started, values) = if table.has_started_at {
        (
            format!(", started_at = {placeholder}"),
            vec![chrono::Utc::now().into()],
        )
    } else {
        (String::new(), Vec::new())
    };
    let name = table.name;
    let (queued, running) = (QueueStatus::Queued.as_str(), QueueStatus::Running.as_str());
    let sql = format!(
        "UPDATE {name} SET status = '{running}'{started} \
         WHERE status = '{queued}' AND id = (\
           SELECT id FROM {name} WHERE status = '{queued}' AND ({extra}) ORDER BY id LIMIT 1{lock}\
         ) RETURNING id"
    );
    let row = db
        .query_one(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    row.map(|r| r.try_get_by_index::<String>(0)).transpose()
}

/// Cancels a queued or running row of `table`; false when it was in another status.
pub async fn cancel(db: &DatabaseConnection, table: &QueueTable, id: &str) -> Result<bool, DbErr> {
    use sea_orm::sea_query::{Alias, Expr, Query};
    let statement = Query::update()
        .table(Alias::new(table.name))
        .values([
            (Alias::new("status"), QueueStatus::Cancelled.as_str().into()),
            (Alias::new("finished_at"), chrono::Utc::now().into()),
        ])
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .and_where(
            Expr::col(Alias::new("status")).is_in(
                QueueStatus::ALL
                    .into_iter()
                    .filter(|s| s.cancellable())
                    .map(QueueStatus::as_str),
            ),
        )
        .to_owned();
    let result = db
        .execute(db.get_database_backend().build(&statement))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The ids of rows of `table` (one that records `started_at`) left `running` since before
/// `started_before` by a server that stopped: by `started_at`, or without one (claimed by
/// an older version that set it separately, and as stale).
pub async fn stale_running(
    db: &DatabaseConnection,
    table: &QueueTable,
    started_before: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, DbErr> {
    debug_assert!(table.has_started_at, "{} has no started_at", table.name);
    let backend = db.get_database_backend();
    let (p1, p2) = match backend {
        DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let sql = format!(
        "SELECT id FROM {} WHERE status = {p1} AND (started_at < {p2} OR started_at IS NULL) \
         ORDER BY id",
        table.name
    );
    let values: [Value; 2] = [QueueStatus::Running.as_str().into(), started_before.into()];
    db.query_all(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::entities::run;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};

    async fn scratch_db() -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
        let db = crate::db::connect_and_migrate(&url).await.unwrap();
        (dir, db)
    }

    async fn insert_run(
        db: &DatabaseConnection,
        id: &str,
        status: QueueStatus,
        started_at: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        run::ActiveModel {
            id: Set(id.into()),
            org_id: Set("org_q".into()),
            prompt_id: Set("prm_1".into()),
            index_id: Set("idx_1".into()),
            variables: Set("{}".into()),
            status: Set(status.as_str().into()),
            attempt: Set(1),
            retry_of: Set(None),
            query: Set("q".into()),
            instructions: Set(String::new()),
            top_k: Set(5),
            result: Set(None),
            error: Set(None),
            created_at: Set(chrono::Utc::now()),
            started_at: Set(started_at),
            finished_at: Set(None),
        }
        .insert(db)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_claim_sets_started_at_in_the_same_statement() {
        let (_dir, db) = scratch_db().await;
        let now = chrono::Utc::now();
        insert_run(&db, "run_1", QueueStatus::Queued, None).await;
        let claimed = claim(&db, &RUNS, "TRUE").await.unwrap();
        assert_eq!(claimed.as_deref(), Some("run_1"));
        let row = run::Entity::find_by_id("run_1")
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, run::RUNNING);
        let started = row.started_at.expect("the claim set started_at");
        assert!((started - now).num_seconds().abs() < 5);
        assert_eq!(claim(&db, &RUNS, "TRUE").await.unwrap(), None);
    }

    #[tokio::test]
    async fn stale_rows_are_running_ones_started_long_ago_or_never_stamped() {
        let (_dir, db) = scratch_db().await;
        let now = chrono::Utc::now();
        let long_ago = Some(now - chrono::Duration::hours(1));
        insert_run(&db, "run_a_old", QueueStatus::Running, long_ago).await;
        insert_run(&db, "run_b_unstamped", QueueStatus::Running, None).await;
        insert_run(&db, "run_c_fresh", QueueStatus::Running, Some(now)).await;
        insert_run(&db, "run_d_done", QueueStatus::Failed, long_ago).await;
        insert_run(&db, "run_e_queued", QueueStatus::Queued, None).await;
        let stale = stale_running(&db, &RUNS, now - chrono::Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(stale, ["run_a_old", "run_b_unstamped"]);
    }

    #[test]
    fn every_status_reads_back_and_only_ended_ones_are_retryable() {
        for status in QueueStatus::ALL {
            assert_eq!(QueueStatus::parse(status.as_str()), status);
            assert_eq!(
                status.retryable(),
                matches!(status, QueueStatus::Failed | QueueStatus::Cancelled)
            );
            assert_ne!(
                status.retryable(),
                status.cancellable() || status == QueueStatus::Succeeded
            );
        }
        assert_eq!(QueueStatus::parse("exploded"), QueueStatus::Failed);
    }
}
