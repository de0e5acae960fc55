//! Indexes, segment ingestion and search. Segments live in the database (the source of
//! truth); every write appends to the segment change sequence in the same transaction, and
//! the search index follows it.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait,
    DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, Statement, TransactionTrait,
};
use videovector_api_spec::{
    dto::{indexes::*, search::*},
    problem::FieldError,
    services::{IndexService, PageParams, ServiceResult},
    ApiError, Principal,
};

use super::{
    find_in_org, internal, is_unique_violation,
    pagination::PageRequest,
    retrieval::{to_search_hit, Filters},
};
use crate::{
    db::entities::{index, segment, segment_change},
    ids::new_id,
    search::Indexer,
};

/// How long an ingest with `wait: true` waits for the search index.
const WAIT_FOR_SEARCHABLE: Duration = Duration::from_secs(10);
const INSERT_CHUNK: usize = 500;

pub struct Indexes {
    pub db: DatabaseConnection,
    pub indexer: Arc<Indexer>,
}

fn to_dto(model: &index::Model) -> Index {
    Index {
        id: model.id.clone(),
        name: model.name.clone(),
        description: model.description.clone(),
        segment_count: model.segment_count.max(0) as u64,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}

/// `idx_` then 1–60 of `a-z 0-9 _ -`.
fn valid_index_id(id: &str) -> bool {
    id.strip_prefix("idx_").is_some_and(|rest| {
        (1..=60).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    })
}

fn validate_segments(segments: &[SegmentInput]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let mut fail = |i: usize, field: &str, message: &str| {
        errors.push(FieldError {
            field: format!("segments[{i}].{field}"),
            message: message.to_string(),
        })
    };
    for (i, s) in segments.iter().enumerate() {
        if !s.start_seconds.is_finite() || s.start_seconds < 0.0 {
            fail(
                i,
                "start_seconds",
                "must be a finite number of seconds, not negative",
            );
        }
        if !s.end_seconds.is_finite() || s.end_seconds < s.start_seconds {
            fail(
                i,
                "end_seconds",
                "must be a finite number of seconds, not before start_seconds",
            );
        }
        if s.text.trim().is_empty() {
            fail(i, "text", "must not be blank");
        }
        if s.media_id.trim().is_empty() {
            fail(i, "media_id", "must not be blank");
        }
        if s.labels.iter().any(|l| l.is_empty() || l.len() > 200) {
            fail(i, "labels", "each label must be 1 to 200 bytes");
        }
        if s.metadata.as_ref().is_some_and(|m| !m.is_object()) {
            fail(i, "metadata", "must be a JSON object");
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_segments",
            format!("{} field(s) are invalid", errors.len()),
        )
        .with_field_errors(errors))
    }
}

/// Reserves `count` numbers of the change sequence; returns the first. The counter row stays
/// locked until the transaction ends, so sequence numbers become visible in order.
async fn reserve_sequence(txn: &DatabaseTransaction, count: i64) -> Result<i64, sea_orm::DbErr> {
    let backend = txn.get_database_backend();
    let row = txn
        .query_one(Statement::from_string(
            backend,
            format!(
                "UPDATE sequence_counters SET value = value + {count} \
                 WHERE name = 'segment_changes' RETURNING value"
            ),
        ))
        .await?
        .ok_or_else(|| {
            sea_orm::DbErr::Custom("the segment_changes counter row is missing".into())
        })?;
    let last: i64 = row.try_get_by_index(0)?;
    Ok(last - count + 1)
}

impl Indexes {
    async fn find(&self, who: &Principal, index_id: &str) -> ServiceResult<index::Model> {
        find_in_org(
            &self.db,
            index::for_org(&who.org_id),
            index::Column::Id,
            index_id,
            "index",
        )
        .await
    }
}

