//! The one `$ref` resolver of the workspace: the target of a local reference, and a schema
//! with its references inlined to a bounded depth. The contract model, the schema checker and
//! the MCP catalog all resolve through it.

use serde_json::{json, Value};

/// Schemas nest through `$ref`; inlining deeper than this stops (a cycle, not a schema).
pub const MAX_INLINE_DEPTH: u32 = 12;

/// The target of a local `$ref` (`#/components/schemas/Name`) in `document`.
pub fn lookup_ref<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    document.pointer(pointer)
}

/// `schema` with every `$ref` replaced by its target in `document`, recursively, down to
/// [`MAX_INLINE_DEPTH`] (below it, or for a reference with no target, `{"type": "object"}`).
pub fn inline_refs(document: &Value, schema: &Value) -> Value {
    inline(document, schema, 0)
}

fn inline(document: &Value, schema: &Value, depth: u32) -> Value {
    match schema {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                return match lookup_ref(document, reference) {
                    Some(target) if depth < MAX_INLINE_DEPTH => inline(document, target, depth + 1),
                    _ => json!({ "type": "object" }),
                };
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), inline(document, v, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| inline(document, v, depth)).collect())
        }
        other => other.clone(),
    }
}
