//! The point reads on every authenticated request: an API key by digest, its
//! organisation's default rate limits, and an index by its public id.
//!
//! On SQLite they run on the calling thread through [`DirectSqlite`] (a WAL point read by a
//! unique index takes microseconds; a hand-off to sqlx-sqlite's worker thread costs more).
//! On PostgreSQL they go through sea-orm, in front of a [`ReadCache`] per kind of row: a
//! network round trip per request cost more than the rest of the request. Writes forget
//! what they change here at once ([`PointReads::forget`]), and other instances forget it
//! when the notice of the write reaches them ([`crate::cluster`]); while that notice
//! channel is down, nothing is cached. Expiry is checked on every use of a cached key, so
//! it stays exact. On SQLite (one instance) nothing is cached.

use std::{sync::Arc, time::Duration};

use rusqlite::{OptionalExtension, Row};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter,
};

use videovector_api_spec::dto::rate_limits::RateLimit;

use super::{
    columns::RateLimitList,
    direct::{optional_timestamp, timestamp, DirectSqlite},
    entities::{api_key, index, organization},
    notifications::{publish, Notice},
    read_cache::ReadCache,
};

/// How long a cached row may be served without a notice: the bound on staleness if a
/// notice is lost while the notification connection still looks healthy.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Rows kept per kind.
const CACHE_CAPACITY: usize = 10_000;

/// A key's row by the condition `$where` (columns in [`api_key_from_row`]'s order).
macro_rules! select_api_key {
    ($where:literal) => {
        concat!(
            "SELECT id, org_id, name, scopes, digest, hint, previous_digest, \
             previous_valid_until, created_by, created_at, expires_at, last_used_at, revoked_at, \
             rotated_at, rate_limits, allowed_cidrs, metadata, owner_id, index_ids, max_top_k, \
             tenant_key, allowed_origins, client_rate_limits, expiring_notice_at, \
             expired_notice_at, leak_reported_at, leak_reporter, leak_url, leak_source \
             FROM api_keys WHERE ",
            $where
        )
    };
}

const API_KEY_BY_DIGEST: &str = select_api_key!("digest = ?1 OR previous_digest = ?1 LIMIT 1");

const API_KEY_BY_ID: &str = select_api_key!("id = ?1");

const ORG_RATE_LIMITS: &str = "SELECT rate_limits FROM organizations WHERE id = ?1";

const INDEX_IN_ORG: &str = "SELECT uid, org_id, id, name, description, segment_count, created_at, \
     updated_at, embedder, embedder_secret, pending_embedder, pending_embedder_secret, \
     embedder_seq, reembedding_id FROM indexes WHERE org_id = ?1 AND id = ?2";

pub struct PointReads {
    source: Source,
}

enum Source {
    Sqlite(Arc<DirectSqlite>),
    Postgres(Box<CachedOrm>),
}

struct CachedOrm {
    db: DatabaseConnection,
    /// API keys by the digest presented (current or previous).
    keys: ReadCache<String, api_key::Model>,
    /// Indexes by (organisation, public id).
    indexes: ReadCache<(String, String), index::Model>,
    /// Organisations' default rate limits (`None`: the server's) by organisation id.
    org_limits: ReadCache<String, Option<Arc<[RateLimit]>>>,
}

impl PointReads {
    /// Reads through `direct` when the database is a SQLite file, else through `db`.
    pub fn new(direct: Option<Arc<DirectSqlite>>, db: DatabaseConnection) -> Self {
        let source = match direct {
            Some(direct) => Source::Sqlite(direct),
            None => Source::Postgres(Box::new(CachedOrm {
                db,
                keys: ReadCache::new(CACHE_TTL, CACHE_CAPACITY),
                indexes: ReadCache::new(CACHE_TTL, CACHE_CAPACITY),
                org_limits: ReadCache::new(CACHE_TTL, CACHE_CAPACITY),
            })),
        };
        PointReads { source }
    }

