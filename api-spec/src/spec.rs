//! Produces the OpenAPI document from the declarations, and post-processes it into valid
//! OpenAPI 3.0: the scope each operation declared moves from its security requirements
//! (which must carry empty arrays for apiKey and http schemes) into `x-required-scope`,
//! and is said in the operation's description. Each authenticated operation gets the rate
//! limit family its scope implies (`x-rate-limit-family`), its `RateLimit` and
//! `RateLimit-Policy` response headers, and its 429 `rate_limited` answer, and says how it
//! meets a key restricted to some indexes (`x-index-access`); every list says how it is paged
//! (`x-pagination`, see [`crate::pagination`]).

use poem_openapi::OpenApiService;
use serde_json::{json, Map, Value};

use crate::{
    endpoints::{api, Api},
    index_access::{self, IndexAccess, INDEX_ACCESS_EXTENSION},
    patterns::{NO_NUL_PATTERN, RATE_LIMIT_PATTERN, RATE_LIMIT_POLICY_PATTERN, REQUEST_ID_PATTERN},
};

/// Where the API is mounted.
pub const BASE_PATH: &str = "/api/v2";
/// The vendor extension that carries an operation's required scope.
pub const REQUIRED_SCOPE_EXTENSION: &str = "x-required-scope";
/// The vendor extension that marks an operation whose body is signed by its sender: the
/// server keeps the bytes as received for the signature check.
pub const SIGNED_BODY_EXTENSION: &str = "x-signed-body";
/// The operations whose bodies are signed.
const SIGNED_BODIES: &[&str] = &["leaked_key_report"];
/// The operations counted in a family of their own rather than the one their scope implies.
const OWN_FAMILIES: &[(&str, &str)] = &[("audit_event_list", "audit")];
/// The vendor extension that names the rate limit family an operation is counted in.
pub const RATE_LIMIT_FAMILY_EXTENSION: &str = "x-rate-limit-family";
/// The API's version, as published.
pub const API_VERSION: &str = "2.0.0";

const DESCRIPTION: &str = "The VideoVector public API v2: indexes of timed media segments, \
search across them, chat answers with citations, prompts and their runs, connectors and \
their ingestion jobs, webhooks, and the keys and tokens that guard them.\n\n\
Most workflow endpoints accept either an API key (`X-API-Key: sk_...`) or a JWT bearer token \
(`Authorization: Bearer <jwt>`). API key management endpoints under `/api-keys` require JWT \
bearer auth, and `/mcp/config` requires a verified JWT session.\n\n\
Scopes are hierarchical: `admin` > `write` > `read` > `search`. Each operation's required \
scope is in its `x-required-scope` extension and its description. Errors are \
`application/problem+json` (RFC 9457) with a stable `code`.\n\n\
Create, update, execute, cancel and retry operations take an `Idempotency-Key` header: a \
retry with the same key and body returns the stored response with `Idempotent-Replayed: \
true`; the same key with another body is a 422; a retry while the first is in flight is a \
409 with `Retry-After`. Keys are scoped to your organisation and credential and last 24 \
hours.\n\n\
Every authenticated operation is counted in a rate limit family (`x-rate-limit-family`: \
`search`, `read`, `write`, or `audit` for the audit log) against the limits of the key, or of its organisation, or of \
the server. Answers carry `RateLimit-Policy` (every limit of the family) and `RateLimit` \
(the one with the fewest requests left); past a limit the answer is a 429 `rate_limited` \
with `Retry-After`.\n\n\
An API key may be restricted to some indexes (`index_ids`); each operation's \
`x-index-access` says how it meets such a key (`path`, `named`: other indexes are refused \
with 403 `index_not_allowed`; `listed`: only the key's indexes are shown; `owned`: what \
belongs to another index does not exist; `organisation`: refused; `independent`: allowed).\n\n\
Browsers: a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) at any path \
below is answered 204 for any page, with the path's methods and the headers `X-API-Key`, \
`Content-Type` and `Idempotency-Key`; the request that follows from another site's page is \
held to its key's `allowed_origins` (403 `origin_not_allowed`).";

/// The poem-openapi service for the declarations (mounted by the server).
pub fn service() -> OpenApiService<Api, ()> {
    OpenApiService::new(api(), "VideoVector API", API_VERSION)
        .description(DESCRIPTION)
        .server(BASE_PATH)
}

