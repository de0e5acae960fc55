//! What the MCP server answers: tools (the API's operations, filtered by the caller's
//! scopes, plus `credential_inspect`), resources (the organisation's indexes, paged, as
//! `videovector://indexes/{id}`, and for an `admin` bearer the audit log,
//! `videovector://audit-events`), and prompts (the organisation's saved prompts, their
//! variables as arguments). Every answer comes from the REST operation behind it, run in
//! process for the caller's credential ([`Dispatch`]), so the spec's rules hold here too.

use std::{collections::BTreeMap, sync::Arc};

use poem_openapi::types::{ParseFromJSON, ToJSON};
use rmcp::{
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData as McpError,
        GetPromptRequestParams, GetPromptResponse, Implementation, JsonObject, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    RoleServer, ServerHandler,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use videovector_api_spec::{
    dto::{
        audit::AuditEventPage,
        indexes::{Index, IndexPage},
        prompts::{Prompt, PromptPage},
    },
    index_access::IndexAccess,
    Credential as PrincipalCredential, Principal,
};

use super::{
    catalog::{Catalog, OperationTool},
    dispatch::{ApiAnswer, Credential, Dispatch},
};
use crate::services::prompts::render;

/// The tool that tells a credential what it may call.
pub const INSPECT_TOOL: &str = "credential_inspect";
const INDEX_URI_PREFIX: &str = "videovector://indexes/";
/// The audit log resource: the last day's events (up to 100), or those its query asks for
/// (`?action=…&actor_id=…&target_id=…&since=…&until=…&after_sequence=…`).
const AUDIT_URI: &str = "videovector://audit-events";
/// The filters the audit resource's query may carry.
const AUDIT_FILTERS: &[&str] = &[
    "action",
    "actor_id",
    "target_id",
    "since",
    "until",
    "after_sequence",
    "cursor",
];

/// Who calls: put in the HTTP request's extensions by the transport after authentication.
#[derive(Clone)]
pub struct Caller {
    pub principal: Principal,
    pub credential: Credential,
}

/// The MCP server of one request (rmcp makes one per request, no session being kept; they
/// share everything).
#[derive(Clone)]
pub struct VideoVectorMcp {
    pub catalog: Arc<Catalog>,
    pub dispatch: Dispatch,
}

fn caller(context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| {
            McpError::internal_error("the request carries no authenticated caller", None)
        })
}

fn from_json<T: DeserializeOwned>(value: Value) -> Result<T, McpError> {
    serde_json::from_value(value)
        .map_err(|e| McpError::internal_error(format!("building an answer: {e}"), None))
}

/// A failed operation as a JSON-RPC error carrying its problem.
fn problem_error(what: &str, answer: ApiAnswer) -> McpError {
    let detail = answer.body["detail"]
        .as_str()
        .unwrap_or("it failed")
        .to_string();
    let message = format!("{what}: {detail}");
    match answer.status {
        404 => McpError::resource_not_found(message, Some(answer.body)),
        400..=499 => McpError::invalid_request(message, Some(answer.body)),
        _ => McpError::internal_error(message, Some(answer.body)),
    }
}

/// The arguments of a list operation: the page's cursor, if the client sent one.
fn cursor_arguments(request: &Option<PaginatedRequestParams>) -> JsonObject {
    let mut arguments = JsonObject::new();
    if let Some(cursor) = request.as_ref().and_then(|r| r.cursor.clone()) {
        arguments.insert("cursor".into(), cursor.into());
    }
    arguments
}

/// Whether `principal` may call `tool`: it holds the scope, and a key restricted to some
/// indexes is not calling an organisation-wide operation (the spec's `x-index-access`).
fn may_call(principal: &Principal, tool: &OperationTool) -> bool {
    let spans_organisation = principal.index_restriction().is_some()
        && tool.rule.index_access == Some(IndexAccess::Organisation);
    tool.required_scope().is_none_or(|s| principal.holds(s)) && !spans_organisation
}

/// The arguments of an operation on one resource: its id under the path parameter `name`.
fn id_argument(name: &str, id: &str) -> JsonObject {
    let mut arguments = JsonObject::new();
    arguments.insert(name.into(), id.into());
    arguments
}

impl VideoVectorMcp {
    /// Whether the caller may read the audit log (an `admin` bearer token).
    fn may_read_audit(&self, caller: &Caller) -> bool {
        matches!(caller.principal.credential, PrincipalCredential::Jwt { .. })
            && self
                .catalog
                .reader("audit_event_list")
                .is_some_and(|reader| may_call(&caller.principal, reader))
    }

