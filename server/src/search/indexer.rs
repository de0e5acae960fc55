//! Keeps this instance's search indexes current with the database.
//!
//! Every change to segments appends to `segment_changes` under a sequence number taken from
//! a counter row inside the writing transaction, so numbers become visible in order. The
//! indexer applies changes after its cursor (persisted in the search root after each
//! commit), which makes each instance's copy independent and restart-safe: re-applying an
//! upsert is harmless. At start it rebuilds any index that does not open, and every index
//! when the cursor is missing (a fresh or damaged search root).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{watch, Notify};

use super::engine::{SearchEngine, SegmentDoc};
use crate::db::{
    entities::{index, segment, segment_change},
    segment_store::SegmentStore,
};

/// Changes applied per step. A change is up to one ingest batch (1,000 segments), so this
/// bounds the segments held in memory at once.
const CHANGE_BATCH: u64 = 5;
/// Segments read per step when rebuilding an index.
const REBUILD_PAGE: u64 = 5_000;
const POLL_INTERVAL: Duration = Duration::from_millis(200);

pub struct Indexer {
    db: DatabaseConnection,
    segments: SegmentStore,
    engine: Arc<SearchEngine>,
    applied: watch::Sender<i64>,
    wake: Notify,
    cursor_path: PathBuf,
}

impl Indexer {
    /// Recovers the search root and starts following the change sequence.
    pub async fn start(
        db: DatabaseConnection,
        segments: SegmentStore,
        engine: Arc<SearchEngine>,
    ) -> anyhow::Result<Arc<Indexer>> {
        let indexer = Arc::new(Self::new(db, segments, engine));
        indexer.recover().await?;
        let worker = indexer.clone();
        tokio::spawn(async move { worker.follow().await });
        Ok(indexer)
    }

    /// An indexer that does not follow changes by itself (for `videovector reindex`).
    pub fn new(
        db: DatabaseConnection,
        segments: SegmentStore,
        engine: Arc<SearchEngine>,
    ) -> Indexer {
        let cursor_path = engine.root().join("cursor");
        let start = read_cursor(&cursor_path).unwrap_or(0);
        Indexer {
            db,
            segments,
            engine,
            applied: watch::channel(start).0,
            wake: Notify::new(),
            cursor_path,
        }
    }

    pub fn engine(&self) -> &Arc<SearchEngine> {
        &self.engine
    }

