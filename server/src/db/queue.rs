//! The lifecycle runs, jobs and webhook deliveries share, and its SQL: the typed
//! [`QueueStatus`] and its transitions, claiming the next queued row of a table atomically
//! under a [`Lease`] its worker renews while it works (a row whose lease ran out, because its
//! instance was killed or lost the database, is claimed again by any instance), and
//! cancelling one, on SQLite and PostgreSQL. The workers that drain the queues live in
//! `crate::workers`; a retry is a new row (a new attempt), made by the services.

use sea_orm::{
    entity::prelude::{DeriveActiveEnum, EnumIter, StringLen},
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value,
};

/// Where a row of queued work is in its life: the type of the `status` column of runs, jobs
/// and deliveries, stored as its [`QueueStatus::as_str`] text. A stored value that is none
/// of these fails the read (sea-orm's active enum), rather than passing for one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum QueueStatus {
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "cancelled")]
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
    /// The column of Unix milliseconds before which a queued row is not due (a retry's
    /// backoff), if its rows have one.
    pub due_at_ms: Option<&'static str>,
}

pub const RUNS: QueueTable = QueueTable {
    name: "runs",
    has_started_at: true,
    due_at_ms: None,
};
pub const JOBS: QueueTable = QueueTable {
    name: "jobs",
    has_started_at: true,
    due_at_ms: None,
};
pub const REEMBEDDINGS: QueueTable = QueueTable {
    name: "reembeddings",
    has_started_at: true,
    due_at_ms: None,
};
pub const DELIVERIES: QueueTable = QueueTable {
    name: "webhook_deliveries",
    has_started_at: false,
    due_at_ms: Some("next_attempt_ms"),
};

/// A row [`claim`] moved to `running`: its id and the token of the lease it holds. Every
/// write the worker makes to the row afterwards names the token ([`Lease::fence`]), so a
/// worker that lost its lease (it stalled past it, and another instance took the row over)
/// changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: String,
    pub token: String,
}

