//! Executes queued ingestion jobs: fetches each file (through the outbound guard, with the
//! connector's headers), parses its cues, and ingests them as segments. A file that cannot
//! be fetched or parsed fails alone, with its error; the job goes on. Cancelling stops the
//! job before its next file. A job whose instance stopped (killed, or cut off from the
//! database) is taken over by whichever instance claims it once its lease runs out, from
//! its first unfinished file: the files it finished keep their outcome, and the file it was
//! storing when it stopped is fetched again, so its cues may be stored twice (at least once,
//! as a retry would).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use opentelemetry::{trace::SpanKind, KeyValue};
use poem_openapi::types::ToJSON;
use sea_orm::{sea_query::Expr, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::Notify;
use videovector_api_spec::dto::{
    indexes::{SegmentInput, MAX_SEGMENT_TEXT_CHARS},
    text::NonBlank,
    webhooks::WebhookEventType,
};

use super::drain;
use crate::db::queue::{Lease, QueueStatus, JOBS};
use crate::{
    captions,
    db::{
        columns::JsonText,
        entities::{connector, index, job},
        records::StoredFile,
        segment_store::SegmentStore,
    },
    embed::Embedders,
    events::Events,
    net_guard,
    search::Indexer,
    secrets_at_rest::Keyring,
    services::{
        connector_files::format_of, connector_headers::BoundHeaders, ingest::embed_and_store, jobs,
    },
    traces::Tracing,
};

const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
const BATCH: usize = 1_000;
/// How long a file's ingest waits for its cues to become searchable.
const SEARCHABLE_WITHIN: Duration = Duration::from_secs(10);

pub struct JobWorker {
    pub db: DatabaseConnection,
    pub segments: SegmentStore,
    pub indexer: Arc<Indexer>,
    pub wake: Arc<Notify>,
    pub allow_private_targets: bool,
    pub events: Events,
    /// Opens the connectors' sealed headers.
    pub keyring: Arc<Keyring>,
    /// Embeds the synced segments, by their index's embedder.
    pub embedders: Arc<Embedders>,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// Makes each execution a span of the trace that queued it, when traces are on.
    pub tracing: Option<Tracing>,
}

impl JobWorker {
    pub fn spawn(self: Arc<Self>) {
        let (db, wake, lease) = (self.db.clone(), self.wake.clone(), self.lease);
        drain(db, &JOBS, lease, wake, "executing a job", move |lease| {
            let worker = self.clone();
            async move { worker.execute(&lease).await }
        });
    }

    async fn execute(&self, lease: &Lease) -> Result<(), sea_orm::DbErr> {
        let id = lease.id();
        let Some(model) = job::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        crate::traces::continuing(
            self.tracing.as_ref(),
            model.trace_parent.as_deref(),
            "job execute",
            SpanKind::Consumer,
            || vec![KeyValue::new("videovector.job_id", model.id.clone())],
            self.run(lease, &model),
        )
        .await
    }

    async fn run(&self, lease: &Lease, model: &job::Model) -> Result<(), sea_orm::DbErr> {
        let Some(source) = connector::Entity::find_by_id(model.connector_id.clone())
            .one(&self.db)
            .await?
        else {
            return self
                .finish(lease, job::FAILED, Some("the connector was deleted".into()))
                .await;
        };
        let Ok(headers) =
            BoundHeaders::open(&self.keyring, &source.id, &source.headers, &source.files.0)
        else {
            tracing::error!(connector = %source.id, "the connector's headers do not open with the configured secrets keys");
            return self
                .finish(
                    lease,
                    job::FAILED,
                    Some("the connector's headers cannot be read with the server's secrets keys; set them again".into()),
                )
                .await;
        };
        let mut files = model.files.0.clone();
        for i in 0..files.len() {
            if files[i].status != "pending" {
                continue;
            }
            if lease.lost() {
                return Ok(()); // cancelled, or taken over by another instance
            }
            match self.ingest_file(&model.org_id, &files[i], &headers).await {
                Ok(count) => {
                    files[i].status = "succeeded".into();
                    files[i].segments = count;
                }
                // The database is away: not the file's fault. The job stops here, its lease
                // runs out, and it goes on from this file once the database is back.
                Err(FileFailure::Unreachable(e)) => return Err(e),
                Err(FileFailure::Failed(error)) => {
                    files[i].status = "failed".into();
                    files[i].error = Some(error);
                }
            }
            let recorded = job::Entity::update_many()
                .col_expr(job::Column::Files, Expr::value(JsonText(files.clone())))
                .filter(lease.fence())
                .exec(&self.db)
                .await?;
            if recorded.rows_affected == 0 {
                return Ok(()); // cancelled, or taken over by another instance
            }
        }
        let all_failed = !files.is_empty() && files.iter().all(|f| f.status == "failed");
        if all_failed {
            self.finish(
                lease,
                job::FAILED,
                Some("every file failed; see files".into()),
            )
            .await
        } else {
            self.finish(lease, job::SUCCEEDED, None).await
        }
    }

    /// Finishes a job still running under `lease` (a cancel in the meantime wins).
    async fn finish(
        &self,
        lease: &Lease,
        status: QueueStatus,
        error: Option<String>,
    ) -> Result<(), sea_orm::DbErr> {
        let finished = job::Entity::update_many()
            .col_expr(job::Column::Status, Expr::value(status))
            .col_expr(job::Column::Error, Expr::value(error))
            .col_expr(job::Column::FinishedAt, Expr::value(Utc::now()))
            .filter(lease.fence())
            .exec(&self.db)
            .await?;
        if finished.rows_affected == 1 {
            if let Some(done) = job::Entity::find_by_id(lease.id().to_string())
                .one(&self.db)
                .await?
            {
                let event = if status == job::SUCCEEDED {
                    WebhookEventType::JobSucceeded
                } else {
                    WebhookEventType::JobFailed
                };
                let data = jobs::to_dto(&done).to_json().unwrap_or_default();
                self.events
                    .emit_caused(&done.org_id, event, data, done.request_id.clone())
                    .await;
            }
        }
        Ok(())
    }

    /// Fetches, parses and ingests one file; the error says what went wrong, for the user.
    async fn ingest_file(
        &self,
        org_id: &str,
        file: &StoredFile,
        headers: &BoundHeaders,
    ) -> Result<u64, FileFailure> {
        let body = self.fetch(&file.url, headers).await?;
        let cues = captions::parse(format_of(&file.format).1, &body)?;
        let mut idx = index::for_org(org_id)
            .filter(index::Column::Id.eq(&file.index_id))
            .one(&self.db)
            .await
            .map_err(|e| storage_failure("loading the index", e))?
            .ok_or_else(|| format!("index `{}` does not exist", file.index_id))?;
        let mut stored = 0u64;
        let mut last_seq = None;
        for chunk in cues.chunks(BATCH) {
            let segments = chunk
                .iter()
                .map(|cue| {
                    // A cue's text obeys the rules of a segment's text sent to the API.
                    let text = NonBlank::try_from(cue.text.as_str()).map_err(|rule| {
                        format!("the cue at {} s: its text {rule}", cue.start_seconds)
                    })?;
                    let chars = text.chars().count();
                    if chars > MAX_SEGMENT_TEXT_CHARS {
                        return Err(format!(
                            "the cue at {} s: its text has {chars} characters, more than a \
                             segment's {MAX_SEGMENT_TEXT_CHARS}",
                            cue.start_seconds
                        ));
                    }
                    Ok(SegmentInput {
                        media_id: NonBlank::stored(file.media_id.clone()),
                        start_seconds: cue.start_seconds,
                        end_seconds: cue.end_seconds,
                        text,
                        labels: cue.labels.clone(),
                        metadata: Some(std::collections::BTreeMap::from([(
                            "source_url".to_string(),
                            serde_json::Value::String(file.url.clone()),
                        )])),
                        vector: None,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let stored_in = embed_and_store(
                &self.embedders,
                &self.db,
                &self.segments,
                idx.clone(),
                segments,
                true,
            )
            .await;
            let batch = match stored_in {
                Ok((now, batch)) => {
                    idx = now;
                    batch
                }
                Err(e) if e.status() == poem::http::StatusCode::SERVICE_UNAVAILABLE => {
                    return Err(FileFailure::Unreachable(sea_orm::DbErr::Custom(
                        e.problem.detail.clone(),
                    )))
                }
                Err(e) if e.status() == poem::http::StatusCode::NOT_FOUND => {
                    return Err(
                        format!("index `{}` was deleted during the sync", file.index_id).into(),
                    )
                }
                Err(e) => return Err(e.problem.detail.clone().into()),
            };
            self.indexer
                .offer(batch.seq, &batch.segment_ids, batch.segments);
            last_seq = Some(batch.seq);
            stored += chunk.len() as u64;
        }
        // A succeeded job's cues are searchable: the indexer commits them at once for a
        // waiter. The data is stored either way, so a slow commit does not fail the file.
        if let Some(seq) = last_seq {
            if !self.indexer.wait_for(seq, SEARCHABLE_WITHIN).await {
                tracing::warn!(index = %file.index_id, "synced cues not searchable yet");
            }
        }
        Ok(stored)
    }

    /// Fetches a file, with the connector's headers only if they were set for its origin
    /// (a span of the job's trace; the trace context stays ours, not sent to the host).
    async fn fetch(&self, url: &str, headers: &BoundHeaders) -> Result<String, String> {
        crate::traces::in_span(
            "connector file fetch",
            SpanKind::Client,
            || vec![KeyValue::new("http.request.method", "GET")],
            self.fetch_file(url, headers),
        )
        .await
    }

    async fn fetch_file(&self, url: &str, headers: &BoundHeaders) -> Result<String, String> {
        let parsed = net_guard::check_url(url, self.allow_private_targets)?;
        let client =
            net_guard::client_for(&parsed, self.allow_private_targets, FETCH_TIMEOUT).await?;
        let mut request = client.get(parsed);
        for (name, value) in headers.for_url(url) {
            request = request.header(name, value);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("fetching {url}: {}", net_guard::describe(&e)))?;
        if !response.status().is_success() {
            return Err(format!("fetching {url}: HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading {url}: {}", net_guard::describe(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_FILE_BYTES {
                return Err(format!("{url} is larger than {MAX_FILE_BYTES} bytes"));
            }
        }
        String::from_utf8(body).map_err(|_| format!("{url} is not UTF-8 text"))
    }
}

/// Why a file was not ingested.
enum FileFailure {
    /// The file's own fault (or the server's), told to the user in the file's `error`.
    Failed(String),
    /// The database cannot be reached: the file is tried again later.
    Unreachable(sea_orm::DbErr),
}

impl From<String> for FileFailure {
    fn from(error: String) -> Self {
        FileFailure::Failed(error)
    }
}

fn storage_failure(context: &str, error: sea_orm::DbErr) -> FileFailure {
    if crate::db::reachability::is_unreachable(&error) {
        return FileFailure::Unreachable(error);
    }
    tracing::error!(error = %error, "{context}");
    FileFailure::Failed(format!("{context} failed on the server; retry the job"))
}
