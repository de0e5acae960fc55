//! The MCP tools, derived from the committed spec the way the enforcement table is: every
//! operation an API key may call is a tool named by its operationId, described by its
//! summary and the scope it needs, whose input schema is built from the operation's path
//! and query parameters and JSON body (`body`), plus `idempotency_key` where the operation
//! takes an `Idempotency-Key`. A call's arguments become the operation's request.

use std::{collections::BTreeMap, sync::Arc};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use poem::http::Method;
use rmcp::model::{JsonObject, Tool};
use serde_json::{json, Map, Value};
use videovector_api_spec::{
    contract::{Contract, Operation},
    dto::text::IdempotencyKey,
    problem::FieldLocation,
    rules::OperationRule,
    security::API_KEY_SCHEME,
    Scope,
};

/// The argument carrying an operation's JSON body.
pub const BODY_ARGUMENT: &str = "body";
/// The argument carrying an `Idempotency-Key`.
pub const IDEMPOTENCY_ARGUMENT: &str = "idempotency_key";
/// The longest path and query a call may make (what HTTP servers commonly accept; a longer
/// URL cannot even be built).
const MAX_URL_CHARS: usize = 8_192;
/// Characters a path segment keeps unencoded (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One operation as a tool.
pub struct OperationTool {
    pub rule: OperationRule,
    pub tool: Tool,
    /// The operation's method, parsed once when the catalog is built.
    method: Method,
    path_params: Vec<String>,
    query_params: Vec<String>,
    has_body: bool,
    body_required: bool,
}

/// A tool call as the operation's request, ready for the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    pub method: Method,
    /// Below the base path, with the query: `/indexes/idx_1/segments?limit=5`.
    pub path_and_query: String,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<String>,
}

/// Every operation tool, by name.
pub struct Catalog {
    tools: BTreeMap<String, Arc<OperationTool>>,
    /// Operations that back a resource without being tools (a bearer-only read).
    resource_readers: BTreeMap<String, Arc<OperationTool>>,
}

/// The operations behind resources that are not tools.
const RESOURCE_READERS: &[&str] = &["audit_event_list"];

impl OperationTool {
    fn from_operation(contract: &Contract, operation: &Operation) -> OperationTool {
        let rule = operation.rule.clone();
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut path_params = Vec::new();
        let mut query_params = Vec::new();
        for parameter in &operation.parameters {
            let place = parameter.location;
            if place != FieldLocation::Path && place != FieldLocation::Query {
                continue;
            }
            let name = parameter.name.clone();
            let mut schema = contract.inline_refs(&parameter.schema);
            if let (Some(description), Value::Object(map)) = (&parameter.description, &mut schema) {
                map.insert("description".into(), description.as_str().into());
            }
            properties.insert(name.clone(), schema);
            if place == FieldLocation::Path {
                required.push(name.clone());
                path_params.push(name);
            } else {
                if parameter.required {
                    required.push(name.clone());
                }
                query_params.push(name);
            }
        }
        let body = operation.body.as_ref().filter(|b| b.schema.is_object());
        let has_body = body.is_some();
        let body_required = body.is_some_and(|b| b.required);
        if let Some(body) = body {
            let mut schema = contract.inline_refs(&body.schema);
            if let Value::Object(map) = &mut schema {
                map.insert(
                    "description".into(),
                    "The operation's JSON request body.".into(),
                );
            }
            properties.insert(BODY_ARGUMENT.into(), schema);
            if body_required {
                required.push(BODY_ARGUMENT.into());
            }
        }
        if rule.idempotent {
            properties.insert(
                IDEMPOTENCY_ARGUMENT.into(),
                json!({
                    "type": "string", "minLength": 1, "maxLength": 255,
                    "description": "Makes the call safe to retry: a retry with the same key \
                        and arguments replays the first answer (the API's Idempotency-Key)."
                }),
            );
        }
        let mut input_schema = JsonObject::new();
        input_schema.insert("type".into(), "object".into());
        input_schema.insert("properties".into(), Value::Object(properties));
        input_schema.insert("required".into(), json!(required));
        input_schema.insert("additionalProperties".into(), false.into());
        let summary = operation.summary.as_deref().unwrap_or_default();
        let description = match rule.required_scope {
            Some(scope) => format!("{summary}. Requires scope `{}`.", scope.as_str()),
            None => format!("{summary}."),
        };
        OperationTool {
            tool: Tool::new(rule.operation_id.clone(), description, input_schema),
            rule,
            method: operation.method.clone(),
            path_params,
            query_params,
            has_body,
            body_required,
        }
    }

