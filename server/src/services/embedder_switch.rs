//! Changing an index's embedder (`embedder` on `PATCH /indexes/{id}`): what the change
//! amounts to, and how the index row (and, for a re-embedding, its queue row) records it.
//! The re-embedding itself is the work of `workers::reembeddings`.

use chrono::Utc;
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter,
};
use videovector_api_spec::{
    dto::indexes::{EmbedderSettings, Reembedding, ReembeddingStatus},
    ApiError, ErrorCode,
};

use crate::{
    db::{
        columns::JsonText,
        entities::{index, reembedding, segment, segment_change},
        queue::QueueStatus,
        records::StoredEmbedder,
        segment_store::reserve_sequence,
    },
    embed::{self, Embedders, Settled},
    ids::new_id,
    search::Indexer,
    secrets_at_rest::places,
};

/// What a change of embedder amounts to.
pub enum Switch {
    /// The same embedder: nothing changes, or only its API key.
    Same { api_key: Option<String> },
    /// Nothing to embed again (no segments, or words only from now on): the index switches
    /// in the update itself.
    Now(Settled),
    /// Every segment is embedded again in the background.
    Reembed(Settled),
}

/// What `settings` ask of `idx`; a 422 or 409 when it cannot be done.
pub async fn plan(
    embedders: &Embedders,
    idx: &index::Model,
    settings: &EmbedderSettings,
) -> Result<Switch, ApiError> {
    if idx.pending_embedder.is_some() {
        return Err(in_progress());
    }
    let settled = embedders.settle(Some(settings), "/embedder").await?;
    let current = idx.embedder.as_ref().map(|e| &e.0);
    if settled.embedder.as_ref() == current {
        return Ok(Switch::Same {
            api_key: settled.api_key,
        });
    }
    if idx.segment_count == 0 || settled.embedder.is_none() {
        return Ok(Switch::Now(settled));
    }
    if let Some(StoredEmbedder::UserProvided { .. }) = settled.embedder {
        return Err(ApiError::unprocessable(
            ErrorCode::InvalidEmbedder,
            "`/embedder` user_provided is taken only by an index without segments: the \
             segments stored have no vectors of yours. Create a new index with it, and ingest \
             the segments there with their vectors",
        ));
    }
    Ok(Switch::Reembed(settled))
}

fn in_progress() -> ApiError {
    ApiError::conflict(
        ErrorCode::ReembeddingInProgress,
        "the index's embedder is already being changed; wait until its `reembedding` has \
         succeeded or failed",
    )
}

