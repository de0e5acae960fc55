//! Checks JSON values against the schemas of an OpenAPI 3.0 document, under 3.0's rules:
//! `$ref` into the document (siblings ignored), `nullable`, `required`, `allOf` / `anyOf` /
//! `oneOf` / `not`, `enum`, lengths, ranges, `pattern`, `additionalProperties`, and the
//! formats poem-openapi declares (`date-time`, the sized integer formats).
//!
//! The server checks request bodies and parameters with it before a handler parses them,
//! and the test harness checks every response with it: both read the one committed spec, so
//! what the spec says is what is enforced and what is promised.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

/// Schemas nest through `$ref` and combinators; deeper than this is a cycle, not a schema.
const MAX_SCHEMA_DEPTH: usize = 64;

/// A check stops after this many violations: a hostile body (a million invalid items) gets
/// a bounded answer, and a person fixing their request starts with the first ones anyway.
pub const MAX_VIOLATIONS: usize = 100;

/// Values longer than this many characters are shortened when a message quotes them.
const QUOTED_CHARS: usize = 40;

/// One way a value fails its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// RFC 6901 pointer to the offending value, `""` for the value itself.
    pub pointer: String,
    /// What is wrong, for people.
    pub message: String,
}

/// A compiled view of an OpenAPI document: its `$ref` targets and its patterns.
pub struct SchemaChecker {
    root: Value,
    /// Each `$ref` in the document and its target, resolved once (`Value::pointer` allocates
    /// per token, and a 1,000-item body resolves a reference per item).
    refs: HashMap<String, Value>,
    /// Each distinct pattern and how to test it. A few patterns, mostly of different lengths:
    /// a scan compares lengths first, cheaper than hashing a long pattern per string.
    matchers: Vec<(String, Matcher)>,
    meanings: HashMap<&'static str, &'static str>,
}

/// A function that says whether a string matches one pattern, without a regex.
pub type PatternTest = fn(&str) -> bool;

/// How one pattern is tested.
enum Matcher {
    Regex(Regex),
    Test(PatternTest),
}

impl SchemaChecker {
    /// Compiles every `pattern` in `document`; fails on one the regex engine refuses.
    pub fn new(document: Value) -> Result<Self, String> {
        let mut patterns = HashMap::new();
        collect_patterns(&document, &mut patterns)?;
        let mut references = Vec::new();
        collect_references(&document, &mut references);
        let refs = references
            .into_iter()
            .filter_map(|r| {
                let target = crate::refs::lookup_ref(&document, &r)?.clone();
                Some((r, target))
            })
            .collect();
        Ok(SchemaChecker {
            root: document,
            refs,
            matchers: patterns
                .into_iter()
                .map(|(p, regex)| (p, Matcher::Regex(regex)))
                .collect(),
            meanings: HashMap::new(),
        })
    }

    /// Tests a pattern with a function instead of its regex, for each `(pattern, test)`; the
    /// owner of each pair proves the two agree.
    pub fn with_tests(mut self, tests: &[(&'static str, PatternTest)]) -> Self {
        for (pattern, test) in tests {
            match self.matchers.iter_mut().find(|(p, _)| p == pattern) {
                Some((_, matcher)) => *matcher = Matcher::Test(*test),
                None => self
                    .matchers
                    .push((pattern.to_string(), Matcher::Test(*test))),
            }
        }
        self
    }

    /// Says what a pattern means instead of quoting it, for each `(pattern, meaning)`.
    pub fn with_meanings(mut self, meanings: &[(&'static str, &'static str)]) -> Self {
        self.meanings.extend(meanings.iter().copied());
        self
    }

    /// The document.
    pub fn document(&self) -> &Value {
        &self.root
    }

    /// Resolves a local `$ref` (`#/components/schemas/Name`).
    pub fn resolve<'a>(&'a self, reference: &str) -> Option<&'a Value> {
        match self.refs.get(reference) {
            Some(target) => Some(target),
            None => crate::refs::lookup_ref(&self.root, reference),
        }
    }

