//! Runs: created queued (the prompt's query rendered now), executed by the run worker,
//! cancelled while queued or running, retried from failed or cancelled as a new attempt.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, QueryFilter};
use tokio::sync::Notify;
use videovector_api_spec::{
    dto::{runs::*, search::SearchMode, webhooks::WebhookEventType},
    index_access,
    services::{PageParams, RunService, ServiceResult},
    ApiError, Principal,
};

use super::{
    find_in_org, internal,
    pagination::PageRequest,
    prompts::{render, variables_of, Prompts},
    queued_work::Work,
    retrieval::DEFAULT_SEMANTIC_RATIO,
};
use crate::request_context::RequestContext;
use crate::{
    db::columns::JsonText,
    db::entities::{index, run},
    db::queue::{self, QueueStatus},
    db::records::RunRetrieval,
    embed::Embedders,
    events::Events,
    ids::new_id,
};

const DEFAULT_TOP_K: u32 = 5;

fn status_of(value: QueueStatus) -> RunStatus {
    match value {
        QueueStatus::Queued => RunStatus::Queued,
        QueueStatus::Running => RunStatus::Running,
        QueueStatus::Succeeded => RunStatus::Succeeded,
        QueueStatus::Cancelled => RunStatus::Cancelled,
        QueueStatus::Failed => RunStatus::Failed,
    }
}

/// How a run retrieves (lexically for a run from before runs had a mode).
pub fn retrieval_of(model: &run::Model) -> RunRetrieval {
    model
        .retrieval
        .as_ref()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

pub fn to_dto(model: &run::Model) -> Run {
    let duration_ms = match (model.started_at, model.finished_at) {
        (Some(start), Some(end)) => Some((end - start).num_milliseconds().max(0) as u64),
        _ => None,
    };
    Run {
        id: model.id.clone(),
        prompt_id: model.prompt_id.clone(),
        index_id: model.index_id.clone(),
        variables: model.variables.0.clone(),
        status: status_of(model.status),
        attempt: model.attempt.max(1) as u32,
        retry_of: model.retry_of.clone(),
        query: model.query.clone(),
        instructions: model.instructions.clone(),
        top_k: model.top_k.max(1) as u32,
        mode: retrieval_of(model).mode,
        semantic_ratio: retrieval_of(model).semantic_ratio,
        created_at: model.created_at,
        started_at: model.started_at,
        finished_at: model.finished_at,
        duration_ms,
        result: model.result.as_ref().map(|r| r.0.clone()),
        error: model.error.clone(),
    }
}

pub struct Runs {
    pub db: DatabaseConnection,
    pub embedders: Arc<Embedders>,
    pub wake: Arc<Notify>,
    pub events: Events,
}

impl Runs {
    fn work(&self) -> Work<'_> {
        Work {
            db: &self.db,
            events: &self.events,
            table: &queue::RUNS,
            noun: "run",
            cancelled_event: WebhookEventType::RunCancelled,
        }
    }

    async fn find(&self, who: &Principal, run_id: &str) -> ServiceResult<run::Model> {
        find_in_org(
            &self.db,
            run::visible_to(who),
            run::Column::Id,
            run_id,
            "run",
        )
        .await
    }

    async fn enqueue(&self, model: run::ActiveModel) -> ServiceResult<Run> {
        let saved = model
            .insert(&self.db)
            .await
            .map_err(|e| internal("queueing a run", e))?;
        self.wake.notify_one();
        Ok(to_dto(&saved))
    }
}

fn queued(
    org_id: &str,
    base: &run::Model,
    attempt: i32,
    retry_of: Option<String>,
) -> run::ActiveModel {
    run::ActiveModel {
        id: Set(new_id("run")),
        org_id: Set(org_id.to_string()),
        prompt_id: Set(base.prompt_id.clone()),
        index_id: Set(base.index_id.clone()),
        variables: Set(base.variables.clone()),
        status: Set(run::QUEUED),
        attempt: Set(attempt),
        retry_of: Set(retry_of),
        query: Set(base.query.clone()),
        instructions: Set(base.instructions.clone()),
        top_k: Set(base.top_k),
        retrieval: Set(base.retrieval.clone()),
        result: Set(None),
        error: Set(None),
        created_at: Set(Utc::now()),
        started_at: Set(None),
        finished_at: Set(None),
        // A retry is caused by the retrying request, not the first one.
        request_id: Set(RequestContext::current_request_id()),
        trace_parent: Set(crate::traces::propagation::current_traceparent()),
    }
}

#[async_trait]
impl RunService for Runs {
    async fn create(&self, who: &Principal, request: RunCreate) -> ServiceResult<Run> {
        index_access::check_named(who, [&request.index_id])?;
        let top_k = who.hits_wanted(request.top_k, DEFAULT_TOP_K, "/top_k")?;
        let prompt = Prompts::find(&self.db, &who.org_id, &request.prompt_id).await?;
        let query = render(
            &prompt.query_template,
            &variables_of(&prompt),
            &request.variables,
        )?;
        let idx = index::for_org(&who.org_id)
            .filter(index::Column::Id.eq(&request.index_id))
            .one(&self.db)
            .await
            .map_err(|e| internal("loading an index", e))?
            .ok_or_else(|| ApiError::not_found("index", &request.index_id))?;
        let mode = request.mode.unwrap_or_default();
        if mode != SearchMode::Lexical {
            // Refused now rather than failing later: the index must embed text itself.
            self.embedders.check_embeds_text(&idx)?;
        }
        let retrieval = RunRetrieval {
            mode,
            semantic_ratio: (mode == SearchMode::Hybrid)
                .then(|| request.semantic_ratio.unwrap_or(DEFAULT_SEMANTIC_RATIO)),
        };
        let base = run::Model {
            id: String::new(),
            org_id: who.org_id.clone(),
            prompt_id: prompt.id,
            index_id: request.index_id,
            variables: JsonText(request.variables.clone()),
            status: run::QUEUED,
            attempt: 1,
            retry_of: None,
            query,
            instructions: prompt.instructions,
            top_k: top_k as i32,
            retrieval: Some(JsonText(retrieval)),
            result: None,
            error: None,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            request_id: None,
            trace_parent: None,
        };
        self.enqueue(queued(&who.org_id, &base, 1, None)).await
    }

    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<RunPage> {
        let (rows, next_cursor) = PageRequest::parse(page)?
            .fetch(
                &self.db,
                run::visible_to(who),
                run::Column::Id,
                |r| &r.id,
                "runs",
            )
            .await?;
        Ok(RunPage {
            items: rows.iter().map(to_dto).collect(),
            next_cursor,
        })
    }

    async fn view(&self, who: &Principal, run_id: &str) -> ServiceResult<Run> {
        Ok(to_dto(&self.find(who, run_id).await?))
    }

    async fn cancel(&self, who: &Principal, run_id: &str) -> ServiceResult<Run> {
        let existing = self.find(who, run_id).await?;
        self.work()
            .cancel(
                &who.org_id,
                &existing.id,
                || self.find(who, run_id),
                |r: &run::Model| r.status,
                to_dto,
            )
            .await
    }

    async fn retry(&self, who: &Principal, run_id: &str) -> ServiceResult<Run> {
        let existing = self.find(who, run_id).await?;
        self.work().ensure_retryable(existing.status)?;
        let attempt = existing.attempt + 1;
        self.enqueue(queued(
            &who.org_id,
            &existing,
            attempt,
            Some(existing.id.clone()),
        ))
        .await
    }
}
