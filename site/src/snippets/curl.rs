//! The `curl` command of an operation's example: the full URL from `$VIDEOVECTOR_URL`, the
//! credential's header, the example's parameters and its body as pretty JSON in single
//! quotes (compact for a signed body, whose bytes the signature covers).

use serde_json::Value;
use videovector_api_spec::{contract::Operation, spec::BASE_PATH};

use super::{nested, Credential, Example, Nesting};

pub(super) fn render(operation: &Operation, example: &Example) -> String {
    let mut url = format!("$VIDEOVECTOR_URL{BASE_PATH}{}", operation.rule.path);
    for (name, value) in &example.path {
        url = url.replace(&format!("{{{name}}}"), &encode(&plain(value)));
    }
    let query: Vec<String> = example
        .query
        .iter()
        .map(|(name, value, _)| format!("{}={}", encode(name), encode(&plain(value))))
        .collect();
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    let method = operation.rule.method.as_str();
    let mut lines = vec![if method == "GET" {
        format!(r#"curl -fsS "{url}""#)
    } else {
        format!(r#"curl -fsS -X {method} "{url}""#)
    }];
    match example.credential {
        Credential::ApiKey => lines.push(r#"-H "X-API-Key: $VIDEOVECTOR_API_KEY""#.into()),
        Credential::Token => lines.push(r#"-H "Authorization: Bearer $VIDEOVECTOR_TOKEN""#.into()),
        Credential::None => {}
    }
    for (name, value) in &example.headers {
        lines.push(format!(r#"-H "{name}: {}""#, plain(value)));
    }
    if let Some((body, _)) = &example.body {
        let signed = operation.extensions.contains_key("x-signed-body");
        let text = if signed {
            serde_json::to_string(body).expect("JSON serializes")
        } else {
            pretty(body, 0)
        };
        assert!(
            !text.contains('\''),
            "{}: a curl example's body is single-quoted, so it cannot hold `'`",
            operation.rule.operation_id
        );
        lines.push(r#"-H "Content-Type: application/json""#.into());
        lines.push(format!("-d '{text}'"));
    }
    let mut command = lines.join(" \\\n  ");
    command.push('\n');
    command
}

/// JSON indented under the command (its lines two spaces in), with a list of plain values
/// on one line.
fn pretty(value: &Value, depth: usize) -> String {
    const JSON: Nesting = Nesting {
        indent: "  ",
        offset: 1,
        trailing_comma: false,
        scalar: Value::to_string,
    };
    nested(value, depth, &JSON)
}

/// A parameter's value as text (a string without its quotes).
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes what a URL path segment or query value cannot hold as it is.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn bodies_are_indented_json_with_plain_lists_on_one_line() {
        let body = serde_json::json!({"a": [1, "x"], "b": [{"c": true}], "d": {}});
        let text = super::pretty(&body, 0);
        assert_eq!(
            text,
            "{\n    \"a\": [1, \"x\"],\n    \"b\": [\n      {\n        \"c\": true\n      }\n    ],\n    \"d\": {}\n  }"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, body);
    }
}
