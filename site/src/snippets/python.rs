//! The Python program of an operation's example, on the generated SDK
//! (`videovector_client`): a client from `connect` that raises problems, the operation's
//! module (`api.<tag>.<operation_id>`), its body built with the model's `from_dict`, and
//! the answer printed.

use std::collections::BTreeSet;

use serde_json::Value;
use videovector_api_spec::contract::{Contract, Operation};

use super::{identifier, named, nested, Credential, Example, Nesting};

pub(super) fn render(contract: &Contract, operation: &Operation, example: &Example) -> String {
    let id = &operation.rule.operation_id;
    let module = identifier(operation.tag().unwrap_or_default());
    let mut models = BTreeSet::new();
    let mut arguments = vec!["client=client".to_string()];
    for (name, value) in &example.path {
        arguments.push(format!("{}={}", keyword(name), literal(value, 1)));
    }
    for (name, value, schema) in &example.query {
        let text = match named(contract, schema) {
            Some((model, target)) if target.get("enum").is_some() => {
                models.insert(model.clone());
                format!("{model}({})", literal(value, 1))
            }
            _ => literal(value, 1),
        };
        arguments.push(format!("{}={text}", keyword(name)));
    }
    for (name, value) in &example.headers {
        arguments.push(format!("{}={}", keyword(name), literal(value, 1)));
    }
    if let Some((body, schema)) = &example.body {
        arguments.push(format!(
            "body={}",
            body_text(contract, schema, body, &mut models)
        ));
    }
    let (connect, client) = match example.credential {
        Credential::ApiKey => (
            "api_key_client",
            r#"api_key_client(os.environ["VIDEOVECTOR_URL"], os.environ["VIDEOVECTOR_API_KEY"], raise_problems=True)"#,
        ),
        Credential::Token => (
            "bearer_client",
            r#"bearer_client(os.environ["VIDEOVECTOR_URL"], os.environ["VIDEOVECTOR_TOKEN"], raise_problems=True)"#,
        ),
        Credential::None => (
            "public_client",
            r#"public_client(os.environ["VIDEOVECTOR_URL"], raise_problems=True)"#,
        ),
    };
    let mut out = String::from("import os\n\n");
    out.push_str(&format!(
        "from videovector_client.api.{module} import {id}\n"
    ));
    out.push_str(&format!(
        "from videovector_client.connect import {connect}\n"
    ));
    if !models.is_empty() {
        let models: Vec<String> = models.into_iter().collect();
        out.push_str(&format!(
            "from videovector_client.models import {}\n",
            models.join(", ")
        ));
    }
    out.push_str(&format!("\nclient = {client}\n"));
    let call = format!("({}\n)", indent_arguments(&arguments));
    match &example.answer {
        Some((_, answer)) => {
            out.push_str(&format!("answer = {id}.sync{call}\n"));
            if answer.is_array() {
                out.push_str("print([item.to_dict() for item in answer])\n");
            } else {
                out.push_str("print(answer.to_dict())\n");
            }
        }
        None => {
            out.push_str(&format!("response = {id}.sync_detailed{call}\n"));
            out.push_str("print(response.status_code)\n");
        }
    }
    out
}

fn indent_arguments(arguments: &[String]) -> String {
    arguments
        .iter()
        .map(|a| format!("\n    {a},"))
        .collect::<String>()
}

/// The SDK's keyword for a parameter (`from` is `from_`, a header's dashes are `_`).
fn keyword(name: &str) -> String {
    let name = identifier(name);
    match name.as_str() {
        "from" | "in" | "import" | "class" | "def" | "global" | "type" => format!("{name}_"),
        _ => name,
    }
}

/// The body: the model's `from_dict` of the example (a list of them for an array body).
fn body_text(
    contract: &Contract,
    schema: &Value,
    body: &Value,
    models: &mut BTreeSet<String>,
) -> String {
    if let (Some(items), Some(values)) = (schema.get("items"), body.as_array()) {
        if let Some((model, _)) = named(contract, items) {
            models.insert(model.clone());
            let parts: Vec<String> = values
                .iter()
                .map(|v| format!("\n        {model}.from_dict({}),", literal(v, 2)))
                .collect();
            return format!("[{}\n    ]", parts.concat());
        }
    }
    match named(contract, schema) {
        Some((model, _)) => {
            models.insert(model.clone());
            format!("{model}.from_dict({})", literal(body, 1))
        }
        None => literal(body, 1),
    }
}

/// A JSON value as a Python literal, pretty-printed at `depth` levels of four spaces.
fn literal(value: &Value, depth: usize) -> String {
    const PYTHON: Nesting = Nesting {
        indent: "    ",
        offset: 0,
        trailing_comma: true,
        scalar: |value| match value {
            Value::Null => "None".into(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            other => other.to_string(),
        },
    };
    nested(value, depth, &PYTHON)
}
