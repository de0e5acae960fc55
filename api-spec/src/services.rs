//! What the handlers need from the service, as traits: the spec is built from the
//! declarations alone, and the server supplies the implementations as request data.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    dto::{
        api_keys::*, audit::*, auth::*, chat::*, connectors::*, health::*, indexes::*, mcp::*,
        organization::*, prompts::*, rate_limits::*, runs::*, search::*, webhooks::*,
    },
    problem::ApiError,
    security::Principal,
};

/// The result every service call returns.
pub type ServiceResult<T> = Result<T, ApiError>;

/// Cursor pagination parameters, as the caller sent them.
#[derive(Debug, Clone, Default)]
pub struct PageParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Issues operator tokens.
#[async_trait]
pub trait AuthService: Send + Sync {
    /// Exchanges operator credentials for a JWT. `client` is the caller's address, for rate
    /// limiting (`None` when the transport has none).
    async fn token_create(
        &self,
        request: TokenRequest,
        client: Option<std::net::IpAddr>,
    ) -> ServiceResult<TokenResponse>;
}

/// Manages API keys.
#[async_trait]
pub trait ApiKeyService: Send + Sync {
    async fn create(
        &self,
        who: &Principal,
        request: ApiKeyCreate,
    ) -> ServiceResult<ApiKeyWithSecret>;
    async fn list(
        &self,
        who: &Principal,
        page: PageParams,
        owner_id: Option<&str>,
    ) -> ServiceResult<ApiKeyPage>;
    async fn view(&self, who: &Principal, key_id: &str) -> ServiceResult<ApiKey>;
    async fn update(
        &self,
        who: &Principal,
        key_id: &str,
        request: ApiKeyUpdate,
    ) -> ServiceResult<ApiKey>;
    async fn rotate(
        &self,
        who: &Principal,
        key_id: &str,
        request: ApiKeyRotate,
    ) -> ServiceResult<ApiKeyWithSecret>;
    async fn revoke(&self, who: &Principal, key_id: &str) -> ServiceResult<ApiKey>;
    async fn delete(&self, who: &Principal, key_id: &str) -> ServiceResult<()>;
    /// Checks a secret scanner's signed report and answers for each token whether it is a
    /// key of this server, recording the leak on those that are (and revoking them where
    /// their organisation says so).
    async fn report_leaks(
        &self,
        report: SignedReport<'_>,
        tokens: Vec<LeakedKeyReport>,
    ) -> ServiceResult<Vec<LeakedKeyVerdict>>;
}

/// Manages indexes, their segments, and searches them.
#[async_trait]
pub trait IndexService: Send + Sync {
    async fn create(&self, who: &Principal, request: IndexCreate) -> ServiceResult<Index>;
    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<IndexPage>;
    async fn view(&self, who: &Principal, index_id: &str) -> ServiceResult<Index>;
    async fn update(
        &self,
        who: &Principal,
        index_id: &str,
        request: IndexUpdate,
    ) -> ServiceResult<Index>;
    async fn delete(&self, who: &Principal, index_id: &str) -> ServiceResult<()>;
    async fn ingest(
        &self,
        who: &Principal,
        index_id: &str,
        batch: SegmentBatch,
    ) -> ServiceResult<SegmentBatchResult>;
    async fn search(
        &self,
        who: &Principal,
        index_id: &str,
        request: SearchRequest,
    ) -> ServiceResult<SearchResults>;
}

/// Searches across indexes, and answers questions from what it finds.
#[async_trait]
pub trait RetrievalService: Send + Sync {
    async fn search(
        &self,
        who: &Principal,
        request: CrossSearchRequest,
    ) -> ServiceResult<SearchPage>;
    async fn search_page(&self, who: &Principal, page_token: &str) -> ServiceResult<SearchPage>;
    async fn chat(&self, who: &Principal, request: ChatRequest) -> ServiceResult<ChatCompletion>;
}

/// Manages prompts.
#[async_trait]
pub trait PromptService: Send + Sync {
    async fn create(&self, who: &Principal, request: PromptCreate) -> ServiceResult<Prompt>;
    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<PromptPage>;
    async fn view(&self, who: &Principal, prompt_id: &str) -> ServiceResult<Prompt>;
    async fn update(
        &self,
        who: &Principal,
        prompt_id: &str,
        request: PromptUpdate,
    ) -> ServiceResult<Prompt>;
    async fn delete(&self, who: &Principal, prompt_id: &str) -> ServiceResult<()>;
}

/// Queues, inspects, cancels and retries runs.
#[async_trait]
pub trait RunService: Send + Sync {
    async fn create(&self, who: &Principal, request: RunCreate) -> ServiceResult<Run>;
    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<RunPage>;
    async fn view(&self, who: &Principal, run_id: &str) -> ServiceResult<Run>;
    async fn cancel(&self, who: &Principal, run_id: &str) -> ServiceResult<Run>;
    async fn retry(&self, who: &Principal, run_id: &str) -> ServiceResult<Run>;
}

