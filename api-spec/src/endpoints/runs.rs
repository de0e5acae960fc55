//! Runs: queue a prompt against an index, inspect, cancel, retry.

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    OpenApi,
};

use super::ApiTag;
use crate::{
    dto::runs::*,
    problem::{ListErrors, Problems, ViewErrors, WriteErrors},
    responses::{Accepted, Ok200},
    scopes::Scope,
    security::ApiKeyOrBearer,
    services::{PageParams, Services},
};

use crate::dto::text::IdempotencyKey;

pub struct RunsApi;

#[OpenApi(tag = "ApiTag::Runs")]
impl RunsApi {
    /// Run a prompt
    ///
    /// Renders the prompt's query with `variables` (each declared variable exactly once; a
    /// missing or undeclared one is a 422) and queues the run against the index. Answers 202
    /// with the queued run; poll `run_view` or subscribe a webhook to `run.*` events.
    #[oai(path = "/runs", method = "post", operation_id = "run_create")]
    async fn run_create(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Makes the request safe to retry: a retry with the same key and body returns the
        /// stored response with `Idempotent-Replayed: true`.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<RunCreate>,
    ) -> Result<Accepted<Run>, Problems<WriteErrors>> {
        Ok(Accepted(services.runs.create(&auth.0, body.0).await?))
    }

    /// List runs
    ///
    /// Lists this organisation's runs, oldest first.
    #[oai(path = "/runs", method = "get", operation_id = "run_list")]
    async fn run_list(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Ok200<RunPage>, Problems<ListErrors>> {
        let page = PageParams {
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(Ok200(services.runs.list(&auth.0, page).await?))
    }

    /// Retrieve a run
    ///
    /// Returns one run with its status, timings, and its result or error.
    #[oai(path = "/runs/:run_id", method = "get", operation_id = "run_view")]
    async fn run_view(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The run's id (`run_...`), as `run_create` returned it.
        run_id: Path<String>,
    ) -> Result<Ok200<Run>, Problems<ViewErrors>> {
        Ok(Ok200(services.runs.view(&auth.0, &run_id.0).await?))
    }

    /// Cancel a run
    ///
    /// Cancels a queued or running run. Any other status is a 409.
    #[oai(
        path = "/runs/:run_id/cancel",
        method = "post",
        operation_id = "run_cancel"
    )]
    async fn run_cancel(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The run's id (`run_...`), as `run_create` returned it.
        run_id: Path<String>,
        /// Makes the request safe to retry (see `run_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
    ) -> Result<Ok200<Run>, Problems<WriteErrors>> {
        Ok(Ok200(services.runs.cancel(&auth.0, &run_id.0).await?))
    }

    /// Retry a run
    ///
    /// Queues a new attempt of a failed or cancelled run (same prompt query, index and
    /// variables); the original stays as it was. Any other status is a 409.
    #[oai(
        path = "/runs/:run_id/retry",
        method = "post",
        operation_id = "run_retry"
    )]
    async fn run_retry(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The run's id (`run_...`), as `run_create` returned it.
        run_id: Path<String>,
        /// Makes the request safe to retry (see `run_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
    ) -> Result<Accepted<Run>, Problems<WriteErrors>> {
        Ok(Accepted(services.runs.retry(&auth.0, &run_id.0).await?))
    }
}
