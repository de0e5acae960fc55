//! Ranked search over one index.

use poem::web::Data;
use poem_openapi::{param::Path, payload::Json, OpenApi};

use super::ApiTag;
use crate::{
    dto::search::*,
    problem::{Problems, QueryErrors, SearchPageErrors},
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
        /// The index's id (`idx_...`, or the one you chose at `index_create`).
        index_id: Path<String>,
        body: Json<SearchRequest>,
    ) -> Result<Ok200<SearchResults>, Problems<QueryErrors>> {
        Ok(Ok200(
            services
                .indexes
                .search(&auth.0, &index_id.0, body.0)
                .await?,
        ))
    }
}

pub struct CrossSearchApi;

#[OpenApi(tag = "ApiTag::Search")]
impl CrossSearchApi {
    /// Search several indexes
    ///
    /// Ranks segments of up to 20 indexes against a natural-language query and returns the
    /// first page, with a page token for the next.
    #[oai(path = "/search", method = "post", operation_id = "search_query")]
    async fn search_query(
        &self,
        #[oai(scope = "Scope::Search")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        body: Json<CrossSearchRequest>,
    ) -> Result<Ok200<SearchPage>, Problems<QueryErrors>> {
        Ok(Ok200(services.retrieval.search(&auth.0, body.0).await?))
    }

    /// Get the next page of a search
    ///
    /// Returns the page a `next_page_token` points at. A malformed, foreign or expired token
    /// is a 400 problem.
    #[oai(
        path = "/search/:page_token",
        method = "get",
        operation_id = "search_page_view"
    )]
    async fn search_page_view(
        &self,
        #[oai(scope = "Scope::Search")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The `next_page_token` of the previous page of this search.
        page_token: Path<String>,
    ) -> Result<Ok200<SearchPage>, Problems<SearchPageErrors>> {
        Ok(Ok200(
            services
                .retrieval
                .search_page(&auth.0, &page_token.0)
                .await?,
        ))
    }
}
