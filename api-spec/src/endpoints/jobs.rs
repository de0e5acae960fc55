//! Ingestion jobs: inspect, cancel, retry.

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    OpenApi,
};

use super::ApiTag;
use crate::{
    dto::connectors::*,
    problem::{ListErrors, Problems, ViewErrors, WriteErrors},
    responses::{Accepted, Ok200},
    scopes::Scope,
    security::ApiKeyOrBearer,
    services::{PageParams, Services},
};

use crate::dto::text::IdempotencyKey;

pub struct JobsApi;

#[OpenApi(tag = "ApiTag::Jobs")]
impl JobsApi {
    /// List jobs
    ///
    /// Lists this organisation's ingestion jobs, oldest first.
    #[oai(path = "/jobs", method = "get", operation_id = "job_list")]
    async fn job_list(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Ok200<JobPage>, Problems<ListErrors>> {
        let page = PageParams {
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(Ok200(services.jobs.list(&auth.0, page).await?))
    }

    /// Retrieve a job
    ///
    /// Returns one job with its state, progress (files, segments) and the error of each
    /// failed file.
    #[oai(path = "/jobs/:job_id", method = "get", operation_id = "job_view")]
    async fn job_view(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The ingestion job's id (`job_...`), as `connector_sync` returned it.
        job_id: Path<String>,
    ) -> Result<Ok200<Job>, Problems<ViewErrors>> {
        Ok(Ok200(services.jobs.view(&auth.0, &job_id.0).await?))
    }

    /// Cancel a job
    ///
    /// Cancels a queued or running job; a running job stops before its next file. Any other
    /// status is a 409.
    #[oai(
        path = "/jobs/:job_id/cancel",
        method = "post",
        operation_id = "job_cancel"
    )]
    async fn job_cancel(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The ingestion job's id (`job_...`), as `connector_sync` returned it.
        job_id: Path<String>,
        /// Makes the request safe to retry (see `run_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
    ) -> Result<Ok200<Job>, Problems<WriteErrors>> {
        Ok(Ok200(services.jobs.cancel(&auth.0, &job_id.0).await?))
    }

    /// Retry a job
    ///
    /// Queues a new attempt of a failed or cancelled job: it syncs the connector's current
    /// files with its current headers, so a retry never replays an earlier configuration.
    /// The original stays as it was. Any other status, or a deleted connector, is a 409.
    #[oai(
        path = "/jobs/:job_id/retry",
        method = "post",
        operation_id = "job_retry"
    )]
    async fn job_retry(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The ingestion job's id (`job_...`), as `connector_sync` returned it.
        job_id: Path<String>,
        /// Makes the request safe to retry (see `run_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
    ) -> Result<Accepted<Job>, Problems<WriteErrors>> {
        Ok(Accepted(services.jobs.retry(&auth.0, &job_id.0).await?))
    }
}
