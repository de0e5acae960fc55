//! The operations, one module per tag. Each operation declares its security scheme and
//! required scope next to itself; nothing else lists them.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod chat;
pub mod connectors;
pub mod health;
pub mod indexes;
pub mod jobs;
pub mod mcp;
pub mod organization;
pub mod prompts;
pub mod rate_limits;
pub mod runs;
pub mod search;
pub mod webhooks;

use poem_openapi::Tags;

/// Every tag; each operation has exactly one.
#[derive(Tags)]
pub enum ApiTag {
    /// Exchange operator credentials for a JWT.
    Auth,
    /// Create, rotate, revoke and delete API keys (JWT bearer only).
    #[oai(rename = "API keys")]
    ApiKeys,
    /// Indexes of timed media segments, and segment ingestion.
    Indexes,
    /// Ranked full-text search over indexed segments, in one index or across several.
    Search,
    /// Answers grounded in indexed evidence, with citations.
    Chat,
    /// Named query templates with declared variables.
    Prompts,
    /// Prompt executions against an index: queued, running, succeeded, failed, cancelled.
    Runs,
    /// Configured media sources (caption files over HTTP) and their syncs.
    Connectors,
    /// Ingestion work: state, progress and per-file errors.
    Jobs,
    /// Signed event deliveries to your endpoints, with retries and a delivery log.
    Webhooks,
    /// Configuration for MCP clients (verified JWT session only).
    #[oai(rename = "MCP")]
    Mcp,
    /// An organisation's default rate limits, and the usage of all its keys (JWT bearer
    /// only).
    #[oai(rename = "Rate limits")]
    RateLimits,
    /// The caller's organisation and its settings (JWT bearer only).
    Organization,
    /// The organisation's record of security-relevant actions, chained so that an edit
    /// shows (JWT bearer only, `admin`).
    #[oai(rename = "Audit log")]
    Audit,
    /// Whether this instance can serve (public, for load balancers and orchestrators).
    Health,
}

/// The whole API, in tag order.
pub type Api = (
    auth::AuthApi,
    api_keys::ApiKeysApi,
    indexes::IndexesApi,
    search::SearchApi,
    search::CrossSearchApi,
    chat::ChatApi,
    prompts::PromptsApi,
    runs::RunsApi,
    connectors::ConnectorsApi,
    jobs::JobsApi,
    webhooks::WebhooksApi,
    mcp::McpApi,
    rate_limits::RateLimitsApi,
    organization::OrganizationApi,
    audit::AuditApi,
    health::HealthApi,
);

/// The API value to mount or describe.
pub fn api() -> Api {
    (
        auth::AuthApi,
        api_keys::ApiKeysApi,
        indexes::IndexesApi,
        search::SearchApi,
        search::CrossSearchApi,
        chat::ChatApi,
        prompts::PromptsApi,
        runs::RunsApi,
        connectors::ConnectorsApi,
        jobs::JobsApi,
        webhooks::WebhooksApi,
        mcp::McpApi,
        rate_limits::RateLimitsApi,
        organization::OrganizationApi,
        audit::AuditApi,
        health::HealthApi,
    )
}
