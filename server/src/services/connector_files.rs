//! The names of caption formats, as a connector's stored files carry them.

use videovector_api_spec::dto::connectors::CaptionFormat;

use crate::captions::Format;

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
