//! Full-text search: an embedded tantivy index per VideoVector index (so BM25 statistics
//! come only from the index being searched), derived from the segments in the database and
//! kept current by the [`indexer`] from the segment change sequence.

pub mod engine;
pub mod indexer;
pub mod query;
pub mod schema;
pub mod vectors;

pub use engine::{SearchEngine, SegmentDoc};
pub use indexer::Indexer;
