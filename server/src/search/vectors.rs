//! Search by meaning in a search copy. Each segment's vector is stored in its tantivy
//! document, normalised to unit length and quantised to int8 with one f32 scale (4 + d
//! bytes, against 4·d in the database), so vectors follow the text through the same change
//! log, commits, merges and rebuilds.
//!
//! For each tantivy segment (they are immutable) the vectors are read once into a dense
//! matrix, kept while the segment lives. A small segment is searched exactly: every
//! document the filter admits is scored against the query. A segment with at least
//! `approximate_from` vectors also gets an approximate index (HNSW, from `usearch`), built
//! in the background on one thread (the exact scan serves until it is ready): it proposes
//! [`OVERSAMPLE`] times the candidates wanted, among the documents the filter admits, and
//! the matrix scores them exactly, so the ranking is the exact one over those candidates.
//! A built index is saved beside the search copy (tantivy segments never change, so it
//! stays valid for its segment's life, deletions being filtered at search time) and loaded
//! by the next process instead of built again; it is removed with its segment.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use tantivy::{
    index::SegmentId,
    query::{EnableScoring, Query},
    schema::Value,
    DocAddress, DocId, DocSet, Searcher, SegmentReader, TantivyDocument, TERMINATED,
};

use super::schema::Fields;
use crate::db::vectors::quantise_i8;

/// `vector` at length one (a zero vector stays zero): documents are stored so and queries
/// compared so, which makes every score a cosine.
pub fn unit(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector
        .iter()
        .map(|x| if norm > 0.0 { x / norm } else { 0.0 })
        .collect()
}

/// `vector` normalised, as stored in a search document: scale (f32 LE), then int8s.
pub fn quantise(vector: &[f32]) -> Vec<u8> {
    let unit = unit(vector);
    let (scale, values) = quantise_i8(&unit);
    let mut out = Vec::with_capacity(4 + vector.len());
    out.extend(scale.to_le_bytes());
    out.extend(values);
    out
}

/// The approximate index proposes this many times the candidates a search wants...
const OVERSAMPLE: usize = 4;
/// ... and at least this many.
const MIN_CANDIDATES: usize = 400;
/// Graph links per node, and the breadth of the graph's search while building and while
/// searching. Measured on `bench/`'s corpus at 1,000,000 vectors (recall@10 against the
/// exact scan; p99 of a search on one core), 16 links and breadth 128 while building:
/// breadth 512 with 200 candidates, 0.945 at 3.1 ms; 768 with 300, 0.959 at 4.2 ms (0.950
/// on the `scale` scenario's own corpus); 1,024 with 400, 0.964 at 5.5 ms. With 12 links
/// and 64/256, 0.90 at 100,000 already: the graph's links, not its precision, bound it
/// (f16 in the graph instead of int8 also gave 0.90). 24 links and 200 raised 100,000's
/// 0.944 to 0.962 at 256, but took 1.8 times as long to build.
const CONNECTIVITY: usize = 16;
const EXPANSION_ADD: usize = 128;
const EXPANSION_SEARCH: usize = 1024;

/// One approximate index is built at a time, process-wide: a build takes a core for
/// seconds to minutes, and searches need the other.
static BUILDING: Mutex<()> = Mutex::new(());

/// One tantivy segment's vectors, as a dense matrix (a zero scale: no vector).
pub struct SegmentVectors {
    dims: usize,
    scales: Vec<f32>,
    rows: Vec<i8>,
    /// Documents with a vector.
    with_vector: u64,
    /// The approximate index, once built.
    approximate: std::sync::OnceLock<usearch::Index>,
}

impl SegmentVectors {
    fn read(reader: &SegmentReader, fields: &Fields, dims: usize) -> tantivy::Result<Self> {
        let count = reader.max_doc() as usize;
        let mut scales = vec![0f32; count];
        let mut rows = vec![0i8; count * dims];
        let mut with_vector = 0u64;
        let store = reader.get_store_reader(64)?;
        for doc in 0..reader.max_doc() {
            if reader.is_deleted(doc) {
                continue;
            }
            let stored: TantivyDocument = store.get(doc)?;
            let Some(bytes) = stored.get_first(fields.vector).and_then(|v| v.as_bytes()) else {
                continue;
            };
            if bytes.len() != 4 + dims {
                continue; // another embedder's vector, left before a re-embedding ended
            }
            let at = doc as usize;
            scales[at] = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            with_vector += u64::from(scales[at] != 0.0);
            for (slot, &b) in rows[at * dims..(at + 1) * dims].iter_mut().zip(&bytes[4..]) {
                *slot = b as i8;
            }
        }
        Ok(SegmentVectors {
            dims,
            scales,
            rows,
            with_vector,
            approximate: std::sync::OnceLock::new(),
        })
    }

