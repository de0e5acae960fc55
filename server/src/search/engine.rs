//! The tantivy side: one directory per index under the search root, opened on demand, with
//! a cached writer and a manually reloaded reader.
//!
//! Writes are staged, then committed together. Each commit records, as its payload, the
//! last change of the segment change sequence it includes, so a batch already in an index
//! is recognised after a restart. New segments are therefore added without the
//! delete-by-id that an upsert needs: the deletes, applied to every segment at each commit,
//! cost more than the indexing itself.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicI64, Ordering},
        Arc, Mutex,
    },
};

use tantivy::{
    directory::MmapDirectory, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
};

use super::{
    schema::{schema, Fields},
    vectors::{quantise, VectorCache},
};

/// Indexing threads per writer. Two let a burst of ingest index on both cores once the
/// requests are answered (the last batch of a bulk load waits for them); one held the
/// benchmark's ingest to about 25,000 segments/s here, two reach 31,000.
const WRITER_THREADS: usize = 2;
/// Writer memory budget per indexing thread (tantivy's minimum is 15 MB).
const WRITER_HEAP_BYTES: usize = 15_000_000;

/// A segment as the search index stores it.
#[derive(Debug, Clone)]
pub struct SegmentDoc {
    pub segment_id: String,
    pub media_id: String,
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub text: String,
    pub labels: Vec<String>,
    /// JSON text.
    pub metadata: Option<String>,
    /// Its vector, when its index has an embedder (not read back with hits).
    pub vector: Option<Vec<f32>>,
}

pub(crate) struct SearchIndex {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    writer: Mutex<Option<IndexWriter>>,
    /// The last change in this index's last commit (its commit payload); 0 for none.
    committed_seq: AtomicI64,
    /// Whether writes are staged since the last commit.
    dirty: AtomicBool,
    /// Committed to since its last full merge (or since it was opened).
    unmerged: AtomicBool,
    /// Its segments' vectors, read once per tantivy segment.
    pub vectors: VectorCache,
}

impl SearchIndex {
    fn open_or_create(dir: &Path, approximate_from: u64) -> tantivy::Result<SearchIndex> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let committed_seq = index
            .load_metas()?
            .payload
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let live_segments = index.searchable_segment_ids()?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            writer: Mutex::new(None),
            committed_seq: AtomicI64::new(committed_seq),
            dirty: AtomicBool::new(false),
            unmerged: AtomicBool::new(false),
            vectors: VectorCache::new(approximate_from, Some(dir.join("vectors")), &live_segments),
        })
    }

    /// Commits staged writes (recording `seq`, or keeping the payload when `None`) and
    /// reloads the reader.
    fn commit(&self, seq: Option<i64>) -> tantivy::Result<()> {
        let seq = seq
            .unwrap_or(0)
            .max(self.committed_seq.load(Ordering::Acquire));
        self.with_writer(|writer, _| {
            let mut commit = writer.prepare_commit()?;
            commit.set_payload(&seq.to_string());
            commit.commit()
        })?;
        self.committed_seq.store(seq, Ordering::Release);
        self.dirty.store(false, Ordering::Release);
        self.unmerged.store(true, Ordering::Release);
        self.reader.reload()
    }

    /// Committed to since its last merge, with nothing staged now.
    fn waits_for_merge(&self) -> bool {
        self.unmerged.load(Ordering::Acquire) && !self.dirty.load(Ordering::Acquire)
    }

    /// Merges every searchable segment into one; false when there was one or none, or
    /// when a merge tantivy's policy started meanwhile took some of them (it stays
    /// unmerged, so the next quiet moment tries again).
    fn merge_all(&self) -> tantivy::Result<bool> {
        let ids = self.index.searchable_segment_ids()?;
        if ids.len() <= 1 {
            self.unmerged.store(false, Ordering::Release);
            return Ok(false);
        }
        // Started under the writer lock, waited for outside it: staging may go on.
        let merging = self.with_writer(|writer, _| Ok(writer.merge(&ids)))?;
        match merging.wait() {
            Ok(_) => {
                self.unmerged.store(false, Ordering::Release);
                self.reader.reload()?;
                Ok(true)
            }
            Err(e) => {
                tracing::debug!(error = %e, "a quiet-time merge did not run");
                Ok(false)
            }
        }
    }

    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter, &Fields) -> tantivy::Result<T>,
    ) -> tantivy::Result<T> {
        let mut slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(
                self.index
                    .writer_with_num_threads(WRITER_THREADS, WRITER_THREADS * WRITER_HEAP_BYTES)?,
            );
        }
        let writer = slot.as_mut().expect("just set");
        f(writer, &self.fields)
    }
}

