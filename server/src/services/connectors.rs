//! Connectors (caption files over HTTP, with secret request headers) and their syncs, which
//! queue ingestion jobs.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use chrono::Utc;
use poem_openapi::types::ToJSON;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    TryIntoModel,
};
use tokio::sync::Notify;
use videovector_api_spec::{dto::text::NonBlank, ErrorCode};
use videovector_api_spec::{
    dto::{
        audit::{AuditAction, AuditChange, AuditTargetType},
        connectors::*,
    },
    services::{ConnectorService, PageParams, ServiceResult},
    ApiError, Principal,
};

use super::{
    connector_files::{format_name, format_of},
    connector_headers::BoundHeaders,
    find_in_org, internal, jobs,
    pagination::PageRequest,
};
use crate::request_context::RequestContext;
use crate::{
    audit::{changes, AuditLog},
    captions::Format,
    db::{
        columns::JsonText,
        entities::{connector, index, job},
        records::{pending, StoredFile},
    },
    ids::new_id,
    net_guard,
    secrets_at_rest::Keyring,
};

const MASK: &str = "********";

/// A connector as answered; `headers` is `None` when its stored values do not open.
fn to_dto(model: &connector::Model, headers: Option<BoundHeaders>) -> Connector {
    let headers_unreadable = headers.is_none();
    Connector {
        id: model.id.clone(),
        name: model.name.clone(),
        kind: ConnectorKind::Http,
        files: model
            .files
            .0
            .iter()
            .map(|f| ConnectorFile {
                format: Some(format_of(&f.format).0),
                url: f.url.clone(),
                media_id: NonBlank::stored(f.media_id.clone()),
                index_id: f.index_id.clone(),
            })
            .collect(),
        headers: headers
            .unwrap_or_default()
            .values
            .into_keys()
            .map(|k| (k, MASK.to_string()))
            .collect(),
        headers_unreadable,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}

pub struct Connectors {
    pub db: DatabaseConnection,
    pub allow_private_targets: bool,
    pub job_wake: Arc<Notify>,
    /// Seals header values at rest.
    pub keyring: Arc<Keyring>,
    /// Records every change, in its transaction.
    pub audit: AuditLog,
}

/// What a connector's audit event says changed: its view (header values masked) and, when
/// header values were given, that they changed.
fn connector_changes(
    before: Option<&Connector>,
    after: Option<&Connector>,
    headers_given: bool,
) -> BTreeMap<String, AuditChange> {
    let mut changes = changes::diff(
        before.and_then(ToJSON::to_json).as_ref(),
        after.and_then(ToJSON::to_json).as_ref(),
    );
    if headers_given {
        changes::secret_changed(&mut changes, "header_values", before.is_some());
    }
    changes
}

impl Connectors {
    /// A connector's headers, opened; `None` (logged) when this server's secrets keys do
    /// not open them. The connector still lists and reads, saying so, and setting or
    /// clearing its headers mends it.
    fn headers_of(&self, model: &connector::Model) -> Option<BoundHeaders> {
        BoundHeaders::open(&self.keyring, &model.id, &model.headers, &model.files.0)
            .inspect_err(|e| {
                tracing::error!(connector = %model.id, error = %e, "a connector's headers do not open");
            })
            .ok()
    }

    fn dto(&self, model: &connector::Model) -> Connector {
        to_dto(model, self.headers_of(model))
    }

    async fn find(&self, who: &Principal, connector_id: &str) -> ServiceResult<connector::Model> {
        find_in_org(
            &self.db,
            connector::for_org(&who.org_id),
            connector::Column::Id,
            connector_id,
            "connector",
        )
        .await
    }

    /// Checks every file (URL, format, target index) and returns the stored form.
    async fn check_files(
        &self,
        who: &Principal,
        files: Vec<ConnectorFile>,
    ) -> ServiceResult<Vec<StoredFile>> {
        let mut stored = Vec::with_capacity(files.len());
        for (i, file) in files.into_iter().enumerate() {
            net_guard::check_url(&file.url, self.allow_private_targets).map_err(|e| {
                ApiError::unprocessable(ErrorCode::InvalidUrl, format!("files[{i}].url: {e}"))
            })?;
            let format = match file.format {
                Some(f) => format_name(f),
                None => match Format::from_url(&file.url) {
                    Some(Format::WebVtt) => "webvtt",
                    Some(Format::Srt) => "srt",
                    Some(Format::Json) => "json",
                    None => {
                        return Err(ApiError::unprocessable(
                            ErrorCode::UnknownFormat,
                            format!("files[{i}]: say its `format`; the URL has no .vtt, .srt or .json extension"),
                        ))
                    }
                },
            };
            let exists = index::for_org(&who.org_id)
                .filter(index::Column::Id.eq(&file.index_id))
                .one(&self.db)
                .await
                .map_err(|e| internal("loading an index", e))?
                .is_some();
            if !exists {
                return Err(ApiError::unprocessable(
                    ErrorCode::UnknownIndex,
                    format!(
                        "files[{i}].index_id: index `{}` does not exist",
                        file.index_id
                    ),
                ));
            }
            stored.push(StoredFile {
                url: file.url,
                media_id: file.media_id.into(),
                index_id: file.index_id,
                format: format.into(),
                status: pending(),
                segments: 0,
                error: None,
            });
        }
        Ok(stored)
    }
}

#[async_trait]
impl ConnectorService for Connectors {
    async fn create(&self, who: &Principal, request: ConnectorCreate) -> ServiceResult<Connector> {
        let files = self.check_files(who, request.files).await?;
        let headers = BoundHeaders::bind(request.headers, &files)?;
        let now = Utc::now();
        let id = new_id("con");
        let model = connector::ActiveModel {
            headers: Set(headers.seal(&self.keyring, &id)),
            id: Set(id),
            org_id: Set(who.org_id.clone()),
            name: Set(request.name.trim().to_string()),
            kind: Set("http".into()),
            files: Set(JsonText(files)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let saved = model
            .clone()
            .try_into_model()
            .map_err(|e| internal("creating a connector", e))?;
        let shown = to_dto(&saved, Some(headers));
        let entry = self
            .audit
            .entry(
                who,
                AuditAction::ConnectorCreate,
                AuditTargetType::Connector,
                &saved.id,
            )
            .with_changes(connector_changes(None, Some(&shown), true));
        self.audit
            .commit_with(&self.db, entry, |txn| async move {
                model.insert(&txn).await?;
                Ok(((), txn))
            })
            .await
            .map_err(|e| internal("creating a connector", e))?;
        Ok(shown)
    }

    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<ConnectorPage> {
        let (rows, next_cursor) = PageRequest::parse(page)?
            .fetch(
                &self.db,
                connector::for_org(&who.org_id),
                connector::Column::Id,
                |r| &r.id,
                "connectors",
            )
            .await?;
        Ok(ConnectorPage {
            items: rows.iter().map(|r| self.dto(r)).collect(),
            next_cursor,
        })
    }

    async fn view(&self, who: &Principal, connector_id: &str) -> ServiceResult<Connector> {
        Ok(self.dto(&self.find(who, connector_id).await?))
    }

    async fn update(
        &self,
        who: &Principal,
        connector_id: &str,
        request: ConnectorUpdate,
    ) -> ServiceResult<Connector> {
        let existing = self.find(who, connector_id).await?;
        let mut model: connector::ActiveModel = existing.clone().into();
        if let Some(name) = request.name {
            model.name = Set(name.trim().to_string());
        }
        let files_change = request.files.is_some();
        let files = match request.files {
            Some(files) => {
                let checked = self.check_files(who, files).await?;
                model.files = Set(JsonText(checked.clone()));
                checked
            }
            None => existing.files.0.clone(),
        };
        // Header values follow the origins they were set for: new values bind to the files
        // as they now are; kept values never follow files to another origin, they are
        // dropped (the answer shows it) and must be given again. Values that do not open
        // are never needed to set new ones; kept, they stay as stored.
        let headers_given = request.headers.is_some();
        let headers = match request.headers {
            Some(values) => Some(BoundHeaders::bind(values, &files)?),
            None => match self.headers_of(&existing) {
                Some(stored) if stored.cover(&files) => Some(stored),
                None if !files_change => None,
                _ => Some(BoundHeaders::default()),
            },
        };
        if let Some(headers) = &headers {
            model.headers = Set(headers.seal(&self.keyring, &existing.id));
        }
        model.updated_at = Set(Utc::now());
        let after = model
            .clone()
            .try_into_model()
            .map_err(|e| internal("updating a connector", e))?;
        let shown = to_dto(&after, headers);
        let entry = self
            .audit
            .entry(
                who,
                AuditAction::ConnectorUpdate,
                AuditTargetType::Connector,
                connector_id,
            )
            .with_changes(connector_changes(
                Some(&self.dto(&existing)),
                Some(&shown),
                headers_given,
            ));
        self.audit
            .commit_with(&self.db, entry, |txn| async move {
                model.update(&txn).await?;
                Ok(((), txn))
            })
            .await
            .map_err(|e| internal("updating a connector", e))?;
        Ok(shown)
    }

    async fn delete(&self, who: &Principal, connector_id: &str) -> ServiceResult<()> {
        let existing = self.find(who, connector_id).await?;
        let entry = self
            .audit
            .entry(
                who,
                AuditAction::ConnectorDelete,
                AuditTargetType::Connector,
                connector_id,
            )
            .with_changes(connector_changes(Some(&self.dto(&existing)), None, false));
        self.audit
            .commit_with(&self.db, entry, |txn| async move {
                connector::Entity::delete_by_id(existing.id)
                    .exec(&txn)
                    .await?;
                Ok(((), txn))
            })
            .await
            .map_err(|e| internal("deleting a connector", e))
    }

    async fn sync(&self, who: &Principal, connector_id: &str) -> ServiceResult<Job> {
        let existing = self.find(who, connector_id).await?;
        let saved = job::ActiveModel {
            id: Set(new_id("job")),
            org_id: Set(who.org_id.clone()),
            connector_id: Set(existing.id),
            status: Set(job::QUEUED),
            attempt: Set(1),
            retry_of: Set(None),
            files: Set(existing.files),
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
        self.job_wake.notify_one();
        Ok(jobs::to_dto(&saved))
    }
}
