//! Ingestion jobs: inspect, cancel (queued or running), retry (failed or cancelled) as a new
//! attempt of the connector's current files.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, QueryFilter};
use tokio::sync::Notify;
use videovector_api_spec::ErrorCode;
use videovector_api_spec::{
    dto::{connectors::*, webhooks::WebhookEventType},
    services::{JobService, PageParams, ServiceResult},
    ApiError, Principal,
};

use super::{find_in_org, internal, pagination::PageRequest, queued_work::Work};
use crate::request_context::RequestContext;
use crate::{
    db::entities::{connector, job},
    db::queue::{self, QueueStatus},
    events::Events,
    ids::new_id,
};

fn status_of(value: QueueStatus) -> JobStatus {
    match value {
        QueueStatus::Queued => JobStatus::Queued,
        QueueStatus::Running => JobStatus::Running,
        QueueStatus::Succeeded => JobStatus::Succeeded,
        QueueStatus::Cancelled => JobStatus::Cancelled,
        QueueStatus::Failed => JobStatus::Failed,
    }
}

pub fn to_dto(model: &job::Model) -> Job {
    let files = &model.files.0;
    let progress = JobProgress {
        files_total: files.len() as u64,
        files_done: files.iter().filter(|f| f.status != "pending").count() as u64,
        files_failed: files.iter().filter(|f| f.status == "failed").count() as u64,
        segments_ingested: files.iter().map(|f| f.segments).sum(),
    };
    Job {
        id: model.id.clone(),
        connector_id: model.connector_id.clone(),
        status: status_of(model.status),
        attempt: model.attempt.max(1) as u32,
        retry_of: model.retry_of.clone(),
        progress,
        files: files
            .iter()
            .cloned()
            .map(|f| JobFile {
                status: match f.status.as_str() {
                    "succeeded" => JobFileStatus::Succeeded,
                    "failed" => JobFileStatus::Failed,
                    _ => JobFileStatus::Pending,
                },
                url: f.url,
                media_id: f.media_id,
                index_id: f.index_id,
                segments: f.segments,
                error: f.error,
            })
            .collect(),
        error: model.error.clone(),
        created_at: model.created_at,
        started_at: model.started_at,
        finished_at: model.finished_at,
    }
}

pub struct Jobs {
    pub db: DatabaseConnection,
    pub wake: Arc<Notify>,
    pub events: Events,
}

impl Jobs {
    fn work(&self) -> Work<'_> {
        Work {
            db: &self.db,
            events: &self.events,
            table: &queue::JOBS,
            noun: "job",
            cancelled_event: WebhookEventType::JobCancelled,
        }
    }

    async fn find(&self, who: &Principal, job_id: &str) -> ServiceResult<job::Model> {
        find_in_org(
            &self.db,
            job::for_org(&who.org_id),
            job::Column::Id,
            job_id,
            "job",
        )
        .await
    }
}

#[async_trait]
impl JobService for Jobs {
    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<JobPage> {
        let (rows, next_cursor) = PageRequest::parse(page)?
            .fetch(
                &self.db,
                job::for_org(&who.org_id),
                job::Column::Id,
                |r| &r.id,
                "jobs",
            )
            .await?;
        Ok(JobPage {
            items: rows.iter().map(to_dto).collect(),
            next_cursor,
        })
    }

    async fn view(&self, who: &Principal, job_id: &str) -> ServiceResult<Job> {
        Ok(to_dto(&self.find(who, job_id).await?))
    }

    async fn cancel(&self, who: &Principal, job_id: &str) -> ServiceResult<Job> {
        let existing = self.find(who, job_id).await?;
        self.work()
            .cancel(
                &who.org_id,
                &existing.id,
                || self.find(who, job_id),
                |j: &job::Model| j.status,
                to_dto,
            )
            .await
    }

    async fn retry(&self, who: &Principal, job_id: &str) -> ServiceResult<Job> {
        let existing = self.find(who, job_id).await?;
        self.work().ensure_retryable(existing.status)?;
        // The connector's current files, checked when they were set, with its current
        // headers at fetch time: a retry never replays an earlier configuration.
        let source = connector::for_org(&who.org_id)
            .filter(connector::Column::Id.eq(&existing.connector_id))
            .one(&self.db)
            .await
            .map_err(|e| internal("loading a connector", e))?
            .ok_or_else(|| {
                ApiError::conflict(
                    ErrorCode::InvalidTransition,
                    format!(
                        "connector `{}` was deleted; this job cannot be retried",
                        existing.connector_id
                    ),
                )
            })?;
        let saved = job::ActiveModel {
            id: Set(new_id("job")),
            org_id: Set(who.org_id.clone()),
            connector_id: Set(existing.connector_id.clone()),
            status: Set(job::QUEUED),
            attempt: Set(existing.attempt + 1),
            retry_of: Set(Some(existing.id.clone())),
            files: Set(source.files),
            error: Set(None),
            created_at: Set(Utc::now()),
            started_at: Set(None),
            finished_at: Set(None),
            request_id: Set(RequestContext::current_request_id()),
            trace_parent: Set(crate::traces::propagation::current_traceparent()),
        }
        .insert(&self.db)
        .await
        .map_err(|e| internal("queueing a job", e))?;
        self.wake.notify_one();
        Ok(to_dto(&saved))
    }
}