    /// The violations of `schema` by `value`, in document order, at most
    /// [`MAX_VIOLATIONS`]; empty when it conforms.
    pub fn check(&self, schema: &Value, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut pointer = String::new();
        self.walk(schema, value, &mut pointer, &mut out, 0);
        out.truncate(MAX_VIOLATIONS);
        out
    }

    fn walk(
        &self,
        schema: &Value,
        value: &Value,
        pointer: &mut String,
        out: &mut Vec<Violation>,
        depth: usize,
    ) {
        if out.len() >= MAX_VIOLATIONS {
            return;
        }
        let mut fail = |message: String| {
            out.push(Violation {
                pointer: pointer.clone(),
                message,
            })
        };
        if depth > MAX_SCHEMA_DEPTH {
            fail("the schema nests too deeply to check".into());
            return;
        }
        let Some(schema) = schema.as_object() else {
            return;
        };
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(reference) {
                Some(target) => self.walk(target, value, pointer, out, depth + 1),
                None => fail(format!(
                    "the schema refers to `{reference}`, which is missing"
                )),
            }
            return;
        }
        if value.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(expected) = schema.get("type").and_then(Value::as_str) {
            if !has_type(value, expected) {
                fail(format!("expected {expected}, found {}", kind(value)));
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                fail(format!(
                    "{} is not one of {}",
                    quoted(value),
                    Value::Array(allowed.clone())
                ));
            }
        }
        match value {
            Value::String(text) => self.check_string(schema, text, &mut fail),
            Value::Number(_) => check_number(schema, value, &mut fail),
            Value::Array(items) => {
                check_array(schema, items, &mut fail);
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        if out.len() >= MAX_VIOLATIONS {
                            break;
                        }
                        let len = pointer.len();
                        pointer.push('/');
                        pointer.push_str(&i.to_string());
                        self.walk(item_schema, item, pointer, out, depth + 1);
                        pointer.truncate(len);
                    }
                }
            }
            Value::Object(fields) => self.check_object(schema, fields, pointer, out, depth),
            _ => {}
        }
        self.check_combinators(schema, value, pointer, out, depth);
    }

    fn check_string(
        &self,
        schema: &serde_json::Map<String, Value>,
        text: &str,
        fail: &mut impl FnMut(String),
    ) {
        let min = schema.get("minLength").and_then(Value::as_u64);
        let max = schema.get("maxLength").and_then(Value::as_u64);
        if min.is_some() || max.is_some() {
            let chars = text.chars().count() as u64;
            if let Some(min) = min.filter(|min| chars < *min) {
                fail(format!("shorter than {min} characters"));
            }
            if let Some(max) = max.filter(|max| chars > *max) {
                fail(format!("longer than {max} characters"));
            }
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            let matches =
                self.matchers.iter().find(|(p, _)| p == pattern).map(
                    |(_, matcher)| match matcher {
                        Matcher::Regex(regex) => regex.is_match(text),
                        Matcher::Test(test) => test(text),
                    },
                );
            if matches == Some(false) {
                fail(match self.meanings.get(pattern) {
                    Some(meaning) => meaning.to_string(),
                    None => format!("does not match the pattern `{pattern}`"),
                });
            }
        }
        match schema.get("format").and_then(Value::as_str) {
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
                fail("is not an RFC 3339 date-time".into())
            }
            Some("date") if chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_err() => {
                fail("is not a full date (YYYY-MM-DD)".into())
            }
            _ => {}
        }
    }

    fn check_object(
        &self,
        schema: &serde_json::Map<String, Value>,
        fields: &serde_json::Map<String, Value>,
        pointer: &mut String,
        out: &mut Vec<Violation>,
        depth: usize,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !fields.contains_key(name) {
                out.push(Violation {
                    pointer: child(pointer, name),
                    message: missing_message(name, fields, properties),
                });
            }
        }
        let bound = |key: &str| schema.get(key).and_then(Value::as_u64);
        if bound("minProperties").is_some_and(|min| (fields.len() as u64) < min) {
            out.push(Violation {
                pointer: pointer.clone(),
                message: "has too few properties".into(),
            });
        }
        if bound("maxProperties").is_some_and(|max| (fields.len() as u64) > max) {
            out.push(Violation {
                pointer: pointer.clone(),
                message: "has too many properties".into(),
            });
        }
        let additional = schema.get("additionalProperties");
        for (name, field) in fields {
            if out.len() >= MAX_VIOLATIONS {
                break;
            }
            let field_schema = match properties.and_then(|p| p.get(name)) {
                Some(s) => s,
                None => match additional {
                    Some(Value::Bool(false)) => {
                        out.push(Violation {
                            pointer: child(pointer, name),
                            message: "is not a known property".into(),
                        });
                        continue;
                    }
                    // A map's names are strings of the API, and no string may carry
                    // U+0000; a pointer under such a name would carry it into the answer,
                    // so the map itself is named.
                    Some(Value::Object(_)) if name.contains('\0') => {
                        out.push(Violation {
                            pointer: pointer.clone(),
                            message: "has a name containing U+0000".into(),
                        });
                        continue;
                    }
                    Some(s @ Value::Object(_)) => s,
                    _ => continue,
                },
            };
            let len = pointer.len();
            push_token(pointer, name);
            self.walk(field_schema, field, pointer, out, depth + 1);
            pointer.truncate(len);
        }
    }

    fn check_combinators(
        &self,
        schema: &serde_json::Map<String, Value>,
        value: &Value,
        pointer: &mut String,
        out: &mut Vec<Violation>,
        depth: usize,
    ) {
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.walk(part, value, pointer, out, depth + 1);
            }
        }
        let matching = |parts: &Vec<Value>| {
            parts
                .iter()
                .filter(|part| {
                    let mut inner = Vec::new();
                    self.walk(part, value, &mut pointer.clone(), &mut inner, depth + 1);
                    inner.is_empty()
                })
                .count()
        };
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            if matching(any) == 0 {
                out.push(Violation {
                    pointer: pointer.clone(),
                    message: "matches none of the `anyOf` schemas".into(),
                });
            }
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let n = matching(one);
            if n != 1 {
                out.push(Violation {
                    pointer: pointer.clone(),
                    message: format!("matches {n} of the `oneOf` schemas instead of one"),
                });
            }
        }
        if let Some(not) = schema.get("not") {
            let mut inner = Vec::new();
            self.walk(not, value, &mut pointer.clone(), &mut inner, depth + 1);
            if inner.is_empty() {
                out.push(Violation {
                    pointer: pointer.clone(),
                    message: "matches the schema under `not`".into(),
                });
            }
        }
    }
}