    /// Loads the approximate index of these vectors from `saved` when it holds one, or
    /// builds it (saving it there); the caller runs it off the search path. Says which.
    fn load_or_build(&self, saved: Option<&Path>) -> Result<&'static str, String> {
        if let Some(index) = saved.and_then(|file| self.load(file)) {
            let _ = self.approximate.set(index);
            return Ok("loaded");
        }
        let _turn = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
        // One build per directory across processes too (a benchmark reads a server's
        // copy): whoever waited loads what the other built.
        let _shared = saved.and_then(|file| file.parent()).and_then(lock_builds);
        if let Some(index) = saved.and_then(|file| self.load(file)) {
            let _ = self.approximate.set(index);
            return Ok("loaded");
        }
        let index = self.build()?;
        if let Some(file) = saved {
            if let Err(e) = save(&index, file) {
                tracing::warn!(error = %e, file = %file.display(), "saving an approximate vector index");
            }
        }
        let _ = self.approximate.set(index);
        Ok("built")
    }

    /// The index saved in `file`, if it is one for these vectors (a file that does not
    /// read is built again).
    fn load(&self, file: &Path) -> Option<usearch::Index> {
        if !file.exists() {
            return None;
        }
        let index = usearch::Index::new(&index_options(self.dims)).ok()?;
        match index.load(&file.to_string_lossy()) {
            Ok(()) if index.dimensions() == self.dims && index.size() > 0 => {
                index.change_expansion_search(EXPANSION_SEARCH);
                Some(index)
            }
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(error = %e, file = %file.display(), "an approximate vector index did not load; building it again");
                None
            }
        }
    }

    fn build(&self) -> Result<usearch::Index, String> {
        let index = usearch::Index::new(&index_options(self.dims)).map_err(|e| e.to_string())?;
        index
            .reserve(self.with_vector as usize)
            .map_err(|e| e.to_string())?;
        for (doc, &scale) in self.scales.iter().enumerate() {
            if scale == 0.0 {
                continue;
            }
            // Cosine ignores the scale: the int8 row has the vector's direction.
            let row = &self.rows[doc * self.dims..(doc + 1) * self.dims];
            index.add(doc as u64, row).map_err(|e| e.to_string())?;
        }
        Ok(index)
    }

    /// Candidates near the unit `query` from the approximate index, among the documents
    /// `admits` lets through; `None` while it is not built.
    fn propose(
        &self,
        query: &[f32],
        wanted: usize,
        admits: impl Fn(DocId) -> bool,
    ) -> Option<Vec<DocId>> {
        let index = self.approximate.get()?;
        let count = (wanted * OVERSAMPLE).max(MIN_CANDIDATES);
        // As the rows are: int8 at full range (usearch would map a unit f32 vector's
        // components, about 0.09 each, to about 11 of 127).
        let (_, query) = quantise_i8(query);
        let query: Vec<i8> = query.map(|b| b as i8).collect();
        let found = index
            .filtered_search(&query, count, |key: u64| admits(key as DocId))
            .ok()?;
        Some(found.keys.into_iter().map(|k| k as DocId).collect())
    }

    /// Whether `doc` has a vector.
    fn has(&self, doc: DocId) -> bool {
        self.scales.get(doc as usize).is_some_and(|s| *s != 0.0)
    }

    /// Cosine similarity of `doc` with the unit `query`; `None` when it has no vector.
    fn score(&self, doc: DocId, query: &[f32]) -> Option<f32> {
        let at = doc as usize;
        let scale = *self.scales.get(at)?;
        if scale == 0.0 {
            return None;
        }
        let row = &self.rows[at * self.dims..(at + 1) * self.dims];
        let dot: f32 = row.iter().zip(query).map(|(&q, &x)| q as f32 * x).sum();
        Some(dot * scale)
    }
}

fn index_options(dims: usize) -> usearch::IndexOptions {
    usearch::IndexOptions {
        dimensions: dims,
        metric: usearch::MetricKind::Cos,
        quantization: usearch::ScalarKind::I8,
        connectivity: CONNECTIVITY,
        expansion_add: EXPANSION_ADD,
        expansion_search: EXPANSION_SEARCH,
        multi: false,
    }
}

