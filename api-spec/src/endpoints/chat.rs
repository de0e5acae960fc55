//! `POST /chat/completions`.

use poem::web::Data;
use poem_openapi::{payload::Json, OpenApi};

use super::ApiTag;
use crate::{
    dto::chat::*,
    problem::{Problems, QueryErrors},
    responses::Ok200,
    scopes::Scope,
    security::ApiKeyOrBearer,
    services::Services,
};

pub struct ChatApi;

#[OpenApi(tag = "ApiTag::Chat")]
impl ChatApi {
    /// Answer from indexed evidence
    ///
    /// Retrieves evidence for the last user message from the given indexes and answers with
    /// citations (segment, media id, timestamps). With no language model configured the
    /// answer is extractive, and `mode` and `notice` say so.
    #[oai(
        path = "/chat/completions",
        method = "post",
        operation_id = "chat_completion_create"
    )]
    async fn chat_completion_create(
        &self,
        #[oai(scope = "Scope::Search")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        body: Json<ChatRequest>,
    ) -> Result<Ok200<ChatCompletion>, Problems<QueryErrors>> {
        Ok(Ok200(services.retrieval.chat(&auth.0, body.0).await?))
    }
}
