//! Indexes, segment ingestion and search. Segments live in the database (the source of
//! truth); every write appends to the segment change sequence in the same transaction, and
//! the search index follows it.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    TransactionTrait,
};
use videovector_api_spec::ErrorCode;
use videovector_api_spec::{
    dto::{indexes::*, search::*},
    index_access,
    problem::FieldError,
    services::{IndexService, PageParams, ServiceResult},
    ApiError, Principal,
};

use super::{
    embedder_switch,
    ingest::embed_and_store,
    internal, is_unique_violation,
    pagination::PageRequest,
    retrieval::{to_search_hit, to_total, DEFAULT_SEMANTIC_RATIO},
};
use crate::{
    db::{
        columns::JsonText,
        entities::{index, reembedding, segment, segment_change},
        notifications::Notice,
        point_reads::PointReads,
        queue::QueueStatus,
        segment_store::{reserve_sequence, SegmentStore, StoredBatch},
    },
    embed::{self, Embedders},
    ids::new_id,
    search::{query::SegmentFilter, Indexer},
    secrets_at_rest::places,
};

/// How long an ingest with `wait: true` waits for the search index.
const WAIT_FOR_SEARCHABLE: Duration = Duration::from_secs(10);

pub struct Indexes {
    pub db: DatabaseConnection,
    pub reads: Arc<PointReads>,
    pub segments: SegmentStore,
    pub indexer: Arc<Indexer>,
    pub embedders: Arc<Embedders>,
    /// Wakes the re-embedding worker when a change of embedder is queued.
    pub reembed_wake: Arc<tokio::sync::Notify>,
}

fn to_dto(model: &index::Model, reembedding: Option<&reembedding::Model>) -> Index {
    Index {
        reembedding: reembedding.map(|r| embedder_switch::to_dto(model, r)),
        id: model.id.clone(),
        name: model.name.clone(),
        description: model.description.clone(),
        segment_count: model.segment_count.max(0) as u64,
        embedder: model
            .embedder
            .as_ref()
            .map(|e| embed::to_dto(&e.0, model.embedder_secret.is_some())),
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
        errors.push(FieldError::body(format!("/segments/{i}/{field}"), message))
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
        if s.labels
            .iter()
            .any(|l| l.is_empty() || l.chars().count() > 200)
        {
            fail(i, "labels", "each label must be 1 to 200 characters");
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            ErrorCode::InvalidSegments,
            format!("{} field(s) are invalid", errors.len()),
        )
        .with_field_errors(errors))
    }
}

impl Indexes {
    /// The latest re-embedding of `idx`, if it had one.
    async fn reembedding_of(
        &self,
        idx: &index::Model,
    ) -> ServiceResult<Option<reembedding::Model>> {
        let Some(id) = &idx.reembedding_id else {
            return Ok(None);
        };
        reembedding::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await
            .map_err(|e| internal("loading a re-embedding", e))
    }

    async fn find(&self, who: &Principal, index_id: &str) -> ServiceResult<index::Model> {
        // The guard refused this already (`x-index-access: path`); held here too, so no
        // other way in can reach past a key's restriction.
        index_access::check_named(who, [index_id])?;
        self.reads
            .index_in_org(&who.org_id, index_id)
            .await
            .map_err(|e| internal(&format!("loading index {index_id}"), e))?
            .ok_or_else(|| ApiError::not_found("index", index_id))
    }
}

#[async_trait]
impl IndexService for Indexes {
    async fn create(&self, who: &Principal, request: IndexCreate) -> ServiceResult<Index> {
        let id = match request.id {
            Some(id) if valid_index_id(&id) => id,
            Some(id) => {
                return Err(ApiError::validation(vec![FieldError::body(
                    "/id",
                    format!(
                        "`{id}` is not an index id: use `idx_` then 1–60 of a-z, 0-9, `_`, `-`"
                    ),
                )]))
            }
            None if who.index_restriction().is_some() => {
                return Err(ApiError::forbidden(
                    ErrorCode::IndexNotAllowed,
                    "a key restricted to some indexes creates only those: give the new \
                     index's `id`, one of the key's `index_ids`",
                ))
            }
            None => new_id("idx"),
        };
        index_access::check_named(who, [&id])?;
        let name = request.name.trim().to_string();
        if name.is_empty() {
            return Err(super::blank_name());
        }
        let uid = new_id("ixu");
        let settled = self
            .embedders
            .settle(request.embedder.as_ref(), "/embedder")
            .await?;
        let now = Utc::now();
        let model = index::ActiveModel {
            embedder: Set(settled.embedder.map(JsonText)),
            embedder_secret: Set(settled
                .api_key
                .map(|key| self.embedders.seal(&places::embedder_api_key(&uid), &key))),
            pending_embedder: Set(None),
            pending_embedder_secret: Set(None),
            embedder_seq: Set(0),
            reembedding_id: Set(None),
            uid: Set(uid),
            org_id: Set(who.org_id.clone()),
            id: Set(id.clone()),
            name: Set(name),
            description: Set(request.description),
            segment_count: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match model.insert(&self.db).await {
            Ok(saved) => Ok(to_dto(&saved, None)),
            Err(e) if is_unique_violation(&e) => Err(ApiError::conflict(
                ErrorCode::IndexExists,
                format!("an index `{id}` already exists in this organisation"),
            )),
            Err(e) => Err(internal("creating an index", e)),
        }
    }

    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<IndexPage> {
        let (rows, next_cursor) = PageRequest::parse(page)?
            .fetch(
                &self.db,
                index::visible_to(who),
                index::Column::Id,
                |r| &r.id,
                "indexes",
            )
            .await?;
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.reembedding_id.clone())
            .collect();
        let reembeddings: HashMap<String, reembedding::Model> = if ids.is_empty() {
            HashMap::new()
        } else {
            reembedding::Entity::find()
                .filter(reembedding::Column::Id.is_in(ids))
                .all(&self.db)
                .await
                .map_err(|e| internal("loading re-embeddings", e))?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect()
        };
        Ok(IndexPage {
            items: rows
                .iter()
                .map(|r| {
                    let latest = r
                        .reembedding_id
                        .as_ref()
                        .and_then(|id| reembeddings.get(id));
                    to_dto(r, latest)
                })
                .collect(),
            next_cursor,
        })
    }

