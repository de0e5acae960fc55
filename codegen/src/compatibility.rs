//! The breaking-change gate: what changed between two contracts, and whether a client built
//! against the older can break on the newer. `codegen check` compares the committed spec
//! with the latest released one (`api-spec/released/<version>.json`) and fails on a breaking
//! change unless the major version went up; the changelog page is written from the same
//! changes.
//!
//! Breaking, as oasdiff counts it: an operation removed or renamed, or moved to another
//! method or path; a parameter or property removed; a new required parameter or property in
//! a request; a request's value narrowed (a type changed, an enum value dropped, a length,
//! bound or pattern tightened); a property an answer always had made optional; a success
//! status changed; a security scheme dropped or a scope raised. A new operation, an optional
//! parameter or property, a new error status or a widened input is not.
//!
//! Schemas are compared with their `$ref`s inlined, so a change to a shared schema is
//! reported at every operation that reaches it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use videovector_api_spec::contract::{Contract, Operation, Parameter};

/// One difference between two contracts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub breaking: bool,
    /// The operation it is seen at.
    pub operation: String,
    /// What changed, in a sentence fragment (`` parameter `cursor` (query) removed ``).
    pub what: String,
}

/// Which way a schema travels: what a client sends may only widen, what it receives may
/// only gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Answer,
}

struct Differences<'a> {
    operation: &'a str,
    changes: Vec<Change>,
}

impl Differences<'_> {
    fn add(&mut self, breaking: bool, what: String) {
        self.changes.push(Change {
            breaking,
            operation: self.operation.to_string(),
            what,
        });
    }
}

/// Every difference from `old` to `new`, breaking ones first, each group by operation.
pub fn changes(old: &Contract, new: &Contract) -> Vec<Change> {
    let mut all = Vec::new();
    for before in old.operations() {
        let mut diff = Differences {
            operation: before.id(),
            changes: Vec::new(),
        };
        match new.operation(before.id()) {
            Some(after) => compare_operation(old, new, before, after, &mut diff),
            None => {
                let moved = new.operations().iter().find(|o| {
                    o.rule.method == before.rule.method && o.rule.path == before.rule.path
                });
                let what = match moved {
                    Some(renamed) => format!("renamed to `{}`", renamed.id()),
                    None => format!("removed (`{} {}`)", before.rule.method, before.rule.path),
                };
                diff.add(true, what);
            }
        }
        all.extend(diff.changes);
    }
    for after in new.operations() {
        if old.operation(after.id()).is_none() {
            all.push(Change {
                breaking: false,
                operation: after.id().to_string(),
                what: format!("added (`{} {}`)", after.rule.method, after.rule.path),
            });
        }
    }
    all.sort_by(|a, b| b.breaking.cmp(&a.breaking).then_with(|| a.cmp(b)));
    all.dedup();
    all
}

fn compare_operation(
    old: &Contract,
    new: &Contract,
    before: &Operation,
    after: &Operation,
    diff: &mut Differences<'_>,
) {
    if (before.rule.method.as_str(), before.rule.path.as_str())
        != (after.rule.method.as_str(), after.rule.path.as_str())
    {
        diff.add(
            true,
            format!(
                "moved from `{} {}` to `{} {}`",
                before.rule.method, before.rule.path, after.rule.method, after.rule.path
            ),
        );
    }
    compare_security(before, after, diff);
    compare_parameters(old, new, before, after, diff);
    compare_body(old, new, before, after, diff);
    compare_answers(old, new, before, after, diff);
}

fn compare_security(before: &Operation, after: &Operation, diff: &mut Differences<'_>) {
    let (was, is) = (&before.rule.schemes, &after.rule.schemes);
    if was.is_empty() && !is.is_empty() {
        diff.add(true, "now requires a credential".into());
    }
    for scheme in was.iter().filter(|s| !is.is_empty() && !is.contains(s)) {
        diff.add(true, format!("no longer accepts `{scheme}`"));
    }
    for scheme in is.iter().filter(|s| !was.is_empty() && !was.contains(s)) {
        diff.add(false, format!("also accepts `{scheme}`"));
    }
    match (before.rule.required_scope, after.rule.required_scope) {
        (Some(was), Some(is)) if is > was => diff.add(
            true,
            format!("requires scope `{}` (was `{}`)", is.as_str(), was.as_str()),
        ),
        (Some(was), Some(is)) if is < was => diff.add(
            false,
            format!("requires scope `{}` (was `{}`)", is.as_str(), was.as_str()),
        ),
        (None, Some(is)) => diff.add(true, format!("requires scope `{}`", is.as_str())),
        _ => {}
    }
}

