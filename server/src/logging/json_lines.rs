//! The JSON log line, written by hand: one object per line with `timestamp` (RFC 3339,
//! microseconds), `level`, the event's fields at the top level (`message` among them),
//! `target`, and the current span as `span` (its fields and `name`). The shape
//! tracing-subscriber's JSON format gives with `flatten_event` and the current span, at a
//! fraction of the cost: that one builds a `serde_json::Value` per line and formats every
//! field through serde, about 21,000 instructions for an access line (counted with the
//! bench's `instructions` scenario), where a request on the API-key path is about 240,000.

use std::fmt::{self, Write};

use tracing::{field::Field, Event, Subscriber};
use tracing_subscriber::{
    field::{RecordFields, Visit},
    fmt::{format::Writer, FmtContext, FormatEvent, FormatFields, FormattedFields},
    registry::LookupSpan,
};

/// Formats events as JSON lines.
pub struct JsonLines;

/// Formats a span's fields as the inside of a JSON object (`"k":v,…`), kept with the span.
pub struct JsonFields;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::with_capacity(320);
        line.push_str("{\"timestamp\":\"");
        line.push_str(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        line.push_str("\",\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push('"');
        event.record(&mut Fields {
            out: &mut line,
            first: false,
        });
        line.push_str(",\"target\":");
        string(&mut line, event.metadata().target());
        if let Some(span) = ctx.lookup_current() {
            line.push_str(",\"span\":{");
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                if !fields.fields.is_empty() {
                    line.push_str(&fields.fields);
                    line.push(',');
                }
            }
            line.push_str("\"name\":");
            string(&mut line, span.name());
            line.push('}');
        }
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut out = String::new();
        fields.record(&mut Fields {
            out: &mut out,
            first: true,
        });
        writer.write_str(&out)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        fields.record(&mut Fields {
            out: &mut current.fields,
            first,
        });
        Ok(())
    }
}

/// Writes each field as `,"name":value` (no comma before the first when `first`).
struct Fields<'a> {
    out: &'a mut String,
    first: bool,
}

impl Fields<'_> {
    fn name(&mut self, field: &Field) {
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
        string(self.out, field.name());
        self.out.push(':');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        string(self.out, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.name(field);
        if value.is_finite() {
            let _ = write!(self.out, "{value}");
        } else {
            string(self.out, &value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.name(field);
        self.out.push('"');
        let _ = write!(Escaped(self.out), "{value:?}");
        self.out.push('"');
    }
}

/// `value` as a JSON string.
fn string(out: &mut String, value: &str) {
    out.push('"');
    let _ = Escaped(out).write_str(value);
    out.push('"');
}

/// Writes what it is given JSON-escaped (inside a string's quotes).
struct Escaped<'a>(&'a mut String);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        if !s.bytes().any(needs) {
            self.0.push_str(s);
            return Ok(());
        }
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn lines(log: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .event_format(JsonLines)
            .fmt_fields(JsonFields)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn a_line_is_one_json_object_with_the_event_and_its_span() {
        let hostile = "quote\" backslash\\ newline\n tab\t bell\u{7} ünï";
        let found = lines(|| {
            let span = tracing::info_span!("request", request_id = "req_1", path = %"/a b");
            span.record("path", "/c");
            let _in = span.enter();
            tracing::info!(
                target: "videovector::access",
                status = 201u16,
                duration_us = 1843u64,
                signed = -4i64,
                ok = true,
                ratio = 0.5f64,
                infinite = f64::INFINITY,
                text = hostile,
                shown = %hostile,
                "answered"
            );
        });
        assert_eq!(found.len(), 1);
        let line = &found[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "videovector::access");
        assert_eq!(line["message"], "answered");
        assert_eq!(line["status"], 201);
        assert_eq!(line["duration_us"], 1843);
        assert_eq!(line["signed"], -4);
        assert_eq!(line["ok"], true);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["infinite"], "inf");
        assert_eq!(line["text"], hostile);
        assert_eq!(line["shown"], hostile);
        assert_eq!(line["span"]["name"], "request");
        assert_eq!(line["span"]["request_id"], "req_1");
        assert!(chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn outside_a_span_there_is_no_span() {
        let found = lines(|| tracing::warn!(count = 3u64, "alone"));
        assert_eq!(found[0]["level"], "WARN");
        assert_eq!(found[0]["count"], 3);
        assert!(found[0].get("span").is_none());
    }
}
