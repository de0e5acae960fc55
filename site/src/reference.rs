//! The API reference, rendered from the contract model as pages: an overview
//! (`reference.html`: security schemes, scopes, every operation in a table), a page per tag
//! (`reference-<tag>.html`: its operations, each with its method and path, accepted schemes,
//! required scope, Idempotency-Key support, parameters, request body and answer schemas
//! inline with their constraints, responses, and its example in curl, Python and Rust with
//! the answer), and a page of every schema (`reference-schemas.html`). Each operation's
//! anchor is its `operationId`, each schema's `schema-<Name>`.

use std::fmt::Write;

use anyhow::Result;
use serde_json::{Map, Value};
use videovector_api_spec::{
    contract::{Contract, Media, Operation, Parameter, Response},
    problem::FieldLocation,
    rules::OperationRule,
    spec::BASE_PATH,
};

use crate::{
    html::{escape, markdown},
    markdown::Section,
    snippets::LANGUAGES,
};

/// One page of the reference: its file, title, body HTML and sections for search.
pub struct ReferencePage {
    pub file: String,
    pub title: String,
    pub html: String,
    pub sections: Vec<Section>,
}

/// The file of the schemas page.
pub const SCHEMAS_PAGE: &str = "reference-schemas.html";

/// The reference's pages: the overview, one per tag (in the document's order), the schemas.
pub fn render(contract: &Contract) -> Result<Vec<ReferencePage>> {
    let spec = contract.document();
    let mut pages = Vec::new();
    let mut overview = String::new();
    intro(&mut overview, spec, contract.operations())?;
    pages.push(ReferencePage {
        file: "reference.html".into(),
        title: "API reference".into(),
        html: overview,
        sections: vec![Section {
            level: 1,
            id: "api-reference".into(),
            heading: "API reference".into(),
            text: "Every operation: method, path, schemes, scope, Idempotency-Key, parameters, \
                   request body, responses and examples in curl, Python and Rust; every schema."
                .into(),
        }],
    });
    for name in tag_names(spec) {
        let description = spec["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["name"].as_str() == Some(&name))
            .and_then(|t| t["description"].as_str())
            .unwrap_or_default()
            .to_string();
        let operations: Vec<&Operation> = contract
            .operations()
            .iter()
            .filter(|o| o.tag() == Some(name.as_str()))
            .collect();
        let mut html = String::new();
        let tag_id = format!("tag-{}", crate::markdown::slug(&name));
        writeln!(
            html,
            r#"<h1 id="{tag_id}">{}</h1>{}<nav aria-label="Operations on this page"><ul class="reference-nav">"#,
            escape(&name),
            markdown(&description)
        )?;
        for op in &operations {
            writeln!(
                html,
                r##"<li><a href="#{id}"><code>{id}</code></a> <span class="muted">{}</span></li>"##,
                escape(op.summary.as_deref().unwrap_or_default()),
                id = escape(&op.rule.operation_id),
            )?;
        }
        writeln!(html, "</ul></nav>")?;
        let mut sections = vec![Section {
            level: 1,
            id: tag_id,
            heading: name.clone(),
            text: description.clone(),
        }];
        for op in operations {
            sections.push(operation(&mut html, contract, op)?);
        }
        pages.push(ReferencePage {
            file: tag_page(&name),
            title: format!("{name} · API reference"),
            html,
            sections,
        });
    }
    let mut html = String::new();
    schemas(&mut html, spec)?;
    pages.push(ReferencePage {
        file: SCHEMAS_PAGE.into(),
        title: "Schemas · API reference".into(),
        html,
        sections: vec![Section {
            level: 1,
            id: "schemas".into(),
            heading: "Schemas".into(),
            text: "Every schema of the contract, with its fields, types and constraints.".into(),
        }],
    });
    Ok(pages)
}

/// The document's tags, in its order.
pub fn tag_names(spec: &Value) -> Vec<String> {
    spec["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect()
}

/// The file of a tag's page (`reference-api-keys.html`).
pub fn tag_page(tag: &str) -> String {
    format!("reference-{}.html", crate::markdown::slug(tag))
}

/// Where an operation's section is: its tag's page and its anchor.
fn operation_href(op: &Operation) -> String {
    format!(
        "{}#{}",
        tag_page(op.tag().unwrap_or_default()),
        op.rule.operation_id
    )
}

fn intro(html: &mut String, spec: &Value, operations: &[Operation]) -> Result<()> {
    let version = spec["info"]["version"].as_str().unwrap_or_default();
    writeln!(
        html,
        r#"<h1 id="api-reference">API reference</h1>
<p>Every operation of the VideoVector API v2 (version {}), rendered from the contract, a page per tag, each operation with an example in curl, Python and Rust that ran against a live server in CI. Paths are below the base path <code>{BASE_PATH}</code>; <a href="reference-schemas.html">Schemas</a> lists every body. Download the contract: <a href="openapi.json" download>openapi.json</a> (OpenAPI {}); a running server also serves it at <code>{BASE_PATH}/openapi.json</code> and renders it in Swagger UI at <code>/docs</code>. Errors are <a href="errors.html">problem+json</a>.</p>"#,
        escape(version),
        escape(spec["openapi"].as_str().unwrap_or_default())
    )?;
    writeln!(
        html,
        r#"<h2 id="security-schemes">Security schemes</h2>
<table><thead><tr><th>Scheme</th><th>How it is sent</th><th>Description</th></tr></thead><tbody>"#
    )?;
    let schemes = spec["components"]["securitySchemes"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, scheme) in &schemes {
        writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(&scheme_header(scheme)),
            markdown(scheme["description"].as_str().unwrap_or_default())
        )?;
    }
    writeln!(html, "</tbody></table>")?;
    writeln!(
        html,
        r#"<h2 id="scopes">Scopes</h2>
<p>Four scopes, ordered <code>search</code> &lt; <code>read</code> &lt; <code>write</code> &lt; <code>admin</code>: a credential holding a scope may call every operation that requires that scope or a lower one. Each operation below names the scope it requires; <a href="authentication.html">Authentication</a> explains the model.</p>
<h2 id="operations">Operations</h2>
<table><thead><tr><th>Operation</th><th>Method and path</th><th>Scope</th><th>Summary</th></tr></thead><tbody>"#
    )?;
    for op in operations {
        let rule = &op.rule;
        writeln!(
            html,
            r##"<tr><td><a href="{href}"><code>{id}</code></a></td><td><code>{} {BASE_PATH}{}</code></td><td>{}</td><td>{}</td></tr>"##,
            rule.method,
            escape(&rule.path),
            scope_text(rule),
            escape(op.summary.as_deref().unwrap_or_default()),
            id = escape(&rule.operation_id),
            href = escape(&operation_href(op)),
        )?;
    }
    writeln!(html, "</tbody></table>")?;
    Ok(())
}

fn scheme_header(scheme: &Value) -> String {
    match (scheme["type"].as_str(), scheme["scheme"].as_str()) {
        (Some("apiKey"), _) => format!(
            "{} {}",
            scheme["in"].as_str().unwrap_or("header"),
            scheme["name"].as_str().unwrap_or_default()
        ),
        (Some("http"), Some("bearer")) => "Authorization: Bearer <jwt>".into(),
        (Some(t), _) => t.into(),
        _ => String::new(),
    }
}

fn scope_text(rule: &OperationRule) -> String {
    match (&rule.required_scope, rule.schemes.is_empty()) {
        (Some(scope), _) => format!("<code>{scope}</code>"),
        (None, true) => "public".into(),
        (None, false) => "any".into(),
    }
}

/// One operation's section; returns its search entry.
fn operation(html: &mut String, contract: &Contract, op: &Operation) -> Result<Section> {
    let rule = &op.rule;
    let id = escape(&rule.operation_id);
    let summary = op.summary.as_deref().unwrap_or_default();
    let description = op.description.as_deref().unwrap_or_default();
    writeln!(
        html,
        r##"<section class="operation" id="{id}"><div class="operation-text">
<h3><a class="anchor" href="#{id}">{id}</a></h3>
<p class="endpoint"><span class="method method-{}">{}</span> <code>{BASE_PATH}{}</code></p>
<p class="summary">{}</p>
{}"##,
        rule.method.to_lowercase(),
        rule.method,
        escape(&rule.path),
        escape(summary),
        markdown(description),
    )?;
    let auth = if rule.schemes.is_empty() {
        "none (public)".to_string()
    } else {
        rule.schemes
            .iter()
            .map(|s| {
                format!(
                    r##"<a href="reference.html#security-schemes"><code>{}</code></a>"##,
                    escape(s)
                )
            })
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let scope = match &rule.required_scope {
        Some(scope) => format!("<code>{scope}</code> or higher"),
        None => "none".into(),
    };
    let idempotency = if rule.idempotent {
        r#"accepted: send an <code>Idempotency-Key</code> header to make a retry safe (<a href="idempotency.html">how</a>)"#
    } else {
        "not accepted"
    };
    writeln!(
        html,
        r#"<dl class="facts"><dt>Security</dt><dd>{auth}</dd><dt>Scope</dt><dd>{scope}</dd><dt>Idempotency-Key</dt><dd>{idempotency}</dd></dl>"#
    )?;
    parameters(html, &op.parameters)?;
    if let Some(body) = &op.body {
        request_body(html, contract, &body.content)?;
    }
    responses(html, &op.responses)?;
    answer_body(html, contract, op)?;
    writeln!(html, "</div>")?;
    examples(html, contract, op)?;
    writeln!(html, "</section>")?;
    Ok(Section {
        level: 3,
        id: rule.operation_id.clone(),
        heading: format!("{} — {summary}", rule.operation_id),
        text: format!(
            "{} {BASE_PATH}{} {}",
            rule.method,
            rule.path,
            description.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    })
}

/// The operation's example: the request in each language, in tabs, then the answer.
fn examples(html: &mut String, contract: &Contract, op: &Operation) -> Result<()> {
    let Some(snippets) = crate::snippets::for_operation(contract, op) else {
        return Ok(());
    };
    let id = escape(&op.rule.operation_id);
    writeln!(
        html,
        r#"<div class="examples" data-operation="{id}"><h4>Example</h4><div class="tabs" role="tablist" aria-label="Language">"#
    )?;
    for (i, (lang, label)) in LANGUAGES.iter().enumerate() {
        writeln!(
            html,
            r#"<button type="button" role="tab" id="tab-{id}-{lang}" aria-controls="example-{id}-{lang}" aria-selected="{}" data-lang="{lang}">{label}</button>"#,
            i == 0
        )?;
    }
    writeln!(html, "</div>")?;
    for (lang, _) in LANGUAGES {
        let class = match *lang {
            "curl" => "sh",
            other => other,
        };
        writeln!(
            html,
            r#"<div class="tab-panel" role="tabpanel" id="example-{id}-{lang}" aria-labelledby="tab-{id}-{lang}" data-lang="{lang}"><pre><code class="language-{class}" data-example="{id}" data-lang="{lang}">{}</code></pre></div>"#,
            crate::highlight::code(class, snippets.program(lang))
        )?;
    }
    if let Some((status, body)) = &snippets.answer {
        writeln!(
            html,
            r#"<p class="answer-label">Answer <code>{}</code></p><pre><code class="language-json" data-answer="{id}">{}</code></pre>"#,
            escape(status),
            crate::highlight::code("json", &serde_json::to_string_pretty(body)?)
        )?;
    }
    writeln!(html, "</div>")?;
    Ok(())
}

fn parameters(html: &mut String, params: &[Parameter]) -> Result<()> {
    if params.is_empty() {
        return Ok(());
    }
    writeln!(
        html,
        "<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>"
    )?;
    for param in params {
        writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&param.name),
            location_name(param.location),
            typed_with_constraints(&param.schema),
            if param.required { "yes" } else { "no" },
            markdown(param.description.as_deref().unwrap_or_default()),
        )?;
    }
    writeln!(html, "</tbody></table>")?;
    Ok(())
}

fn location_name(location: FieldLocation) -> &'static str {
    match location {
        FieldLocation::Path => "path",
        FieldLocation::Query => "query",
        FieldLocation::Header => "header",
        FieldLocation::Body => "body",
    }
}