fn parameter_label(p: &Parameter) -> String {
    format!("parameter `{}` ({:?})", p.name, p.location).to_lowercase()
}

fn compare_parameters(
    old: &Contract,
    new: &Contract,
    before: &Operation,
    after: &Operation,
    diff: &mut Differences<'_>,
) {
    let key = |p: &Parameter| (format!("{:?}", p.location), p.name.to_ascii_lowercase());
    let afters: BTreeMap<_, &Parameter> = after.parameters.iter().map(|p| (key(p), p)).collect();
    let befores: BTreeMap<_, &Parameter> = before.parameters.iter().map(|p| (key(p), p)).collect();
    for (k, was) in &befores {
        let label = parameter_label(was);
        match afters.get(k) {
            None => diff.add(true, format!("{label} removed")),
            Some(is) => {
                if is.required && !was.required {
                    diff.add(true, format!("{label} is now required"));
                }
                compare_schema(
                    &label,
                    &old.inline_refs(&was.schema),
                    &new.inline_refs(&is.schema),
                    Side::Request,
                    diff,
                );
            }
        }
    }
    for (k, is) in &afters {
        if !befores.contains_key(k) {
            let label = parameter_label(is);
            if is.required {
                diff.add(true, format!("new required {label}"));
            } else {
                diff.add(false, format!("new optional {label}"));
            }
        }
    }
}

fn compare_body(
    old: &Contract,
    new: &Contract,
    before: &Operation,
    after: &Operation,
    diff: &mut Differences<'_>,
) {
    match (&before.body, &after.body) {
        (None, Some(is)) if is.required => diff.add(true, "now requires a body".into()),
        (Some(_), None) => diff.add(true, "no longer takes a body".into()),
        (Some(was), Some(is)) => {
            if is.required && !was.required {
                diff.add(true, "now requires a body".into());
            }
            compare_schema(
                "the body",
                &old.inline_refs(&was.schema),
                &new.inline_refs(&is.schema),
                Side::Request,
                diff,
            );
        }
        _ => {}
    }
}

fn compare_answers(
    old: &Contract,
    new: &Contract,
    before: &Operation,
    after: &Operation,
    diff: &mut Differences<'_>,
) {
    let success = |o: &Operation| -> BTreeSet<String> {
        o.responses
            .iter()
            .filter(|r| r.status.starts_with('2'))
            .map(|r| r.status.clone())
            .collect()
    };
    let (was, is) = (success(before), success(after));
    if was != is {
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        diff.add(
            true,
            format!("answers {} on success (was {})", list(&is), list(&was)),
        );
    }
    for was in &before.responses {
        let Some(is) = after.responses.iter().find(|r| r.status == was.status) else {
            continue;
        };
        // Successes are JSON, errors problem+json: each media type both declare.
        for was_media in &was.content {
            let Some(is_media) = is.media(&was_media.media_type) else {
                continue;
            };
            // Every error answer is a `Problem`: one label, so a change to it is one change.
            let label = match was.status.starts_with('2') {
                true => format!("the {} answer", was.status),
                false => "an error answer".to_string(),
            };
            compare_schema(
                &label,
                &old.inline_refs(&was_media.schema),
                &new.inline_refs(&is_media.schema),
                Side::Answer,
                diff,
            );
        }
    }
    for is in after
        .responses
        .iter()
        .filter(|r| !r.status.starts_with('2'))
    {
        if !before.responses.iter().any(|r| r.status == is.status) {
            diff.add(false, format!("may answer {}", is.status));
        }
    }
}

/// `allOf: [schema, {description}]` (how a described reference is written) as the schema.
fn plain(schema: &Value) -> Map<String, Value> {
    let Some(map) = schema.as_object() else {
        return Map::new();
    };
    let Some(Value::Array(parts)) = map.get("allOf") else {
        return map.clone();
    };
    let substantive: Vec<&Value> = parts
        .iter()
        .filter(|p| {
            p.as_object()
                .is_some_and(|o| o.keys().any(|k| k != "description"))
        })
        .collect();
    match substantive.as_slice() {
        [only] => {
            let mut merged = plain(only);
            for (k, v) in map.iter().filter(|(k, _)| *k != "allOf") {
                merged.entry(k.clone()).or_insert_with(|| v.clone());
            }
            merged
        }
        _ => map.clone(),
    }
}

