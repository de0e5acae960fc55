//! The contract as a model: an OpenAPI document parsed once into its operations, each with
//! its typed method, path template, security rule, tag, parameters, request body, responses
//! and `x-` extensions, over the one `$ref` resolver (`crate::refs`). The route table, the
//! request checks, the MCP catalog, the docs site and the tests read operations from here
//! rather than walking the document's JSON themselves; [`Contract::committed`] is the
//! committed spec's, parsed on first use.

use std::{collections::BTreeMap, sync::LazyLock};

use poem::http::Method;
use serde_json::Value;

use crate::{
    committed::COMMITTED_SPEC,
    problem::FieldLocation,
    refs::{inline_refs, lookup_ref},
    rules::{operation_rules, OperationRule},
};

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// A `{name}` parameter.
    Param(String),
}

/// A path, query or header parameter.
#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    pub location: FieldLocation,
    pub required: bool,
    /// As the document writes it (`$ref`s in place).
    pub schema: Value,
    pub description: Option<String>,
    /// The operation's example value for it (see `crate::examples`).
    pub example: Option<Value>,
}

/// A body's schema for one media type.
#[derive(Debug, Clone)]
pub struct Media {
    /// As the document writes it (`application/json; charset=utf-8`).
    pub media_type: String,
    /// As the document writes it (`$ref`s in place).
    pub schema: Value,
    /// The operation's example body (see `crate::examples`).
    pub example: Option<Value>,
}

/// A JSON request body.
#[derive(Debug, Clone)]
pub struct RequestBody {
    /// The JSON media type's schema, as the document writes it (`$ref`s in place).
    pub schema: Value,
    pub required: bool,
    /// Every media type the body may be sent as.
    pub content: Vec<Media>,
}

/// One declared response.
#[derive(Debug, Clone)]
pub struct Response {
    /// `200`, `4XX` or `default`, as the document keys it.
    pub status: String,
    pub description: String,
    /// No media types: no body.
    pub content: Vec<Media>,
}

impl Response {
    /// The media type an answer's `Content-Type` matches (compared without parameters).
    pub fn media(&self, content_type: &str) -> Option<&Media> {
        let essence = essence(content_type);
        self.content
            .iter()
            .find(|m| self::essence(&m.media_type) == essence)
    }
}

/// One operation of the contract.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Its security rule: operation id, method and path as text, schemes, scope.
    pub rule: OperationRule,
    pub method: Method,
    /// The path template below the base path, split at `/`.
    pub template: Vec<Segment>,
    /// Its tags (the document gives each operation exactly one; a test checks).
    pub tags: Vec<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    /// Path, query and header parameters, in the document's order.
    pub parameters: Vec<Parameter>,
    pub body: Option<RequestBody>,
    /// In the document's order.
    pub responses: Vec<Response>,
    /// Every `x-` key of the operation.
    pub extensions: BTreeMap<String, Value>,
}

impl Operation {
    pub fn id(&self) -> &str {
        &self.rule.operation_id
    }

