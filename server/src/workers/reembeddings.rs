//! Re-embeds an index whose embedder is being changed (`services::embedder_switch`).
//!
//! Every segment gets its vector under the new embedder in `vector_next`, a chunk at a
//! time (in id order, so a worker that took over a stopped one goes on where it stopped),
//! while searches keep the current embedder and its vectors. Then one transaction switches:
//! it locks the index row (a concurrent ingest waits, then finds the generation changed and
//! embeds its batch again), embeds any segment that arrived meanwhile, moves every
//! `vector_next` into `vector` as `replace_batch` changes the search copies apply, and makes
//! the new embedder current with `embedder_seq` at the last of those changes. A search by
//! meaning waits until its copy has applied it, so no query meets the other model's
//! vectors. A failure (the endpoint still failing after its retries) leaves the index as it
//! was, with the reason in the re-embedding's `error`.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::sync::Notify;

use super::drain;
use crate::{
    db::{
        columns::JsonText,
        entities::{index, reembedding, segment, segment_change},
        notifications::Notice,
        point_reads::PointReads,
        queue::{Lease, QueueStatus, REEMBEDDINGS},
        records::StoredEmbedder,
        segment_store::{reserve_sequence, stored_vector},
    },
    embed::Embedders,
    search::Indexer,
    secrets_at_rest::places,
};

/// Segments embedded per chunk (and per call of a `rest` endpoint's batches).
const CHUNK: u64 = 256;
/// Segments per `replace_batch` change at the switch.
const SWITCH_BATCH: usize = 1000;

pub struct ReembedWorker {
    pub db: DatabaseConnection,
    pub embedders: Arc<Embedders>,
    pub reads: Arc<PointReads>,
    pub indexer: Arc<Indexer>,
    pub wake: Arc<Notify>,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
}

/// Why a re-embedding stopped before it switched.
enum Stop {
    /// The work is no longer this worker's (its lease was lost).
    Lost,
    /// It cannot go on; the reason is told to the user.
    Failed(String),
    Db(DbErr),
}

impl From<DbErr> for Stop {
    fn from(e: DbErr) -> Self {
        Stop::Db(e)
    }
}

impl ReembedWorker {
    pub fn spawn(self: Arc<Self>) {
        let (db, wake, lease) = (self.db.clone(), self.wake.clone(), self.lease);
        drain(
            db,
            &REEMBEDDINGS,
            lease,
            wake,
            "re-embedding an index",
            move |lease| {
                let worker = self.clone();
                async move { worker.run(&lease).await }
            },
        );
    }

