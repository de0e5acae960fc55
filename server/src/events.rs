//! Events: when a run or job reaches an outcome, or an API key is created, changed, rotated,
//! revoked or deleted, one delivery is queued per enabled webhook of its organisation
//! subscribed to the event. The delivery worker sends them. Each names the request that
//! caused it (`request_id` in the body, `X-Request-Id` on the delivery): the request being
//! handled, or for a run or job's outcome, the request that created it. Each also keeps the
//! trace context it was queued in, which its delivery continues (`crate::traces`).

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
    request_context::RequestContext,
};

#[derive(Clone)]
pub struct Events {
    pub db: DatabaseConnection,
    /// Wakes the delivery worker.
    pub wake: Arc<Notify>,
}

/// The JSON body of an event, as delivered.
pub fn payload(
    event: WebhookEventType,
    data: serde_json::Value,
    request_id: Option<&str>,
) -> String {
    let mut body = json!({
        "type": event.as_str(),
        "timestamp": Utc::now().to_rfc3339(),
        "data": data,
    });
    if let Some(request_id) = request_id {
        body["request_id"] = request_id.into();
    }
    body.to_string()
}

impl Events {
    /// Queues `event`, caused by the request being handled, for every subscribed webhook
    /// of `org_id`. Failures are logged: an event is never a reason to fail the work it
    /// reports.
    pub async fn emit(&self, org_id: &str, event: WebhookEventType, data: serde_json::Value) {
        let cause = RequestContext::current_request_id();
        self.emit_caused(org_id, event, data, cause).await;
    }

    /// Queues `event`, caused by the request `cause` (work a worker finished for it).
    pub async fn emit_caused(
        &self,
        org_id: &str,
        event: WebhookEventType,
        data: serde_json::Value,
        cause: Option<String>,
    ) {
        if let Err(e) = self.try_emit(org_id, event, data, cause).await {
            tracing::error!(error = %e, event = event.as_str(), "queueing webhook deliveries");
        }
    }

    async fn try_emit(
        &self,
        org_id: &str,
        event: WebhookEventType,
        data: serde_json::Value,
        cause: Option<String>,
    ) -> Result<(), sea_orm::DbErr> {
        let hooks = webhook::for_org(org_id)
            .filter(webhook::Column::Enabled.eq(true))
            .all(&self.db)
            .await?;
        let body = payload(event, data, cause.as_deref());
        for hook in hooks {
            if hook.event_types.0.contains(&event) {
                self.queue(&hook, event, body.clone(), cause.clone())
                    .await?;
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
        cause: Option<String>,
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
            request_id: cause,
            trace_parent: crate::traces::propagation::current_traceparent(),
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
            request_id: Set(model.request_id.clone()),
            trace_parent: Set(model.trace_parent.clone()),
        })
        .exec_without_returning(&self.db)
        .await?;
        self.wake.notify_one();
        Ok(model)
    }
}