/// Manages connectors and starts their syncs.
#[async_trait]
pub trait ConnectorService: Send + Sync {
    async fn create(&self, who: &Principal, request: ConnectorCreate) -> ServiceResult<Connector>;
    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<ConnectorPage>;
    async fn view(&self, who: &Principal, connector_id: &str) -> ServiceResult<Connector>;
    async fn update(
        &self,
        who: &Principal,
        connector_id: &str,
        request: ConnectorUpdate,
    ) -> ServiceResult<Connector>;
    async fn delete(&self, who: &Principal, connector_id: &str) -> ServiceResult<()>;
    async fn sync(&self, who: &Principal, connector_id: &str) -> ServiceResult<Job>;
}

/// Inspects, cancels and retries ingestion jobs.
#[async_trait]
pub trait JobService: Send + Sync {
    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<JobPage>;
    async fn view(&self, who: &Principal, job_id: &str) -> ServiceResult<Job>;
    async fn cancel(&self, who: &Principal, job_id: &str) -> ServiceResult<Job>;
    async fn retry(&self, who: &Principal, job_id: &str) -> ServiceResult<Job>;
}

/// Manages webhook endpoints and shows their deliveries.
#[async_trait]
pub trait WebhookService: Send + Sync {
    async fn create(
        &self,
        who: &Principal,
        request: WebhookCreate,
    ) -> ServiceResult<WebhookWithSecret>;
    async fn list(&self, who: &Principal, page: PageParams) -> ServiceResult<WebhookPage>;
    async fn view(&self, who: &Principal, webhook_id: &str) -> ServiceResult<Webhook>;
    async fn update(
        &self,
        who: &Principal,
        webhook_id: &str,
        request: WebhookUpdate,
    ) -> ServiceResult<Webhook>;
    async fn delete(&self, who: &Principal, webhook_id: &str) -> ServiceResult<()>;
    async fn deliveries(
        &self,
        who: &Principal,
        webhook_id: &str,
        page: PageParams,
    ) -> ServiceResult<WebhookDeliveryPage>;
    async fn test(&self, who: &Principal, webhook_id: &str) -> ServiceResult<WebhookDelivery>;
}

/// A usage query's range, as the caller sent it.
#[derive(Debug, Clone, Default)]
pub struct UsageParams {
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub granularity: Option<UsageGranularity>,
}

/// An organisation's default rate limits, and the usage its keys have made.
#[async_trait]
pub trait RateLimitService: Send + Sync {
    async fn policy(&self, who: &Principal) -> ServiceResult<RateLimitPolicy>;
    async fn update_policy(
        &self,
        who: &Principal,
        request: RateLimitPolicyUpdate,
    ) -> ServiceResult<RateLimitPolicy>;
    /// Every key's usage (`key_id: None`), or one key's.
    async fn usage(
        &self,
        who: &Principal,
        key_id: Option<&str>,
        params: UsageParams,
    ) -> ServiceResult<UsageReport>;
}

/// Describes how MCP clients connect.
#[async_trait]
pub trait McpService: Send + Sync {
    async fn config(&self, who: &Principal) -> ServiceResult<McpConfig>;
}

/// Every service, handed to the handlers as request data.
#[derive(Clone)]
pub struct Services {
    pub auth: Arc<dyn AuthService>,
    pub api_keys: Arc<dyn ApiKeyService>,
    pub indexes: Arc<dyn IndexService>,
    pub retrieval: Arc<dyn RetrievalService>,
    pub prompts: Arc<dyn PromptService>,
    pub runs: Arc<dyn RunService>,
    pub connectors: Arc<dyn ConnectorService>,
    pub jobs: Arc<dyn JobService>,
    pub webhooks: Arc<dyn WebhookService>,
    pub mcp: Arc<dyn McpService>,
    pub rate_limits: Arc<dyn RateLimitService>,
    pub organization: Arc<dyn OrganizationService>,
    pub audit: Arc<dyn AuditService>,
    pub health: Arc<dyn HealthService>,
}

/// The caller's organisation and its settings.
#[async_trait]
pub trait OrganizationService: Send + Sync {
    async fn view(&self, who: &Principal) -> ServiceResult<Organization>;
    async fn update(
        &self,
        who: &Principal,
        request: OrganizationUpdate,
    ) -> ServiceResult<Organization>;
}

/// A signed report of leaked tokens, as its sender signed it.
pub struct SignedReport<'a> {
    /// The sender's name for the key it signed with.
    pub key_identifier: &'a str,
    /// Base64 of the DER ECDSA P-256 SHA-256 signature of `body`.
    pub signature: &'a str,
    /// The body exactly as received.
    pub body: &'a [u8],
}

/// Reads the organisation's audit log.
#[async_trait]
pub trait AuditService: Send + Sync {
    async fn list(
        &self,
        who: &Principal,
        page: PageParams,
        filter: AuditEventFilter,
    ) -> ServiceResult<AuditEventPage>;
}

/// Checks this instance's readiness.
#[async_trait]
pub trait HealthService: Send + Sync {
    async fn readiness(&self) -> ServiceResult<Readiness>;
}
