//! The queue SQL shared by runs, jobs and webhook deliveries: claiming the next queued row
//! of a table atomically (with its `started_at`), and cancelling one, on SQLite and
//! PostgreSQL. The workers that drain the queues live in `crate::workers`.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

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
    let sql = format!(
        "UPDATE {name} SET status = 'running'{started} \
         WHERE status = 'queued' AND id = (\
           SELECT id FROM {name} WHERE status = 'queued' AND ({extra}) ORDER BY id LIMIT 1{lock}\
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::entities::run;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};

    #[tokio::test]
    async fn a_claim_sets_started_at_in_the_same_statement() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
        let db = crate::db::connect_and_migrate(&url).await.unwrap();
        let now = chrono::Utc::now();
        run::ActiveModel {
            id: Set("run_1".into()),
            org_id: Set("org_q".into()),
            prompt_id: Set("prm_1".into()),
            index_id: Set("idx_1".into()),
            variables: Set("{}".into()),
            status: Set(run::QUEUED.into()),
            attempt: Set(1),
            retry_of: Set(None),
            query: Set("q".into()),
            instructions: Set(String::new()),
            top_k: Set(5),
            result: Set(None),
            error: Set(None),
            created_at: Set(now),
            started_at: Set(None),
            finished_at: Set(None),
        }
        .insert(&db)
        .await
        .unwrap();
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
}