/// Holds the lock on builds in `dir` (released when the file is dropped); `None` when it
/// cannot be taken, and the build goes ahead without it.
fn lock_builds(dir: &Path) -> Option<std::fs::File> {
    std::fs::create_dir_all(dir).ok()?;
    let file = std::fs::File::create(dir.join(".building")).ok()?;
    file.lock().ok()?;
    Some(file)
}

/// Saves `index` to `file` whole or not at all (another process may be reading it).
fn save(index: &usearch::Index, file: &Path) -> Result<(), String> {
    let dir = file.parent().ok_or("no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let partial = file.with_extension(format!("partial-{}", std::process::id()));
    index
        .save(&partial.to_string_lossy())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&partial, file).map_err(|e| e.to_string())
}

/// The matrices of an index's live tantivy segments, by segment id.
pub struct VectorCache {
    segments: Mutex<HashMap<(SegmentId, usize), Arc<SegmentVectors>>>,
    /// Segments with at least this many vectors get an approximate index (0: none do).
    approximate_from: u64,
    /// Where approximate indexes are saved, one file per segment and dimensions (`None`:
    /// not saved).
    saved_in: Option<PathBuf>,
    /// The newest searcher generation [`Self::retain`] saw: a search that began before a
    /// reload holds an older searcher, which does not know the segments a merge made and
    /// must not forget them (nor remove their saved indexes).
    newest_generation: std::sync::atomic::AtomicU64,
}

/// The file name of segment `segment`'s approximate index for `dims` dimensions: the graph's
/// settings are part of it, so a change of them builds anew.
fn saved_name(segment: SegmentId, dims: usize) -> String {
    format!(
        "{}.{dims}d.m{CONNECTIVITY}.e{EXPANSION_ADD}.usearch",
        segment.uuid_string()
    )
}

