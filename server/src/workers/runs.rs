//! Executes queued runs: retrieves evidence for the run's query from its index and stores
//! the answer (extractive: no language model is configured) or the error. A run whose
//! instance stopped while running it is run again by whichever instance claims it once its
//! lease runs out (retrieval reads only, so running it twice changes nothing).

use std::sync::Arc;

use chrono::Utc;
use opentelemetry::{trace::SpanKind, KeyValue};
use poem_openapi::types::ToJSON;
use sea_orm::{sea_query::Expr, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::Notify;
use videovector_api_spec::dto::{runs::RunResult, webhooks::WebhookEventType};

use super::drain;
use crate::db::queue::{Lease, QueueStatus, RUNS};
use crate::{
    db::{columns::ApiJson, entities::run},
    events::Events,
    services::{
        retrieval::DEFAULT_SEMANTIC_RATIO,
        retrieval::{extractive_answer, Retrieval, Retrieve},
        runs::{retrieval_of, to_dto},
    },
    traces::Tracing,
};

pub struct RunWorker {
    pub db: DatabaseConnection,
    pub retrieval: Arc<Retrieval>,
    pub wake: Arc<Notify>,
    pub events: Events,
    /// How long a claim lasts without a heartbeat.
    pub lease: std::time::Duration,
    /// Makes each execution a span of the trace that queued it, when traces are on.
    pub tracing: Option<Tracing>,
}

impl RunWorker {
    pub fn spawn(self: Arc<Self>) {
        let (db, wake, lease) = (self.db.clone(), self.wake.clone(), self.lease);
        drain(db, &RUNS, lease, wake, "executing a run", move |lease| {
            let worker = self.clone();
            async move { worker.execute(&lease).await }
        });
    }

    /// Finishes a run still running under `lease` (a cancel in the meantime wins) and emits
    /// its event.
    async fn finish(
        &self,
        lease: &Lease,
        status: QueueStatus,
        result: Option<RunResult>,
        error: Option<String>,
    ) -> Result<(), sea_orm::DbErr> {
        let finished = run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(status))
            .col_expr(run::Column::Result, Expr::value(result.map(ApiJson)))
            .col_expr(run::Column::Error, Expr::value(error))
            .col_expr(run::Column::FinishedAt, Expr::value(Utc::now()))
            .filter(lease.fence())
            .exec(&self.db)
            .await?;
        if finished.rows_affected == 1 {
            if let Some(done) = run::Entity::find_by_id(lease.id().to_string())
                .one(&self.db)
                .await?
            {
                let event = if status == run::SUCCEEDED {
                    WebhookEventType::RunSucceeded
                } else {
                    WebhookEventType::RunFailed
                };
                let data = to_dto(&done).to_json().unwrap_or_default();
                self.events
                    .emit_caused(&done.org_id, event, data, done.request_id.clone())
                    .await;
            }
        }
        Ok(())
    }

    async fn execute(&self, lease: &Lease) -> Result<(), sea_orm::DbErr> {
        let id = lease.id();
        let Some(model) = run::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        crate::traces::continuing(
            self.tracing.as_ref(),
            model.trace_parent.as_deref(),
            "run execute",
            SpanKind::Consumer,
            || vec![KeyValue::new("videovector.run_id", model.id.clone())],
            self.run(lease, &model),
        )
        .await
    }

    async fn run(&self, lease: &Lease, model: &run::Model) -> Result<(), sea_orm::DbErr> {
        let how = retrieval_of(model);
        let retrieve = Retrieve {
            mode: how.mode,
            semantic_ratio: how.semantic_ratio.unwrap_or(DEFAULT_SEMANTIC_RATIO),
            ..Retrieve::new(&model.query, None, None)
        };
        let outcome = self
            .retrieval
            .retrieve(
                &model.org_id,
                std::slice::from_ref(&model.index_id),
                &retrieve,
                0,
                model.top_k.max(1) as usize,
            )
            .await;
        let (status, result, error) = match outcome {
            Ok((hits, _, _)) => {
                let answer = extractive_answer(hits);
                let result = RunResult {
                    answer: answer.answer,
                    mode: answer.mode,
                    notice: answer.notice,
                    citations: answer.citations,
                };
                (run::SUCCEEDED, Some(result), None)
            }
            // The database is away: the run is not the cause. Left running, its lease
            // runs out and it is run again once the database is back.
            Err(e) if e.status() == poem::http::StatusCode::SERVICE_UNAVAILABLE => {
                return Err(sea_orm::DbErr::Custom(e.problem.detail.clone()));
            }
            Err(e) => (run::FAILED, None, Some(e.problem.detail.clone())),
        };
        self.finish(lease, status, result, error).await
    }
}
