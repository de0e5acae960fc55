//! The committed spec, generated client and docs match the declarations; the security
//! table and the error bodies are snapshotted so every change shows in review.

use videovector_api_spec::rules::operation_rules;

#[test]
fn generated_files_are_up_to_date() {
    let stale = videovector_codegen::stale_files().expect("codegen runs");
    assert!(
        stale.is_empty(),
        "stale generated files {stale:?}: run `{}` and commit the result",
        videovector_codegen::REGENERATE
    );
}

#[test]
fn every_operation_has_a_noun_verb_id_one_tag_a_doc_and_one_error_schema() {
    let spec: serde_json::Value =
        serde_json::from_str(videovector_api_spec::COMMITTED_SPEC).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.0."));
    let mut seen = std::collections::BTreeSet::new();
    for rule in operation_rules(&spec).unwrap() {
        let op = &spec["paths"][&rule.path][rule.method.to_lowercase()];
        let id = &rule.operation_id;
        assert!(seen.insert(id.clone()), "duplicate operation id {id}");
        assert!(
            id.contains('_') && id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{id}"
        );
        assert_eq!(
            op["tags"].as_array().map(Vec::len),
            Some(1),
            "{id} must have one tag"
        );
        assert!(
            !op["summary"].as_str().unwrap_or_default().is_empty(),
            "{id} needs a doc comment"
        );
        let responses = op["responses"].as_object().unwrap();
        let successes: Vec<_> = responses.keys().filter(|k| k.starts_with('2')).collect();
        assert_eq!(successes.len(), 1, "{id} must have one success status");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{id} {status}"
                );
            }
        }
        // OpenAPI 3.0: scopes of apiKey/http requirements are empty.
        for requirement in op["security"].as_array().into_iter().flatten() {
            for scopes in requirement.as_object().unwrap().values() {
                assert_eq!(scopes, &serde_json::json!([]), "{id}");
            }
        }
    }
}

#[test]
fn security_table_snapshot() {
    let spec: serde_json::Value =
        serde_json::from_str(videovector_api_spec::COMMITTED_SPEC).unwrap();
    let mut table = String::from("operation | method | path | schemes | scope | idempotency\n");
    for rule in operation_rules(&spec).unwrap() {
        table.push_str(&format!(
            "{} | {} | /api/v2{} | {} | {} | {}\n",
            rule.operation_id,
            rule.method,
            rule.path,
            if rule.schemes.is_empty() {
                "public".into()
            } else {
                rule.schemes.join(" or ")
            },
            rule.required_scope
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            if rule.idempotent {
                "Idempotency-Key"
            } else {
                "-"
            },
        ));
    }
    insta::assert_snapshot!(table);
}

/// Every string the spec declares refuses U+0000 (no database column stores it), and every
/// pattern has a meaning a 422 can say instead of quoting the regex.
#[test]
fn every_string_refuses_nul_and_every_pattern_has_a_meaning() {
    use videovector_api_spec::patterns::PATTERN_MEANINGS;
    fn walk(value: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if map.get("type").and_then(|t| t.as_str()) == Some("string")
                    && !map.contains_key("enum")
                    && !map.contains_key("format")
                {
                    match map.get("pattern").and_then(|p| p.as_str()) {
                        None => out.push(format!("{at}: a string without a pattern")),
                        Some(p) => {
                            if !PATTERN_MEANINGS.iter().any(|(known, _)| *known == p) {
                                out.push(format!("{at}: pattern {p} has no meaning"));
                            }
                            let regex = regex_lite(p);
                            if regex.is_match("a\u{0}b") || regex.is_match("\u{0}") {
                                out.push(format!("{at}: pattern {p} lets U+0000 through"));
                            }
                        }
                    }
                }
                for (k, v) in map {
                    walk(v, &format!("{at}/{k}"), out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    fn regex_lite(pattern: &str) -> regex::Regex {
        regex::Regex::new(pattern).unwrap()
    }
    let spec: serde_json::Value =
        serde_json::from_str(videovector_api_spec::COMMITTED_SPEC).unwrap();
    let mut problems = Vec::new();
    walk(&spec, "", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_segment_text_limit_the_workers_use_is_the_declared_one() {
    let spec: serde_json::Value =
        serde_json::from_str(videovector_api_spec::COMMITTED_SPEC).unwrap();
    assert_eq!(
        spec["components"]["schemas"]["SegmentInput"]["properties"]["text"]["maxLength"],
        videovector_api_spec::dto::indexes::MAX_SEGMENT_TEXT_CHARS
    );
}
