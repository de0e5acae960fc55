//! Prompts: named retrieval query templates with declared variables, and rendering them.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait};
use videovector_api_spec::ErrorCode;
use videovector_api_spec::{
    dto::prompts::*,
    services::{PageParams, PromptService, ServiceResult},
    ApiError, Principal,
};

use super::{find_in_org, internal, is_unique_violation, pagination::PageRequest};
use crate::{
    db::{columns::JsonText, entities::prompt},
    ids::new_id,
};

/// The `{{name}}` placeholders of a template, in order of first use.
pub fn placeholders(template: &str) -> Result<Vec<String>, ApiError> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            ApiError::unprocessable(
                ErrorCode::InvalidTemplate,
                "a `{{` in query_template is never closed",
            )
        })?;
        let name = after[..end].trim();
        if !valid_variable(name) {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidTemplate,
                format!("`{{{{{name}}}}}` is not a valid placeholder: use a-z, 0-9 and _"),
            ));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        rest = &after[end + 2..];
    }
    Ok(names)
}

fn valid_variable(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// 422 unless the template uses only declared, well-named variables.
fn check_template(template: &str, variables: &[String]) -> Result<(), ApiError> {
    if let Some(bad) = variables.iter().find(|v| !valid_variable(v)) {
        return Err(ApiError::unprocessable(
            ErrorCode::InvalidVariable,
            format!("`{bad}` is not a valid variable name: use a-z, 0-9 and _"),
        ));
    }
    if let Some(undeclared) = placeholders(template)?
        .into_iter()
        .find(|p| !variables.contains(p))
    {
        return Err(ApiError::unprocessable(
            ErrorCode::UndeclaredVariable,
            format!("query_template uses `{undeclared}`, which is not in variables"),
        ));
    }
    Ok(())
}

/// The longest query a run may render: the template's own limit.
pub const MAX_RENDERED_CHARS: usize = 2_000;

/// Renders `template` with `values`, which must give every declared variable and no other.
///
/// One pass over the template: a substituted value is copied, never scanned again, so a
/// value holding another placeholder stays text (`{{b}}` inside `a` is not expanded). The
/// result is held to [`MAX_RENDERED_CHARS`], checked as it grows.
pub fn render(
    template: &str,
    declared: &[String],
    values: &BTreeMap<String, String>,
) -> Result<String, ApiError> {
    let declared_set: BTreeSet<&String> = declared.iter().collect();
    if let Some(extra) = values.keys().find(|k| !declared_set.contains(k)) {
        return Err(ApiError::unprocessable(
            ErrorCode::UndeclaredVariable,
            format!("the prompt does not declare the variable `{extra}`"),
        ));
    }
    if let Some(missing) = declared.iter().find(|d| !values.contains_key(*d)) {
        return Err(ApiError::unprocessable(
            ErrorCode::MissingVariable,
            format!("the prompt needs a value for `{missing}`"),
        ));
    }
    let too_long = || {
        ApiError::unprocessable(
            ErrorCode::InvalidVariable,
            format!(
                "the variables render a query longer than {MAX_RENDERED_CHARS} characters; \
                 give shorter values"
            ),
        )
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            // Saved templates close every `{{`; an unclosed one is literal text.
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        match values.get(after[..end].trim()) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
        // A char is at most 4 bytes: past this many bytes the result is surely too long.
        if out.len() > 4 * MAX_RENDERED_CHARS {
            return Err(too_long());
        }
    }
    out.push_str(rest);
    if out.chars().count() > MAX_RENDERED_CHARS {
        return Err(too_long());
    }
    Ok(out)
}

pub fn variables_of(model: &prompt::Model) -> Vec<String> {
    model.variables.0.clone()
}

fn to_dto(model: &prompt::Model) -> Prompt {
    Prompt {
        id: model.id.clone(),
        name: model.name.clone(),
        description: model.description.clone(),
        query_template: model.query_template.clone(),
        instructions: model.instructions.clone(),
        variables: variables_of(model),
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict(
        ErrorCode::PromptExists,
        format!("a prompt named `{name}` already exists"),
    )
}

pub struct Prompts {
    pub db: DatabaseConnection,
}

impl Prompts {
    pub async fn find(
        db: &DatabaseConnection,
        org_id: &str,
        prompt_id: &str,
    ) -> ServiceResult<prompt::Model> {
        find_in_org(
            db,
            prompt::for_org(org_id),
            prompt::Column::Id,
            prompt_id,
            "prompt",
        )
        .await
    }
}

#[async_trait]
impl PromptService for Prompts {
    async fn create(&self, who: &Principal, request: PromptCreate) -> ServiceResult<Prompt> {
        let mut variables = request.variables;
        variables.dedup();
        check_template(&request.query_template, &variables)?;
        let now = Utc::now();
        let name = request.name.trim().to_string();
        let model = prompt::ActiveModel {
            id: Set(new_id("prm")),
            org_id: Set(who.org_id.clone()),
            name: Set(name.clone()),
            description: Set(request.description),
            query_template: Set(request.query_template),
            instructions: Set(request.instructions),
            variables: Set(JsonText(variables)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match model.insert(&self.db).await {
            Ok(saved) => Ok(to_dto(&saved)),
            Err(e) if is_unique_violation(&e) => Err(name_taken(&name)),
            Err(e) => Err(internal("creating a prompt", e)),
        }
    }

    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<PromptPage> {
        let (rows, next_cursor) = PageRequest::parse(page)?
            .fetch(
                &self.db,
                prompt::for_org(&who.org_id),
                prompt::Column::Id,
                |r| &r.id,
                "prompts",
            )
            .await?;
        Ok(PromptPage {
            items: rows.iter().map(to_dto).collect(),
            next_cursor,
        })
    }

    async fn view(&self, who: &Principal, prompt_id: &str) -> ServiceResult<Prompt> {
        Ok(to_dto(&Self::find(&self.db, &who.org_id, prompt_id).await?))
    }

    async fn update(
        &self,
        who: &Principal,
        prompt_id: &str,
        request: PromptUpdate,
    ) -> ServiceResult<Prompt> {
        let existing = Self::find(&self.db, &who.org_id, prompt_id).await?;
        let template = request
            .query_template
            .clone()
            .unwrap_or_else(|| existing.query_template.clone());
        let variables = request
            .variables
            .clone()
            .unwrap_or_else(|| variables_of(&existing));
        check_template(&template, &variables)?;
        let mut model: prompt::ActiveModel = existing.into();
        let name = request.name.map(|n| n.trim().to_string());
        if let Some(name) = &name {
            model.name = Set(name.clone());
        }
        if let Some(description) = request.description {
            model.description = Set(Some(description));
        }
        if let Some(instructions) = request.instructions {
            model.instructions = Set(instructions);
        }
        model.query_template = Set(template);
        model.variables = Set(JsonText(variables));
        model.updated_at = Set(Utc::now());
        match model.update(&self.db).await {
            Ok(saved) => Ok(to_dto(&saved)),
            Err(e) if is_unique_violation(&e) => {
                Err(name_taken(name.as_deref().unwrap_or_default()))
            }
            Err(e) => Err(internal("updating a prompt", e)),
        }
    }

    async fn delete(&self, who: &Principal, prompt_id: &str) -> ServiceResult<()> {
        let existing = Self::find(&self.db, &who.org_id, prompt_id).await?;
        prompt::Entity::delete_by_id(existing.id)
            .exec(&self.db)
            .await
            .map_err(|e| internal("deleting a prompt", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_checked() {
        assert_eq!(
            placeholders("news about {{topic}} in {{ city }} {{topic}}").unwrap(),
            ["topic", "city"]
        );
        assert!(placeholders("broken {{topic").is_err());
        assert!(placeholders("bad {{Topic}}").is_err());
        assert!(check_template("about {{topic}}", &["topic".into()]).is_ok());
        assert_eq!(
            check_template("about {{topic}}", &[])
                .unwrap_err()
                .problem
                .code,
            ErrorCode::UndeclaredVariable
        );
    }

    #[test]
    fn render_needs_exactly_the_declared_variables() {
        let declared = vec!["topic".to_string()];
        let mut values = BTreeMap::new();
        assert_eq!(
            render("{{topic}}", &declared, &values)
                .unwrap_err()
                .problem
                .code,
            ErrorCode::MissingVariable
        );
        values.insert("topic".into(), "floods".into());
        assert_eq!(
            render("news about {{ topic }}", &declared, &values).unwrap(),
            "news about floods"
        );
        values.insert("city".into(), "x".into());
        assert_eq!(
            render("{{topic}}", &declared, &values)
                .unwrap_err()
                .problem
                .code,
            ErrorCode::UndeclaredVariable
        );
    }

    #[test]
    fn render_is_one_pass_and_bounded() {
        let declared = vec!["a".to_string(), "b".to_string()];
        // A value holding another placeholder stays text.
        let values = BTreeMap::from([
            ("a".to_string(), "{{b}}{{b}}".to_string()),
            ("b".to_string(), "x".to_string()),
        ]);
        assert_eq!(
            render("{{a}} and {{ b }}", &declared, &values).unwrap(),
            "{{b}}{{b}} and x"
        );
        // The expansion bomb of the review: 400 placeholders of a 1,000-placeholder value.
        let values = BTreeMap::from([
            ("a".to_string(), "{{b}}".repeat(1_000)),
            ("b".to_string(), "{{a}}".repeat(1_000)),
        ]);
        let error = render(&"{{a}}".repeat(400), &declared, &values).unwrap_err();
        assert_eq!(error.problem.code, ErrorCode::InvalidVariable);
        // Exactly at the limit is fine; one character more is not.
        let values = BTreeMap::from([
            ("a".to_string(), "é".repeat(MAX_RENDERED_CHARS - 1)),
            ("b".to_string(), "y".to_string()),
        ]);
        assert_eq!(
            render("{{a}}{{b}}", &declared, &values)
                .unwrap()
                .chars()
                .count(),
            MAX_RENDERED_CHARS
        );
        assert!(render("{{a}}{{b}}!", &declared, &values).is_err());
    }
}