fn number(map: &Map<String, Value>, key: &str) -> Option<f64> {
    map.get(key).and_then(Value::as_f64)
}

fn enum_values(map: &Map<String, Value>) -> Option<Vec<String>> {
    map.get("enum")
        .and_then(Value::as_array)
        .map(|values| values.iter().map(|v| v.to_string()).collect())
}

fn compare_schema(at: &str, old: &Value, new: &Value, side: Side, diff: &mut Differences<'_>) {
    let (was, is) = (plain(old), plain(new));
    if was.get("type") != is.get("type") && was.get("type").is_some() {
        diff.add(
            true,
            format!(
                "{at}: type {} (was {})",
                is.get("type").unwrap_or(&Value::Null),
                was["type"]
            ),
        );
        return;
    }
    let nullable = |m: &Map<String, Value>| m.get("nullable") == Some(&Value::Bool(true));
    match side {
        Side::Request if nullable(&was) && !nullable(&is) => {
            diff.add(true, format!("{at}: null no longer accepted"))
        }
        Side::Answer if !nullable(&was) && nullable(&is) => {
            diff.add(true, format!("{at}: may now be null"))
        }
        _ => {}
    }
    compare_enums(at, &was, &is, side, diff);
    if side == Side::Request {
        compare_bounds(at, &was, &is, diff);
    }
    compare_properties(at, &was, &is, side, diff);
    if let (Some(a), Some(b)) = (was.get("items"), is.get("items")) {
        compare_schema(&format!("{at}[]"), a, b, side, diff);
    }
    if let (Some(a @ Value::Object(_)), Some(b @ Value::Object(_))) = (
        was.get("additionalProperties"),
        is.get("additionalProperties"),
    ) {
        compare_schema(&format!("{at}{{*}}"), a, b, side, diff);
    }
    for key in ["oneOf", "anyOf"] {
        if let (Some(a), Some(b)) = (was.get(key), is.get(key)) {
            if a != b {
                diff.add(true, format!("{at}: its alternatives ({key}) changed"));
            }
        }
    }
}

fn compare_enums(
    at: &str,
    was: &Map<String, Value>,
    is: &Map<String, Value>,
    side: Side,
    diff: &mut Differences<'_>,
) {
    match (enum_values(was), enum_values(is)) {
        (Some(a), Some(b)) => {
            let gone: Vec<&String> = a.iter().filter(|v| !b.contains(v)).collect();
            let new: Vec<&String> = b.iter().filter(|v| !a.contains(v)).collect();
            let join = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            if !gone.is_empty() {
                let (breaking, verb) = match side {
                    Side::Request => (true, "no longer accepts"),
                    Side::Answer => (false, "no longer answers"),
                };
                diff.add(breaking, format!("{at}: {verb} {}", join(&gone)));
            }
            if !new.is_empty() {
                let verb = match side {
                    Side::Request => "also accepts",
                    Side::Answer => "may also answer",
                };
                diff.add(false, format!("{at}: {verb} {}", join(&new)));
            }
        }
        (None, Some(_)) if side == Side::Request => {
            diff.add(true, format!("{at}: now limited to a list of values"))
        }
        _ => {}
    }
}

fn compare_bounds(
    at: &str,
    was: &Map<String, Value>,
    is: &Map<String, Value>,
    diff: &mut Differences<'_>,
) {
    for key in ["maxLength", "maximum", "maxItems", "maxProperties"] {
        match (number(was, key), number(is, key)) {
            (None, Some(b)) => diff.add(true, format!("{at}: {key} {b} added")),
            (Some(a), Some(b)) if b < a => {
                diff.add(true, format!("{at}: {key} lowered to {b} (was {a})"))
            }
            (Some(a), Some(b)) if b > a => {
                diff.add(false, format!("{at}: {key} raised to {b} (was {a})"))
            }
            _ => {}
        }
    }
    for key in ["minLength", "minimum", "minItems"] {
        match (number(was, key), number(is, key)) {
            (None, Some(b)) if b > 0.0 => diff.add(true, format!("{at}: {key} {b} added")),
            (Some(a), Some(b)) if b > a => {
                diff.add(true, format!("{at}: {key} raised to {b} (was {a})"))
            }
            _ => {}
        }
    }
    for key in ["pattern", "format"] {
        match (was.get(key), is.get(key)) {
            (a, Some(b)) if a != Some(b) => diff.add(true, format!("{at}: {key} now {b}")),
            _ => {}
        }
    }
}