fn collect_patterns(value: &Value, out: &mut HashMap<String, Regex>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if let Some(pattern) = map.get("pattern").and_then(Value::as_str) {
                if !out.contains_key(pattern) {
                    let regex = Regex::new(pattern)
                        .map_err(|e| format!("the pattern `{pattern}` does not compile: {e}"))?;
                    out.insert(pattern.to_string(), regex);
                }
            }
            map.values().try_for_each(|v| collect_patterns(v, out))
        }
        Value::Array(items) => items.iter().try_for_each(|v| collect_patterns(v, out)),
        _ => Ok(()),
    }
}

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                if !out.iter().any(|r| r == reference) {
                    out.push(reference.to_string());
                }
            }
            map.values().for_each(|v| collect_references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// `value` as JSON for a message: a long string shortened, an array or object named only.
fn quoted(value: &Value) -> String {
    match value {
        Value::String(text) if text.chars().count() > QUOTED_CHARS => {
            let start: String = text.chars().take(QUOTED_CHARS).collect();
            format!(
                "{}…",
                &Value::String(start).to_string().trim_end_matches('"')
            )
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        other => other.to_string(),
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The range of poem-openapi's sized integer formats.
pub fn format_range(format: &str) -> Option<(i128, i128)> {
    Some(match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" => (0, u64::MAX.into()),
        _ => return None,
    })
}

fn check_number(
    schema: &serde_json::Map<String, Value>,
    value: &Value,
    fail: &mut impl FnMut(String),
) {
    let exact: Option<i128> = value
        .as_i64()
        .map(i128::from)
        .or_else(|| value.as_u64().map(i128::from));
    if let (Some(n), Some((lo, hi))) = (
        exact,
        schema
            .get("format")
            .and_then(Value::as_str)
            .and_then(format_range),
    ) {
        if n < lo || n > hi {
            fail(format!(
                "{n} is outside the range of its format ({lo} to {hi})"
            ));
        }
    }
    let Some(x) = value.as_f64() else {
        return;
    };
    let exclusive = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if x < min || (exclusive("exclusiveMinimum") && x == min) {
            fail(format!("{value} is below the minimum {min}"));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if x > max || (exclusive("exclusiveMaximum") && x == max) {
            fail(format!("{value} is above the maximum {max}"));
        }
    }
    if let Some(step) = schema.get("multipleOf").and_then(Value::as_f64) {
        if step > 0.0 && (x / step).fract() != 0.0 {
            fail(format!("{value} is not a multiple of {step}"));
        }
    }
}

fn check_array(
    schema: &serde_json::Map<String, Value>,
    items: &[Value],
    fail: &mut impl FnMut(String),
) {
    let n = items.len() as u64;
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
        if n < min {
            fail(format!("has fewer than {min} items"));
        }
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
        if n > max {
            fail(format!("has more than {max} items"));
        }
    }
    if schema.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                fail(format!("item {i} repeats an earlier item"));
                break;
            }
        }
    }
}

