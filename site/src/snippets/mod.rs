//! Each operation's example request as a program in three languages: a `curl` command, a
//! Python program on the generated SDK and a Rust program on the generated client, all
//! written from the example values the contract declares (see
//! `videovector_api_spec::examples`). The reference shows them in tabs; codegen compiles
//! the Rust ones into `videovector-snippets`; `.ci/snippets` runs all three against a live
//! server. Every program reads the server's root URL from `VIDEOVECTOR_URL` and its
//! credential from `VIDEOVECTOR_API_KEY` or `VIDEOVECTOR_TOKEN`.

mod curl;
mod python;
mod rust;

use serde_json::Value;
use videovector_api_spec::contract::{Contract, Operation};

pub use rust::snippets_program;

/// The languages every operation's example is shown in, in tab order: `(id, label)`.
pub const LANGUAGES: &[(&str, &str)] = &[("curl", "curl"), ("python", "Python"), ("rust", "Rust")];

/// One operation's example as programs.
pub struct Snippets {
    pub curl: String,
    pub python: String,
    pub rust: String,
    /// The success answer's status and example body, when the contract declares one.
    pub answer: Option<(String, Value)>,
}

impl Snippets {
    /// The program in the language `id` (one of [`LANGUAGES`]).
    pub fn program(&self, id: &str) -> &str {
        match id {
            "curl" => &self.curl,
            "python" => &self.python,
            _ => &self.rust,
        }
    }
}

/// The credential an operation's example sends: an API key where the operation takes one
/// (what a service uses), else a JWT, else nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    ApiKey,
    Token,
    None,
}

fn credential_of(operation: &Operation) -> Credential {
    let schemes = &operation.rule.schemes;
    if schemes.iter().any(|s| s == "ApiKey") {
        Credential::ApiKey
    } else if schemes.is_empty() {
        Credential::None
    } else {
        Credential::Token
    }
}

/// The operation's example as programs, or `None` when the contract declares no example
/// value for a parameter or body it requires.
pub fn for_operation(contract: &Contract, operation: &Operation) -> Option<Snippets> {
    let example = Example::of(operation)?;
    Some(Snippets {
        curl: curl::render(operation, &example),
        python: python::render(contract, operation, &example),
        rust: rust::render(contract, operation, &example),
        answer: example.answer.clone(),
    })
}

/// An operation's example values, read back from the contract.
struct Example {
    /// `(name, value)` of each path, query and header parameter the example gives, in the
    /// operation's order, with the parameter's schema.
    path: Vec<(String, Value)>,
    query: Vec<(String, Value, Value)>,
    headers: Vec<(String, Value)>,
    /// The body and its schema.
    body: Option<(Value, Value)>,
    answer: Option<(String, Value)>,
    credential: Credential,
}

impl Example {
    fn of(operation: &Operation) -> Option<Example> {
        use videovector_api_spec::problem::FieldLocation;
        let success = operation.success()?;
        let answer = success
            .content
            .iter()
            .find_map(|m| m.example.clone())
            .map(|body| (success.status.clone(), body));
        let body = match &operation.body {
            Some(body) => Some((
                body.content.iter().find_map(|m| m.example.clone())?,
                body.schema.clone(),
            )),
            None => None,
        };
        let mut example = Example {
            path: Vec::new(),
            query: Vec::new(),
            headers: Vec::new(),
            body,
            answer,
            credential: credential_of(operation),
        };
        for parameter in &operation.parameters {
            let Some(value) = parameter.example.clone() else {
                if parameter.required && parameter.name != "Idempotency-Key" {
                    return None;
                }
                continue;
            };
            let name = parameter.name.clone();
            match parameter.location {
                FieldLocation::Path => example.path.push((name, value)),
                FieldLocation::Query => example.query.push((name, value, parameter.schema.clone())),
                FieldLocation::Header => example.headers.push((name, value)),
                FieldLocation::Body => {}
            }
        }
        Some(example)
    }
}

/// A parameter's name as an identifier (`Github-Public-Key-Identifier` →
/// `github_public_key_identifier`), as both generators spell it.
fn identifier(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The schema a `$ref` (or a one-`$ref` `allOf`, as descriptions are attached) names:
/// `(name, schema)`; `None` for an inline schema.
fn named<'a>(contract: &'a Contract, schema: &Value) -> Option<(String, &'a Value)> {
    let reference = schema["$ref"].as_str().or_else(|| {
        let parts = schema["allOf"].as_array()?;
        match parts.as_slice() {
            [only] => only["$ref"].as_str(),
            _ => None,
        }
    })?;
    let name = reference.rsplit('/').next()?.to_string();
    Some((name, contract.lookup(reference)?))
}

/// A JSON string's text for a double-quoted string in Python or Rust source.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// How [`nested`] lays a value out: one `indent` per level, `offset` levels in from the
/// left, items ended by a comma or separated by one, plain values written by `scalar`.
struct Nesting {
    indent: &'static str,
    offset: usize,
    trailing_comma: bool,
    scalar: fn(&Value) -> String,
}

/// A JSON value laid out over lines at `depth`: objects and lists of objects one item a
/// line, a list of plain values on one line (strings always as JSON writes them, which
/// Python and Rust read alike).
fn nested(value: &Value, depth: usize, style: &Nesting) -> String {
    let pad = style.indent.repeat(style.offset + depth + 1);
    let end = style.indent.repeat(style.offset + depth);
    let lines = |items: Vec<String>| {
        if style.trailing_comma {
            items
                .iter()
                .map(|i| format!("\n{pad}{i},"))
                .collect::<String>()
                + "\n"
                + &end
        } else {
            let joined: Vec<String> = items.iter().map(|i| format!("{pad}{i}")).collect();
            format!("\n{}\n{end}", joined.join(",\n"))
        }
    };
    match value {
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let parts: Vec<String> = items.iter().map(|i| nested(i, depth, style)).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Array(items) => format!(
            "[{}]",
            lines(items.iter().map(|i| nested(i, depth + 1, style)).collect())
        ),
        Value::Object(map) if !map.is_empty() => format!(
            "{{{}}}",
            lines(
                map.iter()
                    .map(|(k, v)| format!("{}: {}", quoted(k), nested(v, depth + 1, style)))
                    .collect()
            )
        ),
        Value::Object(_) => "{}".into(),
        other => (style.scalar)(other),
    }
}
