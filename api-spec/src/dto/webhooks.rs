//! Bodies of the `/webhooks` operations.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

/// An event a webhook can subscribe to.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WebhookEventType {
    #[oai(rename = "run.succeeded")]
    RunSucceeded,
    #[oai(rename = "run.failed")]
    RunFailed,
    #[oai(rename = "run.cancelled")]
    RunCancelled,
    #[oai(rename = "job.succeeded")]
    JobSucceeded,
    #[oai(rename = "job.failed")]
    JobFailed,
    #[oai(rename = "job.cancelled")]
    JobCancelled,
    /// An API key was created (its masked form; never the secret).
    #[oai(rename = "api_key.created")]
    ApiKeyCreated,
    /// An API key's name, limits, networks, metadata or owner changed.
    #[oai(rename = "api_key.updated")]
    ApiKeyUpdated,
    #[oai(rename = "api_key.rotated")]
    ApiKeyRotated,
    #[oai(rename = "api_key.revoked")]
    ApiKeyRevoked,
    #[oai(rename = "api_key.deleted")]
    ApiKeyDeleted,
    /// An API key expires within the server's warning time (sent once per key).
    #[oai(rename = "api_key.expiring")]
    ApiKeyExpiring,
    /// An API key has expired (sent once per key).
    #[oai(rename = "api_key.expired")]
    ApiKeyExpired,
    /// A secret scanner reported an API key found in public (`data.key.leak` says where).
    #[oai(rename = "api_key.leaked")]
    ApiKeyLeaked,
    /// Sent by `webhook_test` only.
    #[oai(rename = "webhook.test")]
    WebhookTest,
}

impl WebhookEventType {
    pub const ALL: [WebhookEventType; 15] = [
        WebhookEventType::RunSucceeded,
        WebhookEventType::RunFailed,
        WebhookEventType::RunCancelled,
        WebhookEventType::JobSucceeded,
        WebhookEventType::JobFailed,
        WebhookEventType::JobCancelled,
        WebhookEventType::ApiKeyCreated,
        WebhookEventType::ApiKeyUpdated,
        WebhookEventType::ApiKeyRotated,
        WebhookEventType::ApiKeyRevoked,
        WebhookEventType::ApiKeyDeleted,
        WebhookEventType::ApiKeyExpiring,
        WebhookEventType::ApiKeyExpired,
        WebhookEventType::ApiKeyLeaked,
        WebhookEventType::WebhookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::RunSucceeded => "run.succeeded",
            WebhookEventType::RunFailed => "run.failed",
            WebhookEventType::RunCancelled => "run.cancelled",
            WebhookEventType::JobSucceeded => "job.succeeded",
            WebhookEventType::JobFailed => "job.failed",
            WebhookEventType::JobCancelled => "job.cancelled",
            WebhookEventType::ApiKeyCreated => "api_key.created",
            WebhookEventType::ApiKeyUpdated => "api_key.updated",
            WebhookEventType::ApiKeyRotated => "api_key.rotated",
            WebhookEventType::ApiKeyRevoked => "api_key.revoked",
            WebhookEventType::ApiKeyDeleted => "api_key.deleted",
            WebhookEventType::ApiKeyExpiring => "api_key.expiring",
            WebhookEventType::ApiKeyExpired => "api_key.expired",
            WebhookEventType::ApiKeyLeaked => "api_key.leaked",
            WebhookEventType::WebhookTest => "webhook.test",
        }
    }

    pub fn parse(name: &str) -> Option<WebhookEventType> {
        WebhookEventType::ALL
            .into_iter()
            .find(|e| e.as_str() == name)
    }
}

/// A new webhook endpoint.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookCreate {
    /// `https` (or `http`) URL that receives signed `POST`s. Private, loopback and
    /// link-local addresses are refused unless the server allows them.
    #[oai(validator(min_length = 8, max_length = 2000))]
    pub url: String,
    /// The events to deliver.
    #[oai(validator(min_items = 1, max_items = 7))]
    pub event_types: Vec<WebhookEventType>,
    #[oai(validator(max_length = 2000))]
    pub description: Option<String>,
    /// Deliver events (default true).
    pub enabled: Option<bool>,
}

/// Changes to a webhook; absent fields stay as they are.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookUpdate {
    #[oai(validator(min_length = 8, max_length = 2000))]
    pub url: Option<String>,
    #[oai(validator(min_items = 1, max_items = 7))]
    pub event_types: Option<Vec<WebhookEventType>>,
    #[oai(validator(max_length = 2000))]
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A webhook endpoint (its signing secret is shown only at creation).
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub event_types: Vec<WebhookEventType>,
    pub description: Option<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new webhook with its signing secret: returned only by `webhook_create`.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookWithSecret {
    /// `whsec_` + base64 key. Verify `webhook-signature` (`v1,` + base64 HMAC-SHA-256 of
    /// `webhook-id.webhook-timestamp.body`) with it, as the Standard Webhooks libraries do.
    pub secret: String,
    pub webhook: Webhook,
}

/// One page of webhooks.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookPage {
    pub items: Vec<Webhook>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Where a delivery stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Queued,
    /// An attempt is under way.
    Running,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Every attempt failed.
    Failed,
}

/// One attempt to deliver.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    /// The endpoint's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// A delivery of one event to one webhook.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookDelivery {
    /// Also the `webhook-id` header, for de-duplication.
    pub id: String,
    pub webhook_id: String,
    pub event_type: WebhookEventType,
    pub status: DeliveryStatus,
    pub attempts: Vec<DeliveryAttempt>,
    /// When the next attempt is due (queued deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The JSON body sent.
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One page of deliveries, newest last.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookDeliveryPage {
    pub items: Vec<WebhookDelivery>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