fn request_body(html: &mut String, contract: &Contract, content: &[Media]) -> Result<()> {
    writeln!(html, "<h4>Request body</h4><ul>")?;
    for media in content {
        writeln!(
            html,
            "<li><code>{}</code>: {}</li>",
            escape(&media.media_type),
            type_of(&media.schema)
        )?;
    }
    writeln!(html, "</ul>")?;
    if let Some(media) = content.first() {
        inline_schema(html, contract, &media.schema)?;
    }
    Ok(())
}

/// The success answer's schema, inline (its fields and their constraints).
fn answer_body(html: &mut String, contract: &Contract, op: &Operation) -> Result<()> {
    let Some((status, media)) = op
        .success()
        .and_then(|r| r.content.first().map(|m| (&r.status, m)))
    else {
        return Ok(());
    };
    writeln!(
        html,
        "<h4>Answer body <code>{}</code>: {}</h4>",
        escape(status),
        type_of(&media.schema)
    )?;
    inline_schema(html, contract, &media.schema)
}

/// A body's fields as a table when its schema (or its array's items) names an object.
fn inline_schema(html: &mut String, contract: &Contract, schema: &Value) -> Result<()> {
    let schema = if schema["type"].as_str() == Some("array") {
        &schema["items"]
    } else {
        schema
    };
    let Some(target) = schema["$ref"].as_str().and_then(|r| contract.lookup(r)) else {
        return Ok(());
    };
    if let Some(properties) = target["properties"].as_object() {
        properties_table(html, target, properties)?;
    }
    Ok(())
}

