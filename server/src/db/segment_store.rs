//! Segment batches: stored with their change-sequence entry in one transaction, and read
//! back by change number when the search indexes apply them.
//!
//! Every batch takes the next number of the change sequence, which its segments carry in
//! `change_seq`. On SQLite both directions go through [`DirectSqlite`]: one prepared insert
//! per row inside one transaction, and one prepared select per batch. sea-orm's
//! multi-row inserts (thousands of bound values, built and then handed one by one to
//! sqlx-sqlite's worker) cost more than the work itself. On PostgreSQL a batch is one
//! statement ([`store_postgres`]) that also announces it to the other instances (their
//! search copies follow it, their caches forget the index's count). There is no third
//! backend (`db::backend`).

use std::sync::Arc;

use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use chrono::{DateTime, Utc};
use rusqlite::{params, Row, Transaction};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, Statement,
};
use videovector_api_spec::dto::indexes::SegmentInput;

use super::{
    direct::{timestamp, timestamp_text, DirectSqlite},
    entities::{index, segment, segment_change::ChangeOp},
    notifications::{Notice, CHANNEL},
    point_reads::PointReads,
    records::StoredEmbedder,
    vectors,
};
use crate::ids::new_id;

const RESERVE_ONE: &str = "UPDATE sequence_counters SET value = value + 1 \
     WHERE name = 'segment_changes' RETURNING value";

/// Counts the batch on its index row, if the row is still there and its vectors are still
/// of the generation the batch was embedded for (a re-embedding did not switch it since).
const COUNT_SEGMENTS: &str = "UPDATE indexes SET segment_count = segment_count + ?1, \
     updated_at = ?2 WHERE uid = ?3 AND embedder_seq = ?4";

const INSERT_SEGMENT: &str = "INSERT INTO segments (id, index_uid, org_id, media_id, \
     start_seconds, end_seconds, text, labels, metadata, created_at, change_seq, vector) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

const STORE_BATCH_POSTGRES: &str = "WITH counted AS (\
       UPDATE indexes SET segment_count = segment_count + $5, updated_at = $4 \
       WHERE uid = $2 AND embedder_seq = $9 RETURNING uid), \
     numbered AS (\
       UPDATE sequence_counters SET value = value + 1 \
       WHERE name = 'segment_changes' AND EXISTS (SELECT 1 FROM counted) RETURNING value), \
     stored AS (\
       INSERT INTO segments (id, index_uid, org_id, media_id, start_seconds, end_seconds, \
         text, labels, metadata, created_at, change_seq, vector) \
       SELECT r.id, $2, $3, r.media_id, r.start_seconds, r.end_seconds, r.text, r.labels, \
         r.metadata, $4, n.value, decode(r.vector, 'base64') \
       FROM numbered n, json_to_recordset($1::json) AS r(id text, media_id text, \
         start_seconds float8, end_seconds float8, text text, labels text, metadata text, \
         vector text)), \
     logged AS (\
       INSERT INTO segment_changes (seq, index_uid, segment_id, op) \
       SELECT value, $2, NULL, $6 FROM numbered) \
     SELECT value, pg_notify($7, format($8, value)) FROM numbered";

const INSERT_BATCH_CHANGE: &str = "INSERT INTO segment_changes (seq, index_uid, segment_id, op) \
     VALUES (?1, ?2, NULL, ?3)";

const SEGMENTS_OF_BATCH: &str = "SELECT id, index_uid, org_id, media_id, start_seconds, \
     end_seconds, text, labels, metadata, created_at, change_seq, vector FROM segments \
     WHERE change_seq = ?1";

/// A segment to store: as the client sent it, with its vector when its index has an
/// embedder.
#[derive(Debug, Clone)]
pub struct NewSegment {
    pub input: SegmentInput,
    pub vector: Option<Vec<f32>>,
}

/// What a stored batch got: its segments' ids and its change number.
pub struct StoredBatch {
    pub segment_ids: Vec<String>,
    /// The segments stored, handed back (in the order of `segment_ids`), so the caller can
    /// give them to its own search copy without reading them back.
    pub segments: Vec<NewSegment>,
    pub seq: i64,
}

#[derive(Clone)]
pub struct SegmentStore {
    db: DatabaseConnection,
    /// The SQLite file's own connections; `None` on PostgreSQL.
    direct: Option<Arc<DirectSqlite>>,
    reads: Arc<PointReads>,
}