    /// The scope the tool needs.
    pub fn required_scope(&self) -> Option<Scope> {
        self.rule.required_scope
    }

    /// The request for `arguments`, or what is wrong with them.
    pub fn call(&self, arguments: &JsonObject) -> Result<ApiCall, String> {
        let known = |name: &str| {
            self.path_params.iter().any(|p| p == name)
                || self.query_params.iter().any(|p| p == name)
                || (self.has_body && name == BODY_ARGUMENT)
                || (self.rule.idempotent && name == IDEMPOTENCY_ARGUMENT)
        };
        if let Some(unknown) = arguments.keys().find(|k| !known(k)) {
            return Err(format!("`{unknown}` is not an argument of this tool"));
        }
        let mut path = self.rule.path.clone();
        for name in &self.path_params {
            let value = arguments
                .get(name)
                .and_then(scalar_text)
                .ok_or_else(|| format!("`{name}` is required (a string)"))?;
            let encoded = utf8_percent_encode(&value, SEGMENT).to_string();
            path = path.replace(&format!("{{{name}}}"), &encoded);
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        let mut any_query = false;
        for name in &self.query_params {
            if let Some(value) = arguments.get(name).filter(|v| !v.is_null()) {
                let text = scalar_text(value)
                    .ok_or_else(|| format!("`{name}` must be a string or number"))?;
                query.append_pair(name, &text);
                any_query = true;
            }
        }
        let path_and_query = if any_query {
            format!("{path}?{}", query.finish())
        } else {
            path
        };
        if path_and_query.len() > MAX_URL_CHARS {
            return Err(format!(
                "the path and query arguments make a URL of {} characters; at most {MAX_URL_CHARS}",
                path_and_query.len()
            ));
        }
        let body = match arguments.get(BODY_ARGUMENT) {
            Some(value) if self.has_body => {
                Some(serde_json::to_vec(value).map_err(|e| format!("`body` cannot be sent: {e}"))?)
            }
            _ if self.body_required => return Err("`body` is required".into()),
            // An optional body left out is an empty object, as REST clients send.
            _ if self.has_body => Some(b"{}".to_vec()),
            _ => None,
        };
        // The `Idempotency-Key` header's own rule: a key that could not be sent as the
        // header is refused, never dropped (the request would then run unprotected).
        let idempotency_key = match arguments.get(IDEMPOTENCY_ARGUMENT) {
            Some(Value::String(key)) if IdempotencyKey::allows(key) => Some(key.clone()),
            Some(_) => {
                return Err(format!(
                    "`{IDEMPOTENCY_ARGUMENT}` must be 1 to {} visible ASCII characters, as the \
                     `Idempotency-Key` header",
                    IdempotencyKey::MAX_LENGTH
                ))
            }
            None => None,
        };
        Ok(ApiCall {
            method: self.method.clone(),
            path_and_query,
            body,
            idempotency_key,
        })
    }
}

/// A path or query value as text: strings as they are, numbers and booleans spelled out.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Catalog {
    /// Every operation of `spec` that accepts an API key, as a tool.
    /// Every operation an API key may call, from `contract`.
    pub fn from_contract(contract: &Contract) -> Catalog {
        let tools = contract
            .operations()
            .iter()
            .filter(|operation| operation.rule.schemes.iter().any(|s| s == API_KEY_SCHEME))
            .map(|operation| {
                let tool = OperationTool::from_operation(contract, operation);
                (tool.rule.operation_id.clone(), Arc::new(tool))
            })
            .collect();
        let resource_readers = contract
            .operations()
            .iter()
            .filter(|operation| RESOURCE_READERS.contains(&operation.rule.operation_id.as_str()))
            .map(|operation| {
                let tool = OperationTool::from_operation(contract, operation);
                (tool.rule.operation_id.clone(), Arc::new(tool))
            })
            .collect();
        Catalog {
            tools,
            resource_readers,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<OperationTool>> {
        self.tools.get(name)
    }

    /// The operation `name` that a tool or a resource reads through.
    pub fn reader(&self, name: &str) -> Option<&Arc<OperationTool>> {
        self.tools
            .get(name)
            .or_else(|| self.resource_readers.get(name))
    }

    /// The tools as `mcp_config_view` lists them: name, description and required scope.
    pub fn tools(&self) -> Vec<videovector_api_spec::dto::mcp::McpTool> {
        self.iter()
            .filter_map(|t| {
                Some(videovector_api_spec::dto::mcp::McpTool {
                    name: t.rule.operation_id.clone(),
                    description: t
                        .tool
                        .description
                        .as_deref()
                        .unwrap_or_default()
                        .to_string(),
                    required_scope: t.required_scope()?,
                })
            })
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<OperationTool>> {
        self.tools.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_contract(Contract::committed())
    }

    fn arguments(value: Value) -> JsonObject {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn every_api_key_operation_is_a_tool_and_no_other() {
        let catalog = catalog();
        assert!(catalog.get("index_search").is_some());
        assert!(catalog.get("segment_ingest").is_some());
        // Key management and MCP configuration take a JWT only; logging in takes nothing.
        assert!(catalog.get("api_key_create").is_none());
        assert!(catalog.get("token_create").is_none());
        assert!(catalog.get("mcp_config_view").is_none());
        let search = catalog.get("index_search").unwrap();
        let description = search.tool.description.as_deref().unwrap();
        assert!(
            description.ends_with("Requires scope `search`."),
            "{description}"
        );
        let schema = &search.tool.input_schema;
        assert_eq!(schema["required"], json!(["index_id", "body"]));
        // References are inlined: the body's schema is whole.
        assert!(schema["properties"]["body"]["properties"]["query"].is_object());
        assert!(!serde_json::to_string(schema).unwrap().contains("$ref"));
    }

    #[test]
    fn arguments_become_the_operations_request() {
        let catalog = catalog();
        let search = catalog.get("index_search").unwrap();
        let call = search
            .call(&arguments(
                json!({ "index_id": "idx/../x y", "body": { "query": "q" } }),
            ))
            .unwrap();
        assert_eq!(call.method, Method::POST);
        assert_eq!(call.path_and_query, "/indexes/idx%2F..%2Fx%20y/search");
        assert_eq!(call.body.as_deref(), Some(br#"{"query":"q"}"#.as_slice()));
        let listed = catalog
            .get("index_list")
            .unwrap()
            .call(&arguments(json!({ "limit": 5, "cursor": "a&b" })))
            .unwrap();
        assert_eq!(listed.path_and_query, "/indexes?limit=5&cursor=a%26b");
        assert_eq!(listed.body, None);
        assert!(search
            .call(&arguments(
                json!({ "index_id": "i", "body": {}, "extra": 1 })
            ))
            .unwrap_err()
            .contains("`extra`"));
        assert!(search
            .call(&arguments(json!({ "body": {} })))
            .unwrap_err()
            .contains("`index_id` is required"));
        // A megabyte id makes a URL no HTTP stack builds: refused before any request.
        assert!(search
            .call(&arguments(
                json!({ "index_id": "x".repeat(1 << 20), "body": {} })
            ))
            .unwrap_err()
            .contains("at most 8192"));
    }
}