    /// The audit log resource, read through `audit_event_list` with the URI's filters.
    async fn read_audit_events(
        &self,
        caller: &Caller,
        uri: &str,
    ) -> Result<ReadResourceResponse, McpError> {
        let mut arguments = JsonObject::new();
        let parsed = reqwest::Url::parse(uri).map_err(|e| {
            McpError::invalid_params(format!("`{uri}` is not a valid URI: {e}"), None)
        })?;
        for (name, value) in parsed.query_pairs() {
            if !AUDIT_FILTERS.contains(&name.as_ref()) {
                return Err(McpError::invalid_params(
                    format!(
                        "`{name}` is not a filter of {AUDIT_URI}; use {}",
                        AUDIT_FILTERS.join(", ")
                    ),
                    None,
                ));
            }
            arguments.insert(name.into_owned(), value.into_owned().into());
        }
        if arguments.is_empty() {
            let day_ago = chrono::Utc::now() - chrono::Duration::days(1);
            arguments.insert("since".into(), day_ago.to_rfc3339().into());
        }
        arguments.insert("limit".into(), 100.into());
        let page: AuditEventPage = self
            .read(
                caller,
                "audit_event_list",
                &arguments,
                "reading the audit log",
            )
            .await?;
        let result: rmcp::model::ReadResourceResult = from_json(json!({
            "contents": [{
                "uri": uri,
                "mimeType": "application/json",
                "text": page.to_json().unwrap_or_default().to_string(),
            }]
        }))?;
        Ok(result.into())
    }

    /// Calls the operation `operation_id` with `arguments` as the caller (the path built from
    /// the contract, as for a tool call) and reads the answer as the DTO `T` it declares.
    async fn read<T: ParseFromJSON>(
        &self,
        caller: &Caller,
        operation_id: &str,
        arguments: &JsonObject,
        what: &str,
    ) -> Result<T, McpError> {
        let tool = self.catalog.reader(operation_id).ok_or_else(|| {
            McpError::internal_error(format!("{what}: `{operation_id}` is not a tool"), None)
        })?;
        let call = tool
            .call(arguments)
            .map_err(|e| McpError::invalid_params(format!("{what}: {e}"), None))?;
        let answer = self.dispatch.call(&caller.credential, &call).await;
        if answer.status >= 400 {
            return Err(problem_error(what, answer));
        }
        T::parse_from_json(Some(answer.body)).map_err(|e| {
            McpError::internal_error(
                format!(
                    "{what}: the answer breaks the contract: {}",
                    e.into_message()
                ),
                None,
            )
        })
    }

    fn inspect_tool() -> Tool {
        let mut schema = JsonObject::new();
        schema.insert("type".into(), "object".into());
        schema.insert("properties".into(), json!({}));
        schema.insert("additionalProperties".into(), false.into());
        Tool::new(
            INSPECT_TOOL,
            "Which tools this credential may call, and for each one it may not, the scope it \
             needs; the indexes it is restricted to (`index_ids`, absent: every index) and its \
             cap on hits (`max_top_k`). Requires no scope.",
            schema,
        )
    }

    /// The credential, its scopes, and every operation tool with whether it may be called.
    fn inspect(&self, caller: &Caller) -> Value {
        let principal = &caller.principal;
        let tools: Vec<Value> = self
            .catalog
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.rule.operation_id,
                    "allowed": may_call(principal, tool),
                    "required_scope": tool.required_scope().map(|s| s.as_str()),
                })
            })
            .collect();
        let credential = match &principal.credential {
            PrincipalCredential::ApiKey { key_id } => {
                json!({ "kind": "api_key", "key_id": key_id })
            }
            PrincipalCredential::Jwt { issuer, subject } => {
                json!({ "kind": "jwt", "issuer": issuer, "subject": subject })
            }
        };
        json!({
            "organization_id": principal.org_id,
            "credential": credential,
            "scopes": principal.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "index_ids": principal.index_restriction(),
            "max_top_k": principal.max_top_k,
            "tools": tools,
        })
    }

    async fn call_operation(
        &self,
        caller: &Caller,
        request: CallToolRequestParams,
    ) -> Result<CallToolResult, McpError> {
        let Some(tool) = self.catalog.get(&request.name) else {
            return Err(McpError::invalid_params(
                format!("there is no tool `{}`", request.name),
                None,
            ));
        };
        let arguments = request.arguments.unwrap_or_default();
        let call = match tool.call(&arguments) {
            Ok(call) => call,
            Err(wrong) => {
                return Ok(CallToolResult::structured_error(json!({
                    "code": "invalid_arguments", "detail": wrong,
                })))
            }
        };
        let mut answer = self.dispatch.call(&caller.credential, &call).await;
        if let (Some(wait), Value::Object(problem)) = (answer.retry_after, &mut answer.body) {
            // A rate limit (or an unavailable dependency) says how long to wait.
            problem.insert("retry_after_seconds".into(), wait.into());
        }
        Ok(match answer.status {
            // The operation's own problem (an insufficient scope names the scope it needs; a
            // rate limit, the wait).
            400.. => CallToolResult::structured_error(answer.body),
            _ => match answer.body {
                body @ Value::Object(_) => CallToolResult::structured(body),
                _ => CallToolResult::structured(json!({ "status": answer.status })),
            },
        })
    }
}

