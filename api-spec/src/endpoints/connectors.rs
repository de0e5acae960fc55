//! Connector CRUD and sync.

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    OpenApi,
};

use super::ApiTag;
use crate::{
    dto::connectors::*,
    problem::{DeleteErrors, ListErrors, Problems, ViewErrors, WriteErrors},
    responses::{Accepted, Created, NoContent, Ok200},
    scopes::Scope,
    security::ApiKeyOrBearer,
    services::{PageParams, Services},
};

use crate::dto::text::IdempotencyKey;

pub struct ConnectorsApi;

#[OpenApi(tag = "ApiTag::Connectors")]
impl ConnectorsApi {
    /// Create a connector
    ///
    /// Configures a media source: caption files over HTTP (WebVTT, SRT or JSON segments),
    /// each mapped to a media id and a target index. Header values are secrets: stored and
    /// never returned. URLs on private, loopback or link-local addresses are refused unless
    /// the server allows them.
    #[oai(
        path = "/connectors",
        method = "post",
        operation_id = "connector_create"
    )]
    async fn connector_create(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Makes the request safe to retry: a retry with the same key and body returns the
        /// stored response with `Idempotent-Replayed: true`.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<ConnectorCreate>,
    ) -> Result<Created<Connector>, Problems<WriteErrors>> {
        Ok(Created(services.connectors.create(&auth.0, body.0).await?))
    }

    /// List connectors
    ///
    /// Lists this organisation's connectors, ordered by id, header values masked.
    #[oai(path = "/connectors", method = "get", operation_id = "connector_list")]
    async fn connector_list(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Ok200<ConnectorPage>, Problems<ListErrors>> {
        let page = PageParams {
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(Ok200(services.connectors.list(&auth.0, page).await?))
    }

    /// Retrieve a connector
    ///
    /// Returns one connector, header values masked.
    #[oai(
        path = "/connectors/:connector_id",
        method = "get",
        operation_id = "connector_view"
    )]
    async fn connector_view(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The connector's id (`con_...`), as `connector_create` returned it.
        connector_id: Path<String>,
    ) -> Result<Ok200<Connector>, Problems<ViewErrors>> {
        Ok(Ok200(
            services.connectors.view(&auth.0, &connector_id.0).await?,
        ))
    }

    /// Update a connector
    ///
    /// Changes a connector; `headers`, when given, replaces every header and binds the
    /// values to the origins of the connector's files. Moving files to another origin
    /// without giving `headers` again drops the stored headers (the answer lists none), so
    /// a secret never follows files to a host it was not set for. Jobs already created keep
    /// the files they were created with.
    #[oai(
        path = "/connectors/:connector_id",
        method = "patch",
        operation_id = "connector_update"
    )]
    async fn connector_update(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The connector's id (`con_...`), as `connector_create` returned it.
        connector_id: Path<String>,
        /// Makes the request safe to retry (see `connector_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<ConnectorUpdate>,
    ) -> Result<Ok200<Connector>, Problems<WriteErrors>> {
        Ok(Ok200(
            services
                .connectors
                .update(&auth.0, &connector_id.0, body.0)
                .await?,
        ))
    }

    /// Delete a connector
    ///
    /// Deletes a connector and its stored secrets. Its jobs stay; queued ones fail.
    #[oai(
        path = "/connectors/:connector_id",
        method = "delete",
        operation_id = "connector_delete"
    )]
    async fn connector_delete(
        &self,
        #[oai(scope = "Scope::Admin")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The connector's id (`con_...`), as `connector_create` returned it.
        connector_id: Path<String>,
    ) -> Result<NoContent, Problems<DeleteErrors>> {
        services.connectors.delete(&auth.0, &connector_id.0).await?;
        Ok(NoContent)
    }

    /// Sync a connector
    ///
    /// Queues an ingestion job that fetches every file, parses its cues into segments with
    /// their timestamps and ingests them into the target indexes. Answers 202 with the job.
    #[oai(
        path = "/connectors/:connector_id/sync",
        method = "post",
        operation_id = "connector_sync"
    )]
    async fn connector_sync(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The connector's id (`con_...`), as `connector_create` returned it.
        connector_id: Path<String>,
        /// Makes the request safe to retry (see `connector_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
    ) -> Result<Accepted<Job>, Problems<WriteErrors>> {
        Ok(Accepted(
            services.connectors.sync(&auth.0, &connector_id.0).await?,
        ))
    }
}
