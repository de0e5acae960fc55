//! Keeps this instance's search indexes current with the database.
//!
//! Every change to segments appends to `segment_changes` under a sequence number taken from
//! a counter row inside the writing transaction, so numbers become visible in order. The
//! indexer stages changes after its cursor and commits them together: when none are
//! pending and the oldest staged one has waited [`COMMIT_INTERVAL`], at once when a caller
//! waits for them (`wait: true`), or when many are staged. Fewer, larger commits leave
//! tantivy fewer segments to merge under sustained ingest.
//!
//! The cursor is persisted in the search root after each commit, and each index's commit
//! records the last change it includes, so each instance's copy is independent and
//! restart-safe: a batch already in an index is skipped, and re-applying an upsert is
//! harmless. At start the indexer rebuilds any index that does not open, and every index
//! when the cursor is missing (a fresh or damaged search root), or behind the compacted
//! part of the change log ([`crate::db::change_log`]).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::{watch, Mutex, Notify};

use super::engine::{SearchEngine, SegmentDoc};
use crate::db::{
    change_log::compacted_through,
    entities::{
        index, segment,
        segment_change::{self, ChangeOp},
    },
    segment_store::{metadata_json, NewSegment, SegmentStore},
    vectors,
};

/// Changes applied per step. A change is up to one ingest batch (1,000 segments), so this
/// bounds the segments held in memory at once.
const CHANGE_BATCH: u64 = 5;
/// Segments read per step when rebuilding an index.
const REBUILD_PAGE: u64 = 5_000;
/// How often the change log is read when nothing announces changes (SQLite, or while the
/// notification connection is down).
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often it is read while notices announce every change ([`Indexer::set_followed`]):
/// only a safety net.
const FOLLOWED_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long staged changes may wait for a commit when nobody waits for them: the refresh
/// interval Elasticsearch defaults to. At 250 ms, merging the many small segments took a
/// fifth of the server's CPU under sustained ingest.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Staged segments that make a commit due at once.
const COMMIT_EVERY: usize = 50_000;
/// How long no change must arrive before the indexes committed to are merged into one
/// segment each ([`SearchEngine::merge_settled`]).
const QUIET_BEFORE_MERGE: Duration = Duration::from_secs(2);
/// Batches an ingest may hand over before they are applied; beyond it, batches are read
/// back from the database like any other instance's.
const OFFERED_BATCHES: usize = 64;

/// Changes staged in the search indexes but not committed yet.
#[derive(Default)]
struct Staging {
    /// The last change staged (at least the last applied).
    seq: i64,
    segments: usize,
    since: Option<Instant>,
}