    /// The names of the template's parameters, in order.
    pub fn path_params(&self) -> impl Iterator<Item = &str> {
        self.template.iter().filter_map(|s| match s {
            Segment::Param(name) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Its first tag (the section it is documented in).
    pub fn tag(&self) -> Option<&str> {
        self.tags.first().map(String::as_str)
    }

    /// The response declared for `status`: its own, its class's (`4XX`), or the default.
    pub fn response_for(&self, status: u16) -> Option<&Response> {
        let find = |key: &str| self.responses.iter().find(|r| r.status == key);
        find(&status.to_string())
            .or_else(|| find(&format!("{}XX", status / 100)))
            .or_else(|| find("default"))
    }

    /// Its success response (a spec_sync test holds every operation to exactly one 2xx).
    pub fn success(&self) -> Option<&Response> {
        self.responses.iter().find(|r| r.status.starts_with('2'))
    }

    /// The parameters in `location`.
    pub fn parameters_in(&self, location: FieldLocation) -> impl Iterator<Item = &Parameter> {
        self.parameters
            .iter()
            .filter(move |p| p.location == location)
    }
}

/// An OpenAPI document and its operations.
pub struct Contract {
    document: Value,
    operations: Vec<Operation>,
}

static COMMITTED: LazyLock<Contract> = LazyLock::new(|| {
    Contract::parse(COMMITTED_SPEC).expect("the committed spec is a valid contract")
});

impl Contract {
    /// The committed spec's contract (a test checks that it parses).
    pub fn committed() -> &'static Contract {
        &COMMITTED
    }

    /// Parses `spec`; fails on an operation without an id, an unknown scope or method.
    pub fn parse(spec: &str) -> Result<Contract, String> {
        let document: Value = serde_json::from_str(spec).map_err(|e| e.to_string())?;
        Contract::from_document(document)
    }

    pub fn from_document(document: Value) -> Result<Contract, String> {
        let operations = operation_rules(&document)?
            .into_iter()
            .map(|rule| {
                let raw = &document["paths"][&rule.path][rule.method.to_lowercase()];
                read_operation(rule, raw)
            })
            .collect::<Result<_, _>>()?;
        Ok(Contract {
            document,
            operations,
        })
    }

    /// Every operation, in the document's order.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    pub fn operation(&self, operation_id: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.id() == operation_id)
    }

    /// The document itself (schemas, security schemes).
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The target of a local `$ref` (`#/components/schemas/Name`).
    pub fn lookup(&self, reference: &str) -> Option<&Value> {
        lookup_ref(&self.document, reference)
    }

    /// `schema` with every `$ref` inlined (see [`crate::refs::inline_refs`]).
    pub fn inline_refs(&self, schema: &Value) -> Value {
        inline_refs(&self.document, schema)
    }
}

fn read_operation(rule: OperationRule, raw: &Value) -> Result<Operation, String> {
    let method = Method::from_bytes(rule.method.as_bytes())
        .map_err(|_| format!("{}: no such method `{}`", rule.operation_id, rule.method))?;
    let template = rule
        .path
        .trim_start_matches('/')
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(s.to_string()),
            },
        )
        .collect();
    let parameters = raw["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let location = match p["in"].as_str()? {
                "path" => FieldLocation::Path,
                "query" => FieldLocation::Query,
                "header" => FieldLocation::Header,
                _ => return None,
            };
            Some(Parameter {
                name: p["name"].as_str()?.to_string(),
                location,
                required: p["required"].as_bool().unwrap_or(false),
                schema: p["schema"].clone(),
                description: p["description"].as_str().map(str::to_string),
                example: p.get("example").cloned(),
            })
        })
        .collect();
    let body = raw.get("requestBody").and_then(|body| {
        let content = content_of(body);
        Some(RequestBody {
            schema: content
                .iter()
                .find(|m| is_json(&m.media_type))?
                .schema
                .clone(),
            required: body["required"].as_bool().unwrap_or(false),
            content,
        })
    });
    let responses = raw["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, response)| Response {
            status: status.clone(),
            description: response["description"].as_str().unwrap_or_default().into(),
            content: content_of(response),
        })
        .collect();
    let text = |key: &str| raw[key].as_str().map(str::to_string);
    Ok(Operation {
        method,
        template,
        tags: raw["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        summary: text("summary"),
        description: text("description"),
        parameters,
        body,
        responses,
        extensions: raw
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with("x-"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        rule,
    })
}

/// A request body's or a response's `content`, in the document's order.
fn content_of(holder: &Value) -> Vec<Media> {
    holder["content"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(media_type, media)| Media {
            media_type: media_type.clone(),
            schema: media["schema"].clone(),
            example: media.get("example").cloned(),
        })
        .collect()
}

/// A content type without its parameters, lower-cased (`application/json`).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a content type the document declares is JSON (`application/json`, `...+json`).
fn is_json(content_type: &str) -> bool {
    let essence = essence(content_type);
    essence == "application/json" || essence.ends_with("+json")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::refs::MAX_INLINE_DEPTH;

    #[test]
    fn the_committed_spec_is_a_contract_of_every_operation() {
        let contract = Contract::committed();
        let document: Value = serde_json::from_str(COMMITTED_SPEC).unwrap();
        let in_document = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum::<usize>();
        assert_eq!(contract.operations().len(), in_document);
        let search = contract.operation("index_search").unwrap();
        assert_eq!(search.method, Method::POST);
        assert_eq!(
            search.template,
            [
                Segment::Literal("indexes".into()),
                Segment::Param("index_id".into()),
                Segment::Literal("search".into()),
            ]
        );
        assert_eq!(search.path_params().collect::<Vec<_>>(), ["index_id"]);
        assert!(search.body.as_ref().is_some_and(|b| b.required));
        assert!(search.extensions.contains_key("x-required-scope"));
        assert_eq!(search.tag(), Some("Search"));
        assert_eq!(search.response_for(200).unwrap().status, "200");
        let problem = search.response_for(404).unwrap();
        assert!(problem
            .media("application/problem+json; charset=utf-8")
            .is_some());
        assert!(problem.media("text/html").is_none());
        assert!(search.response_for(299).is_none());
    }

    #[test]
    fn references_inline_to_a_bounded_depth() {
        let document = json!({"components": {"schemas": {
            "Loop": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Loop"}}},
        }}});
        let contract =
            Contract::from_document(json!({"paths": {}, "components": document["components"]}))
                .unwrap();
        let inlined = contract.inline_refs(&json!({"$ref": "#/components/schemas/Loop"}));
        let mut depth = 0;
        let mut at = &inlined;
        while let Some(next) = at.pointer("/properties/next") {
            depth += 1;
            at = next;
        }
        assert_eq!(depth, MAX_INLINE_DEPTH as usize);
        assert_eq!(at, &json!({"type": "object"}));
        assert!(contract.lookup("#/components/schemas/Nope").is_none());
    }
}
