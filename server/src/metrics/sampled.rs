//! What is read at scrape time rather than counted per request: queue depths and ages, the
//! search copy's lag, the notification listener, the database pool, the read caches and the
//! embedding and indexing counts. A scrape costs a handful of small queries; a request costs
//! nothing for these.

use std::{sync::atomic::Ordering, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Alias, Expr, Query},
    ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult,
};

use super::exposition::{Exposition, Kind};
use crate::{
    db::{backend::Backend, point_reads::PointReads},
    embed::Embedders,
    search::Indexer,
};

/// Where the sampled numbers come from.
#[derive(Clone)]
pub struct Sources {
    pub db: DatabaseConnection,
    pub backend: Backend,
    pub reads: Arc<PointReads>,
    pub indexer: Arc<Indexer>,
    pub embedders: Arc<Embedders>,
}

/// The queues, by table: work waiting (`queued`) and in hand (`running`).
const QUEUES: [(&str, &str); 4] = [
    ("runs", "runs"),
    ("jobs", "jobs"),
    ("webhook_deliveries", "deliveries"),
    ("reembeddings", "reembeddings"),
];

#[derive(FromQueryResult)]
struct QueueRow {
    status: String,
    n: i64,
    oldest: Option<DateTime<Utc>>,
}

async fn queue_rows(db: &DatabaseConnection, table: &str) -> Result<Vec<QueueRow>, DbErr> {
    let query = Query::select()
        .column(Alias::new("status"))
        .expr_as(Expr::col(Alias::new("id")).count(), Alias::new("n"))
        .expr_as(
            Expr::col(Alias::new("created_at")).min(),
            Alias::new("oldest"),
        )
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("status")).is_in(["queued", "running"]))
        .group_by_col(Alias::new("status"))
        .to_owned();
    let statement = db.get_database_backend().build(&query);
    QueueRow::find_by_statement(statement).all(db).await
}

impl Sources {
    pub async fn write(&self, out: &mut Exposition) {
        let now = Utc::now();
        let depth = "videovector_queue_depth";
        let age = "videovector_queue_oldest_age_seconds";
        let mut depths = Vec::new();
        let mut ages = Vec::new();
        for (table, queue) in QUEUES {
            match queue_rows(&self.db, table).await {
                Ok(rows) => {
                    for status in ["queued", "running"] {
                        let row = rows.iter().find(|r| r.status == status);
                        depths.push((queue, status, row.map_or(0, |r| r.n)));
                        let oldest = row.and_then(|r| r.oldest);
                        let seconds = oldest.map_or(0.0, |at| {
                            (now - at).num_milliseconds().max(0) as f64 / 1000.0
                        });
                        ages.push((queue, status, seconds));
                    }
                }
                Err(e) => tracing::warn!(error = %e, queue, "metrics: reading a queue"),
            }
        }
        out.metric(
            depth,
            Kind::Gauge,
            "Work by queue and status (queued, running).",
        );
        for (queue, status, n) in depths {
            out.sample(depth, &[("queue", queue), ("status", status)], n as f64);
        }
        out.metric(
            age,
            Kind::Gauge,
            "Age of the oldest work by queue and status, in seconds (0 when empty).",
        );
        for (queue, status, seconds) in ages {
            out.sample(age, &[("queue", queue), ("status", status)], seconds);
        }

        match self.indexer.lag().await {
            Ok(behind) => {
                let lag = "videovector_search_copy_lag_changes";
                out.metric(
                    lag,
                    Kind::Gauge,
                    "Segment changes in the database this instance's search copy has not applied.",
                );
                out.sample(lag, &[], behind as f64);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading the change log"),
        }
        if self.backend.is_postgres() {
            let listener = "videovector_notification_listener_up";
            out.metric(
                listener,
                Kind::Gauge,
                "1 while this instance listens for the others' notices (PostgreSQL), else 0.",
            );
            out.sample(listener, &[], f64::from(u8::from(self.indexer.followed())));
        }

        let pool = "videovector_db_pool_connections";
        out.metric(
            pool,
            Kind::Gauge,
            "Database pool connections by state (idle, in_use).",
        );
        let (size, idle) = match &self.backend {
            Backend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
            Backend::Sqlite { .. } => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
        };
        out.sample(pool, &[("state", "idle")], f64::from(idle));
        out.sample(
            pool,
            &[("state", "in_use")],
            f64::from(size.saturating_sub(idle)),
        );

        let caches = self.reads.cache_counts();
        if !caches.is_empty() {
            let lookups = "videovector_cache_lookups_total";
            out.metric(
                lookups,
                Kind::Counter,
                "Cached point reads by cache and result (hit, miss); PostgreSQL only.",
            );
            for (cache, (hits, misses)) in caches {
                out.sample(lookups, &[("cache", cache), ("result", "hit")], hits as f64);
                out.sample(
                    lookups,
                    &[("cache", cache), ("result", "miss")],
                    misses as f64,
                );
            }
        }

        let embedded = "videovector_embedded_texts_total";
        out.metric(
            embedded,
            Kind::Counter,
            "Texts handed to an embedder (built-in or rest), by purpose.",
        );
        let counts = &self.embedders.counts;
        for (purpose, counter) in [
            ("segments", &counts.segments),
            ("queries", &counts.queries),
            ("reembedded", &counts.reembedded),
        ] {
            out.sample(
                embedded,
                &[("purpose", purpose)],
                counter.load(Ordering::Relaxed) as f64,
            );
        }
        let indexed = "videovector_indexed_segment_changes_total";
        out.metric(
            indexed,
            Kind::Counter,
            "Segment changes committed to this instance's search copy.",
        );
        out.sample(indexed, &[], self.indexer.indexed() as f64);
    }
}