    /// Each cache's lookups answered from it and not, by the rows it holds (`api_keys`,
    /// `indexes`, `org_rate_limits`); none on SQLite, which caches nothing.
    pub fn cache_counts(&self) -> Vec<(&'static str, (u64, u64))> {
        match &self.source {
            Source::Sqlite(_) => Vec::new(),
            Source::Postgres(orm) => vec![
                ("api_keys", orm.keys.hits_and_misses()),
                ("indexes", orm.indexes.hits_and_misses()),
                ("org_rate_limits", orm.org_limits.hits_and_misses()),
            ],
        }
    }

    /// Whether rows are being cached now (notices are followed).
    pub fn is_live(&self) -> bool {
        matches!(&self.source, Source::Postgres(orm) if orm.keys.is_live())
    }

    /// Turns the caches on while notices are followed, and off (empty) while they may be
    /// missed.
    pub fn set_live(&self, live: bool) {
        if let Source::Postgres(orm) = &self.source {
            orm.keys.set_live(live);
            orm.indexes.set_live(live);
            orm.org_limits.set_live(live);
        }
    }

    /// Forgets the rows `notice` says changed.
    pub fn forget(&self, notice: &Notice) {
        let Source::Postgres(orm) = &self.source else {
            return;
        };
        let CachedOrm {
            keys,
            indexes,
            org_limits,
            ..
        } = orm.as_ref();
        match notice {
            Notice::ApiKey { key_id } => keys.forget_where(|_, key| key.id == *key_id),
            Notice::Organization { org_id } => org_limits.forget_where(|org, _| org == org_id),
            Notice::Index { org_id, index_id }
            | Notice::Segments {
                org_id, index_id, ..
            } => indexes.forget_where(|(org, id), _| org == org_id && id == index_id),
        }
    }

    /// Sends `notice` inside `txn`, commits it, and forgets here what it changed: the one
    /// way a write to a cached row ends.
    pub async fn commit_announcing(
        &self,
        txn: DatabaseTransaction,
        notice: &Notice,
    ) -> Result<(), DbErr> {
        publish(&txn, notice).await?;
        txn.commit().await?;
        self.forget(notice);
        Ok(())
    }

    /// Records in the cached key that this instance wrote its last use.
    pub fn note_last_use(&self, digest: &str, at: chrono::DateTime<chrono::Utc>) {
        if let Source::Postgres(orm) = &self.source {
            orm.keys.update(digest, |key| key.last_used_at = Some(at));
        }
    }

    /// The key whose current or previous digest is `digest`.
    pub async fn api_key_by_digest(&self, digest: &str) -> Result<Option<api_key::Model>, DbErr> {
        match &self.source {
            Source::Sqlite(readers) => readers.read(|conn| {
                conn.prepare_cached(API_KEY_BY_DIGEST)?
                    .query_row([digest], api_key_from_row)
                    .optional()
            }),
            Source::Postgres(orm) => {
                let CachedOrm { db, keys, .. } = orm.as_ref();
                if let Some(key) = keys.get(digest) {
                    return Ok(Some(key));
                }
                let ticket = keys.ticket();
                let key = api_key::Entity::find()
                    .filter(
                        Condition::any()
                            .add(api_key::Column::Digest.eq(digest))
                            .add(api_key::Column::PreviousDigest.eq(digest)),
                    )
                    .one(db)
                    .await?;
                // Unknown digests are not kept: anyone can present those.
                if let Some(key) = &key {
                    keys.insert(ticket, digest.to_string(), key.clone());
                }
                Ok(key)
            }
        }
    }

    /// The key `key_id` (a tenant token names its key by id). Cached beside the keys found
    /// by digest, under `id:<key id>`, and forgotten with them.
    pub async fn api_key_by_id(&self, key_id: &str) -> Result<Option<api_key::Model>, DbErr> {
        match &self.source {
            Source::Sqlite(readers) => readers.read(|conn| {
                conn.prepare_cached(API_KEY_BY_ID)?
                    .query_row([key_id], api_key_from_row)
                    .optional()
            }),
            Source::Postgres(orm) => {
                let CachedOrm { db, keys, .. } = orm.as_ref();
                let cache_key = format!("id:{key_id}");
                if let Some(key) = keys.get(&cache_key) {
                    return Ok(Some(key));
                }
                let ticket = keys.ticket();
                let key = api_key::Entity::find_by_id(key_id).one(db).await?;
                if let Some(key) = &key {
                    keys.insert(ticket, cache_key, key.clone());
                }
                Ok(key)
            }
        }
    }