/// Every search index under one root directory.
pub struct SearchEngine {
    root: PathBuf,
    open: Mutex<HashMap<String, Arc<SearchIndex>>>,
    /// Searches that may run on the blocking pool at once: two per core. More threads only
    /// share the cores, at the cost of switching; one per core left cores idle between
    /// hand-overs (the bench's `request-path`).
    pub(super) search_slots: tokio::sync::Semaphore,
    /// Tantivy segments with at least this many vectors get an approximate index
    /// (`search::vectors`); 0: none do.
    approximate_from: u64,
}

/// Vectors from which a tantivy segment gets an approximate index, unless configured:
/// below it the exact scan is fast enough (`bench/`'s `vectors` scenario).
pub const APPROXIMATE_FROM: u64 = 50_000;

impl SearchEngine {
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(SearchEngine {
            root,
            open: Mutex::new(HashMap::new()),
            search_slots: tokio::sync::Semaphore::new(cores * 2),
            approximate_from: APPROXIMATE_FROM,
        })
    }

    /// This engine, giving an approximate index to segments with at least `vectors`
    /// vectors (0: to none).
    pub fn approximate_from(mut self, vectors: u64) -> Self {
        self.approximate_from = vectors;
        self
    }

    /// Whether every segment of `uid` that should have an approximate index for vectors of
    /// `dims` dimensions has it (starting the builds that have not started).
    pub fn approximate_ready(&self, uid: &str, dims: usize) -> tantivy::Result<bool> {
        let handle = self.handle(uid)?;
        let searcher = handle.reader.searcher();
        handle
            .vectors
            .approximate_ready(&searcher, &handle.fields, dims)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, uid: &str) -> PathBuf {
        self.root.join("indexes").join(uid)
    }

    pub(crate) fn handle(&self, uid: &str) -> tantivy::Result<Arc<SearchIndex>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = open.get(uid) {
            return Ok(handle.clone());
        }
        let handle = Arc::new(SearchIndex::open_or_create(
            &self.dir(uid),
            self.approximate_from,
        )?);
        open.insert(uid.to_string(), handle.clone());
        Ok(handle)
    }

    /// Whether the index's directory opens (false means it must be rebuilt).
    pub fn check(&self, uid: &str) -> bool {
        self.handle(uid)
            .and_then(|h| h.reader.reload().map(|_| ()))
            .is_ok()
    }

    /// The last change of the segment change sequence in `uid`'s last commit (0 for none).
    pub fn committed_seq(&self, uid: &str) -> tantivy::Result<i64> {
        Ok(self.handle(uid)?.committed_seq.load(Ordering::Acquire))
    }

    /// Stages segments that cannot be in the index yet (new ids): no delete by id.
    pub fn stage_new(&self, uid: &str, docs: &[SegmentDoc]) -> tantivy::Result<()> {
        let handle = self.handle(uid)?;
        handle.with_writer(|writer, fields| {
            for doc in docs {
                writer.add_document(to_document(fields, doc))?;
            }
            Ok(())
        })?;
        handle.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Stages upserts (replacing any copy with the same id) and deletes.
    pub fn stage_replace(
        &self,
        uid: &str,
        upserts: &[SegmentDoc],
        deletes: &[String],
    ) -> tantivy::Result<()> {
        let handle = self.handle(uid)?;
        handle.with_writer(|writer, fields| {
            for id in deletes {
                writer.delete_term(Term::from_field_text(fields.segment_id, id));
            }
            for doc in upserts {
                writer.delete_term(Term::from_field_text(fields.segment_id, &doc.segment_id));
                writer.add_document(to_document(fields, doc))?;
            }
            Ok(())
        })?;
        handle.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Merges each index committed to since its last merge into one segment; returns how
    /// many were merged. For quiet moments: a burst of ingest leaves an index in many
    /// segments (one or two per commit), and a search visits each. Merged, the index
    /// answers like one built in a single commit.
    pub fn merge_settled(&self) -> tantivy::Result<usize> {
        let unmerged = self.unmerged();
        let mut merged = 0;
        for handle in unmerged {
            merged += usize::from(handle.merge_all()?);
        }
        Ok(merged)
    }

    /// Whether an index waits for [`SearchEngine::merge_settled`].
    pub fn has_unmerged(&self) -> bool {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|h| h.waits_for_merge())
    }

    fn unmerged(&self) -> Vec<Arc<SearchIndex>> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|h| h.waits_for_merge())
            .cloned()
            .collect()
    }

    /// Commits every index with staged writes, recording `seq` as the last change each
    /// now includes, and reloads their readers.
    pub fn commit_staged(&self, seq: i64) -> tantivy::Result<()> {
        let dirty: Vec<Arc<SearchIndex>> = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|h| h.dirty.load(Ordering::Acquire))
            .cloned()
            .collect();
        for handle in dirty {
            handle.commit(Some(seq))?;
        }
        Ok(())
    }

    /// Upserts and deletes segments of one index, then commits it (keeping its recorded
    /// change) and reloads its reader.
    pub fn apply(
        &self,
        uid: &str,
        upserts: &[SegmentDoc],
        deletes: &[String],
    ) -> tantivy::Result<()> {
        self.stage_replace(uid, upserts, deletes)?;
        self.handle(uid)?.commit(None)
    }

    /// Removes an index and its directory.
    pub fn drop_index(&self, uid: &str) -> std::io::Result<()> {
        let removed = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        drop(removed);
        match std::fs::remove_dir_all(self.dir(uid)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Uids with a directory on disk.
    pub fn uids_on_disk(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("indexes"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Commits `uid`'s staged writes, recording `seq` as the last change it includes.
    pub fn commit(&self, uid: &str, seq: i64) -> tantivy::Result<()> {
        self.handle(uid)?.commit(Some(seq))
    }

    /// Throws away every write staged and not committed, closing the writers: one that
    /// failed to write (on a full disk, say) may be unusable. The caller stages those
    /// changes again, from the database.
    pub fn discard_staged(&self) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for handle in open.values() {
            let writer = handle
                .writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            // Dropping a writer discards what it staged (and waits for its threads).
            drop(writer);
            handle.dirty.store(false, Ordering::Release);
        }
    }

    /// Drops every cached writer with nothing staged (frees their memory; they reopen on
    /// the next write).
    pub fn release_writers(&self) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for handle in open.values().filter(|h| !h.dirty.load(Ordering::Acquire)) {
            handle
                .writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
    }
}

fn to_document(fields: &Fields, doc: &SegmentDoc) -> TantivyDocument {
    let mut out = TantivyDocument::default();
    out.add_text(fields.segment_id, &doc.segment_id);
    out.add_text(fields.text, &doc.text);
    out.add_text(fields.media_id, &doc.media_id);
    for label in &doc.labels {
        out.add_text(fields.labels, label);
    }
    out.add_f64(fields.start, doc.start_seconds);
    out.add_f64(fields.end, doc.end_seconds);
    if let Some(metadata) = &doc.metadata {
        out.add_text(fields.metadata, metadata);
    }
    if let Some(vector) = &doc.vector {
        out.add_bytes(fields.vector, &quantise(vector));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::query::SearchQuery;

    fn doc(n: usize) -> SegmentDoc {
        SegmentDoc {
            segment_id: format!("seg_{n}"),
            media_id: "m".into(),
            start_seconds: n as f64,
            end_seconds: n as f64 + 1.0,
            text: format!("harbour crossing number{n}"),
            labels: vec![],
            metadata: None,
            vector: None,
        }
    }

    #[test]
    fn a_settled_index_is_merged_into_one_segment_keeping_its_documents_and_payload() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SearchEngine::new(dir.path().to_path_buf()).unwrap();
        for batch in 0..3 {
            engine
                .stage_new(
                    "ixu_a",
                    &(batch * 10..batch * 10 + 10).map(doc).collect::<Vec<_>>(),
                )
                .unwrap();
            engine.commit_staged(batch as i64 + 1).unwrap();
        }
        let segments = || {
            engine
                .handle("ixu_a")
                .unwrap()
                .index
                .searchable_segment_ids()
                .unwrap()
                .len()
        };
        assert!(segments() > 1, "each commit left a segment");
        assert!(engine.has_unmerged());

        // Three commits leave at most six segments: fewer than tantivy's own policy merges
        // (eight), so only this merge runs.
        assert_eq!(engine.merge_settled().unwrap(), 1);
        assert_eq!(segments(), 1);
        assert!(!engine.has_unmerged());
        let query = SearchQuery {
            text: "harbour".into(),
            top_k: 100,
            ..Default::default()
        };
        assert_eq!(engine.search("ixu_a", &query).unwrap().hits.len(), 30);
        // The merge kept the commit's payload: a reopened index knows its last change.
        drop(engine);
        let reopened = SearchEngine::new(dir.path().to_path_buf()).unwrap();
        assert_eq!(reopened.committed_seq("ixu_a").unwrap(), 3);
        assert_eq!(reopened.merge_settled().unwrap(), 0, "nothing new to merge");
    }
}
