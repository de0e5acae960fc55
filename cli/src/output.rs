//! How `vvctl` prints answers: JSON (the default, the answer's body as the spec declares
//! it), or a table for a list's items or an object's fields. Problems go to the error
//! stream as `STATUS code: detail (request req_…)` followed by the problem's JSON.

use std::{io::Write, sync::Mutex};

use serde_json::Value;
use videovector_client::{Error, ResponseValue};

/// The output format (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

/// Where answers and problems are written.
pub struct Output {
    pub format: Format,
    out: Mutex<Box<dyn Write + Send>>,
    err: Mutex<Box<dyn Write + Send>>,
}

impl Output {
    pub fn new(format: Format, out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Output {
        Output {
            format,
            out: Mutex::new(out),
            err: Mutex::new(err),
        }
    }

    /// Prints an answer's body.
    pub fn answer(&self, value: &Value) {
        let text = match self.format {
            Format::Json => serde_json::to_string_pretty(value).unwrap_or_default(),
            Format::Table => table(value),
        };
        let mut out = self.out.lock().unwrap();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// Prints a line on the error stream.
    pub fn problem_line(&self, line: &str) {
        let mut err = self.err.lock().unwrap();
        let _ = writeln!(err, "{line}");
        let _ = err.flush();
    }

    /// Prints a failed call: the problem's summary and body, or the failure.
    pub fn failure<T: serde::Serialize + std::fmt::Debug>(&self, error: &Error<T>) {
        match error {
            Error::ErrorResponse(answer) => {
                let body = serde_json::to_value(answer.as_ref()).unwrap_or(Value::Null);
                let text = |key: &str| body[key].as_str().unwrap_or("").to_string();
                let request = answer
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(|id| format!(" (request {id})"))
                    .unwrap_or_default();
                self.problem_line(&format!(
                    "{} {}: {}{request}",
                    answer.status().as_u16(),
                    text("code"),
                    text("detail")
                ));
                self.problem_line(&serde_json::to_string_pretty(&body).unwrap_or_default());
            }
            other => self.problem_line(&format!("error: {other}")),
        }
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// A list's items as rows (their scalar fields as columns), or an object's scalar fields
/// as `field  value` lines.
pub fn table(value: &Value) -> String {
    let rows: Vec<&serde_json::Map<String, Value>> = match value.get("items").or(value.get("hits"))
    {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_object).collect(),
        _ => {
            let Some(object) = value.as_object() else {
                return scalar(value).unwrap_or_else(|| value.to_string());
            };
            let width = object.keys().map(String::len).max().unwrap_or(0);
            return object
                .iter()
                .filter_map(|(k, v)| scalar(v).map(|v| format!("{k:width$}  {v}")))
                .collect::<Vec<_>>()
                .join("\n");
        }
    };
    let mut columns: Vec<String> = Vec::new();
    for row in &rows {
        for (key, value) in row.iter() {
            if scalar(value).is_some() && !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row.get(c).and_then(scalar).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: &[String]| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut lines = vec![line(
        &columns.iter().map(|c| c.to_uppercase()).collect::<Vec<_>>(),
    )];
    lines.extend(cells.iter().map(|r| line(r)));
    if let Some(Value::String(next)) = value.get("next_cursor") {
        lines.push(format!("(more: --cursor {next})"));
    }
    lines.join("\n")
}

/// The generated CLI's output hooks, over [`Output`].
pub struct Printer(pub Output);

impl crate::generated::CliConfig for Printer {
    fn success_item<T>(&self, value: &ResponseValue<T>)
    where
        T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
    {
        self.0
            .answer(&serde_json::to_value(value.as_ref()).unwrap_or(Value::Null));
    }

    fn success_no_item(&self, _: &ResponseValue<()>) {}

    fn error<T>(&self, value: &Error<T>)
    where
        T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
    {
        self.0.failure(value);
    }

    fn list_start<T>(&self)
    where
        T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
    {
    }

    fn list_item<T>(&self, value: &T)
    where
        T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
    {
        self.0
            .answer(&serde_json::to_value(value).unwrap_or(Value::Null));
    }

    fn list_end_success<T>(&self)
    where
        T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
    {
    }

    fn list_end_error<T>(&self, value: &Error<T>)
    where
        T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
    {
        self.0.failure(value);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_list_is_a_table_of_its_items_scalar_fields() {
        let page = json!({"items": [
            {"id": "idx_1", "name": "News", "segment_count": 3, "embedder": {"x": 1}},
            {"id": "idx_22", "name": "Sport", "segment_count": 12}
        ], "next_cursor": "abc"});
        assert_eq!(
            super::table(&page),
            "ID      NAME   SEGMENT_COUNT\nidx_1   News   3\nidx_22  Sport  12\n(more: --cursor abc)"
        );
        assert_eq!(super::table(&json!({"id": "a", "n": 1})), "id  a\nn   1");
    }
}
