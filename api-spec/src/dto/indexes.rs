//! Bodies of the `/indexes` operations and segment ingestion.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use super::text::NonBlank;

/// The longest segment text, in characters (the `text` field's `maxLength`).
pub const MAX_SEGMENT_TEXT_CHARS: usize = 20_000;
/// The most dimensions a user-provided vector may have.
pub const MAX_VECTOR_DIMENSIONS: usize = 4096;

/// Where an index's vectors come from.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum EmbedderSource {
    /// The static model shipped with the server (128 dimensions, no set-up).
    BuiltIn,
    /// Each segment carries its own `vector`, and a search by meaning carries the query's.
    UserProvided,
    /// An OpenAI-compatible embeddings endpoint you run or subscribe to (`url`, `model`,
    /// `dimensions`, and an `api_key` if it needs one), called for every ingested segment
    /// and every query by meaning.
    Rest,
    /// No vectors: the index is searched by words only.
    None,
}

/// How an index turns segments and queries into vectors, for search by meaning.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct EmbedderSettings {
    pub source: EmbedderSource,
    /// The vectors' dimensions, for `user_provided` and `rest` (required there; 1–4096).
    #[oai(validator(minimum(value = "1"), maximum(value = "4096")))]
    pub dimensions: Option<u32>,
    /// `rest`: the `http` or `https` endpoint, such as
    /// `https://models.example.com/v1/embeddings`. It is sent `POST {"model", "input":
    /// [texts]}` and answers `{"data": [{"embedding": [...]}]}`.
    /// Private and loopback addresses are refused unless the server allows them
    /// (`VIDEOVECTOR_ALLOW_PRIVATE_TARGETS`).
    #[oai(validator(min_length = 8, max_length = 2000))]
    pub url: Option<String>,
    /// `rest`: the model name sent with every call.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub model: Option<String>,
    /// `rest`: sent as `Authorization: Bearer …`. Stored encrypted, never returned.
    #[oai(validator(min_length = 1, max_length = 4096))]
    pub api_key: Option<String>,
    /// `rest`: texts per call (1–2048, default 64).
    #[oai(validator(minimum(value = "1"), maximum(value = "2048")))]
    pub batch_size: Option<u32>,
    /// `rest`: how long one call may take, in seconds (1–300, default 30).
    #[oai(validator(minimum(value = "1"), maximum(value = "300")))]
    pub timeout_seconds: Option<u32>,
    /// `rest`: how many times a call that failed in a way that may pass (no answer, 429,
    /// 5xx) is tried again, with exponential backoff and jitter (0–10, default 3).
    #[oai(validator(minimum(value = "0"), maximum(value = "10")))]
    pub max_retries: Option<u32>,
}

/// An index's embedder.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct Embedder {
    pub source: EmbedderSource,
    /// The model's name (built-in and `rest`).
    pub model: Option<String>,
    /// Dimensions of every vector in the index.
    pub dimensions: u32,
    /// `rest`: the endpoint.
    pub url: Option<String>,
    /// `rest`: texts per call.
    pub batch_size: Option<u32>,
    /// `rest`: how long one call may take, in seconds.
    pub timeout_seconds: Option<u32>,
    /// `rest`: retries of a call that failed in a way that may pass.
    pub max_retries: Option<u32>,
    /// `rest`: whether an API key is set (it is never returned).
    pub has_api_key: Option<bool>,
}

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
    /// How segments and queries become vectors; the built-in model when absent.
    pub embedder: Option<EmbedderSettings>,
}

/// Changes to an index; absent fields stay as they are.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct IndexUpdate {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: Option<NonBlank>,
    #[oai(validator(max_length = 2000))]
    pub description: Option<String>,
    /// A new embedder. The index's segments are embedded again in the background
    /// (`reembedding` shows the progress); searches keep the current embedder until every
    /// segment has its new vector, then switch at once. An index without segments, and a
    /// switch to `none`, switch at once; `user_provided` is taken only by an index without
    /// segments. The same settings with another `api_key` replace the key alone. 409
    /// `reembedding_in_progress` while another change is under way.
    pub embedder: Option<EmbedderSettings>,
}

/// Where a change of embedder stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ReembeddingStatus {
    /// Waiting for a worker.
    Queued,
    /// Segments are being embedded again.
    Running,
    /// Every segment has its new vector, and the index searches with the new embedder.
    Succeeded,
    /// It stopped (`error` says why); the index kept its embedder.
    Failed,
}

/// The latest change of an index's embedder.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct Reembedding {
    pub id: String,
    pub status: ReembeddingStatus,
    /// The embedder the index is moving to, while it moves.
    pub target: Option<Embedder>,
    /// Segments embedded again so far.
    pub done: u64,
    /// Segments to embed again (segments ingested meanwhile are added).
    pub total: u64,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
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
    /// How segments and queries become vectors; absent: searched by words only.
    pub embedder: Option<Embedder>,
    /// The latest change of embedder, if there was one.
    pub reembedding: Option<Reembedding>,
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
    /// The segment's vector, for an index whose embedder is `user_provided` (required
    /// there, refused elsewhere): as many finite numbers as the embedder's dimensions.
    #[oai(validator(max_items = 4096))]
    pub vector: Option<Vec<f32>>,
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
