//! Webhook endpoints: create (the signing secret is returned once), list, view, update,
//! delete, the delivery log, and test events.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{TimeZone, Utc};
use poem_openapi::types::ToJSON;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, TransactionTrait, TryIntoModel,
};
use serde_json::json;
use videovector_api_spec::ErrorCode;
use videovector_api_spec::{
    dto::{
        audit::{AuditAction, AuditChange, AuditTargetType},
        webhooks::*,
    },
    services::{PageParams, ServiceResult, WebhookService},
    ApiError, Principal,
};

use super::{find_in_org, internal, pagination::PageRequest};
use crate::{
    audit::{changes, AuditLog},
    db::columns::ApiJson,
    db::entities::{webhook, webhook_delivery},
    db::queue::QueueStatus,
    events::{payload, Events},
    ids::new_id,
    net_guard,
    request_context::RequestContext,
    secrets_at_rest::{places, Keyring},
};

/// The event types as stored: sorted, without repeats.
fn event_set(mut events: Vec<WebhookEventType>) -> ApiJson<Vec<WebhookEventType>> {
    events.sort_by_key(|e| e.as_str());
    events.dedup();
    ApiJson(events)
}

fn to_dto(model: &webhook::Model) -> Webhook {
    Webhook {
        id: model.id.clone(),
        url: model.url.clone(),
        event_types: model.event_types.0.clone(),
        description: model.description.clone(),
        enabled: model.enabled,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}

pub fn delivery_to_dto(model: &webhook_delivery::Model) -> WebhookDelivery {
    let status = match model.status {
        QueueStatus::Queued => DeliveryStatus::Queued,
        QueueStatus::Running => DeliveryStatus::Running,
        QueueStatus::Succeeded => DeliveryStatus::Succeeded,
        QueueStatus::Failed | QueueStatus::Cancelled => DeliveryStatus::Failed,
    };
    WebhookDelivery {
        id: model.id.clone(),
        webhook_id: model.webhook_id.clone(),
        event_type: model.event_type.0,
        next_attempt_at: (status == DeliveryStatus::Queued)
            .then(|| Utc.timestamp_millis_opt(model.next_attempt_ms).single())
            .flatten(),
        status,
        attempts: model
            .attempts
            .0
            .iter()
            .map(|a| DeliveryAttempt {
                at: a.at,
                status_code: a.status_code,
                error: a.error.clone(),
            })
            .collect(),
        payload: serde_json::from_str(&model.payload).unwrap_or_default(),
        created_at: model.created_at,
        delivered_at: model.delivered_at,
    }
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("whsec_{}", STANDARD.encode(key))
}

pub struct Webhooks {
    pub db: DatabaseConnection,
    pub allow_private_targets: bool,
    pub events: Events,
    /// Seals signing secrets at rest.
    pub keyring: Arc<Keyring>,
    /// Records every change, in its transaction.
    pub audit: AuditLog,
}

/// What a webhook's audit event says changed.
fn webhook_changes(
    before: Option<&webhook::Model>,
    after: Option<&webhook::Model>,
) -> BTreeMap<String, AuditChange> {
    let view = |m: &webhook::Model| to_dto(m).to_json();
    let mut changes = changes::diff(
        before.and_then(view).as_ref(),
        after.and_then(view).as_ref(),
    );
    if before.is_none() && after.is_some() {
        changes::secret_changed(&mut changes, "secret", false);
    }
    changes
}

impl Webhooks {
    async fn find(&self, who: &Principal, webhook_id: &str) -> ServiceResult<webhook::Model> {
        find_in_org(
            &self.db,
            webhook::for_org(&who.org_id),
            webhook::Column::Id,
            webhook_id,
            "webhook",
        )
        .await
    }

    fn check_url(&self, url: &str) -> Result<(), ApiError> {
        net_guard::check_url(url, self.allow_private_targets)
            .map(|_| ())
            .map_err(|e| ApiError::unprocessable(ErrorCode::InvalidUrl, e))
    }
}

#[async_trait]
impl WebhookService for Webhooks {
    async fn create(
        &self,
        who: &Principal,
        request: WebhookCreate,
    ) -> ServiceResult<WebhookWithSecret> {
        self.check_url(&request.url)?;
        let secret = new_secret();
        let now = Utc::now();
        let id = new_id("whk");
        let model = webhook::ActiveModel {
            secret: Set(self.keyring.seal_str(&places::webhook_secret(&id), &secret)),
            id: Set(id),
            org_id: Set(who.org_id.clone()),
            url: Set(request.url),
            event_types: Set(event_set(request.event_types)),
            description: Set(request.description),
            enabled: Set(request.enabled.unwrap_or(true)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let created: Result<webhook::Model, DbErr> = async {
            let txn = self.db.begin().await?;
            let saved = model.insert(&txn).await?;
            let entry = self
                .audit
                .entry(
                    who,
                    AuditAction::WebhookCreate,
                    AuditTargetType::Webhook,
                    &saved.id,
                )
                .with_changes(webhook_changes(None, Some(&saved)));
            self.audit.append(&txn, entry).await?;
            txn.commit().await?;
            Ok(saved)
        }
        .await;
        let saved = created.map_err(|e| internal("creating a webhook", e))?;
        Ok(WebhookWithSecret {
            secret,
            webhook: to_dto(&saved),
        })
    }

    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<WebhookPage> {
        let (rows, next_cursor) = PageRequest::parse(page)?
            .fetch(
                &self.db,
                webhook::for_org(&who.org_id),
                webhook::Column::Id,
                |r| &r.id,
                "webhooks",
            )
            .await?;
        Ok(WebhookPage {
            items: rows.iter().map(to_dto).collect(),
            next_cursor,
        })
    }

    async fn view(&self, who: &Principal, webhook_id: &str) -> ServiceResult<Webhook> {
        Ok(to_dto(&self.find(who, webhook_id).await?))
    }

    async fn update(
        &self,
        who: &Principal,
        webhook_id: &str,
        request: WebhookUpdate,
    ) -> ServiceResult<Webhook> {
        let existing = self.find(who, webhook_id).await?;
        let before = existing.clone();
        let mut model: webhook::ActiveModel = existing.into();
        if let Some(url) = request.url {
            self.check_url(&url)?;
            model.url = Set(url);
        }
        if let Some(events) = request.event_types {
            model.event_types = Set(event_set(events));
        }
        if let Some(description) = request.description {
            model.description = Set(Some(description));
        }
        if let Some(enabled) = request.enabled {
            model.enabled = Set(enabled);
        }
        model.updated_at = Set(Utc::now());
        let updated: Result<webhook::Model, DbErr> = async {
            let after = model.clone().try_into_model()?;
            let entry = self
                .audit
                .entry(
                    who,
                    AuditAction::WebhookUpdate,
                    AuditTargetType::Webhook,
                    webhook_id,
                )
                .with_changes(webhook_changes(Some(&before), Some(&after)));
            let txn = self.db.begin().await?;
            let saved = model.update(&txn).await?;
            self.audit.append(&txn, entry).await?;
            txn.commit().await?;
            Ok(saved)
        }
        .await;
        let saved = updated.map_err(|e| internal("updating a webhook", e))?;
        Ok(to_dto(&saved))
    }

    async fn delete(&self, who: &Principal, webhook_id: &str) -> ServiceResult<()> {
        let existing = self.find(who, webhook_id).await?;
        let entry = self
            .audit
            .entry(
                who,
                AuditAction::WebhookDelete,
                AuditTargetType::Webhook,
                webhook_id,
            )
            .with_changes(webhook_changes(Some(&existing), None));
        let deleted: Result<(), DbErr> = async {
            let txn = self.db.begin().await?;
            webhook_delivery::Entity::delete_many()
                .filter(webhook_delivery::Column::WebhookId.eq(&existing.id))
                .exec(&txn)
                .await?;
            webhook::Entity::delete_by_id(existing.id.clone())
                .exec(&txn)
                .await?;
            self.audit.append(&txn, entry).await?;
            txn.commit().await
        }
        .await;
        deleted.map_err(|e| internal("deleting a webhook", e))
    }

    async fn deliveries(
        &self,
        who: &Principal,
        webhook_id: &str,
        page: PageParams,
    ) -> ServiceResult<WebhookDeliveryPage> {
        let hook = self.find(who, webhook_id).await?;
        let query = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::OrgId.eq(&who.org_id))
            .filter(webhook_delivery::Column::WebhookId.eq(&hook.id));
        let (rows, next_cursor) = PageRequest::parse(page)?
            .fetch(
                &self.db,
                query,
                webhook_delivery::Column::Id,
                |r| &r.id,
                "webhook deliveries",
            )
            .await?;
        Ok(WebhookDeliveryPage {
            items: rows.iter().map(delivery_to_dto).collect(),
            next_cursor,
        })
    }

    async fn test(&self, who: &Principal, webhook_id: &str) -> ServiceResult<WebhookDelivery> {
        let hook = self.find(who, webhook_id).await?;
        let cause = RequestContext::current_request_id();
        let body = payload(
            WebhookEventType::WebhookTest,
            json!({ "webhook_id": hook.id, "message": "This is a test event from VideoVector." }),
            cause.as_deref(),
        );
        let queued = self
            .events
            .queue(&hook, WebhookEventType::WebhookTest, body, cause)
            .await
            .map_err(|e| internal("queueing a test delivery", e))?;
        Ok(delivery_to_dto(&queued))
    }
}
