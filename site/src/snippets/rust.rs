//! The Rust program of an operation's example, on the generated client
//! (`videovector-client`): a client from the credential's helper, the operation's builder
//! with its parameters and a body made with the types' builders, and the answer printed as
//! JSON. [`snippets_program`] compiles every one into the `videovector-snippets` binary,
//! each as a function whose body is the snippet as the reference shows it.

use serde_json::Value;
use videovector_api_spec::contract::{Contract, Operation};

use super::{for_operation, identifier, named, quoted, Credential, Example};

const INDENT: &str = "    ";

pub(super) fn render(contract: &Contract, operation: &Operation, example: &Example) -> String {
    let mut calls = vec![format!(".{}()", operation.rule.operation_id)];
    for (name, value) in &example.path {
        calls.push(format!(".{}({})", field(name), scalar(value, None)));
    }
    for (name, value, schema) in &example.query {
        calls.push(format!(
            ".{}({})",
            field(name),
            rendered(contract, schema, value, Place::Setter, 1)
        ));
    }
    for (name, value) in &example.headers {
        calls.push(format!(".{}({})", field(name), scalar(value, None)));
    }
    if let Some((body, schema)) = &example.body {
        let text = rendered(contract, schema, body, Place::Setter, 2);
        calls.push(if text.contains('\n') {
            format!(".body(\n{INDENT}{INDENT}{text},\n{INDENT})")
        } else {
            format!(".body({text})")
        });
    }
    calls.push(".send()".into());
    calls.push(".await?;".into());
    let client = match example.credential {
        Credential::ApiKey => {
            "videovector_client::with_api_key(\n    &std::env::var(\"VIDEOVECTOR_URL\")?,\n    &std::env::var(\"VIDEOVECTOR_API_KEY\")?,\n)?"
        }
        Credential::Token => {
            "videovector_client::with_bearer_token(\n    &std::env::var(\"VIDEOVECTOR_URL\")?,\n    &std::env::var(\"VIDEOVECTOR_TOKEN\")?,\n)?"
        }
        Credential::None => "videovector_client::anonymous(&std::env::var(\"VIDEOVECTOR_URL\")?)?",
    };
    let mut out = String::new();
    let chain = calls
        .iter()
        .map(|c| format!("\n{INDENT}{c}"))
        .collect::<String>();
    if chain.contains("types::") {
        out.push_str("use videovector_client::types;\n\n");
    }
    out.push_str(&format!("let api = {client};\nlet answer = api{chain}\n"));
    if example.answer.is_some() {
        out.push_str("println!(\"{}\", serde_json::to_string_pretty(&*answer)?);\n");
    } else {
        out.push_str("println!(\"{}\", answer.status());\n");
    }
    out
}

/// Where a value is written: as a builder setter's argument (which converts with
/// `TryInto`, so a builder or a `&str` will do) or as an element that must already be the
/// field's type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Setter,
    Element,
}

