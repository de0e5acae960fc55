//! Usage counts: every answer to an API key's request is counted in memory by key, family,
//! outcome and minute, and each instance writes what it counted every `usage_flush_ms` in
//! one transaction (a statement per few hundred buckets), adding to the minute, hour and day buckets at once
//! (so reading a day is reading one row, not rolling minutes up). A write that fails keeps
//! its counts for the next. Buckets are kept for [`RETENTION`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use sea_orm::{
    sea_query::{Alias, Expr, OnConflict},
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IdenStatic, QueryFilter, TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use videovector_api_spec::{
    dto::rate_limits::{RateLimitFamily, UsageGranularity},
    Credential, Principal,
};

use crate::db::entities::api_key_usage;

/// How long buckets of each granularity are kept.
pub const RETENTION: [(UsageGranularity, Duration); 3] = [
    (UsageGranularity::Minute, Duration::from_secs(48 * 3600)),
    (UsageGranularity::Hour, Duration::from_secs(90 * 86_400)),
    (UsageGranularity::Day, Duration::from_secs(730 * 86_400)),
];

/// Buckets written per statement (eleven values each).
const ROWS_PER_STATEMENT: usize = 500;

/// How an answer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    RateLimited,
    RefusedByScope,
    NotFound,
    ClientError,
    ServerError,
}

impl Outcome {
    pub fn of(status: StatusCode) -> Outcome {
        match status {
            StatusCode::TOO_MANY_REQUESTS => Outcome::RateLimited,
            StatusCode::FORBIDDEN => Outcome::RefusedByScope,
            StatusCode::NOT_FOUND => Outcome::NotFound,
            s if s.is_client_error() => Outcome::ClientError,
            s if s.is_server_error() => Outcome::ServerError,
            _ => Outcome::Allowed,
        }
    }
}

pub fn granularity_name(granularity: UsageGranularity) -> &'static str {
    match granularity {
        UsageGranularity::Minute => "minute",
        UsageGranularity::Hour => "hour",
        UsageGranularity::Day => "day",
    }
}

/// A bucket's length in seconds.
pub fn granularity_seconds(granularity: UsageGranularity) -> i64 {
    match granularity {
        UsageGranularity::Minute => 60,
        UsageGranularity::Hour => 3_600,
        UsageGranularity::Day => 86_400,
    }
}

/// The key a request counts for.
pub struct Counted {
    org_id: String,
    key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BucketKey {
    org_id: String,
    key_id: String,
    family: RateLimitFamily,
    granularity: UsageGranularity,
    start: i64,
}

/// Counts by outcome, in [`Outcome`]'s order.
type Counts = [i64; 6];

/// What this instance counted and has not written yet.
pub struct UsageCounter {
    db: DatabaseConnection,
    pending: Mutex<HashMap<BucketKey, Counts>>,
}

impl UsageCounter {
    pub fn new(db: DatabaseConnection) -> Self {
        UsageCounter {
            db,
            pending: Mutex::default(),
        }
    }

    /// Whose usage a request of `who` counts in: an API key's (operators' tokens are not
    /// counted).
    pub fn counts(&self, who: &Principal) -> Option<Counted> {
        match &who.credential {
            Credential::ApiKey { key_id } => Some(Counted {
                org_id: who.org_id.clone(),
                key_id: key_id.clone(),
            }),
            Credential::Jwt { .. } => None,
        }
    }

    /// Counts an answer of `status` in `family` at `at`.
    pub fn record(
        &self,
        counted: Counted,
        family: RateLimitFamily,
        status: StatusCode,
        at: DateTime<Utc>,
    ) {
        let seconds = at.timestamp();
        let key = BucketKey {
            org_id: counted.org_id,
            key_id: counted.key_id,
            family,
            granularity: UsageGranularity::Minute,
            start: seconds - seconds.rem_euclid(60),
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.entry(key).or_default()[Outcome::of(status) as usize] += 1;
    }

    /// Writes what was counted: each minute into its minute, hour and day. On failure the
    /// counts stay pending.
    pub async fn flush(&self) -> Result<usize, DbErr> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if taken.is_empty() {
            return Ok(0);
        }
        let mut rolled: HashMap<BucketKey, Counts> = HashMap::new();
        for (key, counts) in &taken {
            for granularity in [
                UsageGranularity::Minute,
                UsageGranularity::Hour,
                UsageGranularity::Day,
            ] {
                let size = granularity_seconds(granularity);
                let bucket = BucketKey {
                    granularity,
                    start: key.start - key.start.rem_euclid(size),
                    ..key.clone()
                };
                let sum = rolled.entry(bucket).or_default();
                for (total, n) in sum.iter_mut().zip(counts) {
                    *total += n;
                }
            }
        }
        let rows: Vec<_> = rolled.into_iter().map(to_row).collect();
        let written = rows.len();
        if let Err(e) = self.write(rows).await {
            // Nothing was written (one transaction): count it again next time.
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (key, counts) in taken {
                let sum = pending.entry(key).or_default();
                for (total, n) in sum.iter_mut().zip(counts) {
                    *total += n;
                }
            }
            return Err(e);
        }
        Ok(written)
    }

    /// Adds `rows` to their buckets, all or none.
    async fn write(&self, rows: Vec<api_key_usage::ActiveModel>) -> Result<(), DbErr> {
        use api_key_usage::Column as C;
        let add = |column: C| {
            let excluded = Expr::col((Alias::new("excluded"), Alias::new(column.as_str())));
            (
                column,
                Expr::col((api_key_usage::Entity, column)).add(excluded),
            )
        };
        let txn = self.db.begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            api_key_usage::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([
                        C::OrgId,
                        C::Granularity,
                        C::BucketStart,
                        C::KeyId,
                        C::Family,
                    ])
                    .values([
                        add(C::Allowed),
                        add(C::RateLimited),
                        add(C::RefusedByScope),
                        add(C::NotFound),
                        add(C::ClientError),
                        add(C::ServerError),
                    ])
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await
    }

    /// Deletes buckets past their retention.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<u64, DbErr> {
        let mut deleted = 0;
        for (granularity, keep) in RETENTION {
            let before = now.timestamp() - keep.as_secs() as i64;
            deleted += api_key_usage::Entity::delete_many()
                .filter(api_key_usage::Column::Granularity.eq(granularity_name(granularity)))
                .filter(api_key_usage::Column::BucketStart.lt(before))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        Ok(deleted)
    }

    /// Flushes every `interval` and prunes hourly, until `shutdown`; then flushes once more.
    pub fn spawn(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune: Option<std::time::Instant> = None;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = shutdown.cancelled() => break,
                }
                if let Err(e) = self.flush().await {
                    tracing::warn!(error = %e, "writing usage counts");
                }
                if last_prune.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
                    last_prune = Some(std::time::Instant::now());
                    if let Err(e) = self.prune(Utc::now()).await {
                        tracing::warn!(error = %e, "pruning usage counts");
                    }
                }
            }
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "writing usage counts at shutdown");
            }
        });
    }
}

fn to_row((key, counts): (BucketKey, Counts)) -> api_key_usage::ActiveModel {
    api_key_usage::ActiveModel {
        org_id: Set(key.org_id),
        granularity: Set(granularity_name(key.granularity).into()),
        bucket_start: Set(key.start),
        key_id: Set(key.key_id),
        family: Set(key.family.as_str().into()),
        allowed: Set(counts[0]),
        rate_limited: Set(counts[1]),
        refused_by_scope: Set(counts[2]),
        not_found: Set(counts[3]),
        client_error: Set(counts[4]),
        server_error: Set(counts[5]),
    }
}