/// The OpenAPI document, post-processed and pretty-printed, as it is committed.
pub fn generate() -> String {
    let raw: Value = serde_json::from_str(&service().spec()).expect("poem-openapi emits JSON");
    let mut out = serde_json::to_string_pretty(&post_process(raw)).expect("JSON serializes");
    out.push('\n');
    out
}

/// Where a create operation's answer names the resource it made, and the path under which
/// the operations that take that id live: `(operation, JSON pointer to the id, path prefix,
/// path parameter)`. Each becomes an OpenAPI link, so tools can follow a create to its uses.
const LINKS: &[(&str, &str, &str, &str)] = &[
    ("api_key_create", "/key/id", "/api-keys/{key_id}", "key_id"),
    ("api_key_rotate", "/key/id", "/api-keys/{key_id}", "key_id"),
    ("index_create", "/id", "/indexes/{index_id}", "index_id"),
    ("prompt_create", "/id", "/prompts/{prompt_id}", "prompt_id"),
    ("run_create", "/id", "/runs/{run_id}", "run_id"),
    ("run_retry", "/id", "/runs/{run_id}", "run_id"),
    (
        "connector_create",
        "/id",
        "/connectors/{connector_id}",
        "connector_id",
    ),
    ("connector_sync", "/id", "/jobs/{job_id}", "job_id"),
    ("job_retry", "/id", "/jobs/{job_id}", "job_id"),
    (
        "search_query",
        "/next_page_token",
        "/search/{page_token}",
        "page_token",
    ),
    // Its answer is the webhook and its signing secret, once.
    (
        "webhook_create",
        "/webhook/id",
        "/webhooks/{webhook_id}",
        "webhook_id",
    ),
];

fn post_process(mut spec: Value) -> Value {
    forbid_nul_in_strings(&mut spec);
    declare_format_ranges(&mut spec);
    add_links(&mut spec);
    declare_nullable(&mut spec);
    declare_rate_limit_headers(&mut spec);
    declare_request_id(&mut spec);
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                if let Some(operation) = operation.as_object_mut() {
                    move_scope_to_extension(operation);
                    let id = operation.get("operationId").and_then(Value::as_str);
                    if let Some((_, family)) = OWN_FAMILIES.iter().find(|(o, _)| Some(*o) == id) {
                        operation.insert(RATE_LIMIT_FAMILY_EXTENSION.into(), (*family).into());
                    }
                    declare_rate_limits(operation);
                    declare_index_access(operation);
                    crate::pagination::declare(operation);
                    let id = operation.get("operationId").and_then(Value::as_str);
                    if id.is_some_and(|id| SIGNED_BODIES.contains(&id)) {
                        operation.insert(SIGNED_BODY_EXTENSION.into(), Value::Bool(true));
                    }
                }
            }
        }
    }
    crate::examples::declare(&mut spec);
    spec
}

fn move_scope_to_extension(operation: &mut Map<String, Value>) {
    let mut schemes = Vec::new();
    let mut scope: Option<String> = None;
    if let Some(requirements) = operation.get_mut("security").and_then(Value::as_array_mut) {
        for requirement in requirements.iter_mut() {
            let Some(requirement) = requirement.as_object_mut() else {
                continue;
            };
            for (name, scopes) in requirement.iter_mut() {
                schemes.push(name.clone());
                if let Some(first) = scopes
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(Value::as_str)
                {
                    scope = Some(first.to_string());
                }
                *scopes = json!([]);
            }
        }
    }
    if schemes.is_empty() {
        return;
    }
    let who = match schemes
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["ApiKey", "Bearer"] => "an API key (`X-API-Key`) or a JWT bearer token",
        ["Bearer"] => "a JWT bearer token (API keys are refused with 401)",
        ["VerifiedBearer"] => "a JWT bearer token of a verified session",
        _ => "the schemes listed under `security`",
    };
    let security = match &scope {
        Some(scope) => format!("**Security:** {who} holding scope `{scope}` or higher."),
        None => format!("**Security:** {who}; no particular scope."),
    };
    let description = match operation.get("description").and_then(Value::as_str) {
        Some(text) => format!("{text}\n\n{security}"),
        None => security,
    };
    operation.insert("description".into(), Value::String(description));
    if let Some(scope) = scope {
        operation.insert(REQUIRED_SCOPE_EXTENSION.into(), Value::String(scope));
    }
}

/// The family an operation requiring `scope` is counted in (`None`: a public operation).
/// An authenticated operation with no particular scope reads.
pub fn rate_limit_family(authenticated: bool, scope: Option<&str>) -> Option<&'static str> {
    match (authenticated, scope) {
        (false, _) => None,
        (true, Some("search")) => Some("search"),
        (true, Some("write" | "admin")) => Some("write"),
        (true, _) => Some("read"),
    }
}

