//! The committed spec, generated client and docs match the declarations; the security
//! table and the error bodies are snapshotted so every change shows in review.

use videovector_api_spec::{contract::Contract, spec::BASE_PATH};

#[test]
fn generated_files_are_up_to_date() {
    let stale = videovector_codegen::stale_files().expect("codegen runs");
    assert!(
        stale.is_empty(),
        "stale generated files {stale:?}: run `{}` and commit the result",
        videovector_codegen::REGENERATE
    );
}

/// The quickstart's commands are the README's (which `.ci/walkthrough` runs as written), so
/// the newcomer's path cannot drift from the one CI takes.
#[test]
fn the_quickstart_runs_the_readme_commands() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap();
    let (quickstart, readme) = (read("docs/quickstart.md"), read("README.md"));
    let blocks: Vec<&str> = quickstart
        .split("```sh ci=walkthrough\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(
        blocks.len(),
        2,
        "the server command and the first walkthrough block"
    );
    for block in blocks {
        assert!(readme.contains(block), "not in the README:\n{block}");
    }
}

#[test]
fn every_parameter_says_what_it_takes() {
    let undescribed: Vec<String> = Contract::committed()
        .operations()
        .iter()
        .flat_map(|operation| {
            operation
                .parameters
                .iter()
                .filter(|p| p.description.as_deref().is_none_or(str::is_empty))
                .map(move |p| format!("{} {}", operation.id(), p.name))
        })
        .collect();
    assert!(undescribed.is_empty(), "no description: {undescribed:?}");
}

#[test]
fn the_declarations_do_not_break_clients_of_the_latest_release() {
    let (version, breaking) = videovector_codegen::unreleased_breaks().expect("codegen runs");
    assert!(
        breaking.is_empty(),
        "the spec breaks clients of the released {version}: {breaking:#?}"
    );
}

#[test]
fn every_operation_has_a_noun_verb_id_one_tag_a_doc_and_one_error_schema() {
    let contract = Contract::committed();
    let spec = contract.document();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.0."));
    let mut seen = std::collections::BTreeSet::new();
    for op in contract.operations() {
        let id = op.id();
        assert!(seen.insert(id.to_string()), "duplicate operation id {id}");
        assert!(
            id.contains('_') && id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{id}"
        );
        assert_eq!(op.tags.len(), 1, "{id} must have one tag");
        assert!(
            !op.summary.as_deref().unwrap_or_default().is_empty(),
            "{id} needs a doc comment"
        );
        let successes = op.responses.iter().filter(|r| r.status.starts_with('2'));
        assert_eq!(successes.count(), 1, "{id} must have one success status");
        for response in &op.responses {
            if response.status.starts_with('4') || response.status.starts_with('5') {
                let problem = response.media("application/problem+json");
                assert_eq!(
                    problem.map(|m| &m.schema["$ref"]),
                    Some(&serde_json::json!("#/components/schemas/Problem")),
                    "{id} {}",
                    response.status
                );
            }
        }
        // OpenAPI 3.0: scopes of apiKey/http requirements are empty.
        let raw = &spec["paths"][&op.rule.path][op.rule.method.to_lowercase()];
        for requirement in raw["security"].as_array().into_iter().flatten() {
            for scopes in requirement.as_object().unwrap().values() {
                assert_eq!(scopes, &serde_json::json!([]), "{id}");
            }
        }
    }
}

#[test]
fn security_table_snapshot() {
    let mut table = String::from(
        "operation | method | path | schemes | scope | idempotency | family | index access\n",
    );
    for rule in Contract::committed().operations().iter().map(|o| &o.rule) {
        table.push_str(&format!(
            "{} | {} | {BASE_PATH}{} | {} | {} | {} | {} | {}\n",
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
            rule.family.map_or("-", |f| f.as_str()),
            rule.index_access.map_or("-", |a| a.as_str()),
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
    let mut problems = Vec::new();
    walk(Contract::committed().document(), "", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_segment_text_limit_the_workers_use_is_the_declared_one() {
    let spec = Contract::committed().document();
    assert_eq!(
        spec["components"]["schemas"]["SegmentInput"]["properties"]["text"]["maxLength"],
        videovector_api_spec::dto::indexes::MAX_SEGMENT_TEXT_CHARS
    );
}
