//! Search by meaning in a search copy. Each segment's vector is stored in its tantivy
//! document, normalised to unit length and quantised to int8 with one f32 scale (4 + d
//! bytes, against 4·d in the database), so vectors follow the text through the same change
//! log, commits, merges and rebuilds.
//!
//! A search scores segments by cosine similarity, exactly: for each tantivy segment (they
//! are immutable) the vectors are read once into a dense matrix, kept while the segment
//! lives, and every document the filter admits is scored against the query.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    sync::{Arc, Mutex},
};

use tantivy::{
    index::SegmentId,
    query::{EnableScoring, Query},
    schema::Value,
    DocAddress, DocId, DocSet, Searcher, SegmentReader, TantivyDocument, TERMINATED,
};

use super::engine::Fields;
use crate::db::vectors::quantise_i8;

/// `vector` normalised, as stored in a search document: scale (f32 LE), then int8s.
pub fn quantise(vector: &[f32]) -> Vec<u8> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    let unit: Vec<f32> = vector
        .iter()
        .map(|x| if norm > 0.0 { x / norm } else { 0.0 })
        .collect();
    let (scale, values) = quantise_i8(&unit);
    let mut out = Vec::with_capacity(4 + vector.len());
    out.extend(scale.to_le_bytes());
    out.extend(values);
    out
}

/// One tantivy segment's vectors, as a dense matrix (a zero scale: no vector).
pub struct SegmentVectors {
    dims: usize,
    scales: Vec<f32>,
    rows: Vec<i8>,
}

impl SegmentVectors {
    fn read(reader: &SegmentReader, fields: &Fields, dims: usize) -> tantivy::Result<Self> {
        let count = reader.max_doc() as usize;
        let mut scales = vec![0f32; count];
        let mut rows = vec![0i8; count * dims];
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
            for (slot, &b) in rows[at * dims..(at + 1) * dims].iter_mut().zip(&bytes[4..]) {
                *slot = b as i8;
            }
        }
        Ok(SegmentVectors { dims, scales, rows })
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

/// The matrices of an index's live tantivy segments, by segment id.
#[derive(Default)]
pub struct VectorCache {
    segments: Mutex<HashMap<(SegmentId, usize), Arc<SegmentVectors>>>,
}

impl VectorCache {
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
        Ok(read)
    }

    /// Forgets the matrices of segments `searcher` no longer holds (merged away).
    fn retain(&self, searcher: &Searcher) {
        let live: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        self.lock().retain(|(id, _), _| live.contains(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SegmentId, usize), Arc<SegmentVectors>>> {
        self.segments.lock().unwrap_or_else(|e| e.into_inner())
    }
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
}

/// The `limit` documents nearest the unit `query` among those `filter` admits (all when
/// `None`), counting those that score at least `threshold`.
pub(crate) fn nearest(
    searcher: &Searcher,
    cache: &VectorCache,
    fields: &Fields,
    query: &[f32],
    filter: Option<&dyn Query>,
    limit: usize,
    threshold: Option<f32>,
) -> tantivy::Result<Nearest> {
    cache.retain(searcher);
    let weight = match filter {
        Some(filter) => Some(filter.weight(EnableScoring::disabled_from_searcher(searcher))?),
        None => None,
    };
    if limit == 0 {
        return Ok(Nearest::default());
    }
    let threshold = threshold.unwrap_or(f32::NEG_INFINITY);
    // A min-heap of the best so far: (score, address), the worst on top.
    let mut best: BinaryHeap<Reverse<(Ordered, DocAddress)>> = BinaryHeap::new();
    let (mut matched, mut admitted) = (0u64, 0u64);
    let mut offer = |score: Option<f32>, address: DocAddress| {
        admitted += 1;
        let Some(score) = score.filter(|s| *s >= threshold) else {
            return;
        };
        matched += 1;
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
        match &weight {
            Some(weight) => {
                let mut docs = weight.scorer(reader, 1.0)?;
                let mut doc = docs.doc();
                while doc != TERMINATED {
                    if !reader.is_deleted(doc) {
                        offer(vectors.score(doc, query), address(doc));
                    }
                    doc = docs.advance();
                }
            }
            None => {
                for doc in 0..reader.max_doc() {
                    if !reader.is_deleted(doc) {
                        offer(vectors.score(doc, query), address(doc));
                    }
                }
            }
        }
    }
    let mut best: Vec<(f32, DocAddress)> = best
        .into_iter()
        .map(|Reverse((Ordered(score), address))| (score, address))
        .collect();
    best.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(Nearest {
        best,
        matched,
        admitted,
    })
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