impl ServerHandler for VideoVectorMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new(
            "videovector",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "VideoVector: search timed media segments (captions, transcripts) across indexes, \
             run saved prompts and inspect workflow resources. Tools are the API's operations, \
             shown as far as this credential's scopes allow; `credential_inspect` tells which \
             are missing and the scope each needs. Indexes are resources; saved prompts are \
             prompts.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = caller(&context)?;
        let mut tools: Vec<Tool> = self
            .catalog
            .iter()
            .filter(|t| may_call(&caller.principal, t))
            .map(|t| t.tool.clone())
            .collect();
        tools.push(Self::inspect_tool());
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller(&context)?;
        if request.name == INSPECT_TOOL {
            return Ok(CallToolResult::structured(self.inspect(&caller)).into());
        }
        Ok(self.call_operation(&caller, request).await?.into())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = caller(&context)?;
        let page: IndexPage = self
            .read(
                &caller,
                "index_list",
                &cursor_arguments(&request),
                "listing indexes",
            )
            .await?;
        let mut resources: Vec<Value> = Vec::new();
        if request.as_ref().is_none_or(|r| r.cursor.is_none()) && self.may_read_audit(&caller) {
            resources.push(json!({
                "uri": AUDIT_URI,
                "name": "audit-events",
                "title": "Audit log",
                "description": "The organisation's security-relevant actions of the last day \
                    (add ?action=, actor_id=, target_id=, since=, until= or after_sequence= to \
                    choose others).",
                "mimeType": "application/json",
            }));
        }
        resources.extend(page.items.iter().map(|index| {
            json!({
                    "uri": format!("{INDEX_URI_PREFIX}{}", index.id),
                    "name": index.id,
                    "title": index.name,
                    "description": format!(
                        "{} ({} segments)",
                        index.description.as_deref().unwrap_or("an index"),
                        index.segment_count
                    ),
                "mimeType": "application/json",
            })
        }));
        from_json(json!({
            "resources": resources,
            "nextCursor": page.next_cursor,
        }))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        from_json(json!({
            "resourceTemplates": [{
                "uriTemplate": format!("{INDEX_URI_PREFIX}{{index_id}}"),
                "name": "index",
                "description": "An index: its name, description, metadata and segment count.",
                "mimeType": "application/json",
            }]
        }))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = caller(&context)?;
        if request.uri == AUDIT_URI || request.uri.starts_with(&format!("{AUDIT_URI}?")) {
            return self.read_audit_events(&caller, &request.uri).await;
        }
        let id = request
            .uri
            .strip_prefix(INDEX_URI_PREFIX)
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .ok_or_else(|| {
                McpError::resource_not_found(
                    format!("`{}` is not a VideoVector resource", request.uri),
                    None,
                )
            })?;
        let index: Index = self
            .read(
                &caller,
                "index_view",
                &id_argument("index_id", id),
                "reading the index",
            )
            .await?;
        let result: rmcp::model::ReadResourceResult = from_json(json!({
            "contents": [{
                "uri": request.uri,
                "mimeType": "application/json",
                "text": index.to_json().unwrap_or_default().to_string(),
            }]
        }))?;
        Ok(result.into())
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let caller = caller(&context)?;
        let page: PromptPage = self
            .read(
                &caller,
                "prompt_list",
                &cursor_arguments(&request),
                "listing prompts",
            )
            .await?;
        let prompts: Vec<Value> = page
            .items
            .iter()
            .map(|prompt| {
                let arguments: Vec<Value> = prompt
                    .variables
                    .iter()
                    .map(|v| json!({ "name": v, "required": true }))
                    .collect();
                json!({
                    "name": prompt.id,
                    "title": prompt.name,
                    "description": prompt.description.as_deref().unwrap_or(&prompt.name),
                    "arguments": arguments,
                })
            })
            .collect();
        from_json(json!({
            "prompts": prompts,
            "nextCursor": page.next_cursor,
        }))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let caller = caller(&context)?;
        let prompt: Prompt = self
            .read(
                &caller,
                "prompt_view",
                &id_argument("prompt_id", &request.name),
                "reading the prompt",
            )
            .await?;
        let values: BTreeMap<String, String> = request
            .arguments
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        let query = render(&prompt.query_template, &prompt.variables, &values).map_err(|e| {
            McpError::invalid_params(
                e.problem.detail.clone(),
                Some(json!({ "code": e.problem.code.as_str() })),
            )
        })?;
        let instructions = prompt.instructions.as_str();
        let mut text = format!(
            "Search VideoVector's media evidence for: {query}\n\nUse the `search_query` or \
             `index_search` tool with this query, or run the saved prompt with `run_create` \
             (prompt_id `{}`) and read the result with `run_view`.",
            request.name
        );
        if !instructions.is_empty() {
            text = format!("{instructions}\n\n{text}");
        }
        let result: rmcp::model::GetPromptResult = from_json(json!({
            "description": prompt.description.as_deref().unwrap_or(&prompt.name),
            "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
        }))?;
        Ok(result.into())
    }
}
