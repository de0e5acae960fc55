//! How a change is described: the fields that differ between the resource's public view
//! before and after (the views never hold a secret), plus a `"[redacted]"` marker for each
//! secret that was set or replaced.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use videovector_api_spec::dto::audit::AuditChange;

/// What a changed secret shows as.
pub const REDACTED: &str = "[redacted]";

/// Fields whose change is not an action (they move on every use).
const NOT_ACTIONS: &[&str] = &["last_used_at", "updated_at"];

/// The fields that differ between `before` and `after` (JSON objects; `None`: the resource
/// did not exist, or no longer does).
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> BTreeMap<String, AuditChange> {
    let empty = Map::new();
    let before = before.and_then(Value::as_object).unwrap_or(&empty);
    let after = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut changes = BTreeMap::new();
    for name in before.keys().chain(after.keys()) {
        if NOT_ACTIONS.contains(&name.as_str()) || changes.contains_key(name) {
            continue;
        }
        let (from, to) = (before.get(name), after.get(name));
        if from != to {
            changes.insert(
                name.clone(),
                AuditChange {
                    from: from.cloned(),
                    to: to.cloned(),
                },
            );
        }
    }
    changes
}

/// Marks the secret `name` as set or replaced, without its value.
pub fn secret_changed(changes: &mut BTreeMap<String, AuditChange>, name: &str, existed: bool) {
    changes.insert(
        name.to_string(),
        AuditChange {
            from: existed.then(|| Value::String(REDACTED.into())),
            to: Some(Value::String(REDACTED.into())),
        },
    );
}

/// The changes as the stored JSON object.
pub fn to_json(changes: &BTreeMap<String, AuditChange>) -> Value {
    Value::Object(
        changes
            .iter()
            .map(|(name, change)| {
                let mut fields = Map::new();
                if let Some(from) = &change.from {
                    fields.insert("from".into(), from.clone());
                }
                if let Some(to) = &change.to {
                    fields.insert("to".into(), to.clone());
                }
                (name.clone(), Value::Object(fields))
            })
            .collect(),
    )
}

/// The stored JSON object, read back (a value that is not one reads as no changes).
pub fn from_json(text: &str) -> BTreeMap<String, AuditChange> {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
        return BTreeMap::new();
    };
    fields
        .into_iter()
        .map(|(name, change)| {
            (
                name,
                AuditChange {
                    from: change.get("from").cloned(),
                    to: change.get("to").cloned(),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_what_differs_is_a_change_and_it_reads_back() {
        let before = json!({"name": "a", "scopes": ["read"], "last_used_at": "t1"});
        let after = json!({"name": "b", "scopes": ["read"], "last_used_at": "t2", "max_top_k": 5});
        let mut changes = diff(Some(&before), Some(&after));
        assert_eq!(changes.keys().collect::<Vec<_>>(), ["max_top_k", "name"]);
        assert_eq!(changes["max_top_k"].from, None);
        assert_eq!(changes["name"].to, Some(json!("b")));
        secret_changed(&mut changes, "secret", true);
        let text = to_json(&changes).to_string();
        assert!(!text.contains("t2"));
        assert_eq!(from_json(&text), changes);
        assert_eq!(diff(None, Some(&after)).len(), 3);
        assert_eq!(diff(Some(&before), None)["name"].to, None);
    }
}
