//! Bodies of index search.

use poem_openapi::Object;

/// A ranked full-text search over one index.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchRequest {
    /// Natural-language query; terms are OR-ed and ranked by BM25.
    #[oai(validator(min_length = 1, max_length = 1000))]
    pub query: String,
    /// How many hits to return (1–100, default 10).
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    pub top_k: Option<u32>,
    /// Narrow the hits.
    pub filters: Option<SearchFilters>,
}

/// Filters every hit must pass.
#[derive(Object, Debug, Clone, Default)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchFilters {
    /// Only these media (each 1–256 characters, like a segment's `media_id`).
    #[oai(validator(max_items = 100, min_length = 1, max_length = 256))]
    pub media_ids: Option<Vec<String>>,
    /// Only segments carrying every one of these labels (each 1–200 characters, like a
    /// segment's labels).
    #[oai(validator(max_items = 20, min_length = 1, max_length = 200))]
    pub labels: Option<Vec<String>>,
    /// Only segments starting at or after this second.
    pub start_seconds_gte: Option<f64>,
    /// Only segments ending at or before this second.
    pub end_seconds_lte: Option<f64>,
}

/// A span of a hit's text that matched the query, in Unicode characters.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct Highlight {
    pub start: u32,
    pub end: u32,
}

/// One ranked hit.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchHit {
    pub segment_id: String,
    pub index_id: String,
    pub media_id: String,
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub text: String,
    pub labels: Vec<String>,
    pub metadata: Option<serde_json::Value>,
    /// BM25 score; higher is better. Comparable only within one response.
    pub score: f64,
    /// Where the query's terms occur in `text`.
    pub highlights: Vec<Highlight>,
}

/// Hits, best first.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
}

/// A ranked search across several indexes, paginated.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct CrossSearchRequest {
    /// Natural-language query; terms are OR-ed and ranked by BM25 within each index.
    #[oai(validator(min_length = 1, max_length = 1000))]
    pub query: String,
    /// The indexes to search (1–20 ids, each at most 64 characters).
    #[oai(validator(min_items = 1, max_items = 20, min_length = 1, max_length = 64))]
    pub index_ids: Vec<String>,
    /// Hits per page (1–100, default 10).
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    pub page_size: Option<u32>,
    /// Narrow the hits.
    pub filters: Option<SearchFilters>,
}

/// One page of a cross-index search.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchPage {
    /// Hits, best first. Scores come from each hit's own index.
    pub hits: Vec<SearchHit>,
    /// Pass to `GET /search/{page_token}` for the next page; absent on the last page.
    /// Opaque, bound to your organisation, and valid for 15 minutes.
    pub next_page_token: Option<String>,
}