pub struct Indexer {
    db: DatabaseConnection,
    segments: SegmentStore,
    engine: Arc<SearchEngine>,
    applied: watch::Sender<i64>,
    /// The highest change a caller waits for: its commit is due at once.
    wanted: AtomicI64,
    staging: Mutex<Staging>,
    /// Set by [`Indexer::stop`]: no further changes are staged.
    stopping: AtomicBool,
    /// Whether notices announce every change, so polling can be rare.
    followed: AtomicBool,
    /// Segment changes committed to this instance's search copy (the metrics' rate).
    indexed: AtomicU64,
    /// Batches this instance stored itself, by change number: staged from memory instead
    /// of read back from the database.
    offered: std::sync::Mutex<BTreeMap<i64, Vec<SegmentDoc>>>,
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
            wanted: AtomicI64::new(0),
            staging: Mutex::new(Staging {
                seq: start,
                ..Staging::default()
            }),
            stopping: AtomicBool::new(false),
            followed: AtomicBool::new(false),
            indexed: AtomicU64::new(0),
            offered: std::sync::Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            cursor_path,
        }
    }

    pub fn engine(&self) -> &Arc<SearchEngine> {
        &self.engine
    }

    /// Segment changes committed to this instance's search copy since it started.
    pub fn indexed(&self) -> u64 {
        self.indexed.load(Ordering::Relaxed)
    }

    /// Whether every change is announced by a notice (the listener is up).
    pub fn followed(&self) -> bool {
        self.followed.load(Ordering::Acquire)
    }

    /// Segment changes in the database this copy has not applied yet (readiness and the
    /// metrics report it).
    pub async fn lag(&self) -> anyhow::Result<i64> {
        Ok((current_sequence(&self.db).await? - self.applied()).max(0))
    }

    /// The last change applied to the search indexes.
    pub fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Asks the worker to look for changes now.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Hands over the segments of batch `seq`, which this instance has just stored (and
    /// committed): the worker stages them without reading them back. `segments` pairs each
    /// stored input with its id.
    pub fn offer(&self, seq: i64, ids: &[String], segments: Vec<NewSegment>) {
        if seq <= self.applied() {
            return;
        }
        let docs = ids
            .iter()
            .zip(segments)
            .map(|(id, NewSegment { input: s, vector })| SegmentDoc {
                segment_id: id.clone(),
                metadata: s.metadata.as_ref().map(metadata_json),
                media_id: s.media_id.into(),
                start_seconds: s.start_seconds,
                end_seconds: s.end_seconds,
                text: s.text.into(),
                labels: s.labels,
                vector,
            })
            .collect();
        let mut offered = self.offered.lock().unwrap_or_else(|e| e.into_inner());
        if offered.len() < OFFERED_BATCHES {
            offered.insert(seq, docs);
        }
    }

    /// The offered batches among `seqs` (removed), and the numbers left to read.
    fn take_offered(&self, seqs: Vec<i64>) -> (Vec<SegmentDoc>, Vec<i64>) {
        let mut offered = self.offered.lock().unwrap_or_else(|e| e.into_inner());
        let mut docs = Vec::new();
        let mut unread = Vec::new();
        for seq in seqs {
            match offered.remove(&seq) {
                Some(batch) => docs.extend(batch),
                None => unread.push(seq),
            }
        }
        (docs, unread)
    }

    /// Asks the worker to apply and commit change `seq` now: somebody waits for it.
    pub fn want(&self, seq: i64) {
        self.wanted.fetch_max(seq, Ordering::AcqRel);
        self.notify();
    }

    /// Whether every change is announced by a notice ([`crate::cluster`]): then the change
    /// log is polled only as a safety net.
    pub fn set_followed(&self, followed: bool) {
        self.followed.store(followed, Ordering::Release);
        self.notify();
    }

    fn poll_interval(&self) -> Duration {
        if self.followed.load(Ordering::Acquire) {
            FOLLOWED_POLL_INTERVAL
        } else {
            POLL_INTERVAL
        }
    }

    /// Waits until change `seq` is applied; false on timeout.
    pub async fn wait_for(&self, seq: i64, timeout: Duration) -> bool {
        self.want(seq);
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops following changes: commits what is staged and closes the index writers (so
    /// another indexer, in this process or another, can open them).
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
        // Waits for a step in progress; later steps see `stopping` and do nothing.
        let mut staging = self.staging.lock().await;
        if staging.seq > self.applied() {
            self.commit(&mut staging).await?;
        }
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.release_writers()).await?;
        Ok(())
    }

    async fn follow(self: Arc<Self>) {
        let mut pause = self.poll_interval();
        let mut last_change = Instant::now();
        let merging = Arc::new(AtomicBool::new(false));
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            let before = self.applied();
            let stepped = self.step(false).await;
            if self.applied() != before {
                last_change = Instant::now();
            } else if last_change.elapsed() >= QUIET_BEFORE_MERGE {
                self.merge_in_background(&merging);
            }
            pause = match stepped {
                Ok(Some(commit_due_in)) => commit_due_in.min(self.poll_interval()),
                // Back soon only while a merge waits for the quiet moment.
                Ok(None) if self.engine.has_unmerged() => {
                    self.poll_interval().min(QUIET_BEFORE_MERGE)
                }
                Ok(None) => self.poll_interval(),
                Err(e) => {
                    tracing::error!(error = %e, "applying segment changes to the search index; retrying");
                    self.start_over_from_applied().await;
                    Duration::from_secs(1)
                }
            };
        }
    }

    /// After a failed step (a full disk, the database away), throws away what is staged and
    /// not committed, so the next step stages it again from the database, into writers
    /// opened anew. Searches meanwhile answer from the last commit.
    async fn start_over_from_applied(&self) {
        let mut staging = self.staging.lock().await;
        let engine = self.engine.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || engine.discard_staged()).await {
            tracing::error!(error = %e, "discarding staged search changes");
        }
        *staging = Staging {
            seq: self.applied(),
            ..Staging::default()
        };
    }

    /// Merges the indexes committed to since their last merge, unless a merge runs: off
    /// this loop, so changes keep being applied meanwhile.
    fn merge_in_background(&self, merging: &Arc<AtomicBool>) {
        if !self.engine.has_unmerged() || merging.swap(true, Ordering::AcqRel) {
            return;
        }
        let (engine, merging) = (self.engine.clone(), merging.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = engine.merge_settled() {
                tracing::warn!(error = %e, "merging search index segments");
            }
            merging.store(false, Ordering::Release);
        });
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
                    let snapshot = current_sequence(&self.db).await?;
                    self.rebuild(uid, snapshot).await?;
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
            self.rebuild(uid, snapshot).await?;
        }
        self.advance(snapshot)?;
        self.catch_up().await
    }

    /// Rebuilds `uid` from the segments of changes up to `snapshot` (later ones arrive as
    /// changes), recording `snapshot` in its commit.
    async fn rebuild(&self, uid: &str, snapshot: i64) -> anyhow::Result<()> {
        self.engine.drop_index(uid)?;
        let mut after = String::new();
        loop {
            let rows = segment::Entity::find()
                .filter(segment::Column::IndexUid.eq(uid))
                .filter(segment::Column::Id.gt(after.clone()))
                .filter(
                    Condition::any()
                        .add(segment::Column::ChangeSeq.is_null())
                        .add(segment::Column::ChangeSeq.lte(snapshot)),
                )
                .order_by_asc(segment::Column::Id)
                .limit(REBUILD_PAGE)
                .all(&self.db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            let docs: Vec<SegmentDoc> = rows.into_iter().map(to_doc).collect();
            let engine = self.engine.clone();
            let uid = uid.to_string();
            tokio::task::spawn_blocking(move || engine.stage_new(&uid, &docs)).await??;
        }
        // An empty index still gets its directory (and commit), so `check` finds it.
        let engine = self.engine.clone();
        let uid = uid.to_string();
        tokio::task::spawn_blocking(move || engine.commit(&uid, snapshot)).await??;
        Ok(())
    }

    /// Applies and commits every change after the cursor.
    pub async fn catch_up(&self) -> anyhow::Result<()> {
        self.step(true).await.map(|_| ())
    }

    /// Stages every pending change, and commits when a commit is due (or `commit_now`).
    /// Returns how long until a commit of what stays staged is due, if anything does.
    async fn step(&self, commit_now: bool) -> anyhow::Result<Option<Duration>> {
        let mut staging = self.staging.lock().await;
        if self.stopping.load(Ordering::Acquire) {
            return Ok(None);
        }
        staging.seq = staging.seq.max(self.applied());
        // Changes up to the compaction horizon are gone: a copy behind it rebuilds.
        if staging.seq < compacted_through(&self.db).await? {
            tracing::warn!(
                cursor = staging.seq,
                "this search copy is behind the compacted change log; rebuilding it"
            );
            *staging = Staging::default();
            drop(staging);
            Box::pin(self.rebuild_all()).await?;
            return Ok(None);
        }
        loop {
            let changes = segment_change::Entity::find()
                .filter(segment_change::Column::Seq.gt(staging.seq))
                .order_by_asc(segment_change::Column::Seq)
                .limit(CHANGE_BATCH)
                .all(&self.db)
                .await?;
            let Some(last_seq) = changes.last().map(|c| c.seq) else {
                break;
            };
            staging.segments += self.stage(changes).await?;
            staging.seq = last_seq;
            staging.since.get_or_insert_with(Instant::now);
            if staging.segments >= COMMIT_EVERY {
                self.commit(&mut staging).await?;
            }
        }
        if staging.seq <= self.applied() {
            return Ok(None);
        }
        let waited = staging.since.map_or(Duration::ZERO, |at| at.elapsed());
        if commit_now
            || self.wanted.load(Ordering::Acquire) > self.applied()
            || waited >= COMMIT_INTERVAL
        {
            self.commit(&mut staging).await?;
            return Ok(None);
        }
        Ok(Some(COMMIT_INTERVAL - waited))
    }

    async fn commit(&self, staging: &mut Staging) -> anyhow::Result<()> {
        let (engine, seq) = (self.engine.clone(), staging.seq);
        tokio::task::spawn_blocking(move || engine.commit_staged(seq)).await??;
        self.advance(seq)?;
        self.indexed
            .fetch_add(staging.segments as u64, Ordering::Relaxed);
        staging.segments = 0;
        staging.since = None;
        Ok(())
    }

    /// Stages `changes` in the search indexes; returns the segments staged.
    async fn stage(&self, changes: Vec<segment_change::Model>) -> anyhow::Result<usize> {
        let mut dropped = BTreeSet::new();
        let mut upserts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut batches: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut replaced: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for change in changes {
            match (change.op, change.segment_id) {
                (ChangeOp::DropIndex, _) => {
                    upserts.remove(&change.index_uid);
                    batches.remove(&change.index_uid);
                    replaced.remove(&change.index_uid);
                    dropped.insert(change.index_uid);
                }
                (ChangeOp::ReplaceBatch, _) if !dropped.contains(&change.index_uid) => {
                    replaced
                        .entry(change.index_uid)
                        .or_default()
                        .push(change.seq);
                }
                (ChangeOp::UpsertBatch, _) if !dropped.contains(&change.index_uid) => {
                    batches
                        .entry(change.index_uid)
                        .or_default()
                        .push(change.seq);
                }
                (ChangeOp::Upsert, Some(segment_id)) if !dropped.contains(&change.index_uid) => {
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
        let mut staged = 0;
        for (uid, seqs) in batches {
            // Batches this index already holds (committed before a restart) are skipped.
            let committed = self.engine.committed_seq(&uid)?;
            let seqs: Vec<i64> = seqs.into_iter().filter(|s| *s > committed).collect();
            let (mut docs, unread) = self.take_offered(seqs);
            if !unread.is_empty() {
                docs.extend(
                    self.segments
                        .batches(&unread)
                        .await?
                        .into_iter()
                        .map(to_doc),
                );
            }
            staged += docs.len();
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.stage_new(&uid, &docs)).await??;
        }
        // After the new batches: a re-embedding's batches rewrite segments staged before.
        for (uid, seqs) in replaced {
            let committed = self.engine.committed_seq(&uid)?;
            let seqs: Vec<i64> = seqs.into_iter().filter(|s| *s > committed).collect();
            let docs: Vec<SegmentDoc> = self
                .segments
                .batches(&seqs)
                .await?
                .into_iter()
                .map(to_doc)
                .collect();
            if docs.is_empty() {
                continue;
            }
            staged += docs.len();
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.stage_replace(&uid, &docs, &[])).await??;
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
            staged += docs.len() + deletes.len();
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.stage_replace(&uid, &docs, &deletes))
                .await??;
        }
        Ok(staged)
    }

    fn advance(&self, seq: i64) -> anyhow::Result<()> {
        let tmp = self.cursor_path.with_extension("tmp");
        std::fs::write(&tmp, seq.to_string())?;
        std::fs::rename(&tmp, &self.cursor_path)?;
        self.applied.send_replace(seq);
        // Offers of applied batches are never taken (a rebuild, or a batch the index held).
        self.offered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|offered, _| *offered > seq);
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
    // A stored vector that does not decode is left out of the search copy (said in the
    // log): the segment stays findable by its words.
    let vector = s.vector.as_deref().and_then(|bytes| {
        vectors::from_bytes(bytes)
            .inspect_err(|e| tracing::error!(segment = %s.id, error = %e, "a stored vector"))
            .ok()
    });
    SegmentDoc {
        vector,
        labels: s.labels.0,
        segment_id: s.id,
        media_id: s.media_id,
        start_seconds: s.start_seconds,
        end_seconds: s.end_seconds,
        text: s.text,
        metadata: s.metadata,
    }
}