/// Stores segments in `idx` with their change-sequence entries, in one transaction.
/// `None` when the index was deleted meanwhile (nothing is stored). Returns the new ids
/// and the batch's change sequence number.
pub async fn store_segments(
    db: &DatabaseConnection,
    idx: &index::Model,
    segments: Vec<SegmentInput>,
) -> Result<Option<(Vec<String>, i64)>, sea_orm::DbErr> {
    let now = Utc::now();
    let ids: Vec<String> = segments.iter().map(|_| new_id("seg")).collect();
    let txn = db.begin().await?;
    // Counting first locks the index row: a concurrent delete either finished (no row,
    // so nothing is stored) or waits for this batch.
    let counted = index::Entity::update_many()
        .col_expr(
            index::Column::SegmentCount,
            Expr::col(index::Column::SegmentCount).add(ids.len() as i64),
        )
        .col_expr(index::Column::UpdatedAt, Expr::value(now))
        .filter(index::Column::Uid.eq(&idx.uid))
        .exec(&txn)
        .await?;
    if counted.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    // One change for the whole batch: its segments carry the change's number.
    let seq = reserve_sequence(&txn, 1).await?;
    let models: Vec<segment::ActiveModel> = segments
        .into_iter()
        .zip(&ids)
        .map(|(s, id)| segment::ActiveModel {
            id: Set(id.clone()),
            index_uid: Set(idx.uid.clone()),
            org_id: Set(idx.org_id.clone()),
            media_id: Set(s.media_id),
            start_seconds: Set(s.start_seconds),
            end_seconds: Set(s.end_seconds),
            text: Set(s.text),
            labels: Set(serde_json::to_string(&s.labels).unwrap_or_else(|_| "[]".into())),
            metadata: Set(s.metadata.map(|m| m.to_string())),
            created_at: Set(now),
            change_seq: Set(Some(seq)),
        })
        .collect();
    for chunk in models.chunks(INSERT_CHUNK) {
        segment::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await?;
    }
    segment_change::Entity::insert(segment_change::ActiveModel {
        seq: Set(seq),
        index_uid: Set(idx.uid.clone()),
        segment_id: Set(None),
        op: Set(segment_change::UPSERT_BATCH.to_string()),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(Some((ids, seq)))
}

#[async_trait]
impl IndexService for Indexes {
    async fn create(&self, who: &Principal, request: IndexCreate) -> ServiceResult<Index> {
        let id = match request.id {
            Some(id) if valid_index_id(&id) => id,
            Some(id) => {
                return Err(ApiError::unprocessable(
                    "invalid_index_id",
                    format!(
                    "`{id}` is not a valid index id: use `idx_` then 1–60 of a-z, 0-9, `_`, `-`"
                ),
                ))
            }
            None => new_id("idx"),
        };
        let name = request.name.trim().to_string();
        if name.is_empty() {
            return Err(ApiError::unprocessable(
                "invalid_name",
                "name must not be blank",
            ));
        }
        let now = Utc::now();
        let model = index::ActiveModel {
            uid: Set(new_id("ixu")),
            org_id: Set(who.org_id.clone()),
            id: Set(id.clone()),
            name: Set(name),
            description: Set(request.description),
            segment_count: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match model.insert(&self.db).await {
            Ok(saved) => Ok(to_dto(&saved)),
            Err(e) if is_unique_violation(&e) => Err(ApiError::conflict(
                "index_exists",
                format!("an index `{id}` already exists in this organisation"),
            )),
            Err(e) => Err(internal("creating an index", e)),
        }
    }

    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<IndexPage> {
        let (rows, next_cursor) = PageRequest::parse(page)?
            .fetch(
                &self.db,
                index::for_org(&who.org_id),
                index::Column::Id,
                |r| &r.id,
                "indexes",
            )
            .await?;
        Ok(IndexPage {
            items: rows.iter().map(to_dto).collect(),
            next_cursor,
        })
    }

    async fn view(&self, who: &Principal, index_id: &str) -> ServiceResult<Index> {
        Ok(to_dto(&self.find(who, index_id).await?))
    }

    async fn update(
        &self,
        who: &Principal,
        index_id: &str,
        request: IndexUpdate,
    ) -> ServiceResult<Index> {
        let existing = self.find(who, index_id).await?;
        let mut model: index::ActiveModel = existing.into();
        if let Some(name) = request.name {
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(ApiError::unprocessable(
                    "invalid_name",
                    "name must not be blank",
                ));
            }
            model.name = Set(name);
        }
        if let Some(description) = request.description {
            model.description = Set(Some(description));
        }
        model.updated_at = Set(Utc::now());
        let saved = model
            .update(&self.db)
            .await
            .map_err(|e| internal("updating an index", e))?;
        Ok(to_dto(&saved))
    }

    async fn delete(&self, who: &Principal, index_id: &str) -> ServiceResult<()> {
        let existing = self.find(who, index_id).await?;
        let result: Result<(), sea_orm::DbErr> = async {
            let txn = self.db.begin().await?;
            segment::Entity::delete_many()
                .filter(segment::Column::IndexUid.eq(&existing.uid))
                .exec(&txn)
                .await?;
            index::Entity::delete_many()
                .filter(index::Column::Uid.eq(&existing.uid))
                .exec(&txn)
                .await?;
            let seq = reserve_sequence(&txn, 1).await?;
            segment_change::Entity::insert(segment_change::ActiveModel {
                seq: Set(seq),
                index_uid: Set(existing.uid.clone()),
                segment_id: Set(None),
                op: Set(segment_change::DROP_INDEX.to_string()),
            })
            .exec_without_returning(&txn)
            .await?;
            txn.commit().await
        }
        .await;
        result.map_err(|e| internal("deleting an index", e))?;
        self.indexer.notify();
        Ok(())
    }

    async fn ingest(
        &self,
        who: &Principal,
        index_id: &str,
        batch: SegmentBatch,
    ) -> ServiceResult<SegmentBatchResult> {
        validate_segments(&batch.segments)?;
        let idx = self.find(who, index_id).await?;
        let (segment_ids, last_seq) = store_segments(&self.db, &idx, batch.segments)
            .await
            .map_err(|e| internal("storing segments", e))?
            .ok_or_else(|| ApiError::not_found("index", index_id))?;
        let searchable = if batch.wait {
            self.indexer.wait_for(last_seq, WAIT_FOR_SEARCHABLE).await
        } else {
            self.indexer.notify();
            self.indexer.applied() >= last_seq
        };
        Ok(SegmentBatchResult {
            index_id: idx.id,
            segment_ids,
            searchable,
        })
    }

    async fn search(
        &self,
        who: &Principal,
        index_id: &str,
        request: SearchRequest,
    ) -> ServiceResult<SearchResults> {
        let idx = self.find(who, index_id).await?;
        let query = Filters::from_request(request.filters)?
            .query(&request.query, request.top_k.unwrap_or(10) as usize);
        let hits = self
            .indexer
            .engine()
            .search(&idx.uid, &query)
            .map_err(|e| internal("searching", e))?;
        Ok(SearchResults {
            hits: hits
                .into_iter()
                .map(|hit| to_search_hit(&idx.id, hit))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ids() {
        assert!(valid_index_id("idx_archive"));
        assert!(valid_index_id("idx_a-1_b"));
        assert!(!valid_index_id("idx_"));
        assert!(!valid_index_id("archive"));
        assert!(!valid_index_id("idx_Archive"));
        assert!(!valid_index_id(&format!("idx_{}", "a".repeat(61))));
    }
}
