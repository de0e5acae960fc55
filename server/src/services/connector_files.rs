//! A connector's files as connectors and their jobs store them (JSON in a text column), and
//! the names of caption formats.

use serde::{Deserialize, Serialize};
use videovector_api_spec::dto::connectors::CaptionFormat;

use crate::captions::Format;

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

pub fn format_name(format: CaptionFormat) -> &'static str {
    match format {
        CaptionFormat::Webvtt => "webvtt",
        CaptionFormat::Srt => "srt",
        CaptionFormat::Json => "json",
    }
}

pub fn format_of(name: &str) -> (CaptionFormat, Format) {
    match name {
        "srt" => (CaptionFormat::Srt, Format::Srt),
        "json" => (CaptionFormat::Json, Format::Json),
        _ => (CaptionFormat::Webvtt, Format::WebVtt),
    }
}