impl SegmentStore {
    pub fn new(
        db: DatabaseConnection,
        direct: Option<Arc<DirectSqlite>>,
        reads: Arc<PointReads>,
    ) -> Self {
        SegmentStore { db, direct, reads }
    }

    /// Stores `segments` in `idx` with one change-sequence entry, in one transaction.
    /// Nothing is stored, and the segments are handed back, when the index was deleted
    /// meanwhile or a re-embedding switched its embedder since `idx` was read (their
    /// vectors are the old embedder's).
    /// `flush`: a caller will wait for the batch to become searchable, so every instance's
    /// search copy commits it at once.
    pub async fn store(
        &self,
        idx: &index::Model,
        segments: Vec<NewSegment>,
        flush: bool,
    ) -> Result<Result<StoredBatch, Vec<NewSegment>>, DbErr> {
        let now = Utc::now();
        let ids: Vec<String> = segments.iter().map(|_| new_id("seg")).collect();
        let (stored, segments) = match &self.direct {
            Some(direct) => {
                let (direct, idx, ids) = (direct.clone(), idx.clone(), ids.clone());
                let trace = crate::traces::Carried::current();
                tokio::task::spawn_blocking(move || {
                    let _in_trace = trace.enter();
                    direct
                        .write(|txn| store_direct(txn, &idx, &ids, &segments, now))
                        .map(|seq| (seq, segments))
                })
                .await
                .map_err(|e| DbErr::Custom(format!("storing segments: {e}")))??
            }
            None => {
                let seq =
                    store_postgres(&self.db, &self.reads, idx, &ids, &segments, now, flush).await?;
                (seq, segments)
            }
        };
        Ok(match stored {
            Some(seq) => Ok(StoredBatch {
                segment_ids: ids,
                segments,
                seq,
            }),
            None => Err(segments),
        })
    }

    /// The segments of the batches numbered `seqs`.
    pub async fn batches(&self, seqs: &[i64]) -> Result<Vec<segment::Model>, DbErr> {
        match &self.direct {
            Some(direct) => {
                let (direct, seqs) = (direct.clone(), seqs.to_vec());
                let trace = crate::traces::Carried::current();
                tokio::task::spawn_blocking(move || {
                    let _in_trace = trace.enter();
                    direct.read(|conn| {
                        let mut select = conn.prepare_cached(SEGMENTS_OF_BATCH)?;
                        let mut rows = Vec::new();
                        for seq in seqs {
                            for row in select.query_map([seq], segment_from_row)? {
                                rows.push(row?);
                            }
                        }
                        Ok(rows)
                    })
                })
                .await
                .map_err(|e| DbErr::Custom(format!("reading segments: {e}")))?
            }
            None => {
                let mut rows = Vec::new();
                for chunk in seqs.chunks(500) {
                    // A batch's number is its own (one index), so `change_seq` alone
                    // selects it.
                    rows.extend(
                        segment::Entity::find()
                            .filter(segment::Column::ChangeSeq.is_in(chunk.iter().copied()))
                            .all(&self.db)
                            .await?,
                    );
                }
                Ok(rows)
            }
        }
    }
}

/// Reserves the next number of the change sequence. The counter row stays locked until the
/// transaction ends, so sequence numbers become visible in order.
pub async fn reserve_sequence(txn: &DatabaseTransaction) -> Result<i64, DbErr> {
    let row = txn
        .query_one(Statement::from_string(
            txn.get_database_backend(),
            RESERVE_ONE,
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("the segment_changes counter row is missing".into()))?;
    row.try_get_by_index(0)
}

/// A segment's metadata as stored: JSON text.
pub fn metadata_json(metadata: &std::collections::BTreeMap<String, serde_json::Value>) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".into())
}

/// A vector as stored: compact for the built-in model's (int8 already), exact for a
/// client's own and an endpoint's.
pub fn stored_vector(embedder: Option<&StoredEmbedder>, vector: &[f32]) -> Vec<u8> {
    match embedder {
        Some(StoredEmbedder::BuiltIn { .. }) => vectors::compact_bytes(vector),
        _ => vectors::exact_bytes(vector),
    }
}

fn vector_bytes(idx: &index::Model, vector: &[f32]) -> Vec<u8> {
    stored_vector(idx.embedder.as_ref().map(|e| &e.0), vector)
}

