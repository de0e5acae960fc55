//! Every operation's example: one request (path, query and header parameters, body) and the
//! answer a server gave it, declared in `api-spec/examples.json` and written into the
//! document as OpenAPI `example`s (on the parameters, the request body and the success
//! response), so Swagger UI, the docs site's curl, Python and Rust snippets and the
//! generated Rust example programs all show the same request.
//!
//! The file lists the examples in the order they run: `.ci/snippets` runs each one, in
//! each language, against a fresh server in that order (a create before the view that names
//! what it made), and `.ci/snippets --record` writes the answers back into the file.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The examples' source, in run order.
pub const EXAMPLES_JSON: &str = include_str!("../examples.json");

/// One operation's example request and its recorded answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationExample {
    pub operation_id: String,
    /// Path parameters by name.
    #[serde(default)]
    pub path: Map<String, Value>,
    /// Query parameters by name.
    #[serde(default)]
    pub query: Map<String, Value>,
    /// Header parameters by name (`Idempotency-Key` is left to the clients, which add one).
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub body: Option<Value>,
    /// The success answer's body, as a server gave it (absent for an answer without one).
    #[serde(default)]
    pub response: Option<Value>,
}

impl OperationExample {
    /// The example's value for a parameter, wherever it is sent.
    pub fn parameter(&self, name: &str) -> Option<&Value> {
        self.path
            .get(name)
            .or_else(|| self.query.get(name))
            .or_else(|| self.headers.get(name))
    }
}

static EXAMPLES: LazyLock<Vec<OperationExample>> = LazyLock::new(|| {
    serde_json::from_str(EXAMPLES_JSON).expect("api-spec/examples.json is a list of examples")
});

/// Every example, in run order.
pub fn all() -> &'static [OperationExample] {
    &EXAMPLES
}

/// Writes each example into the document: `example` on each parameter it gives, on every
/// media type of the request body, and on every media type of the operation's success
/// answer.
pub fn declare(spec: &mut Value) {
    for example in all() {
        let Some(operation) = operation_mut(spec, &example.operation_id) else {
            continue;
        };
        // (`get_mut`, not indexing: indexing a missing key would add it as `null`.)
        if let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        {
            for parameter in parameters {
                let name = parameter["name"].as_str().unwrap_or_default().to_string();
                if let Some(value) = example.parameter(&name) {
                    parameter["example"] = value.clone();
                }
            }
        }
        if let (Some(body), Some(request)) = (&example.body, operation.get_mut("requestBody")) {
            for media in media_mut(request) {
                media.insert("example".into(), body.clone());
            }
        }
        if let Some(answer) = &example.response {
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (_, response) in responses.iter_mut().filter(|(s, _)| s.starts_with('2')) {
                for media in media_mut(response) {
                    media.insert("example".into(), answer.clone());
                }
            }
        }
    }
}

fn operation_mut<'a>(spec: &'a mut Value, operation_id: &str) -> Option<&'a mut Value> {
    spec["paths"]
        .as_object_mut()?
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .find(|op| op["operationId"].as_str() == Some(operation_id))
}

/// The media types of a request body's or a response's `content`.
fn media_mut(holder: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    holder
        .get_mut("content")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|c| c.values_mut())
        .filter_map(Value::as_object_mut)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::{contract::Contract, schema_check::SchemaChecker};

    use super::all;

    #[test]
    fn every_operation_has_one_example_in_a_valid_order() {
        let contract = Contract::committed();
        let named: Vec<&str> = all().iter().map(|e| e.operation_id.as_str()).collect();
        let unique: BTreeSet<&str> = named.iter().copied().collect();
        assert_eq!(unique.len(), named.len(), "an operation has two examples");
        let operations: BTreeSet<&str> = contract.operations().iter().map(|o| o.id()).collect();
        assert_eq!(
            unique, operations,
            "every operation has an example, and only they"
        );
        // The login comes before anything that needs its token's organisation.
        assert_eq!(named[..2], ["readiness_view", "token_create"]);
    }

    #[test]
    fn every_example_is_what_its_operation_declares() {
        let contract = Contract::committed();
        let checker = SchemaChecker::new(contract.document().clone()).unwrap();
        for example in all() {
            let op = contract.operation(&example.operation_id).unwrap();
            let id = &example.operation_id;
            for (name, value) in example
                .path
                .iter()
                .chain(&example.query)
                .chain(&example.headers)
            {
                let parameter = op
                    .parameters
                    .iter()
                    .find(|p| &p.name == name)
                    .unwrap_or_else(|| panic!("{id} has no parameter {name}"));
                let violations = checker.check(&parameter.schema, value);
                assert!(violations.is_empty(), "{id} {name}: {violations:?}");
            }
            for parameter in op.parameters.iter().filter(|p| p.required) {
                assert!(
                    example.parameter(&parameter.name).is_some(),
                    "{id}'s example lacks the required {}",
                    parameter.name
                );
            }
            match (&op.body, &example.body) {
                (Some(body), Some(value)) => {
                    let violations = checker.check(&body.schema, value);
                    assert!(violations.is_empty(), "{id} body: {violations:?}");
                }
                (None, None) => {}
                (Some(body), None) => assert!(!body.required, "{id} needs a body"),
                (None, Some(_)) => panic!("{id} takes no body"),
            }
            let success = op.success().unwrap();
            match (success.content.first(), &example.response) {
                (Some(media), Some(answer)) => {
                    let violations = checker.check(&media.schema, answer);
                    assert!(violations.is_empty(), "{id} answer: {violations:?}");
                }
                (None, None) => {}
                (Some(_), None) => panic!("{id} has no recorded answer (.ci/snippets --record)"),
                (None, Some(_)) => panic!("{id} answers without a body"),
            }
        }
    }

    #[test]
    fn the_committed_spec_carries_each_example() {
        let contract = Contract::committed();
        for example in all() {
            let op = contract.operation(&example.operation_id).unwrap();
            if let Some(body) = &example.body {
                let declared = op.body.as_ref().unwrap().content[0].example.as_ref();
                assert_eq!(declared, Some(body), "{}", example.operation_id);
            }
            for (name, value) in &example.path {
                let parameter = op.parameters.iter().find(|p| &p.name == name).unwrap();
                assert_eq!(parameter.example.as_ref(), Some(value));
            }
        }
    }
}
