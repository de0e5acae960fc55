//! Bodies of the `/indexes` operations and segment ingestion.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

use super::text::NonBlank;

/// The longest segment text, in characters (the `text` field's `maxLength`).
pub const MAX_SEGMENT_TEXT_CHARS: usize = 20_000;

/// A new index.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct IndexCreate {
    /// A caller-chosen id such as `idx_archive` (`idx_` then 1–60 of `a-z`, `0-9`, `_`, `-`).
    /// Omit it and the server picks one.
    #[oai(validator(max_length = 64, pattern = r"^idx_[a-z0-9_-]{1,60}$"))]
    pub id: Option<String>,
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: NonBlank,
    #[oai(validator(max_length = 2000))]
    pub description: Option<String>,
}

/// Changes to an index; absent fields stay as they are.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct IndexUpdate {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: Option<NonBlank>,
    #[oai(validator(max_length = 2000))]
    pub description: Option<String>,
}

/// An index of timed media segments.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct Index {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Segments stored in the index.
    pub segment_count: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One page of indexes.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct IndexPage {
    pub items: Vec<Index>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A timed segment of media evidence: a transcript line, a caption, a detected label.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SegmentInput {
    /// The media the segment belongs to.
    #[oai(validator(min_length = 1, max_length = 256))]
    pub media_id: NonBlank,
    /// Start, in seconds from the start of the media.
    #[oai(validator(minimum(value = "0")))]
    pub start_seconds: f64,
    /// End, in seconds; not before `start_seconds` (422 `invalid_segments` otherwise).
    #[oai(validator(minimum(value = "0")))]
    pub end_seconds: f64,
    /// The searchable text.
    #[oai(validator(min_length = 1, max_length = 20000))]
    pub text: NonBlank,
    /// Labels, filterable exactly; each 1–200 characters.
    #[oai(default, validator(max_items = 64, min_length = 1, max_length = 200))]
    pub labels: Vec<String>,
    /// Free-form JSON object kept with the segment and returned with hits.
    pub metadata: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// A batch of segments to ingest.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SegmentBatch {
    /// 1 to 1,000 segments.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub segments: Vec<SegmentInput>,
    /// Answer only once the segments are searchable (otherwise within about a second).
    #[oai(default)]
    pub wait: bool,
}

/// What an ingest stored.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SegmentBatchResult {
    pub index_id: String,
    /// Ids of the new segments, in request order.
    pub segment_ids: Vec<String>,
    /// Whether the segments were searchable when this response was sent.
    pub searchable: bool,
}
