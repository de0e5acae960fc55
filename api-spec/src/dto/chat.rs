//! Bodies of `POST /chat/completions`.

use poem_openapi::{Enum, Object};

use super::search::SearchMode;

/// Who said a chat message.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

/// One message of the conversation.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ChatMessage {
    pub role: ChatRole,
    #[oai(validator(min_length = 1, max_length = 8000))]
    pub content: String,
}

/// A question answered from the evidence in some indexes.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ChatRequest {
    /// The conversation; the last `user` message is what gets answered.
    #[oai(validator(min_items = 1, max_items = 50))]
    pub messages: Vec<ChatMessage>,
    /// The indexes to retrieve evidence from (1–20 ids, each at most 64 characters).
    #[oai(validator(min_items = 1, max_items = 20, min_length = 1, max_length = 64))]
    pub index_ids: Vec<String>,
    /// How many pieces of evidence to retrieve (1–20, default 5).
    #[oai(validator(minimum(value = "1"), maximum(value = "20")))]
    pub top_k: Option<u32>,
    /// How evidence is retrieved: `lexical` (the default), `semantic` or `hybrid` (these
    /// need every index to have a built-in embedder).
    pub mode: Option<SearchMode>,
    /// In a hybrid retrieval, the weight of meaning against words, 0 to 1 (default 0.8).
    #[oai(validator(minimum(value = "0"), maximum(value = "1")))]
    pub semantic_ratio: Option<f64>,
}

/// How an answer was produced.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum AnswerMode {
    /// Quoted from the evidence: no language model is configured.
    Extractive,
    /// Written by the configured language model from the evidence.
    Generative,
}

/// A segment an answer rests on.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct Citation {
    /// The marker used in the answer, e.g. `1` for `[1]`.
    pub marker: u32,
    pub segment_id: String,
    pub index_id: String,
    pub media_id: String,
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub text: String,
    pub score: f64,
}

/// An answer grounded in retrieved evidence.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ChatCompletion {
    pub id: String,
    /// The answer, with `[n]` markers pointing at `citations`.
    pub answer: String,
    pub mode: AnswerMode,
    /// Says how the answer was made (and, when extractive, that no model is configured).
    pub notice: String,
    pub citations: Vec<Citation>,
}