fn labels_json(labels: &[String]) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "[]".into())
}

fn store_direct(
    txn: &Transaction<'_>,
    idx: &index::Model,
    ids: &[String],
    segments: &[NewSegment],
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<i64>> {
    let now_text = timestamp_text(now);
    // Counting first locks out a concurrent delete: it either finished (no row, so nothing
    // is stored) or waits for this batch.
    let counted = txn.execute(
        COUNT_SEGMENTS,
        params![ids.len() as i64, now_text, idx.uid, idx.embedder_seq],
    )?;
    if counted == 0 {
        return Ok(None);
    }
    let seq: i64 = txn.query_row(RESERVE_ONE, [], |row| row.get(0))?;
    let mut insert = txn.prepare_cached(INSERT_SEGMENT)?;
    for (segment, id) in segments.iter().zip(ids) {
        let s = &segment.input;
        insert.execute(params![
            id,
            idx.uid,
            idx.org_id,
            &*s.media_id,
            s.start_seconds,
            s.end_seconds,
            &*s.text,
            labels_json(&s.labels),
            s.metadata.as_ref().map(metadata_json),
            now_text,
            seq,
            segment.vector.as_deref().map(|v| vector_bytes(idx, v)),
        ])?;
    }
    txn.execute(
        INSERT_BATCH_CHANGE,
        params![seq, idx.uid, ChangeOp::UpsertBatch.as_str()],
    )?;
    Ok(Some(seq))
}

/// PostgreSQL: the whole batch in one statement, so one round trip (seven, as separate
/// statements in a transaction, waited on a CPU the indexer keeps busy). It counts the
/// segments on the index row first (locking it, as in `store_direct`; no row, nothing
/// stored), takes the next change number, inserts the rows, passed as one JSON array that
/// `json_to_recordset` expands (a multi-row insert binds 11 values a row, each encoded and
/// sent on its own), logs the change and sends its notice, all committed together.
async fn store_postgres(
    db: &DatabaseConnection,
    reads: &PointReads,
    idx: &index::Model,
    ids: &[String],
    segments: &[NewSegment],
    now: DateTime<Utc>,
    flush: bool,
) -> Result<Option<i64>, DbErr> {
    let rows: Vec<serde_json::Value> = segments
        .iter()
        .zip(ids)
        .map(|(segment, id)| {
            let s = &segment.input;
            serde_json::json!({
                "id": id,
                "media_id": &*s.media_id,
                "start_seconds": s.start_seconds,
                "end_seconds": s.end_seconds,
                "text": &*s.text,
                "labels": labels_json(&s.labels),
                "metadata": s.metadata.as_ref().map(metadata_json),
                "vector": segment.vector.as_deref().map(|v| BASE64.encode(vector_bytes(idx, v))),
            })
        })
        .collect();
    let rows = serde_json::to_string(&rows).map_err(|e| DbErr::Custom(e.to_string()))?;
    let stored = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            STORE_BATCH_POSTGRES,
            [
                rows.into(),
                idx.uid.clone().into(),
                idx.org_id.clone().into(),
                now.into(),
                (ids.len() as i64).into(),
                ChangeOp::UpsertBatch.as_str().into(),
                CHANNEL.into(),
                Notice::segments_payload_format(flush, &idx.org_id, &idx.id).into(),
                idx.embedder_seq.into(),
            ],
        ))
        .await?;
    let Some(row) = stored else {
        return Ok(None);
    };
    let seq: i64 = row.try_get_by_index(0)?;
    reads.forget(&Notice::Segments {
        seq,
        flush,
        org_id: idx.org_id.clone(),
        index_id: idx.id.clone(),
    });
    Ok(Some(seq))
}

fn segment_from_row(row: &Row<'_>) -> rusqlite::Result<segment::Model> {
    Ok(segment::Model {
        id: row.get(0)?,
        index_uid: row.get(1)?,
        org_id: row.get(2)?,
        media_id: row.get(3)?,
        start_seconds: row.get(4)?,
        end_seconds: row.get(5)?,
        text: row.get(6)?,
        labels: row.get(7)?,
        metadata: row.get(8)?,
        created_at: timestamp(row, 9)?,
        change_seq: row.get(10)?,
        vector: row.get(11)?,
        vector_next: None,
    })
}
