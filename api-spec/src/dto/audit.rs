//! Bodies of `/audit-events`: the organisation's record of security-relevant actions, each
//! event chained to the one before it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

/// What was done. Each is recorded in the same transaction as the change it describes.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// An operator exchanged an email and password for a token (`token_create`); a wrong
    /// password is recorded with `outcome: failure` (an unknown email belongs to no
    /// organisation and is not).
    #[oai(rename = "operator.login")]
    OperatorLogin,
    /// An operator was created on the command line (`videovector create-operator`).
    #[oai(rename = "operator.create")]
    OperatorCreate,
    /// A token was minted on the command line (`videovector token`).
    #[oai(rename = "token.mint")]
    TokenMint,
    /// An API key was created; a refused attempt (`scope_escalation`) is a failure.
    #[oai(rename = "api_key.create")]
    ApiKeyCreate,
    /// An API key's name, restrictions, limits, metadata or owner changed.
    #[oai(rename = "api_key.update")]
    ApiKeyUpdate,
    #[oai(rename = "api_key.rotate")]
    ApiKeyRotate,
    #[oai(rename = "api_key.revoke")]
    ApiKeyRevoke,
    #[oai(rename = "api_key.delete")]
    ApiKeyDelete,
    /// A secret scanner reported the key found in public (revoking it, when the
    /// organisation says so).
    #[oai(rename = "api_key.report_leak")]
    ApiKeyReportLeak,
    #[oai(rename = "webhook.create")]
    WebhookCreate,
    #[oai(rename = "webhook.update")]
    WebhookUpdate,
    #[oai(rename = "webhook.delete")]
    WebhookDelete,
    #[oai(rename = "connector.create")]
    ConnectorCreate,
    /// A connector's settings or secret headers changed.
    #[oai(rename = "connector.update")]
    ConnectorUpdate,
    #[oai(rename = "connector.delete")]
    ConnectorDelete,
    /// The organisation's name or leaked-key policy changed.
    #[oai(rename = "organization.update")]
    OrganizationUpdate,
    /// The organisation's default rate limits changed.
    #[oai(rename = "organization.update_rate_limits")]
    OrganizationUpdateRateLimits,
}

/// Who acted.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum AuditActorType {
    /// An operator of this server's built-in issuer (`id` is the operator's id).
    Operator,
    /// A token of an external issuer (`id` is `issuer|subject`).
    Jwt,
    /// An API key (`id` is the key's id).
    ApiKey,
    /// A secret scanner whose signed report was believed (`id` is its name).
    LeakReporter,
    /// The command line on the server's host (`id` is the command).
    Cli,
}

/// What was acted on.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum AuditTargetType {
    Operator,
    ApiKey,
    Webhook,
    Connector,
    Organization,
}

/// Whether the action took effect.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum AuditOutcome {
    Success,
    /// Refused (a wrong password, a scope the caller does not hold); nothing changed.
    Failure,
}

/// The actor of an event.
#[derive(Object, Debug, Clone)]
pub struct AuditActor {
    #[oai(rename = "type")]
    pub actor_type: AuditActorType,
    pub id: String,
}

/// The target of an event.
#[derive(Object, Debug, Clone)]
pub struct AuditTarget {
    #[oai(rename = "type")]
    pub target_type: AuditTargetType,
    pub id: String,
}

/// One field's change: `from` is absent for a creation, `to` for a deletion. Secrets are
/// never shown: a changed secret is `"[redacted]"`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditChange {
    pub from: Option<serde_json::Value>,
    pub to: Option<serde_json::Value>,
}

/// One recorded action.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEvent {
    /// The event's id (`aud_...`).
    pub id: String,
    /// Its place in the organisation's chain: 1, 2, 3, ... with no gaps; an event becomes
    /// visible only after every event before it, so polling with `after_sequence` never
    /// skips one.
    pub sequence: i64,
    pub occurred_at: DateTime<Utc>,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    pub actor: AuditActor,
    pub target: AuditTarget,
    /// The client's address (after trusted proxies), when the action came over HTTP.
    pub client_address: Option<String>,
    /// The `X-Request-Id` of the request that acted (also in its log lines and problem).
    pub request_id: Option<String>,
    /// The fields the action changed, by name.
    pub changes: BTreeMap<String, AuditChange>,
    /// `hash` of the event before it (64 zeros for the first): a copy that links each
    /// event to its predecessor lets you notice a removed or reordered event.
    pub previous_hash: String,
    /// HMAC-SHA-256 of this event's contents and `previous_hash`, under a key only the
    /// server holds; `videovector audit verify` checks the whole chain.
    pub hash: String,
}

/// One page of audit events, oldest first.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEventPage {
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The filters of `audit_event_list`.
#[derive(Debug, Clone, Default)]
pub struct AuditEventFilter {
    pub action: Option<AuditAction>,
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub after_sequence: Option<i64>,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 17] = [
        Self::OperatorLogin,
        Self::OperatorCreate,
        Self::TokenMint,
        Self::ApiKeyCreate,
        Self::ApiKeyUpdate,
        Self::ApiKeyRotate,
        Self::ApiKeyRevoke,
        Self::ApiKeyDelete,
        Self::ApiKeyReportLeak,
        Self::WebhookCreate,
        Self::WebhookUpdate,
        Self::WebhookDelete,
        Self::ConnectorCreate,
        Self::ConnectorUpdate,
        Self::ConnectorDelete,
        Self::OrganizationUpdate,
        Self::OrganizationUpdateRateLimits,
    ];
}

/// The name an enum value has on the wire (and in the database).
pub fn wire_name<T: poem_openapi::types::ToJSON>(value: &T) -> String {
    match value.to_json() {
        Some(serde_json::Value::String(name)) => name,
        other => unreachable!("an enum is written as a string, not {other:?}"),
    }
}

/// The enum value named `name` on the wire.
pub fn from_wire<T: poem_openapi::types::ParseFromParameter>(name: &str) -> Option<T> {
    T::parse_from_parameter(name).ok()
}