/// Appends one RFC 6901 reference token (`~` and `/` escaped).
pub fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// "is required", and when the object holds a property the schema does not know that
/// looks like the missing one (`q` for `query`, `qeury`), which: the usual cause of a
/// missing field is a misspelt one, and naming it saves a round of guessing.
fn missing_message(
    name: &str,
    fields: &serde_json::Map<String, Value>,
    properties: Option<&serde_json::Map<String, Value>>,
) -> String {
    let unknown = fields
        .keys()
        .filter(|field| !properties.is_some_and(|p| p.contains_key(*field)))
        // Echoed into the answer: short, and nothing the API's strings may not hold.
        .filter(|field| field.chars().count() <= 64 && !field.chars().any(char::is_control));
    match unknown.into_iter().find(|field| resembles(field, name)) {
        Some(field) => {
            format!("is required (`{field}` is not a property here: did you mean `{name}`?)")
        }
        None => "is required".into(),
    }
}

/// Whether `given` is a likely misspelling or abbreviation of `wanted`: a prefix of it, the
/// same without `_` and case, starting with the same four letters or more (`events` for
/// `event_types`), or at most two edits away (one for short names).
fn resembles(given: &str, wanted: &str) -> bool {
    let normal = |s: &str| s.replace(['_', '-'], "").to_lowercase();
    let (given, wanted) = (normal(given), normal(wanted));
    if given.is_empty() {
        return false;
    }
    let shared = given
        .chars()
        .zip(wanted.chars())
        .take_while(|(a, b)| a == b)
        .count();
    if wanted.starts_with(&given) || shared >= 4 {
        return true;
    }
    let allowed = if wanted.len() <= 4 { 1 } else { 2 };
    edit_distance(&given, &wanted) <= allowed
}