/// The headers of [`declare_rate_limits`], declared once under `components.headers`.
fn declare_rate_limit_headers(spec: &mut Value) {
    let headers = json!({
        "RateLimit-Policy": {
            "description": "Every limit of the operation's family for this credential, as \
                `\"name\";q=<quota>;w=<window seconds>`, comma-separated \
                (draft-ietf-httpapi-ratelimit-headers). Absent when none applies.",
            "schema": {"type": "string", "pattern": RATE_LIMIT_POLICY_PATTERN},
        },
        "RateLimit": {
            "description": "The limit with the fewest requests left, as \
                `\"name\";r=<remaining>;t=<seconds until its window resets>`. Absent when \
                no limit applies.",
            "schema": {"type": "string", "pattern": RATE_LIMIT_PATTERN},
        },
        "Retry-After": {
            "description": "Seconds to wait before the request can succeed.",
            "schema": {"type": "integer", "minimum": 1},
        },
    });
    let components = spec
        .as_object_mut()
        .map(|s| s.entry("components").or_insert_with(|| json!({})));
    if let Some(Value::Object(components)) = components {
        components.insert("headers".into(), headers);
    }
}

/// Names an authenticated operation's family in [`RATE_LIMIT_FAMILY_EXTENSION`] (kept when
/// the declaration set one), declares the rate limit headers on every answer but a 401
/// (given before the credential is known), and adds the 429 answer.
fn declare_rate_limits(operation: &mut Map<String, Value>) {
    let authenticated = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let scope = operation
        .get(REQUIRED_SCOPE_EXTENSION)
        .and_then(Value::as_str);
    let Some(family) = rate_limit_family(authenticated, scope) else {
        return;
    };
    operation
        .entry(RATE_LIMIT_FAMILY_EXTENSION)
        .or_insert_with(|| Value::String(family.into()));
    let header = |name: &str| json!({"$ref": format!("#/components/headers/{name}")});
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let problem = responses
        .values()
        .find_map(|r| r.pointer("/content/application~1problem+json").cloned());
    if let Some(problem) = problem {
        responses.entry("429").or_insert_with(|| {
            json!({
                "description": "A rate limit of the operation's family is spent \
                    (`rate_limited`); retry after `Retry-After` seconds.",
                "content": {"application/problem+json": problem},
            })
        });
    }
    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        if status == "401" {
            continue;
        }
        let headers = response
            .entry("headers")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(headers) = headers {
            headers.insert("RateLimit-Policy".into(), header("RateLimit-Policy"));
            headers.insert("RateLimit".into(), header("RateLimit"));
            if status == "429" {
                headers.insert("Retry-After".into(), header("Retry-After"));
            }
        }
    }
}

/// Declares how an authenticated operation meets a key restricted to some indexes
/// ([`INDEX_ACCESS_EXTENSION`]) and says it in the description. Every authenticated
/// operation must be in [`index_access::OPERATIONS`]: a new one cannot slip past the
/// restriction undeclared.
fn declare_index_access(operation: &mut Map<String, Value>) {
    let authenticated = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if !authenticated {
        return;
    }
    let id = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let access =
        index_access::of(id).unwrap_or_else(|| panic!("{id} is not in index_access::OPERATIONS"));
    let refuses = matches!(
        access,
        IndexAccess::Path | IndexAccess::Named | IndexAccess::Organisation
    );
    let declares_403 = operation
        .get("responses")
        .and_then(|r| r.get("403"))
        .is_some();
    assert!(
        !refuses || declares_403,
        "{id} refuses restricted keys with 403 but does not declare a 403"
    );
    operation.insert(
        INDEX_ACCESS_EXTENSION.into(),
        Value::String(access.as_str().into()),
    );
    if let Some(Value::String(description)) = operation.get_mut("description") {
        description.push_str("\n\n");
        description.push_str(access.describe());
    }
}

/// Calls `visit` on every object in `value`, outer before inner; each object's members are
/// visited after `visit` has changed it. The spec's post-processing and the client's copy of
/// the spec are rewritten with it.
pub fn for_each_object_mut(value: &mut Value, visit: &mut impl FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            visit(map);
            map.values_mut()
                .for_each(|child| for_each_object_mut(child, visit));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|child| for_each_object_mut(child, visit)),
        _ => {}
    }
}

