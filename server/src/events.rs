//! Events: when a run or job reaches an outcome, or an API key is created, changed, rotated,
//! revoked or deleted, one delivery is queued per enabled webhook of its organisation
//! subscribed to the event. The delivery worker sends them.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;
use tokio::sync::Notify;
use videovector_api_spec::dto::webhooks::WebhookEventType;

use crate::{
    db::{
        columns::{EventName, JsonText},
        entities::{webhook, webhook_delivery},
    },
    ids::new_id,
};

#[derive(Clone)]
pub struct Events {
    pub db: DatabaseConnection,
    /// Wakes the delivery worker.
    pub wake: Arc<Notify>,
}

/// The JSON body of an event, as delivered.
pub fn payload(event: WebhookEventType, data: serde_json::Value) -> String {
    json!({
        "type": event.as_str(),
        "timestamp": Utc::now().to_rfc3339(),
        "data": data,
    })
    .to_string()
}

impl Events {
    /// Queues `event` for every subscribed webhook of `org_id`. Failures are logged: an
    /// event is never a reason to fail the work it reports.
    pub async fn emit(&self, org_id: &str, event: WebhookEventType, data: serde_json::Value) {
        if let Err(e) = self.try_emit(org_id, event, data).await {
            tracing::error!(error = %e, event = event.as_str(), "queueing webhook deliveries");
        }
    }

    async fn try_emit(
        &self,
        org_id: &str,
        event: WebhookEventType,
        data: serde_json::Value,
    ) -> Result<(), sea_orm::DbErr> {
        let hooks = webhook::for_org(org_id)
            .filter(webhook::Column::Enabled.eq(true))
            .all(&self.db)
            .await?;
        let body = payload(event, data);
        for hook in hooks {
            if hook.event_types.0.contains(&event) {
                self.queue(&hook, event, body.clone()).await?;
            }
        }
        Ok(())
    }

    /// Queues one delivery to one webhook.
    pub async fn queue(
        &self,
        hook: &webhook::Model,
        event: WebhookEventType,
        body: String,
    ) -> Result<webhook_delivery::Model, sea_orm::DbErr> {
        let now = Utc::now();
        let model = webhook_delivery::Model {
            id: new_id("msg"),
            webhook_id: hook.id.clone(),
            org_id: hook.org_id.clone(),
            event_type: EventName(event),
            payload: body,
            status: webhook_delivery::QUEUED,
            attempts: JsonText(Vec::new()),
            next_attempt_ms: now.timestamp_millis(),
            created_at: now,
            delivered_at: None,
        };
        webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
            id: Set(model.id.clone()),
            webhook_id: Set(model.webhook_id.clone()),
            org_id: Set(model.org_id.clone()),
            event_type: Set(model.event_type),
            payload: Set(model.payload.clone()),
            status: Set(model.status),
            attempts: Set(model.attempts.clone()),
            next_attempt_ms: Set(model.next_attempt_ms),
            created_at: Set(model.created_at),
            delivered_at: Set(None),
        })
        .exec_without_returning(&self.db)
        .await?;
        self.wake.notify_one();
        Ok(model)
    }
}
