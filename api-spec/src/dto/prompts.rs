//! Bodies of the `/prompts` operations.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

use super::text::NonBlank;

/// A new prompt: a named retrieval query template with declared variables, and
/// instructions for the answer.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct PromptCreate {
    /// Unique within the organisation.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: NonBlank,
    #[oai(validator(max_length = 2000))]
    pub description: Option<String>,
    /// The retrieval query, with `{{variable}}` placeholders, e.g. `reports about {{topic}}`.
    #[oai(validator(min_length = 1, max_length = 2000))]
    pub query_template: String,
    /// Instructions for the answer (used by a configured language model; kept with results).
    #[oai(default, validator(max_length = 8000))]
    pub instructions: String,
    /// Every variable the template uses (`a-z`, `0-9`, `_`); runs must give each one.
    #[oai(default, validator(max_items = 20, pattern = r"^[a-z0-9_]{1,64}$"))]
    pub variables: Vec<String>,
}

/// Changes to a prompt; absent fields stay as they are. Queued runs keep the query they
/// were created with.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct PromptUpdate {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: Option<NonBlank>,
    #[oai(validator(max_length = 2000))]
    pub description: Option<String>,
    #[oai(validator(min_length = 1, max_length = 2000))]
    pub query_template: Option<String>,
    #[oai(validator(max_length = 8000))]
    pub instructions: Option<String>,
    #[oai(validator(max_items = 20, pattern = r"^[a-z0-9_]{1,64}$"))]
    pub variables: Option<Vec<String>>,
}

/// A prompt.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct Prompt {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub query_template: String,
    pub instructions: String,
    pub variables: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One page of prompts.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct PromptPage {
    pub items: Vec<Prompt>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