/// Moves the oldest claimable row of `table` to `running` under a new lease of `lease`, and
/// returns it. Claimable: `queued` (and due, for a table with a due column), or `running`
/// with its lease run out (its worker stopped: killed, or cut off from the database), which
/// is taken over where its worker left it. One statement: a crash cannot leave a row
/// `running` without a lease. `started_at` is set by the first claim only. Ids sort by
/// creation time.
pub async fn claim(
    db: &DatabaseConnection,
    table: &QueueTable,
    lease: std::time::Duration,
) -> Result<Option<Claimed>, DbErr> {
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    // Each value is bound where it is used, in the order of the SQL text: SQLite's `?`
    // are positional, PostgreSQL's are numbered.
    let mut values: Vec<Value> = Vec::new();
    let mut bind = |value: Value| {
        values.push(value);
        if postgres {
            format!("${}", values.len())
        } else {
            "?".into()
        }
    };
    let lock = if postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let now = chrono::Utc::now();
    let now_ms = now.timestamp_millis();
    let token = crate::ids::new_id("lease");
    let set_token = bind(token.clone().into());
    let set_expiry = bind((now_ms + lease_ms(lease)).into());
    let started = if table.has_started_at {
        format!(", started_at = COALESCE(started_at, {})", bind(now.into()))
    } else {
        String::new()
    };
    let due = match table.due_at_ms {
        Some(column) => format!("{column} <= {}", bind(now_ms.into())),
        None => "TRUE".into(),
    };
    let expired = bind(now_ms.into());
    let name = table.name;
    let (queued, running) = (QueueStatus::Queued.as_str(), QueueStatus::Running.as_str());
    let claimable = format!(
        "((status = '{queued}' AND {due}) OR \
          (status = '{running}' AND (lease_expires_ms IS NULL OR lease_expires_ms < {expired})))"
    );
    let sql = format!(
        "UPDATE {name} SET status = '{running}', lease_token = {set_token}, \
         lease_expires_ms = {set_expiry}{started} \
         WHERE id = (SELECT id FROM {name} WHERE {claimable} ORDER BY id LIMIT 1{lock}) \
         RETURNING id"
    );
    let row = db
        .query_one(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    row.map(|r| {
        Ok(Claimed {
            id: r.try_get_by_index::<String>(0)?,
            token,
        })
    })
    .transpose()
}

fn lease_ms(lease: std::time::Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

/// The lease a worker holds on a claimed row while it works on it. A heartbeat renews it
/// every third of its length; when a renewal finds the row no longer `running` under this
/// lease (cancelled, or taken over after the worker stalled past its lease), the lease is
/// [`Lease::lost`] and the worker stops at its next check. Dropping the lease stops the
/// heartbeat; the row keeps whatever status the worker wrote.
pub struct Lease {
    claimed: Claimed,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Starts renewing the lease `claimed` holds on its row of `table`.
    pub fn hold(
        db: &DatabaseConnection,
        table: &'static QueueTable,
        claimed: Claimed,
        lease: std::time::Duration,
    ) -> Lease {
        use std::sync::{atomic::Ordering, Arc};
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (db, flag, held) = (db.clone(), lost.clone(), claimed.clone());
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match renew(&db, table, &held, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        flag.store(true, Ordering::Release);
                        return;
                    }
                    // The database is away: the lease runs out unless a later renewal gets
                    // through, and a fenced write will tell the worker.
                    Err(e) => tracing::warn!(row = %held.id, error = %e, "renewing a lease"),
                }
            }
        });
        Lease {
            claimed,
            lost,
            heartbeat,
        }
    }

    pub fn id(&self) -> &str {
        &self.claimed.id
    }

    /// Whether the row is no longer this worker's: it was cancelled or taken over.
    pub fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The condition every write of the worker to its row carries: still `running` under
    /// this lease. A write that matches no row means the lease was lost.
    pub fn fence(&self) -> sea_orm::sea_query::SimpleExpr {
        use sea_orm::sea_query::{Alias, Expr};
        Expr::col(Alias::new("id"))
            .eq(self.claimed.id.as_str())
            .and(Expr::col(Alias::new("status")).eq(QueueStatus::Running.as_str()))
            .and(Expr::col(Alias::new("lease_token")).eq(self.claimed.token.as_str()))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Extends the lease on a row still `running` under it; false when it is not.
async fn renew(
    db: &DatabaseConnection,
    table: &QueueTable,
    claimed: &Claimed,
    lease: std::time::Duration,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        format!(
            "UPDATE {} SET lease_expires_ms = $1 WHERE id = $2 AND status = $3 AND lease_token = $4",
            table.name
        )
    } else {
        format!(
            "UPDATE {} SET lease_expires_ms = ? WHERE id = ? AND status = ? AND lease_token = ?",
            table.name
        )
    };
    let until = chrono::Utc::now().timestamp_millis() + lease_ms(lease);
    let values: [Value; 4] = [
        until.into(),
        claimed.id.clone().into(),
        QueueStatus::Running.as_str().into(),
        claimed.token.clone().into(),
    ];
    let done = db
        .execute(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(done.rows_affected() == 1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{
        entities::run,
        scratch::{self, scratch_db},
    };
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryFilter};

    /// A run in `org_q`, without variables.
    async fn insert_run(
        db: &DatabaseConnection,
        id: &str,
        status: QueueStatus,
        started_at: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        scratch::insert_run(db, id, status, started_at, Default::default()).await;
    }

    const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

    #[tokio::test]
    async fn a_claim_sets_started_at_and_a_lease_in_the_same_statement() {
        let (_dir, db) = scratch_db().await;
        let now = chrono::Utc::now();
        insert_run(&db, "run_1", QueueStatus::Queued, None).await;
        let claimed = claim(&db, &RUNS, LEASE).await.unwrap().unwrap();
        assert_eq!(claimed.id, "run_1");
        let row = run::Entity::find_by_id("run_1")
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, run::RUNNING);
        let started = row.started_at.expect("the claim set started_at");
        assert!((started - now).num_seconds().abs() < 5);
        assert_eq!(claim(&db, &RUNS, LEASE).await.unwrap(), None);
    }

    async fn set_lease_expiry(db: &DatabaseConnection, id: &str, at_ms: Option<i64>) {
        db.execute(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "UPDATE runs SET lease_expires_ms = ? WHERE id = ?",
            [at_ms.into(), id.into()],
        ))
        .await
        .unwrap();
    }

    /// A running row is claimed again once its lease ran out (or it never had one: an older
    /// version's), keeping its first `started_at`; a live lease, or an ended row, is not.
    #[tokio::test]
    async fn rows_whose_lease_ran_out_are_claimed_again_and_the_old_holder_is_fenced_off() {
        let (_dir, db) = scratch_db().await;
        let long_ago = chrono::Utc::now() - chrono::Duration::hours(1);
        let now_ms = chrono::Utc::now().timestamp_millis();
        insert_run(&db, "run_a_expired", QueueStatus::Queued, None).await;
        insert_run(&db, "run_b_unleased", QueueStatus::Running, Some(long_ago)).await;
        insert_run(&db, "run_c_live", QueueStatus::Running, Some(long_ago)).await;
        insert_run(&db, "run_d_done", QueueStatus::Failed, Some(long_ago)).await;
        set_lease_expiry(&db, "run_c_live", Some(now_ms + 60_000)).await;
        set_lease_expiry(&db, "run_d_done", Some(now_ms - 60_000)).await;
        let first = claim(&db, &RUNS, LEASE).await.unwrap().unwrap();
        assert_eq!(first.id, "run_a_expired");
        set_lease_expiry(&db, "run_a_expired", Some(now_ms - 1)).await;
        let again = claim(&db, &RUNS, LEASE).await.unwrap().unwrap();
        assert_eq!(again.id, "run_a_expired", "the lease ran out");
        assert_ne!(again.token, first.token);
        let unleased = claim(&db, &RUNS, LEASE).await.unwrap().unwrap();
        assert_eq!(unleased.id, "run_b_unleased");
        let row = run::Entity::find_by_id("run_b_unleased")
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.started_at, Some(long_ago), "the first start is kept");
        assert_eq!(claim(&db, &RUNS, LEASE).await.unwrap(), None);

        // The first holder's writes change nothing; the second holder's do.
        let (old, new) = (
            Lease::hold(&db, &RUNS, first, LEASE),
            Lease::hold(&db, &RUNS, again, LEASE),
        );
        for (lease, expected) in [(&old, 0), (&new, 1)] {
            let written = run::Entity::update_many()
                .col_expr(run::Column::Error, sea_orm::sea_query::Expr::value("x"))
                .filter(lease.fence())
                .exec(&db)
                .await
                .unwrap();
            assert_eq!(written.rows_affected, expected);
            assert_eq!(
                renew(&db, &RUNS, &lease.claimed, LEASE).await.unwrap(),
                expected == 1
            );
        }
    }

    /// A delivery waiting out its backoff is not claimed until it is due.
    #[tokio::test]
    async fn a_queued_row_is_claimed_only_once_due() {
        use videovector_api_spec::dto::webhooks::WebhookEventType;

        use crate::db::{
            columns::{EventName, JsonText},
            entities::webhook_delivery as delivery,
        };
        let (_dir, db) = scratch_db().await;
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (id, due_ms) in [("msg_later", now_ms + 60_000), ("msg_now", now_ms - 1)] {
            delivery::ActiveModel {
                id: Set(id.into()),
                webhook_id: Set("wh_1".into()),
                org_id: Set("org_q".into()),
                event_type: Set(EventName(WebhookEventType::WebhookTest)),
                payload: Set("{}".into()),
                status: Set(QueueStatus::Queued),
                attempts: Set(JsonText(Vec::new())),
                next_attempt_ms: Set(due_ms),
                created_at: Set(chrono::Utc::now()),
                delivered_at: Set(None),
                request_id: Set(None),
                trace_parent: Set(None),
            }
            .insert(&db)
            .await
            .unwrap();
        }
        let claimed = claim(&db, &DELIVERIES, LEASE).await.unwrap().unwrap();
        assert_eq!(claimed.id, "msg_now");
        assert_eq!(claim(&db, &DELIVERIES, LEASE).await.unwrap(), None);
        // Once its lease has run out, the running one is claimed again, due or not.
        db.execute(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "UPDATE webhook_deliveries SET lease_expires_ms = ?, next_attempt_ms = ? WHERE id = ?",
            [
                (now_ms - 1).into(),
                (now_ms + 60_000).into(),
                "msg_now".into(),
            ],
        ))
        .await
        .unwrap();
        let again = claim(&db, &DELIVERIES, LEASE).await.unwrap().unwrap();
        assert_eq!(again.id, "msg_now");
    }

    /// A cancelled row's lease is lost at the next heartbeat, so its worker stops.
    #[tokio::test]
    async fn cancelling_a_row_loses_its_lease_at_the_next_heartbeat() {
        let (_dir, db) = scratch_db().await;
        insert_run(&db, "run_1", QueueStatus::Queued, None).await;
        let claimed = claim(&db, &RUNS, LEASE).await.unwrap().unwrap();
        let lease = Lease::hold(&db, &RUNS, claimed, std::time::Duration::from_millis(150));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!lease.lost(), "renewed while running");
        assert!(cancel(&db, &RUNS, "run_1").await.unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(lease.lost());
    }

    #[test]
    fn only_ended_statuses_are_retryable_and_only_live_ones_cancellable() {
        for status in QueueStatus::ALL {
            assert_eq!(
                status.retryable(),
                matches!(status, QueueStatus::Failed | QueueStatus::Cancelled)
            );
            assert_ne!(
                status.retryable(),
                status.cancellable() || status == QueueStatus::Succeeded
            );
        }
    }

    /// A stored status that is none of the known ones fails the read, where it once read
    /// as `failed`.
    #[tokio::test]
    async fn an_unknown_stored_status_is_refused_not_guessed() {
        let (_dir, db) = scratch_db().await;
        insert_run(&db, "run_1", QueueStatus::Queued, None).await;
        for status in QueueStatus::ALL {
            db.execute(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "UPDATE runs SET status = ? WHERE id = 'run_1'",
                [status.as_str().into()],
            ))
            .await
            .unwrap();
            let row = run::Entity::find_by_id("run_1").one(&db).await.unwrap();
            assert_eq!(
                row.unwrap().status,
                status,
                "{} reads back",
                status.as_str()
            );
        }
        db.execute_unprepared("UPDATE runs SET status = 'exploded' WHERE id = 'run_1'")
            .await
            .unwrap();
        assert!(run::Entity::find_by_id("run_1").one(&db).await.is_err());
    }
}