    /// The last change applied to the search indexes.
    pub fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Asks the worker to look for changes now.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Waits until change `seq` is applied; false on timeout.
    pub async fn wait_for(&self, seq: i64, timeout: Duration) -> bool {
        self.notify();
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    async fn follow(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            if let Err(e) = self.catch_up().await {
                tracing::error!(error = %e, "applying segment changes to the search index; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    async fn recover(&self) -> anyhow::Result<()> {
        let cursor_missing = read_cursor(&self.cursor_path).is_none();
        let known: BTreeSet<String> = index::Entity::find()
            .select_only()
            .column(index::Column::Uid)
            .into_tuple::<String>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        for uid in self.engine.uids_on_disk() {
            if !known.contains(&uid) {
                self.engine.drop_index(&uid)?;
            }
        }
        if cursor_missing {
            self.rebuild_all().await?;
        } else {
            for uid in &known {
                let engine = self.engine.clone();
                let uid_owned = uid.clone();
                let healthy = tokio::task::spawn_blocking(move || engine.check(&uid_owned)).await?;
                if !healthy {
                    tracing::warn!(%uid, "search index does not open; rebuilding it from the database");
                    self.rebuild(uid).await?;
                }
            }
        }
        self.catch_up().await
    }

    /// Rebuilds every index from the database (`videovector reindex`).
    pub async fn rebuild_all(&self) -> anyhow::Result<()> {
        let snapshot = current_sequence(&self.db).await?;
        for uid in self.engine.uids_on_disk() {
            self.engine.drop_index(&uid)?;
        }
        let uids: Vec<String> = index::Entity::find()
            .select_only()
            .column(index::Column::Uid)
            .into_tuple()
            .all(&self.db)
            .await?;
        for uid in &uids {
            self.rebuild(uid).await?;
        }
        self.advance(snapshot)?;
        self.catch_up().await
    }

    async fn rebuild(&self, uid: &str) -> anyhow::Result<()> {
        self.engine.drop_index(uid)?;
        let mut after = String::new();
        loop {
            let rows = segment::Entity::find()
                .filter(segment::Column::IndexUid.eq(uid))
                .filter(segment::Column::Id.gt(after.clone()))
                .order_by_asc(segment::Column::Id)
                .limit(REBUILD_PAGE)
                .all(&self.db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            let docs: Vec<SegmentDoc> = rows.into_iter().map(to_doc).collect();
            let engine = self.engine.clone();
            let uid = uid.to_string();
            tokio::task::spawn_blocking(move || engine.apply(&uid, &docs, &[])).await??;
        }
        // An empty index still gets its directory, so `check` finds it.
        let engine = self.engine.clone();
        let uid = uid.to_string();
        tokio::task::spawn_blocking(move || engine.apply(&uid, &[], &[])).await??;
        Ok(())
    }

    /// Applies every change after the cursor.
    pub async fn catch_up(&self) -> anyhow::Result<()> {
        loop {
            let after = self.applied();
            let changes = segment_change::Entity::find()
                .filter(segment_change::Column::Seq.gt(after))
                .order_by_asc(segment_change::Column::Seq)
                .limit(CHANGE_BATCH)
                .all(&self.db)
                .await?;
            let Some(last_seq) = changes.last().map(|c| c.seq) else {
                return Ok(());
            };
            self.apply(changes).await?;
            self.advance(last_seq)?;
        }
    }

    async fn apply(&self, changes: Vec<segment_change::Model>) -> anyhow::Result<()> {
        let mut dropped = BTreeSet::new();
        let mut upserts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut batches: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for change in changes {
            match (change.op.as_str(), change.segment_id) {
                (segment_change::DROP_INDEX, _) => {
                    upserts.remove(&change.index_uid);
                    batches.remove(&change.index_uid);
                    dropped.insert(change.index_uid);
                }
                (segment_change::UPSERT_BATCH, _) if !dropped.contains(&change.index_uid) => {
                    batches
                        .entry(change.index_uid)
                        .or_default()
                        .push(change.seq);
                }
                (_, Some(segment_id)) if !dropped.contains(&change.index_uid) => {
                    upserts
                        .entry(change.index_uid)
                        .or_default()
                        .insert(segment_id);
                }
                _ => {}
            }
        }
        for uid in dropped {
            self.engine.drop_index(&uid)?;
        }
        for (uid, seqs) in batches {
            let docs: Vec<SegmentDoc> = self
                .segments
                .batches(&seqs)
                .await?
                .into_iter()
                .map(to_doc)
                .collect();
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.apply(&uid, &docs, &[])).await??;
        }
        for (uid, ids) in upserts {
            let mut rows: HashMap<String, SegmentDoc> = HashMap::with_capacity(ids.len());
            let id_list: Vec<String> = ids.iter().cloned().collect();
            for chunk in id_list.chunks(500) {
                let found = segment::Entity::find()
                    .filter(segment::Column::Id.is_in(chunk.iter().cloned()))
                    .all(&self.db)
                    .await?;
                rows.extend(found.into_iter().map(|s| (s.id.clone(), to_doc(s))));
            }
            // A changed segment that no longer exists is a delete.
            let deletes: Vec<String> = ids
                .iter()
                .filter(|id| !rows.contains_key(*id))
                .cloned()
                .collect();
            let docs: Vec<SegmentDoc> = rows.into_values().collect();
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.apply(&uid, &docs, &deletes)).await??;
        }
        Ok(())
    }

    fn advance(&self, seq: i64) -> anyhow::Result<()> {
        let tmp = self.cursor_path.with_extension("tmp");
        std::fs::write(&tmp, seq.to_string())?;
        std::fs::rename(&tmp, &self.cursor_path)?;
        self.applied.send_replace(seq);
        Ok(())
    }
}

fn read_cursor(path: &std::path::Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The last sequence number handed out.
pub async fn current_sequence(db: &DatabaseConnection) -> anyhow::Result<i64> {
    use sea_orm::{ConnectionTrait, Statement};
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT value FROM sequence_counters WHERE name = 'segment_changes'",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the segment_changes counter row is missing"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

pub(crate) fn to_doc(s: segment::Model) -> SegmentDoc {
    SegmentDoc {
        labels: serde_json::from_str(&s.labels).unwrap_or_default(),
        segment_id: s.id,
        media_id: s.media_id,
        start_seconds: s.start_seconds,
        end_seconds: s.end_seconds,
        text: s.text,
        metadata: s.metadata,
    }
}
