//! Index CRUD and segment ingestion.

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    OpenApi,
};

use super::ApiTag;
use crate::{
    dto::indexes::*,
    problem::{DeleteErrors, IngestErrors, ListErrors, Problems, ViewErrors, WriteErrors},
    responses::{Created, NoContent, Ok200},
    scopes::Scope,
    security::ApiKeyOrBearer,
    services::{PageParams, Services},
};

use crate::dto::text::IdempotencyKey;

pub struct IndexesApi;

#[OpenApi(tag = "ApiTag::Indexes")]
impl IndexesApi {
    /// Create an index
    ///
    /// Creates an empty index. `id` may be chosen by the caller (`idx_archive`); it must be
    /// unique in the organisation (409 otherwise).
    #[oai(path = "/indexes", method = "post", operation_id = "index_create")]
    async fn index_create(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Makes the request safe to retry: a retry with the same key and body returns the
        /// stored response with `Idempotent-Replayed: true`.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<IndexCreate>,
    ) -> Result<Created<Index>, Problems<WriteErrors>> {
        Ok(Created(services.indexes.create(&auth.0, body.0).await?))
    }

    /// List indexes
    ///
    /// Lists this organisation's indexes, ordered by id.
    #[oai(path = "/indexes", method = "get", operation_id = "index_list")]
    async fn index_list(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Ok200<IndexPage>, Problems<ListErrors>> {
        let page = PageParams {
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(Ok200(services.indexes.list(&auth.0, page).await?))
    }

    /// Retrieve an index
    ///
    /// Returns one index with its segment count.
    #[oai(
        path = "/indexes/:index_id",
        method = "get",
        operation_id = "index_view"
    )]
    async fn index_view(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The index's id (`idx_...`, or the one you chose at `index_create`).
        index_id: Path<String>,
    ) -> Result<Ok200<Index>, Problems<ViewErrors>> {
        Ok(Ok200(services.indexes.view(&auth.0, &index_id.0).await?))
    }

    /// Update an index
    ///
    /// Changes an index's name or description.
    #[oai(
        path = "/indexes/:index_id",
        method = "patch",
        operation_id = "index_update"
    )]
    async fn index_update(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The index's id (`idx_...`, or the one you chose at `index_create`).
        index_id: Path<String>,
        /// Makes the request safe to retry (see `index_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<IndexUpdate>,
    ) -> Result<Ok200<Index>, Problems<WriteErrors>> {
        Ok(Ok200(
            services
                .indexes
                .update(&auth.0, &index_id.0, body.0)
                .await?,
        ))
    }

    /// Delete an index
    ///
    /// Deletes an index and every segment in it.
    #[oai(
        path = "/indexes/:index_id",
        method = "delete",
        operation_id = "index_delete"
    )]
    async fn index_delete(
        &self,
        #[oai(scope = "Scope::Admin")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The index's id (`idx_...`, or the one you chose at `index_create`).
        index_id: Path<String>,
    ) -> Result<NoContent, Problems<DeleteErrors>> {
        services.indexes.delete(&auth.0, &index_id.0).await?;
        Ok(NoContent)
    }

    /// Ingest segments
    ///
    /// Stores 1 to 1,000 timed segments in the index. They are searchable within about a
    /// second of this response, or before it when `wait` is `true`.
    #[oai(
        path = "/indexes/:index_id/segments",
        method = "post",
        operation_id = "segment_ingest"
    )]
    async fn segment_ingest(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The index's id (`idx_...`, or the one you chose at `index_create`).
        index_id: Path<String>,
        /// Makes the request safe to retry (see `index_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<SegmentBatch>,
    ) -> Result<Created<SegmentBatchResult>, Problems<IngestErrors>> {
        Ok(Created(
            services
                .indexes
                .ingest(&auth.0, &index_id.0, body.0)
                .await?,
        ))
    }
}
