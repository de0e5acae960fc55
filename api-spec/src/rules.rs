//! Reads each operation's security rule back out of an OpenAPI document. The server builds
//! its enforcement table from the committed spec with this, and the tests derive their
//! expectations from it, so neither keeps a second list.

use serde_json::Value;

use crate::{
    dto::rate_limits::RateLimitFamily,
    index_access::{IndexAccess, INDEX_ACCESS_EXTENSION},
    scopes::Scope,
    spec::{RATE_LIMIT_FAMILY_EXTENSION, REQUIRED_SCOPE_EXTENSION, SIGNED_BODY_EXTENSION},
};

/// What one operation requires of a request, as its spec says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRule {
    pub operation_id: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// The path template below the base path, e.g. `/indexes/{index_id}`.
    pub path: String,
    /// Accepted schemes, in spec order; empty for a public operation.
    pub schemes: Vec<String>,
    /// The scope required, if any.
    pub required_scope: Option<Scope>,
    /// Whether the operation takes an `Idempotency-Key` header.
    pub idempotent: bool,
    /// The rate limit family it is counted in (`None`: a public operation, not counted).
    pub family: Option<RateLimitFamily>,
    /// How it meets a key restricted to some indexes (`None`: a public operation).
    pub index_access: Option<IndexAccess>,
    /// Whether its body is signed by its sender (kept as received for the check).
    pub signed_body: bool,
}

/// The value the extension `name` of `operation` names, parsed by `parse`; `None` when the
/// operation has none, an error naming `what` for a value `parse` does not know.
fn named_extension<T>(
    operation: &Value,
    operation_id: &str,
    name: &str,
    what: &str,
    parse: &dyn Fn(&str) -> Option<T>,
) -> Result<Option<T>, String> {
    let Some(value) = operation.get(name) else {
        return Ok(None);
    };
    let text = value.as_str().unwrap_or_default();
    parse(text)
        .map(Some)
        .ok_or_else(|| format!("{operation_id}: unknown {what} `{text}`"))
}

/// Every operation's rule, in spec order. Fails on an unknown scope name.
pub fn operation_rules(spec: &Value) -> Result<Vec<OperationRule>, String> {
    let mut rules = Vec::new();
    let Some(paths) = spec.get("paths").and_then(Value::as_object) else {
        return Err("the spec has no `paths`".into());
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, operation) in item {
            if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                continue;
            }
            let operation_id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{method} {path} has no operationId"))?
                .to_string();
            let schemes = operation
                .get("security")
                .and_then(Value::as_array)
                .map(|reqs| {
                    reqs.iter()
                        .filter_map(Value::as_object)
                        .flat_map(|req| req.keys().cloned())
                        .collect()
                })
                .unwrap_or_default();
            let required_scope = named_extension(
                operation,
                &operation_id,
                REQUIRED_SCOPE_EXTENSION,
                "scope",
                &Scope::parse,
            )?;
            let family = named_extension(
                operation,
                &operation_id,
                RATE_LIMIT_FAMILY_EXTENSION,
                "rate limit family",
                &RateLimitFamily::parse,
            )?;
            let index_access = named_extension(
                operation,
                &operation_id,
                INDEX_ACCESS_EXTENSION,
                "index access",
                &IndexAccess::parse,
            )?;
            let idempotent = operation
                .get("parameters")
                .and_then(Value::as_array)
                .is_some_and(|params| {
                    params.iter().any(|p| {
                        p.get("in").and_then(Value::as_str) == Some("header")
                            && p.get("name")
                                .and_then(Value::as_str)
                                .is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key"))
                    })
                });
            rules.push(OperationRule {
                operation_id,
                method: method.to_uppercase(),
                path: path.clone(),
                schemes,
                required_scope,
                idempotent,
                family,
                index_access,
                signed_body: operation
                    .get(SIGNED_BODY_EXTENSION)
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            });
        }
    }
    Ok(rules)
}
