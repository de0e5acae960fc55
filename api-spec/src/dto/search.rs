//! Bodies of index search.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};

/// How a search ranks. (Also kept in page tokens and with runs, through serde.)
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// By words: terms OR-ed, ranked by BM25.
    #[default]
    Lexical,
    /// By meaning: cosine similarity of the query's vector and each segment's.
    Semantic,
    /// Both: `semantic_ratio` of the cosine, plus the rest of the share of the query the
    /// words matched (the BM25 score over that of a match of every term).
    Hybrid,
}

/// Which side of a search found a hit.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum SearchSide {
    Lexical,
    Semantic,
}

/// How hits are grouped.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum GroupBy {
    /// One hit per media: its best segment, with `media_matches`, the number of that
    /// media's segments among the search's best 1,000 matches.
    Media,
}

/// Whether a total is exact.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum TotalRelation {
    /// Exactly `value` segments matched.
    Eq,
    /// At least `value` matched: counting stops at 10,000, and a `min_score` search counts
    /// only the candidates it scored.
    Gte,
}

/// How many segments matched the search (not only those returned).
#[derive(Object, Debug, Clone, Copy, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchTotal {
    pub value: u64,
    pub relation: TotalRelation,
}

/// A ranked search over one index.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchRequest {
    /// Natural-language query.
    #[oai(validator(min_length = 1, max_length = 1000))]
    pub query: String,
    /// How many hits to return (1–100, default 10).
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    pub top_k: Option<u32>,
    /// Narrow the hits (on every side of the search).
    pub filters: Option<SearchFilters>,
    /// `lexical` (the default), `semantic` or `hybrid`. Semantic and hybrid need an index
    /// with an embedder (422 `no_embedder` otherwise).
    pub mode: Option<SearchMode>,
    /// Leave out hits scoring below this (on the mode's scale: BM25, cosine, or the hybrid
    /// sum). Fewer than `top_k` hits may come back.
    #[oai(validator(minimum(value = "-1000000"), maximum(value = "1000000")))]
    pub min_score: Option<f64>,
    /// In a hybrid search, the weight of meaning against words, 0 to 1 (default 0.8).
    #[oai(validator(minimum(value = "0"), maximum(value = "1")))]
    pub semantic_ratio: Option<f64>,
    /// The query's own vector, for an index whose embedder is `user_provided` (required
    /// there for semantic and hybrid searches): as many finite numbers as its dimensions.
    #[oai(validator(max_items = 4096))]
    pub vector: Option<Vec<f32>>,
    /// `media`: one hit per media (its best segment), `top_k` media at most.
    pub group_by: Option<GroupBy>,
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
    /// Higher is better, comparable only within one response: BM25 for a lexical search,
    /// cosine similarity (-1 to 1) for a semantic one, their weighted sum for a hybrid one.
    pub score: f64,
    /// Where the query's terms occur in `text`.
    pub highlights: Vec<Highlight>,
    /// The sides of the search that found it (among each side's best).
    pub found_by: Vec<SearchSide>,
    /// With `group_by: media`: how many of this media's segments are among the search's
    /// best 1,000 matches (this hit is the best of them).
    pub media_matches: Option<u32>,
}

/// Hits, best first.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// How many segments matched: for a lexical search, those holding a query term; for a
    /// semantic or hybrid one, every segment with a vector (or a query term); with
    /// `min_score`, those scoring at least that. Always under the filters.
    pub total: SearchTotal,
}

/// A ranked search across several indexes, paginated.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct CrossSearchRequest {
    /// Natural-language query.
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
    /// `lexical` (the default), `semantic` or `hybrid`; semantic and hybrid need every
    /// index to have an embedder. Lexical scores (BM25) compare poorly across indexes;
    /// cosine and hybrid scores compare well.
    pub mode: Option<SearchMode>,
    /// Leave out hits scoring below this, on the mode's scale.
    #[oai(validator(minimum(value = "-1000000"), maximum(value = "1000000")))]
    pub min_score: Option<f64>,
    /// In a hybrid search, the weight of meaning against words, 0 to 1 (default 0.8).
    #[oai(validator(minimum(value = "0"), maximum(value = "1")))]
    pub semantic_ratio: Option<f64>,
    /// The query's own vector, for indexes whose embedder is `user_provided` (then every
    /// index searched by meaning must be one, of these dimensions).
    #[oai(validator(max_items = 4096))]
    pub vector: Option<Vec<f32>>,
    /// `media`: one hit per media of each index (its best segment).
    pub group_by: Option<GroupBy>,
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
    /// How many segments matched, in all the indexes (see `SearchResults.total`).
    pub total: SearchTotal,
}