/// Levenshtein distance, over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn child(pointer: &str, token: &str) -> String {
    let mut out = pointer.to_string();
    push_token(&mut out, token);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checker() -> SchemaChecker {
        SchemaChecker::new(json!({
            "components": {"schemas": {
                "Page": {
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "items": {"type": "array", "maxItems": 2, "items": {"$ref": "#/components/schemas/Item"}},
                        "next_cursor": {"type": "string"},
                        "note": {"type": "string", "nullable": true}
                    }
                },
                "Item": {
                    "type": "object",
                    "required": ["id", "count"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^[^\\u0000]*$", "maxLength": 5},
                        "count": {"type": "integer", "format": "uint32", "minimum": 1},
                        "at": {"type": "string", "format": "date-time"},
                        "kind": {"allOf": [{"$ref": "#/components/schemas/Kind"}, {"description": "d"}]},
                        "a/b": {"type": "boolean"}
                    }
                },
                "Kind": {"type": "string", "enum": ["x", "y"]}
            }}
        }))
        .unwrap()
    }

    fn pointers(value: Value) -> Vec<String> {
        let c = checker();
        let schema = json!({"$ref": "#/components/schemas/Page"});
        c.check(&schema, &value)
            .into_iter()
            .map(|v| v.pointer)
            .collect()
    }

    #[test]
    fn a_conforming_value_passes() {
        assert!(pointers(json!({
            "items": [{"id": "a", "count": 3, "at": "2026-11-28T07:00:00Z", "kind": "x"}],
            "note": null
        }))
        .is_empty());
    }

    #[test]
    fn a_missing_property_names_the_misspelt_one_beside_it() {
        let c = checker();
        let schema = json!({"$ref": "#/components/schemas/Item"});
        let messages = |value: Value| -> Vec<String> {
            c.check(&schema, &value)
                .into_iter()
                .map(|v| v.message)
                .collect()
        };
        assert_eq!(
            messages(json!({"i": "a", "count": 1})),
            ["is required (`i` is not a property here: did you mean `id`?)"]
        );
        assert_eq!(
            messages(json!({"id": "a", "cuont": 1})),
            ["is required (`cuont` is not a property here: did you mean `count`?)"]
        );
        // Nothing like it: only the rule; a known property is never suggested.
        assert_eq!(
            messages(json!({"id": "a", "countable": 1})),
            ["is required (`countable` is not a property here: did you mean `count`?)"]
        );
        assert_eq!(messages(json!({"id": "a", "zzzzzz": 1})), ["is required"]);
        // A name the answer may not carry (U+0000, a control) is not echoed.
        assert_eq!(
            messages(json!({"id": "a", "coun\u{0}": 1})),
            ["is required"]
        );
        assert_eq!(
            messages(json!({"id": "a", "at": "2026-11-28T07:00:00Z"})),
            ["is required"]
        );
    }

    #[test]
    fn null_is_refused_unless_nullable() {
        assert_eq!(
            pointers(json!({"items": [], "next_cursor": null})),
            ["/next_cursor"]
        );
        assert_eq!(
            pointers(json!({"items": [], "note": null})),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_rule_points_at_its_value() {
        let mut got = pointers(json!({
            "items": [
                {"id": "abcdef", "count": 0, "at": "yesterday", "kind": "z", "a/b": 1},
                {"id": "a\u{0}", "count": 4294967296u64},
                {"count": 1.5}
            ]
        }));
        got.sort();
        assert_eq!(
            got,
            [
                "/items",
                "/items/0/at",
                "/items/0/a~1b",
                "/items/0/count",
                "/items/0/id",
                "/items/0/kind",
                "/items/1/count",
                "/items/1/id",
                "/items/2/count",
                "/items/2/id",
            ]
        );
    }

    #[test]
    fn a_missing_reference_is_reported_not_ignored() {
        let c = checker();
        let v = c.check(&json!({"$ref": "#/components/schemas/Nope"}), &json!(1));
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn a_flood_of_invalid_values_is_reported_up_to_the_cap() {
        let flood: Vec<Value> = (0..100_000).map(|_| json!({})).collect();
        let got = pointers(json!({ "items": flood }));
        assert_eq!(got.len(), MAX_VIOLATIONS);
        assert_eq!(got[0], "/items", "the array's own rule comes first");
        assert_eq!(got[1], "/items/0/id");
    }

    #[test]
    fn messages_quote_a_long_value_shortened_and_name_containers() {
        let c = checker();
        let schema = json!({"$ref": "#/components/schemas/Kind"});
        let long = "z".repeat(1_000_000);
        let v = c.check(&schema, &json!(long));
        assert!(v[0].message.len() < 100, "{}", v[0].message);
        assert!(v[0].message.starts_with("\"zzz"), "{}", v[0].message);
        assert!(v[0].message.contains('…'));
        let v = c.check(&json!({"enum": ["x"]}), &json!({"a": [1, 2, 3]}));
        assert_eq!(v[0].message, "an object is not one of [\"x\"]");
    }
}