    async fn view(&self, who: &Principal, index_id: &str) -> ServiceResult<Index> {
        let mut idx = self.find(who, index_id).await?;
        let latest = self.reembedding_of(&idx).await?;
        let finished = latest
            .as_ref()
            .is_some_and(|r| !matches!(r.status, QueueStatus::Queued | QueueStatus::Running));
        if finished && idx.pending_embedder.is_some() {
            // The re-embedding ended (read afresh) and cleared the pending embedder in the
            // same transaction, but this instance's cached row predates it (its notice is
            // on the way): read the row afresh, so the view never shows both halves apart.
            idx = index::for_org(&who.org_id)
                .filter(index::Column::Id.eq(index_id))
                .one(&self.db)
                .await
                .map_err(|e| internal(&format!("loading index {index_id}"), e))?
                .ok_or_else(|| ApiError::not_found("index", index_id))?;
        }
        Ok(to_dto(&idx, latest.as_ref()))
    }

    async fn update(
        &self,
        who: &Principal,
        index_id: &str,
        request: IndexUpdate,
    ) -> ServiceResult<Index> {
        let existing = self.find(who, index_id).await?;
        let switch = match &request.embedder {
            Some(settings) => {
                Some(embedder_switch::plan(&self.embedders, &existing, settings).await?)
            }
            None => None,
        };
        let mut model: index::ActiveModel = existing.clone().into();
        if let Some(name) = request.name {
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(super::blank_name());
            }
            model.name = Set(name);
        }
        if let Some(description) = request.description {
            model.description = Set(Some(description));
        }
        model.updated_at = Set(Utc::now());
        let result: Result<(index::Model, Option<i64>, Option<String>), sea_orm::DbErr> = async {
            let txn = self.db.begin().await?;
            let (switched_at, queued) = match switch {
                Some(switch) => {
                    embedder_switch::record(&txn, &self.embedders, &existing, switch, &mut model)
                        .await?
                }
                None => (None, None),
            };
            let saved = model.update(&txn).await?;
            let notice = match switched_at {
                Some(seq) => Notice::Segments {
                    seq,
                    flush: true,
                    org_id: saved.org_id.clone(),
                    index_id: saved.id.clone(),
                },
                None => Notice::Index {
                    org_id: saved.org_id.clone(),
                    index_id: saved.id.clone(),
                },
            };
            self.reads.commit_announcing(txn, &notice).await?;
            Ok((saved, switched_at, queued))
        }
        .await;
        match result {
            Ok((saved, switched_at, queued)) => {
                if switched_at.is_some() {
                    self.indexer.notify();
                }
                if queued.is_some() {
                    self.reembed_wake.notify_one();
                }
                let latest = self.reembedding_of(&saved).await?;
                Ok(to_dto(&saved, latest.as_ref()))
            }
            // Deleted since it was read (by another request, or on another instance).
            Err(sea_orm::DbErr::RecordNotUpdated) => Err(ApiError::not_found("index", index_id)),
            Err(e) => Err(embedder_switch::conflict_or(e, |e| {
                internal("updating an index", e)
            })),
        }
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
            let seq = reserve_sequence(&txn).await?;
            segment_change::Entity::insert(segment_change::ActiveModel {
                seq: Set(seq),
                index_uid: Set(existing.uid.clone()),
                segment_id: Set(None),
                op: Set(segment_change::ChangeOp::DropIndex),
            })
            .exec_without_returning(&txn)
            .await?;
            let notice = Notice::Segments {
                seq,
                flush: false,
                org_id: existing.org_id.clone(),
                index_id: existing.id.clone(),
            };
            self.reads.commit_announcing(txn, &notice).await
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
        let (
            idx,
            StoredBatch {
                segment_ids,
                segments,
                seq: last_seq,
            },
        ) = embed_and_store(
            &self.embedders,
            &self.db,
            &self.segments,
            idx,
            batch.segments,
            batch.wait,
        )
        .await?;
        self.indexer.offer(last_seq, &segment_ids, segments);
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
        let mut query = SegmentFilter::from_request(request.filters)?
            .held_to(who.forced_filters.as_deref())
            .query(
                &request.query,
                who.hits_wanted(request.top_k, 10, "/top_k")? as usize,
            );
        let mode = request.mode.unwrap_or_default();
        query.mode = mode;
        query.semantic_ratio = request.semantic_ratio.unwrap_or(DEFAULT_SEMANTIC_RATIO) as f32;
        query.min_score = request.min_score.map(|s| s as f32);
        query.group_by_media = request.group_by == Some(GroupBy::Media);
        if mode != SearchMode::Lexical || request.vector.is_some() {
            embedder_switch::vectors_current(&self.indexer, &idx).await?;
            query.vector = Some(
                self.embedders
                    .query(&idx, &request.query, request.vector)
                    .await?,
            );
        }
        let found = self
            .indexer
            .engine()
            .search_off_thread(vec![(idx.uid.clone(), query)])
            .await
            .map_err(|e| internal("searching", e))?
            .pop()
            .unwrap_or_default();
        Ok(SearchResults {
            total: to_total(found.total),
            hits: found
                .hits
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
