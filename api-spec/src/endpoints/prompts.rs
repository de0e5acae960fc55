//! Prompt CRUD.

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    OpenApi,
};

use super::ApiTag;
use crate::{
    dto::prompts::*,
    problem::{DeleteErrors, ListErrors, Problems, ViewErrors, WriteErrors},
    responses::{Created, NoContent, Ok200},
    scopes::Scope,
    security::ApiKeyOrBearer,
    services::{PageParams, Services},
};

use crate::dto::text::IdempotencyKey;

pub struct PromptsApi;

#[OpenApi(tag = "ApiTag::Prompts")]
impl PromptsApi {
    /// Create a prompt
    ///
    /// Creates a named template: a retrieval query with `{{variable}}` placeholders, the
    /// variables it declares, and instructions. A placeholder that is not declared is a 422.
    #[oai(path = "/prompts", method = "post", operation_id = "prompt_create")]
    async fn prompt_create(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Makes the request safe to retry: a retry with the same key and body returns the
        /// stored response with `Idempotent-Replayed: true`.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<PromptCreate>,
    ) -> Result<Created<Prompt>, Problems<WriteErrors>> {
        Ok(Created(services.prompts.create(&auth.0, body.0).await?))
    }

    /// List prompts
    ///
    /// Lists this organisation's prompts, ordered by id.
    #[oai(path = "/prompts", method = "get", operation_id = "prompt_list")]
    async fn prompt_list(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Ok200<PromptPage>, Problems<ListErrors>> {
        let page = PageParams {
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(Ok200(services.prompts.list(&auth.0, page).await?))
    }

    /// Retrieve a prompt
    ///
    /// Returns one prompt.
    #[oai(
        path = "/prompts/:prompt_id",
        method = "get",
        operation_id = "prompt_view"
    )]
    async fn prompt_view(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The prompt's id (`prm_...`), as `prompt_create` returned it.
        prompt_id: Path<String>,
    ) -> Result<Ok200<Prompt>, Problems<ViewErrors>> {
        Ok(Ok200(services.prompts.view(&auth.0, &prompt_id.0).await?))
    }

    /// Update a prompt
    ///
    /// Changes a prompt. Runs already created keep the query they were created with.
    #[oai(
        path = "/prompts/:prompt_id",
        method = "patch",
        operation_id = "prompt_update"
    )]
    async fn prompt_update(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The prompt's id (`prm_...`), as `prompt_create` returned it.
        prompt_id: Path<String>,
        /// Makes the request safe to retry (see `prompt_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<PromptUpdate>,
    ) -> Result<Ok200<Prompt>, Problems<WriteErrors>> {
        Ok(Ok200(
            services
                .prompts
                .update(&auth.0, &prompt_id.0, body.0)
                .await?,
        ))
    }

    /// Delete a prompt
    ///
    /// Deletes a prompt. Its runs stay, with their results.
    #[oai(
        path = "/prompts/:prompt_id",
        method = "delete",
        operation_id = "prompt_delete"
    )]
    async fn prompt_delete(
        &self,
        #[oai(scope = "Scope::Admin")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The prompt's id (`prm_...`), as `prompt_create` returned it.
        prompt_id: Path<String>,
    ) -> Result<NoContent, Problems<DeleteErrors>> {
        services.prompts.delete(&auth.0, &prompt_id.0).await?;
        Ok(NoContent)
    }
}