/// Gives [`NO_NUL_PATTERN`] to every string schema (properties, items, map values,
/// parameters) that constrains its characters no other way.
fn forbid_nul_in_strings(spec: &mut Value) {
    for_each_object_mut(spec, &mut |map| {
        let plain_string = map.get("type").and_then(Value::as_str) == Some("string")
            && !["pattern", "format", "enum"]
                .iter()
                .any(|k| map.contains_key(*k));
        if plain_string {
            map.insert("pattern".into(), Value::String(NO_NUL_PATTERN.into()));
        }
    });
}

/// Adds the [`LINKS`]: on each create's success response, one link per operation under its
/// path prefix, passing the created id as that operation's path parameter.
fn add_links(spec: &mut Value) {
    let mut targets: Vec<(String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().into_iter().flatten() {
        for operation in item.as_object().into_iter().flatten().map(|(_, op)| op) {
            if let Some(id) = operation["operationId"].as_str() {
                targets.push((path.clone(), id.to_string()));
            }
        }
    }
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        for operation in item.as_object_mut().into_iter().flatten().map(|(_, op)| op) {
            let Some(&(source, pointer, prefix, param)) = LINKS
                .iter()
                .find(|(id, ..)| operation["operationId"].as_str() == Some(*id))
            else {
                continue;
            };
            let mut links = Map::new();
            for (path, target) in &targets {
                if target != source && (path == prefix || path.starts_with(&format!("{prefix}/"))) {
                    links.insert(
                        target.clone(),
                        json!({
                            "operationId": target,
                            "parameters": {param: format!("$response.body#{pointer}")},
                        }),
                    );
                }
            }
            let Some(responses) = operation["responses"].as_object_mut() else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                if status.starts_with('2') && !links.is_empty() {
                    response["links"] = Value::Object(links.clone());
                }
            }
        }
    }
}

/// `X-Request-Id` on every answer of every operation, declared once under
/// `components.headers` (required: the server always sends it).
fn declare_request_id(spec: &mut Value) {
    spec["components"]["headers"]["X-Request-Id"] = json!({
        "description": "The request's id: the caller's `X-Request-Id` when it sent a \
            well-formed one (1-200 of letters, digits and `._:/+=-`), else one the server \
            made. Problems repeat it in `request_id`; quote it when asking for help.",
        "required": true,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    });
    let header = json!({"$ref": "#/components/headers/X-Request-Id"});
    for_each_object_mut(&mut spec["paths"], &mut |map| {
        if let Some(responses) = map.get_mut("responses").and_then(Value::as_object_mut) {
            for response in responses.values_mut().filter_map(Value::as_object_mut) {
                let headers = response.entry("headers").or_insert_with(|| json!({}));
                if let Some(headers) = headers.as_object_mut() {
                    headers.insert("X-Request-Id".into(), header.clone());
                }
            }
        }
    });
}

/// Request properties declared `MaybeUndefined` (where `null` means "remove it"): poem-openapi
/// does not say they take `null`, so the spec is told here. `(schema, property)`.
const NULLABLE: &[(&str, &str)] = &[("ApiKeyUpdate", "owner_id"), ("ApiKeyUpdate", "max_top_k")];

/// Marks the [`NULLABLE`] properties `nullable`; one the spec does not have is a bug here.
fn declare_nullable(spec: &mut Value) {
    for (schema, property) in NULLABLE {
        let declared = spec
            .pointer_mut(&format!(
                "/components/schemas/{schema}/properties/{property}"
            ))
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{schema}.{property} is not in the spec"));
        declared.insert("nullable".into(), Value::Bool(true));
    }
}

/// States the range a sized integer format implies (`uint32` is 0 to 4294967295) as
/// `minimum` / `maximum` where the declaration gave none: the server refuses values outside
/// it, and tools that do not know poem-openapi's formats must be told.
fn declare_format_ranges(spec: &mut Value) {
    for_each_object_mut(spec, &mut |map| {
        let range = map
            .get("format")
            .and_then(Value::as_str)
            .and_then(crate::schema_check::format_range);
        if let (Some((lo, hi)), Some("integer")) = (range, map.get("type").and_then(Value::as_str))
        {
            let number = |n: i128| match i64::try_from(n) {
                Ok(n) => json!(n),
                Err(_) => json!(n as u64),
            };
            map.entry("minimum").or_insert_with(|| number(lo));
            map.entry("maximum").or_insert_with(|| number(hi));
        }
    });
}