/// `value` as Rust source for `schema`, at `depth` levels of indentation.
fn rendered(
    contract: &Contract,
    schema: &Value,
    value: &Value,
    place: Place,
    depth: usize,
) -> String {
    let pad = INDENT.repeat(depth + 1);
    let end = INDENT.repeat(depth);
    if let Some((name, target)) = named(contract, schema) {
        if target.get("enum").is_some() {
            return format!(
                "types::{name}::{}",
                variant(value.as_str().unwrap_or_default())
            );
        }
        if let (Some(properties), Some(map)) = (target["properties"].as_object(), value.as_object())
        {
            let inner_depth = if place == Place::Element {
                depth + 1
            } else {
                depth
            };
            let inner_pad = INDENT.repeat(inner_depth + 1);
            let mut text = format!("types::{name}::builder()");
            for (key, item) in map {
                let property = properties.get(key).cloned().unwrap_or(Value::Null);
                text.push_str(&format!(
                    "\n{inner_pad}.{}({})",
                    field(key),
                    rendered(contract, &property, item, Place::Setter, inner_depth + 1)
                ));
            }
            return match place {
                Place::Setter => text,
                Place::Element => format!("types::{name}::try_from(\n{pad}{text},\n{end})?"),
            };
        }
        return rendered(contract, target, value, place, depth);
    }
    match value {
        Value::Array(items) => {
            let item_schema = schema.get("items").cloned().unwrap_or(Value::Null);
            let parts: Vec<String> = items
                .iter()
                .map(|i| rendered(contract, &item_schema, i, Place::Element, depth + 1))
                .collect();
            if parts.iter().all(|p| !p.contains('\n'))
                && parts.iter().map(String::len).sum::<usize>() < 60
            {
                format!("vec![{}]", parts.join(", "))
            } else {
                let parts: String = parts.iter().map(|p| format!("\n{pad}{p},")).collect();
                format!("vec![{parts}\n{end}]")
            }
        }
        Value::Object(map)
            if schema["additionalProperties"].is_object()
                && !schema["additionalProperties"]
                    .as_object()
                    .is_some_and(|m| m.is_empty()) =>
        {
            let values = &schema["additionalProperties"];
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "({}.to_string(), {})",
                        quoted(k),
                        rendered(contract, values, v, Place::Element, depth + 1)
                    )
                })
                .collect();
            format!("std::collections::HashMap::from([{}])", parts.join(", "))
        }
        Value::Object(_) => format!(
            "serde_json::json!({}).as_object().cloned().unwrap_or_default()",
            serde_json::to_string(value).expect("JSON serializes")
        ),
        Value::String(s) if place == Place::Element => format!("{}.parse()?", quoted(s)),
        other => scalar(other, schema["type"].as_str()),
    }
}

/// A string, number or boolean as a literal (a `number` always with a decimal point).
fn scalar(value: &Value, json_type: Option<&str>) -> String {
    match value {
        Value::String(s) => quoted(s),
        Value::Number(n) => {
            let text = n.to_string();
            if json_type == Some("number") && !text.contains(['.', 'e', 'E']) {
                format!("{text}.0")
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

/// A field's or parameter's method name as the generators spell it (`type` is `type_`).
fn field(name: &str) -> String {
    let name = identifier(name);
    match name.as_str() {
        "type" | "match" | "ref" | "mod" | "fn" | "impl" | "use" | "where" | "loop" | "move"
        | "self" | "crate" | "super" | "struct" | "enum" | "trait" | "async" | "await" => {
            format!("{name}_")
        }
        _ => name,
    }
}

/// An enum value's variant as typify names it (`run.succeeded` is `RunSucceeded`).
fn variant(value: &str) -> String {
    value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The module `videovector-snippets` runs (`examples/snippets/src/generated.rs`, below
/// its header): one function per operation whose body is its example's Rust snippet, and
/// `run`, which calls the one named.
pub fn snippets_program(contract: &Contract) -> String {
    let mut functions = String::new();
    let mut arms = String::new();
    for operation in contract.operations() {
        let Some(snippets) = for_operation(contract, operation) else {
            continue;
        };
        let id = &operation.rule.operation_id;
        let body: String = snippets
            .rust
            .lines()
            .map(|l| {
                if l.is_empty() {
                    "\n".to_string()
                } else {
                    format!("{INDENT}{l}\n")
                }
            })
            .collect();
        functions.push_str(&format!(
            "\n/// The `{id}` example, as the reference shows it.\nasync fn {id}() -> Outcome {{\n{body}{INDENT}Ok(())\n}}\n"
        ));
        arms.push_str(&format!("        \"{id}\" => {id}().await,\n"));
    }
    format!(
        r#"//! Every operation's example from the API reference as a function whose body is the Rust
//! snippet the reference shows, and [`run`], which calls the one named.

/// What an example returns: any failure, printed by `main`.
pub type Outcome = Result<(), Box<dyn std::error::Error>>;

/// Runs the example of `operation_id`; `None` when there is no such example.
pub async fn run(operation_id: &str) -> Option<Outcome> {{
    Some(match operation_id {{
{arms}        _ => return None,
    }})
}}
{functions}"#
    )
}