    async fn run(&self, lease: &Lease) -> Result<(), DbErr> {
        let Some(row) = reembedding::Entity::find_by_id(lease.id().to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        let idx = index::Entity::find_by_id(row.index_uid.clone())
            .one(&self.db)
            .await?;
        let outcome = match idx {
            None => Err(Stop::Failed("the index was deleted".into())),
            Some(idx) => self.reembed(lease, &idx).await,
        };
        match outcome {
            Ok(()) | Err(Stop::Lost) => Ok(()),
            Err(Stop::Db(e)) => Err(e),
            Err(Stop::Failed(why)) => self.fail(lease, &row.index_uid, why).await,
        }
    }

    async fn reembed(&self, lease: &Lease, idx: &index::Model) -> Result<(), Stop> {
        let Some(JsonText(target)) = idx.pending_embedder.clone() else {
            return Err(Stop::Failed(
                "the index has no embedder to change to".into(),
            ));
        };
        let api_key = match &idx.pending_embedder_secret {
            Some(sealed) => Some(
                self.embedders
                    .open(&places::pending_embedder_api_key(&idx.uid), sealed)
                    .map_err(|e| Stop::Failed(e.problem.detail.clone()))?,
            ),
            None => None,
        };
        let mut after = String::new();
        loop {
            if lease.lost() {
                return Err(Stop::Lost);
            }
            let chunk: Vec<(String, String)> = segment::Entity::find()
                .select_only()
                .columns([segment::Column::Id, segment::Column::Text])
                .filter(segment::Column::IndexUid.eq(&idx.uid))
                .filter(segment::Column::Id.gt(after.clone()))
                .filter(segment::Column::VectorNext.is_null())
                .order_by_asc(segment::Column::Id)
                .limit(CHUNK)
                .into_tuple()
                .all(&self.db)
                .await?;
            let Some((last, _)) = chunk.last() else { break };
            after = last.clone();
            let embedded = chunk.len() as i64;
            // Segments ingested meanwhile count too.
            let total = index::Entity::find_by_id(idx.uid.clone())
                .select_only()
                .column(index::Column::SegmentCount)
                .into_tuple::<i64>()
                .one(&self.db)
                .await?
                .unwrap_or_default();
            let txn = self.db.begin().await?;
            self.embed_into_next(&txn, &target, api_key.as_deref(), chunk)
                .await?;
            let counted = reembedding::Entity::update_many()
                .col_expr(
                    reembedding::Column::Done,
                    Expr::col(reembedding::Column::Done).add(embedded),
                )
                .col_expr(reembedding::Column::Total, Expr::value(total))
                .filter(lease.fence())
                .exec(&txn)
                .await?;
            if counted.rows_affected == 0 {
                return Err(Stop::Lost);
            }
            txn.commit().await?;
        }
        self.switch(lease, idx, &target, api_key.as_deref()).await
    }

    /// Embeds `chunk` (ids and texts) by `target` into `vector_next`.
    async fn embed_into_next(
        &self,
        txn: &DatabaseTransaction,
        target: &StoredEmbedder,
        api_key: Option<&str>,
        chunk: Vec<(String, String)>,
    ) -> Result<(), Stop> {
        let (ids, texts): (Vec<String>, Vec<String>) = chunk.into_iter().unzip();
        let vectors = self
            .embedders
            .texts(target, api_key, texts)
            .await
            .map_err(Stop::Failed)?;
        for (id, vector) in ids.into_iter().zip(vectors) {
            segment::Entity::update_many()
                .col_expr(
                    segment::Column::VectorNext,
                    Expr::value(stored_vector(Some(target), &vector)),
                )
                .filter(segment::Column::Id.eq(id))
                .exec(txn)
                .await?;
        }
        Ok(())
    }

    /// Makes `target` the index's embedder, with every segment's new vector, at once.
    async fn switch(
        &self,
        lease: &Lease,
        idx: &index::Model,
        target: &StoredEmbedder,
        api_key: Option<&str>,
    ) -> Result<(), Stop> {
        let txn = self.db.begin().await?;
        // The index row first: ingests wait from here on.
        let locked = index::Entity::update_many()
            .col_expr(index::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(index::Column::Uid.eq(&idx.uid))
            .filter(index::Column::PendingEmbedder.is_not_null())
            .exec(&txn)
            .await?;
        if locked.rows_affected == 0 {
            return Err(Stop::Failed("the index was deleted".into()));
        }
        let late: Vec<(String, String)> = segment::Entity::find()
            .select_only()
            .columns([segment::Column::Id, segment::Column::Text])
            .filter(segment::Column::IndexUid.eq(&idx.uid))
            .filter(segment::Column::VectorNext.is_null())
            .into_tuple()
            .all(&txn)
            .await?;
        if !late.is_empty() {
            self.embed_into_next(&txn, target, api_key, late).await?;
        }
        let ids: Vec<String> = segment::Entity::find()
            .select_only()
            .column(segment::Column::Id)
            .filter(segment::Column::IndexUid.eq(&idx.uid))
            .order_by_asc(segment::Column::Id)
            .into_tuple()
            .all(&txn)
            .await?;
        let mut last_seq = None;
        for chunk in ids
            .chunks(SWITCH_BATCH)
            .map(Some)
            .chain(ids.is_empty().then_some(None))
        {
            let seq = reserve_sequence(&txn).await?;
            if let Some(chunk) = chunk {
                segment::Entity::update_many()
                    .col_expr(
                        segment::Column::Vector,
                        Expr::col(segment::Column::VectorNext).into(),
                    )
                    .col_expr(
                        segment::Column::VectorNext,
                        Expr::value(Option::<Vec<u8>>::None),
                    )
                    .col_expr(segment::Column::ChangeSeq, Expr::value(seq))
                    .filter(segment::Column::Id.is_in(chunk.iter().cloned()))
                    .exec(&txn)
                    .await?;
            }
            segment_change::Entity::insert(segment_change::ActiveModel {
                seq: Set(seq),
                index_uid: Set(idx.uid.clone()),
                segment_id: Set(None),
                op: Set(segment_change::ChangeOp::ReplaceBatch),
            })
            .exec_without_returning(&txn)
            .await?;
            last_seq = Some(seq);
        }
        let seq = last_seq.expect("at least one change");
        let secret = api_key.map(|key| {
            self.embedders
                .seal(&places::embedder_api_key(&idx.uid), key)
        });
        index::Entity::update_many()
            .col_expr(
                index::Column::Embedder,
                Expr::value(Some(JsonText(target.clone()))),
            )
            .col_expr(index::Column::EmbedderSecret, Expr::value(secret))
            .col_expr(
                index::Column::PendingEmbedder,
                Expr::value(Option::<JsonText<StoredEmbedder>>::None),
            )
            .col_expr(
                index::Column::PendingEmbedderSecret,
                Expr::value(Option::<String>::None),
            )
            .col_expr(index::Column::EmbedderSeq, Expr::value(seq))
            .filter(index::Column::Uid.eq(&idx.uid))
            .exec(&txn)
            .await?;
        let done = ids.len() as i64;
        let finished = reembedding::Entity::update_many()
            .col_expr(
                reembedding::Column::Status,
                Expr::value(QueueStatus::Succeeded),
            )
            .col_expr(reembedding::Column::Done, Expr::value(done))
            .col_expr(reembedding::Column::Total, Expr::value(done))
            .col_expr(reembedding::Column::FinishedAt, Expr::value(Utc::now()))
            .filter(lease.fence())
            .exec(&txn)
            .await?;
        if finished.rows_affected == 0 {
            return Err(Stop::Lost);
        }
        let notice = Notice::Segments {
            seq,
            flush: true,
            org_id: idx.org_id.clone(),
            index_id: idx.id.clone(),
        };
        self.reads.commit_announcing(txn, &notice).await?;
        self.indexer.notify();
        tracing::info!(index = %idx.id, segments = done, "re-embedded an index");
        Ok(())
    }

    /// Ends the re-embedding as failed, saying why, and leaves the index as it was.
    async fn fail(&self, lease: &Lease, index_uid: &str, why: String) -> Result<(), DbErr> {
        tracing::warn!(index = %index_uid, error = %why, "a re-embedding failed");
        let txn = self.db.begin().await?;
        let failed = reembedding::Entity::update_many()
            .col_expr(
                reembedding::Column::Status,
                Expr::value(QueueStatus::Failed),
            )
            .col_expr(reembedding::Column::Error, Expr::value(Some(why)))
            .col_expr(reembedding::Column::FinishedAt, Expr::value(Utc::now()))
            .filter(lease.fence())
            .exec(&txn)
            .await?;
        if failed.rows_affected == 0 {
            return Ok(()); // no longer ours
        }
        let Some(idx) = index::Entity::find_by_id(index_uid.to_string())
            .one(&txn)
            .await?
        else {
            return txn.commit().await;
        };
        index::Entity::update_many()
            .col_expr(
                index::Column::PendingEmbedder,
                Expr::value(Option::<JsonText<StoredEmbedder>>::None),
            )
            .col_expr(
                index::Column::PendingEmbedderSecret,
                Expr::value(Option::<String>::None),
            )
            .filter(index::Column::Uid.eq(index_uid))
            .exec(&txn)
            .await?;
        segment::Entity::update_many()
            .col_expr(
                segment::Column::VectorNext,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .filter(segment::Column::IndexUid.eq(index_uid))
            .exec(&txn)
            .await?;
        let notice = Notice::Index {
            org_id: idx.org_id,
            index_id: idx.id,
        };
        self.reads.commit_announcing(txn, &notice).await
    }
}
