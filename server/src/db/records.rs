//! The records stored inside JSON columns: a connector's and a job's files, a delivery's
//! attempts, an index's embedder, a run's retrieval.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use videovector_api_spec::dto::search::SearchMode;

/// A file as connectors and jobs store it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredFile {
    pub url: String,
    pub media_id: String,
    pub index_id: String,
    pub format: String,
    #[serde(default = "pending")]
    pub status: String,
    #[serde(default)]
    pub segments: u64,
    #[serde(default)]
    pub error: Option<String>,
}

/// The status of a file no sync has reached yet.
pub fn pending() -> String {
    "pending".into()
}

/// An index's embedder as stored. Its dimensions are those of every vector in the index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum StoredEmbedder {
    /// The built-in static model (`embed::builtin`), by its model name.
    BuiltIn { model: String, dimensions: u32 },
    /// Vectors the client sends with each segment and each query.
    UserProvided { dimensions: u32 },
    /// An OpenAI-compatible embeddings endpoint (`embed::rest`); its API key, if any, is
    /// sealed in `indexes.embedder_secret`.
    Rest {
        url: String,
        model: String,
        dimensions: u32,
        batch_size: u32,
        timeout_seconds: u32,
        max_retries: u32,
    },
}

impl StoredEmbedder {
    pub fn dimensions(&self) -> usize {
        match self {
            StoredEmbedder::BuiltIn { dimensions, .. }
            | StoredEmbedder::UserProvided { dimensions }
            | StoredEmbedder::Rest { dimensions, .. } => *dimensions as usize,
        }
    }
}

/// One attempt as the delivery log stores it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredAttempt {
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

/// How a run retrieves its evidence (`runs.retrieval`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRetrieval {
    pub mode: SearchMode,
    /// The weight of meaning, for a hybrid retrieval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic_ratio: Option<f64>,
}
