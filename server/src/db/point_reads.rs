//! The point reads on every authenticated request: an API key by digest and an index by
//! its public id.
//!
//! On SQLite they run on the calling thread through [`DirectSqlite`] (a WAL point read by a
//! unique index takes microseconds; a hand-off to sqlx-sqlite's worker thread costs more).
//! Other databases go through sea-orm.
//!
//! Nothing is cached: every call reads the database. That is what keeps revocation,
//! expiry and deletion immediate, on every instance.

use std::sync::Arc;

use rusqlite::{OptionalExtension, Row};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::{
    direct::{optional_timestamp, timestamp, DirectSqlite},
    entities::{api_key, index},
};

const API_KEY_BY_DIGEST: &str = "SELECT id, org_id, name, scopes, digest, hint, previous_digest, \
     previous_valid_until, created_by, created_at, expires_at, last_used_at, revoked_at, \
     rotated_at FROM api_keys WHERE digest = ?1 OR previous_digest = ?1 LIMIT 1";

const INDEX_IN_ORG: &str = "SELECT uid, org_id, id, name, description, segment_count, created_at, \
     updated_at FROM indexes WHERE org_id = ?1 AND id = ?2";

pub struct PointReads {
    backend: Backend,
}

enum Backend {
    Sqlite(Arc<DirectSqlite>),
    Orm(DatabaseConnection),
}

impl PointReads {
    /// Reads through `direct` when the database is a SQLite file, else through `db`.
    pub fn new(direct: Option<Arc<DirectSqlite>>, db: DatabaseConnection) -> Self {
        let backend = match direct {
            Some(direct) => Backend::Sqlite(direct),
            None => Backend::Orm(db),
        };
        PointReads { backend }
    }

    /// The key whose current or previous digest is `digest`.
    pub async fn api_key_by_digest(&self, digest: &str) -> Result<Option<api_key::Model>, DbErr> {
        match &self.backend {
            Backend::Sqlite(readers) => readers.read(|conn| {
                conn.prepare_cached(API_KEY_BY_DIGEST)?
                    .query_row([digest], api_key_from_row)
                    .optional()
            }),
            Backend::Orm(db) => {
                api_key::Entity::find()
                    .filter(
                        Condition::any()
                            .add(api_key::Column::Digest.eq(digest))
                            .add(api_key::Column::PreviousDigest.eq(digest)),
                    )
                    .one(db)
                    .await
            }
        }
    }

    /// The index `id` of organisation `org_id`.
    pub async fn index_in_org(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<index::Model>, DbErr> {
        match &self.backend {
            Backend::Sqlite(readers) => readers.read(|conn| {
                conn.prepare_cached(INDEX_IN_ORG)?
                    .query_row([org_id, id], index_from_row)
                    .optional()
            }),
            Backend::Orm(db) => {
                index::for_org(org_id)
                    .filter(index::Column::Id.eq(id))
                    .one(db)
                    .await
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
    })
}
