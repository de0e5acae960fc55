//! Ranked search over one index.

use poem::web::Data;
use poem_openapi::{param::Path, payload::Json, OpenApi};

use super::ApiTag;
use crate::{
    dto::search::*,
    problem::{Problems, ViewErrors},
    responses::Ok200,
    scopes::Scope,
    security::ApiKeyOrBearer,
    services::Services,
};

pub struct SearchApi;

#[OpenApi(tag = "ApiTag::Search")]
impl SearchApi {
    /// Search an index
    ///
    /// Ranks the index's segments against a natural-language query by BM25 (terms OR-ed,
    /// as users type them) and returns the `top_k` best with highlights.
    #[oai(
        path = "/indexes/:index_id/search",
        method = "post",
        operation_id = "index_search"
    )]
    async fn index_search(
        &self,
        #[oai(scope = "Scope::Search")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        index_id: Path<String>,
        body: Json<SearchRequest>,
    ) -> Result<Ok200<SearchResults>, Problems<ViewErrors>> {
        Ok(Ok200(
            services
                .indexes
                .search(&auth.0, &index_id.0, body.0)
                .await?,
        ))
    }
}