/// Records `switch` on `idx` (in `txn`, with the rest of the update in `model`). Returns
/// the change logged when the index switched at once (search copies apply it before they
/// search by meaning again), and the re-embedding queued, if one was.
pub async fn record(
    txn: &DatabaseTransaction,
    embedders: &Embedders,
    idx: &index::Model,
    switch: Switch,
    model: &mut index::ActiveModel,
) -> Result<(Option<i64>, Option<String>), DbErr> {
    let seal = |place: String, key: &str| embedders.seal(&place, key);
    match switch {
        Switch::Same { api_key: None } => Ok((None, None)),
        Switch::Same { api_key: Some(key) } => {
            model.embedder_secret = Set(Some(seal(places::embedder_api_key(&idx.uid), &key)));
            Ok((None, None))
        }
        Switch::Now(settled) => {
            // A batch embedded by the old embedder and not yet stored is refused by the
            // new generation (`db::segment_store`) and embedded again.
            let seq = reserve_sequence(txn).await?;
            segment_change::Entity::insert(segment_change::ActiveModel {
                seq: Set(seq),
                index_uid: Set(idx.uid.clone()),
                segment_id: Set(None),
                op: Set(segment_change::ChangeOp::ReplaceBatch),
            })
            .exec_without_returning(txn)
            .await?;
            if settled.embedder.is_none() {
                segment::Entity::update_many()
                    .col_expr(
                        segment::Column::Vector,
                        Expr::value(Option::<Vec<u8>>::None),
                    )
                    .col_expr(
                        segment::Column::VectorNext,
                        Expr::value(Option::<Vec<u8>>::None),
                    )
                    .filter(segment::Column::IndexUid.eq(&idx.uid))
                    .exec(txn)
                    .await?;
            }
            model.embedder_secret = Set(settled
                .api_key
                .map(|key| seal(places::embedder_api_key(&idx.uid), &key)));
            model.embedder = Set(settled.embedder.map(JsonText));
            model.embedder_seq = Set(seq);
            Ok((Some(seq), None))
        }
        Switch::Reembed(settled) => {
            // Claimed in the row itself: of two changes at once, one finds it taken.
            let claimed = index::Entity::update_many()
                .col_expr(
                    index::Column::PendingEmbedder,
                    Expr::value(settled.embedder.clone().map(JsonText)),
                )
                .filter(index::Column::Uid.eq(&idx.uid))
                .filter(index::Column::PendingEmbedder.is_null())
                .exec(txn)
                .await?;
            if claimed.rows_affected == 0 {
                return Err(DbErr::Custom(IN_PROGRESS.into()));
            }
            let id = new_id("rem");
            reembedding::Entity::insert(reembedding::ActiveModel {
                id: Set(id.clone()),
                org_id: Set(idx.org_id.clone()),
                index_uid: Set(idx.uid.clone()),
                status: Set(QueueStatus::Queued),
                done: Set(0),
                total: Set(idx.segment_count),
                error: Set(None),
                created_at: Set(Utc::now()),
                started_at: Set(None),
                finished_at: Set(None),
            })
            .exec_without_returning(txn)
            .await?;
            model.pending_embedder = Set(settled.embedder.map(JsonText));
            model.pending_embedder_secret = Set(settled
                .api_key
                .map(|key| seal(places::pending_embedder_api_key(&idx.uid), &key)));
            model.reembedding_id = Set(Some(id.clone()));
            Ok((None, Some(id)))
        }
    }
}

/// How long a search by meaning waits for this instance's search copy to apply a switch.
const SWITCH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until this instance's search copy holds only the current embedder's vectors of
/// `idx` (it has applied the change that switched them): a query by the new model never
/// meets the old model's vectors. 503 if it takes longer than [`SWITCH_WAIT`].
pub async fn vectors_current(indexer: &Indexer, idx: &index::Model) -> Result<(), ApiError> {
    if idx.embedder_seq <= indexer.applied()
        || indexer.wait_for(idx.embedder_seq, SWITCH_WAIT).await
    {
        return Ok(());
    }
    Err(ApiError::unavailable(
        "this index has just switched embedders and this instance's search copy has not \
         caught up yet; retry shortly",
    ))
}

/// The error [`record`] returns when another change took the index first.
const IN_PROGRESS: &str = "reembedding_in_progress";

/// The answer for an error of [`record`]: 409 when another change took the index first.
pub fn conflict_or(e: DbErr, otherwise: impl FnOnce(DbErr) -> ApiError) -> ApiError {
    match &e {
        DbErr::Custom(what) if what == IN_PROGRESS => in_progress(),
        _ => otherwise(e),
    }
}

/// The latest re-embedding of `idx`, as answered.
pub fn to_dto(idx: &index::Model, row: &reembedding::Model) -> Reembedding {
    let status = match row.status {
        QueueStatus::Queued => ReembeddingStatus::Queued,
        QueueStatus::Running => ReembeddingStatus::Running,
        QueueStatus::Succeeded => ReembeddingStatus::Succeeded,
        QueueStatus::Failed | QueueStatus::Cancelled => ReembeddingStatus::Failed,
    };
    let moving = matches!(
        status,
        ReembeddingStatus::Queued | ReembeddingStatus::Running
    );
    Reembedding {
        id: row.id.clone(),
        status,
        target: idx
            .pending_embedder
            .as_ref()
            .filter(|_| moving)
            .map(|e| embed::to_dto(&e.0, idx.pending_embedder_secret.is_some())),
        done: row.done.max(0) as u64,
        total: row.total.max(row.done).max(0) as u64,
        error: row.error.clone(),
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
    }
}
