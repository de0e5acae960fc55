//! Bodies of the `/runs` operations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use super::{
    chat::{AnswerMode, Citation},
    search::SearchMode,
};

/// Execute a prompt against an index.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct RunCreate {
    pub prompt_id: String,
    pub index_id: String,
    /// A value for every variable the prompt declares (at most 20), and no others; each
    /// value at most 1,000 characters.
    #[oai(default, validator(max_properties = 20, max_length = 1000))]
    pub variables: BTreeMap<String, String>,
    /// How much evidence to retrieve (1–20, default 5).
    #[oai(validator(minimum(value = "1"), maximum(value = "20")))]
    pub top_k: Option<u32>,
    /// How evidence is retrieved: `lexical` (the default), `semantic` or `hybrid` (these
    /// need the index to have a built-in embedder).
    pub mode: Option<SearchMode>,
    /// In a hybrid retrieval, the weight of meaning against words, 0 to 1 (default 0.8).
    #[oai(validator(minimum(value = "0"), maximum(value = "1")))]
    pub semantic_ratio: Option<f64>,
}

/// Where a run stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// What a run produced.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct RunResult {
    pub answer: String,
    pub mode: AnswerMode,
    pub notice: String,
    /// The evidence, best first.
    pub citations: Vec<Citation>,
}

/// A run of a prompt.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct Run {
    pub id: String,
    pub prompt_id: String,
    pub index_id: String,
    pub variables: BTreeMap<String, String>,
    pub status: RunStatus,
    /// 1 for a first run; a retry is a new run with the next attempt number.
    pub attempt: u32,
    /// The run this one retries.
    pub retry_of: Option<String>,
    /// The retrieval query, rendered from the prompt when the run was created.
    pub query: String,
    pub instructions: String,
    pub top_k: u32,
    /// How evidence is retrieved.
    pub mode: SearchMode,
    /// The weight of meaning against words, for a hybrid retrieval.
    pub semantic_ratio: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Execution time, from start to finish.
    pub duration_ms: Option<u64>,
    pub result: Option<RunResult>,
    /// Why the run failed.
    pub error: Option<String>,
}

/// One page of runs.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct RunPage {
    pub items: Vec<Run>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