impl VectorCache {
    /// A cache whose approximate indexes are saved in `saved_in`; files there of segments
    /// not in `live` (merged away while no process held them) are removed.
    pub fn new(approximate_from: u64, saved_in: Option<PathBuf>, live: &[SegmentId]) -> Self {
        if let Some(dir) = &saved_in {
            let live: Vec<String> = live.iter().map(|id| id.uuid_string()).collect();
            remove_saved(dir, |name| {
                !live
                    .iter()
                    .any(|segment| name.starts_with(segment.as_str()))
            });
        }
        VectorCache {
            segments: Mutex::default(),
            approximate_from,
            saved_in,
            newest_generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn get(
        &self,
        reader: &SegmentReader,
        fields: &Fields,
        dims: usize,
    ) -> tantivy::Result<Arc<SegmentVectors>> {
        let key = (reader.segment_id(), dims);
        if let Some(found) = self.lock().get(&key) {
            return Ok(found.clone());
        }
        let read = Arc::new(SegmentVectors::read(reader, fields, dims)?);
        self.lock().insert(key, read.clone());
        if self.approximate_from > 0 && read.with_vector >= self.approximate_from {
            let building = read.clone();
            let saved = self
                .saved_in
                .as_ref()
                .map(|dir| dir.join(saved_name(key.0, dims)));
            let started = std::thread::Builder::new()
                .name("vector-index".into())
                .spawn(move || {
                    let at = std::time::Instant::now();
                    match building.load_or_build(saved.as_deref()) {
                        Ok(how) => tracing::info!(
                            vectors = building.with_vector,
                            seconds = at.elapsed().as_secs_f32(),
                            "{how} an approximate vector index"
                        ),
                        Err(e) => {
                            tracing::error!(error = %e, "building an approximate vector index")
                        }
                    }
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "starting an approximate vector index build");
            }
        }
        Ok(read)
    }

    /// Forgets the matrices of segments `searcher` no longer holds (merged away), and
    /// removes their saved approximate indexes.
    fn retain(&self, searcher: &Searcher) {
        let generation = searcher.generation().generation_id();
        let newest = self
            .newest_generation
            .fetch_max(generation, std::sync::atomic::Ordering::AcqRel);
        if newest > generation {
            return;
        }
        let live: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        let mut gone = Vec::new();
        self.lock().retain(|(id, _), _| {
            let keep = live.contains(id);
            if !keep {
                gone.push(id.uuid_string());
            }
            keep
        });
        if let (Some(dir), false) = (&self.saved_in, gone.is_empty()) {
            remove_saved(dir, |name| {
                gone.iter()
                    .any(|segment| name.starts_with(segment.as_str()))
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SegmentId, usize), Arc<SegmentVectors>>> {
        self.segments.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether every live segment of `searcher` that should have an approximate index has
    /// it (reading the matrices, and starting the builds, if need be).
    pub(crate) fn approximate_ready(
        &self,
        searcher: &Searcher,
        fields: &Fields,
        dims: usize,
    ) -> tantivy::Result<bool> {
        let mut ready = true;
        for reader in searcher.segment_readers() {
            let vectors = self.get(reader, fields, dims)?;
            let wanted = self.approximate_from > 0 && vectors.with_vector >= self.approximate_from;
            ready &= !wanted || vectors.approximate.get().is_some();
        }
        Ok(ready)
    }
}

/// Removes the saved approximate indexes in `dir` whose file name `doomed` says so.
fn remove_saved(dir: &Path, doomed: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".usearch") && doomed(&name) {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(error = %e, "removing an approximate vector index of a merged segment");
            }
        }
    }
}

/// The cosine of each document at `addresses` with the unit `query` (`None`: it has no
/// vector of that length).
pub(crate) fn cosines(
    searcher: &Searcher,
    cache: &VectorCache,
    fields: &Fields,
    query: &[f32],
    addresses: &[DocAddress],
) -> tantivy::Result<Vec<Option<f32>>> {
    if query.is_empty() {
        return Ok(vec![None; addresses.len()]);
    }
    let readers = searcher.segment_readers();
    addresses
        .iter()
        .map(|address| {
            let vectors = cache.get(&readers[address.segment_ord as usize], fields, query.len())?;
            Ok(vectors.score(address.doc_id, query))
        })
        .collect()
}

/// What a search for the nearest vectors asks.
pub(crate) struct Wanted<'a> {
    /// The query's vector, unit length.
    pub query: &'a [f32],
    pub limit: usize,
    /// Count only the documents scoring at least this.
    pub threshold: Option<f32>,
    /// Scan every vector, approximate index or not.
    pub exact: bool,
}

/// What a scan for the nearest vectors found.
#[derive(Debug, Default)]
pub struct Nearest {
    /// The nearest documents, best first, with their cosine similarity.
    pub best: Vec<(f32, DocAddress)>,
    /// Documents with a vector (scoring at least the threshold, when there is one).
    pub matched: u64,
    /// Documents the filter admits, with a vector or not.
    pub admitted: u64,
    /// Whether `matched` is exact (an approximate search with a threshold counts every
    /// document with a vector instead).
    pub exact_count: bool,
}

/// The `limit` documents nearest the unit `query` among those `filter` admits (all when
/// `None`), counting those that score at least `threshold`. `exact`: scan every segment,
/// even one with an approximate index (the benchmark's baseline). With an approximate
/// index, a segment's counts are of its documents with a vector (the threshold unchecked)
/// and `exact_count` is false when a threshold was given.
pub(crate) fn nearest(
    searcher: &Searcher,
    cache: &VectorCache,
    fields: &Fields,
    filter: Option<&dyn Query>,
    wanted: Wanted<'_>,
) -> tantivy::Result<Nearest> {
    let Wanted {
        query,
        limit,
        threshold,
        exact,
    } = wanted;
    cache.retain(searcher);
    let weight = match filter {
        Some(filter) => Some(filter.weight(EnableScoring::disabled_from_searcher(searcher))?),
        None => None,
    };
    if limit == 0 {
        return Ok(Nearest::default());
    }
    let floor = threshold.unwrap_or(f32::NEG_INFINITY);
    // A min-heap of the best so far: (score, address), the worst on top.
    let mut best: BinaryHeap<Reverse<(Ordered, DocAddress)>> = BinaryHeap::new();
    let mut found = Nearest {
        exact_count: true,
        ..Nearest::default()
    };
    let mut offer = |score: f32, address: DocAddress| {
        if score < floor {
            return;
        }
        if best.len() < limit {
            best.push(Reverse((Ordered(score), address)));
        } else if best.peek().is_some_and(|w| w.0 .0 .0 < score) {
            best.pop();
            best.push(Reverse((Ordered(score), address)));
        }
    };
    for (ordinal, reader) in searcher.segment_readers().iter().enumerate() {
        let vectors = cache.get(reader, fields, query.len())?;
        let address = |doc| DocAddress::new(ordinal as u32, doc);
        // The documents the filter admits, alive.
        let admitted: Option<Vec<DocId>> = match &weight {
            Some(weight) => {
                let mut docs = weight.scorer(reader, 1.0)?;
                let mut admitted = Vec::new();
                let mut doc = docs.doc();
                while doc != TERMINATED {
                    if !reader.is_deleted(doc) {
                        admitted.push(doc);
                    }
                    doc = docs.advance();
                }
                Some(admitted)
            }
            None => None,
        };
        let alive = |doc: DocId| !reader.is_deleted(doc);
        let proposed = if exact {
            None
        } else {
            match &admitted {
                Some(admitted) => {
                    vectors.propose(query, limit, |doc| admitted.binary_search(&doc).is_ok())
                }
                None => vectors.propose(query, limit, alive),
            }
        };
        match proposed {
            Some(candidates) => {
                match (&admitted, reader.num_deleted_docs()) {
                    (None, 0) => {
                        found.admitted += u64::from(reader.max_doc());
                        found.matched += vectors.with_vector;
                    }
                    _ => {
                        let docs: Box<dyn Iterator<Item = DocId>> = match &admitted {
                            Some(admitted) => Box::new(admitted.iter().copied()),
                            None => Box::new((0..reader.max_doc()).filter(|d| alive(*d))),
                        };
                        for doc in docs {
                            found.admitted += 1;
                            found.matched += u64::from(vectors.has(doc));
                        }
                    }
                }
                if threshold.is_some() {
                    // Only the candidates were scored: those above the floor are a lower
                    // bound of the matches.
                    found.matched = 0;
                    found.exact_count = false;
                }
                for doc in candidates {
                    if let Some(score) = vectors.score(doc, query) {
                        if threshold.is_some() && score >= floor {
                            found.matched += 1;
                        }
                        offer(score, address(doc));
                    }
                }
            }
            None => {
                let mut visit = |doc: DocId| {
                    found.admitted += 1;
                    if let Some(score) = vectors.score(doc, query) {
                        if score >= floor {
                            found.matched += 1;
                        }
                        offer(score, address(doc));
                    }
                };
                match &admitted {
                    Some(admitted) => admitted.iter().for_each(|&doc| visit(doc)),
                    None => (0..reader.max_doc())
                        .filter(|d| alive(*d))
                        .for_each(&mut visit),
                }
            }
        }
    }
    let mut best: Vec<(f32, DocAddress)> = best
        .into_iter()
        .map(|Reverse((Ordered(score), address))| (score, address))
        .collect();
    best.sort_by(|a, b| b.0.total_cmp(&a.0));
    found.best = best;
    Ok(found)
}

/// f32 ordered totally (scores are finite).
#[derive(Clone, Copy, PartialEq)]
struct Ordered(f32);

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{SearchEngine, SegmentDoc};

    /// A search that began before a merge and ends after it does not make the cache forget
    /// the merged segment (which a newer search read, and whose saved index it would remove).
    #[test]
    fn an_older_searcher_does_not_forget_a_newer_ones_segments() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SearchEngine::new(dir.path().to_path_buf()).unwrap();
        let doc = |i: usize| SegmentDoc {
            segment_id: format!("s{i}"),
            media_id: "m".into(),
            start_seconds: 0.0,
            end_seconds: 1.0,
            text: "words".into(),
            labels: vec![],
            metadata: None,
            vector: Some(vec![1.0, 0.0]),
        };
        engine.apply("u1", &[doc(0)], &[]).unwrap();
        let handle = engine.handle("u1").unwrap();
        let old = handle.reader.searcher();
        engine.apply("u1", &[doc(1)], &[]).unwrap();
        engine.merge_settled().unwrap();
        let new = handle.reader.searcher();
        let ids = |s: &Searcher| -> Vec<SegmentId> {
            s.segment_readers().iter().map(|r| r.segment_id()).collect()
        };
        assert_ne!(ids(&old), ids(&new));
        let search = |s: &Searcher| {
            let wanted = Wanted {
                query: &[1.0, 0.0],
                limit: 5,
                threshold: None,
                exact: false,
            };
            nearest(s, &handle.vectors, &handle.fields, None, wanted).unwrap()
        };
        assert_eq!(search(&new).best.len(), 2);
        assert_eq!(search(&old).best.len(), 1);
        let cached: Vec<SegmentId> = handle.vectors.lock().keys().map(|k| k.0).collect();
        for id in ids(&new) {
            assert!(cached.contains(&id), "{id:?} forgotten");
        }
    }

    #[test]
    fn quantised_vectors_keep_their_direction() {
        let v = [3.0f32, -4.0, 0.0];
        let q = quantise(&v);
        let scale = f32::from_le_bytes([q[0], q[1], q[2], q[3]]);
        let back: Vec<f32> = q[4..].iter().map(|&b| b as i8 as f32 * scale).collect();
        for (a, b) in back.iter().zip([0.6, -0.8, 0.0]) {
            assert!((a - b).abs() < 0.01, "{back:?}");
        }
        assert_eq!(&quantise(&[0.0, 0.0])[..4], &0f32.to_le_bytes());
    }
}