    /// The default rate limits of organisation `org_id` (`None`: it has set none, or it does
    /// not exist).
    pub async fn org_rate_limits(&self, org_id: &str) -> Result<Option<Arc<[RateLimit]>>, DbErr> {
        match &self.source {
            Source::Sqlite(readers) => readers.read(|conn| {
                let limits: Option<Option<RateLimitList>> = conn
                    .prepare_cached(ORG_RATE_LIMITS)?
                    .query_row([org_id], |row| row.get(0))
                    .optional()?;
                Ok(limits.flatten().map(|l| l.0))
            }),
            Source::Postgres(orm) => {
                let CachedOrm { db, org_limits, .. } = orm.as_ref();
                if let Some(limits) = org_limits.get(org_id) {
                    return Ok(limits);
                }
                let ticket = org_limits.ticket();
                let limits = organization::Entity::find_by_id(org_id)
                    .one(db)
                    .await?
                    .and_then(|org| org.rate_limits)
                    .map(|l| l.0);
                org_limits.insert(ticket, org_id.to_string(), limits.clone());
                Ok(limits)
            }
        }
    }

    /// The index `id` of organisation `org_id`.
    pub async fn index_in_org(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<index::Model>, DbErr> {
        match &self.source {
            Source::Sqlite(readers) => readers.read(|conn| {
                conn.prepare_cached(INDEX_IN_ORG)?
                    .query_row([org_id, id], index_from_row)
                    .optional()
            }),
            Source::Postgres(orm) => {
                let CachedOrm { db, indexes, .. } = orm.as_ref();
                let cache_key = (org_id.to_string(), id.to_string());
                if let Some(index) = indexes.get(&cache_key) {
                    return Ok(Some(index));
                }
                let ticket = indexes.ticket();
                let index = index::for_org(org_id)
                    .filter(index::Column::Id.eq(id))
                    .one(db)
                    .await?;
                if let Some(index) = &index {
                    indexes.insert(ticket, cache_key, index.clone());
                }
                Ok(index)
            }
        }
    }
}

fn api_key_from_row(row: &Row<'_>) -> rusqlite::Result<api_key::Model> {
    Ok(api_key::Model {
        id: row.get(0)?,
        org_id: row.get(1)?,
        name: row.get(2)?,
        scopes: row.get(3)?,
        digest: row.get(4)?,
        hint: row.get(5)?,
        previous_digest: row.get(6)?,
        previous_valid_until: optional_timestamp(row, 7)?,
        created_by: row.get(8)?,
        created_at: timestamp(row, 9)?,
        expires_at: optional_timestamp(row, 10)?,
        last_used_at: optional_timestamp(row, 11)?,
        revoked_at: optional_timestamp(row, 12)?,
        rotated_at: optional_timestamp(row, 13)?,
        rate_limits: row.get(14)?,
        allowed_cidrs: row.get(15)?,
        metadata: row.get(16)?,
        owner_id: row.get(17)?,
        index_ids: row.get(18)?,
        max_top_k: row.get(19)?,
        tenant_key: row.get(20)?,
        allowed_origins: row.get(21)?,
        client_rate_limits: row.get(22)?,
        expiring_notice_at: optional_timestamp(row, 23)?,
        expired_notice_at: optional_timestamp(row, 24)?,
        leak_reported_at: optional_timestamp(row, 25)?,
        leak_reporter: row.get(26)?,
        leak_url: row.get(27)?,
        leak_source: row.get(28)?,
    })
}

fn index_from_row(row: &Row<'_>) -> rusqlite::Result<index::Model> {
    Ok(index::Model {
        uid: row.get(0)?,
        org_id: row.get(1)?,
        id: row.get(2)?,
        name: row.get(3)?,
        description: row.get(4)?,
        segment_count: row.get(5)?,
        created_at: timestamp(row, 6)?,
        updated_at: timestamp(row, 7)?,
        embedder: row.get(8)?,
        embedder_secret: row.get(9)?,
        pending_embedder: row.get(10)?,
        pending_embedder_secret: row.get(11)?,
        embedder_seq: row.get(12)?,
        reembedding_id: row.get(13)?,
    })
}