fn responses(html: &mut String, responses: &[Response]) -> Result<()> {
    if responses.is_empty() {
        return Ok(());
    }
    writeln!(
        html,
        "<h4>Responses</h4><table><thead><tr><th>Status</th><th>Description</th><th>Body</th></tr></thead><tbody>"
    )?;
    for response in responses {
        let bodies = if response.content.is_empty() {
            "—".to_string()
        } else {
            response
                .content
                .iter()
                .map(|media| {
                    format!(
                        "<code>{}</code> {}",
                        escape(&media.media_type),
                        type_of(&media.schema)
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{bodies}</td></tr>",
            escape(&response.status),
            markdown(&response.description),
        )?;
    }
    writeln!(html, "</tbody></table>")?;
    Ok(())
}

fn schemas(html: &mut String, spec: &Value) -> Result<()> {
    let schemas = spec["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    writeln!(
        html,
        r#"<h1 id="schemas">Schemas</h1><p>Every body of the contract: its fields, their types and what they allow.</p>"#
    )?;
    for (name, schema) in &schemas {
        writeln!(
            html,
            r##"<section class="schema" id="schema-{0}"><h3><a class="anchor" href="#schema-{0}">{0}</a></h3>{1}"##,
            escape(name),
            markdown(schema["description"].as_str().unwrap_or_default())
        )?;
        match schema["properties"].as_object() {
            Some(properties) => properties_table(html, schema, properties)?,
            None => writeln!(html, "<p>{}</p>", type_of(schema))?,
        }
        writeln!(html, "</section>")?;
    }
    Ok(())
}

fn properties_table(
    html: &mut String,
    schema: &Value,
    properties: &Map<String, Value>,
) -> Result<()> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    writeln!(
        html,
        "<table><thead><tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>"
    )?;
    for (field, property) in properties {
        writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(field),
            typed_with_constraints(property),
            if required.contains(&field.as_str()) {
                "yes"
            } else {
                "no"
            },
            markdown(property["description"].as_str().unwrap_or_default()),
        )?;
    }
    writeln!(html, "</tbody></table>")?;
    Ok(())
}

/// A schema's type and, below it, what it allows (lengths, ranges, item counts, a pattern).
fn typed_with_constraints(schema: &Value) -> String {
    let limits = constraints(schema);
    if limits.is_empty() {
        type_of(schema)
    } else {
        format!(
            r#"{}<br><span class="muted">{}</span>"#,
            type_of(schema),
            limits.join("; ")
        )
    }
}

/// The patterns every string carries to refuse U+0000 (and blank text): said in words.
const NO_NUL: &str = "^[^\\u0000]*$";

/// What a schema allows, in words.
fn constraints(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let number = |key: &str| schema[key].as_f64().map(|n| n.to_string());
    let range = |low: Option<String>, high: Option<String>, unit: &str| match (low, high) {
        (Some(low), Some(high)) => Some(format!("{low} to {high}{unit}")),
        (Some(low), None) => Some(format!("at least {low}{unit}")),
        (None, Some(high)) => Some(format!("at most {high}{unit}")),
        (None, None) => None,
    };
    out.extend(range(number("minimum"), number("maximum"), ""));
    out.extend(range(
        number("minLength"),
        number("maxLength"),
        " characters",
    ));
    out.extend(range(number("minItems"), number("maxItems"), " items"));
    if let Some(pattern) = schema["pattern"].as_str() {
        if pattern == NO_NUL {
            out.push("no U+0000".into());
        } else if pattern.contains("\\u3000]*[^") {
            out.push("not blank, no U+0000".into());
        } else {
            out.push(format!("pattern <code>{}</code>", escape(pattern)));
        }
    }
    if let Some(default) = schema.get("default") {
        out.push(format!(
            "default <code>{}</code>",
            escape(&default.to_string())
        ));
    }
    out
}

/// A schema's type as linked HTML: references link to their schema section.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!(
            r##"<a href="{SCHEMAS_PAGE}#schema-{0}">{0}</a>"##,
            escape(name)
        );
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = schema[combinator].as_array() {
            let typed: Vec<String> = parts
                .iter()
                .filter(|p| p.get("$ref").is_some() || p.get("type").is_some())
                .map(type_of)
                .collect();
            if !typed.is_empty() {
                return typed.join(if combinator == "allOf" {
                    " and "
                } else {
                    " or "
                });
            }
        }
    }
    let mut text = match schema["type"].as_str() {
        Some("array") => format!("array of {}", type_of(&schema["items"])),
        Some("object") => match schema.get("additionalProperties") {
            Some(values) if values.is_object() => {
                format!("map of string to {}", type_of(values))
            }
            _ => "object".into(),
        },
        Some(t) => escape(t),
        None => "any".into(),
    };
    if let Some(format) = schema["format"].as_str() {
        write!(text, " ({})", escape(format)).ok();
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
            .collect();
        write!(text, ": one of {}", values.join(", ")).ok();
    }
    if schema["nullable"].as_bool() == Some(true) {
        text.push_str(", nullable");
    }
    text
}
