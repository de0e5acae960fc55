//! The API reference page, rendered from the contract model: per tag, every operation with
//! its method and path, accepted schemes, required scope, Idempotency-Key support,
//! parameters, request body and responses; then every schema (read from the document, as
//! are the tags, the version and the security schemes). Each operation's anchor is its
//! `operationId`, each schema's `schema-<Name>`.

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
};

/// The reference's body HTML and its sections (one per tag and per operation) for search.
pub struct Reference {
    pub html: String,
    pub sections: Vec<Section>,
}

pub fn render(contract: &Contract) -> Result<Reference> {
    let spec = contract.document();
    let mut html = String::new();
    let mut sections = Vec::new();
    intro(&mut html, spec, contract.operations())?;
    let tags = spec["tags"].as_array().cloned().unwrap_or_default();
    for tag in &tags {
        let name = tag["name"].as_str().unwrap_or_default();
        let tag_id = format!("tag-{}", crate::markdown::slug(name));
        let description = tag["description"].as_str().unwrap_or_default();
        writeln!(
            html,
            r#"<h2 id="{tag_id}">{}</h2>{}"#,
            escape(name),
            markdown(description)
        )?;
        sections.push(Section {
            level: 2,
            id: tag_id,
            heading: name.to_string(),
            text: description.to_string(),
        });
        for op in contract
            .operations()
            .iter()
            .filter(|o| o.tag() == Some(name))
        {
            sections.push(operation(&mut html, op)?);
        }
    }
    schemas(&mut html, spec)?;
    Ok(Reference { html, sections })
}

fn intro(html: &mut String, spec: &Value, operations: &[Operation]) -> Result<()> {
    let version = spec["info"]["version"].as_str().unwrap_or_default();
    writeln!(
        html,
        r#"<h1 id="api-reference">API reference</h1>
<p>Every operation of the VideoVector API v2 (version {}), rendered from the contract. Paths are below the base path <code>{BASE_PATH}</code>. Download the contract: <a href="openapi.json" download>openapi.json</a> (OpenAPI {}); a running server also serves it at <code>{BASE_PATH}/openapi.json</code> and renders it in Swagger UI at <code>/docs</code>. Errors are <a href="errors.html">problem+json</a>.</p>"#,
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
            r##"<tr><td><a href="#{id}"><code>{id}</code></a></td><td><code>{} {BASE_PATH}{}</code></td><td>{}</td><td>{}</td></tr>"##,
            rule.method,
            escape(&rule.path),
            scope_text(rule),
            escape(op.summary.as_deref().unwrap_or_default()),
            id = escape(&rule.operation_id),
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
fn operation(html: &mut String, op: &Operation) -> Result<Section> {
    let rule = &op.rule;
    let id = escape(&rule.operation_id);
    let summary = op.summary.as_deref().unwrap_or_default();
    let description = op.description.as_deref().unwrap_or_default();
    writeln!(
        html,
        r##"<section class="operation" id="{id}">
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
                    r##"<a href="#security-schemes"><code>{}</code></a>"##,
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
        request_body(html, &body.content)?;
    }
    responses(html, &op.responses)?;
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
            type_of(&param.schema),
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

fn request_body(html: &mut String, content: &[Media]) -> Result<()> {
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
    writeln!(html, r#"<h2 id="schemas">Schemas</h2>"#)?;
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
            type_of(property),
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

/// A schema's type as linked HTML: references link to their schema section.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!(r##"<a href="#schema-{0}">{0}</a>"##, escape(name));
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