fn compare_properties(
    at: &str,
    was: &Map<String, Value>,
    is: &Map<String, Value>,
    side: Side,
    diff: &mut Differences<'_>,
) {
    let properties =
        |m: &Map<String, Value>| m.get("properties").and_then(Value::as_object).cloned();
    let required = |m: &Map<String, Value>| -> BTreeSet<String> {
        m.get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let (Some(a), Some(b)) = (properties(was), properties(is)) else {
        return;
    };
    let (a_required, b_required) = (required(was), required(is));
    for (name, before) in &a {
        let label = format!("{at}.{name}");
        let Some(after) = b.get(name) else {
            diff.add(true, format!("{label} removed"));
            continue;
        };
        match side {
            Side::Request if b_required.contains(name) && !a_required.contains(name) => {
                diff.add(true, format!("{label} is now required"))
            }
            Side::Answer if a_required.contains(name) && !b_required.contains(name) => {
                diff.add(true, format!("{label} may now be absent"))
            }
            _ => {}
        }
        compare_schema(&label, before, after, side, diff);
    }
    for name in b.keys().filter(|n| !a.contains_key(*n)) {
        let label = format!("{at}.{name}");
        if side == Side::Request && b_required.contains(name) {
            diff.add(true, format!("new required {label}"));
        } else {
            diff.add(false, format!("new {label}"));
        }
    }
}

/// A version's `major.minor.patch`, for ordering released files.
pub fn version_key(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// The gate: `Ok` with the changes when `new` may replace `old`, `Err` naming every
/// breaking change when it may not (a breaking change needs a higher major version).
pub fn gate(old: &Contract, new: &Contract) -> Result<Vec<Change>, Vec<Change>> {
    let version = |c: &Contract| {
        c.document()["info"]["version"]
            .as_str()
            .and_then(version_key)
            .unwrap_or_default()
    };
    let all = changes(old, new);
    let breaking = all.iter().any(|c| c.breaking);
    if breaking && version(new).0 <= version(old).0 {
        return Err(all.into_iter().filter(|c| c.breaking).collect());
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use videovector_api_spec::COMMITTED_SPEC;

    use super::*;

    fn committed() -> Value {
        serde_json::from_str(COMMITTED_SPEC).unwrap()
    }

    /// The breaking changes the gate refuses from the committed spec to an `edit`ed copy.
    fn breaks(edit: impl FnOnce(&mut Value)) -> Vec<String> {
        let old = Contract::from_document(committed()).unwrap();
        let mut document = committed();
        edit(&mut document);
        let new = Contract::from_document(document).unwrap();
        match gate(&old, &new) {
            Ok(_) => Vec::new(),
            Err(breaking) => breaking
                .into_iter()
                .map(|c| format!("{}: {}", c.operation, c.what))
                .collect(),
        }
    }

    fn schema<'a>(document: &'a mut Value, name: &str) -> &'a mut Value {
        &mut document["components"]["schemas"][name]
    }

    #[test]
    fn the_same_contract_changes_nothing() {
        assert_eq!(breaks(|_| {}), Vec::<String>::new());
        let c = Contract::from_document(committed()).unwrap();
        assert!(changes(&c, &c).is_empty());
    }

    #[test]
    fn a_removed_or_renamed_operation_breaks() {
        let removed = breaks(|d| {
            d["paths"]["/prompts"]
                .as_object_mut()
                .unwrap()
                .remove("get");
        });
        assert_eq!(removed, ["prompt_list: removed (`GET /prompts`)"]);
        let renamed =
            breaks(|d| d["paths"]["/prompts"]["get"]["operationId"] = json!("prompts_all"));
        assert_eq!(renamed, ["prompt_list: renamed to `prompts_all`"]);
    }

    #[test]
    fn a_removed_parameter_or_a_new_required_one_breaks() {
        let removed = breaks(|d| {
            let parameters = d["paths"]["/api-keys"]["get"]["parameters"]
                .as_array_mut()
                .unwrap();
            parameters.retain(|p| p["name"] != "owner_id");
        });
        assert_eq!(
            removed,
            ["api_key_list: parameter `owner_id` (query) removed"]
        );
        let required = breaks(|d| {
            d["paths"]["/api-keys"]["get"]["parameters"][2]["required"] = json!(true);
        });
        assert_eq!(
            required,
            ["api_key_list: parameter `owner_id` (query) is now required"]
        );
        let added = breaks(|d| {
            d["paths"]["/prompts"]["get"]["parameters"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "team", "in": "query", "required": true, "schema": {"type": "string"}}));
        });
        assert_eq!(
            added,
            ["prompt_list: new required parameter `team` (query)"]
        );
    }

    #[test]
    fn a_new_required_input_property_breaks_and_an_optional_one_does_not() {
        let required = breaks(|d| {
            let prompt = schema(d, "PromptCreate");
            prompt["properties"]["team"] = json!({"type": "string"});
            prompt["required"]
                .as_array_mut()
                .unwrap()
                .push(json!("team"));
        });
        assert_eq!(required, ["prompt_create: new required the body.team"]);
        let optional = breaks(|d| {
            schema(d, "PromptCreate")["properties"]["team"] = json!({"type": "string"});
        });
        assert!(optional.is_empty());
    }

    #[test]
    fn a_removed_or_no_longer_promised_answer_property_breaks() {
        let removed = breaks(|d| {
            schema(d, "Prompt")["properties"]
                .as_object_mut()
                .unwrap()
                .remove("instructions");
        });
        assert!(
            removed.contains(&"prompt_view: the 200 answer.instructions removed".to_string()),
            "{removed:?}"
        );
        let optional = breaks(|d| {
            let required = schema(d, "Prompt")["required"].as_array_mut().unwrap();
            required.retain(|n| n != "instructions");
        });
        assert!(
            optional.contains(
                &"prompt_view: the 200 answer.instructions may now be absent".to_string()
            ),
            "{optional:?}"
        );
    }

    #[test]
    fn a_narrowed_input_type_or_enum_breaks_and_a_widened_one_does_not() {
        let narrowed = breaks(|d| {
            schema(d, "PromptCreate")["properties"]["name"]["maxLength"] = json!(50);
        });
        assert_eq!(
            narrowed,
            ["prompt_create: the body.name: maxLength lowered to 50 (was 200)"]
        );
        let widened = breaks(|d| {
            schema(d, "PromptCreate")["properties"]["name"]["maxLength"] = json!(500);
        });
        assert!(widened.is_empty());
        let retyped = breaks(|d| {
            schema(d, "PromptCreate")["properties"]["name"] = json!({"type": "integer"});
        });
        assert_eq!(
            retyped,
            ["prompt_create: the body.name: type \"integer\" (was \"string\")"]
        );
        let dropped = breaks(|d| {
            let scopes = schema(d, "Scope")["enum"].as_array_mut().unwrap();
            scopes.retain(|s| s != "search");
        });
        assert!(
            dropped.contains(
                &"api_key_create: the body.scopes[]: no longer accepts \"search\"".to_string()
            ),
            "{dropped:?}"
        );
    }

    #[test]
    fn a_new_error_code_is_listed_and_does_not_break() {
        let old = Contract::from_document(committed()).unwrap();
        let mut document = committed();
        document["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array_mut()
            .unwrap()
            .push(json!("brand_new"));
        let new = Contract::from_document(document).unwrap();
        let all = gate(&old, &new).expect("not breaking");
        assert!(
            all.iter().any(|c| c.operation == "index_view"
                && c.what == "an error answer.code: may also answer \"brand_new\""),
            "{all:#?}"
        );
    }

    #[test]
    fn a_changed_success_status_or_security_breaks() {
        let status = breaks(|d| {
            let responses = d["paths"]["/prompts"]["post"]["responses"]
                .as_object_mut()
                .unwrap();
            let created = responses.remove("201").unwrap();
            responses.insert("200".into(), created);
        });
        assert_eq!(status, ["prompt_create: answers 200 on success (was 201)"]);
        let scope = breaks(|d| {
            d["paths"]["/prompts"]["get"]["x-required-scope"] = json!("admin");
        });
        assert_eq!(scope, ["prompt_list: requires scope `admin` (was `read`)"]);
        let scheme = breaks(|d| {
            let security = d["paths"]["/prompts"]["get"]["security"]
                .as_array_mut()
                .unwrap();
            security.retain(|s| s.get("ApiKey").is_none());
        });
        assert_eq!(scheme, ["prompt_list: no longer accepts `ApiKey`"]);
    }

    #[test]
    fn a_breaking_change_passes_with_a_new_major_version_only() {
        let edit = |d: &mut Value| {
            d["paths"]["/prompts"]
                .as_object_mut()
                .unwrap()
                .remove("get");
        };
        assert!(!breaks(|d| {
            edit(d);
            d["info"]["version"] = json!("2.1.0");
        })
        .is_empty());
        assert!(breaks(|d| {
            edit(d);
            d["info"]["version"] = json!("3.0.0");
        })
        .is_empty());
    }
}
