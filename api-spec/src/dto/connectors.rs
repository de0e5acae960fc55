//! Bodies of the `/connectors` and `/jobs` operations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use super::text::NonBlank;

/// What a connector reads from.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// Caption files fetched over HTTP(S).
    Http,
}

/// A caption file's format.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum CaptionFormat {
    Webvtt,
    Srt,
    /// `[{"start_seconds", "end_seconds", "text", "labels"?}]` or `{"segments": [...]}`.
    Json,
}

/// One caption file and where its cues go.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct ConnectorFile {
    /// `http` or `https` URL of the file.
    #[oai(validator(min_length = 8, max_length = 2000))]
    pub url: String,
    /// The media the cues belong to.
    #[oai(validator(min_length = 1, max_length = 256))]
    pub media_id: NonBlank,
    /// The index the cues are ingested into.
    pub index_id: String,
    /// The format; inferred from the URL's extension (`.vtt`, `.srt`, `.json`) when absent.
    pub format: Option<CaptionFormat>,
}

/// A new connector.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ConnectorCreate {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: NonBlank,
    pub kind: ConnectorKind,
    /// 1 to 500 files.
    #[oai(validator(min_items = 1, max_items = 500))]
    pub files: Vec<ConnectorFile>,
    /// Request headers sent with every fetch (e.g. `Authorization`). Their values are
    /// secrets: encrypted at rest, never returned, and sent only to the origins
    /// (`scheme://host:port`) of the files they were given with.
    #[oai(default)]
    pub headers: BTreeMap<String, String>,
}

/// Changes to a connector; absent fields stay as they are. `headers`, when given, replaces
/// every header.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ConnectorUpdate {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: Option<NonBlank>,
    #[oai(validator(min_items = 1, max_items = 500))]
    pub files: Option<Vec<ConnectorFile>>,
    pub headers: Option<BTreeMap<String, String>>,
}

/// A connector. Header values are masked.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct Connector {
    pub id: String,
    pub name: String,
    pub kind: ConnectorKind,
    pub files: Vec<ConnectorFile>,
    /// Header names, each with the value `********`.
    pub headers: BTreeMap<String, String>,
    /// True when the stored header values cannot be opened with this server's secrets
    /// keys (they were sealed under a key it is not given): `headers` is then empty and
    /// syncs fail until the headers are set again or cleared (`PATCH` with `headers`).
    pub headers_unreadable: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One page of connectors.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ConnectorPage {
    pub items: Vec<Connector>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Where a job stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    /// Every file was processed; some may have failed (see `files`).
    Succeeded,
    /// The job could not be carried out, or every file failed.
    Failed,
    Cancelled,
}

/// Where one file of a job stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum JobFileStatus {
    Pending,
    Succeeded,
    Failed,
}

/// One file of a job.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct JobFile {
    pub url: String,
    pub media_id: String,
    pub index_id: String,
    pub status: JobFileStatus,
    /// Segments ingested from this file.
    pub segments: u64,
    /// Why the file failed.
    pub error: Option<String>,
}

/// Counts of a job's progress.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct JobProgress {
    pub files_total: u64,
    pub files_done: u64,
    pub files_failed: u64,
    pub segments_ingested: u64,
}

/// An ingestion job.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct Job {
    pub id: String,
    pub connector_id: String,
    pub status: JobStatus,
    pub attempt: u32,
    /// The job this one retries.
    pub retry_of: Option<String>,
    pub progress: JobProgress,
    pub files: Vec<JobFile>,
    /// Why the job failed as a whole.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One page of jobs.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct JobPage {
    pub items: Vec<Job>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
