//! `/rate-limits` (an organisation's default limits) and `/usage` (every key's usage in one
//! call). JWT bearer only, like key management: usage names every key of the organisation.

use poem::web::Data;
use poem_openapi::{
    param::{Header, Query},
    payload::Json,
    OpenApi,
};

use super::ApiTag;
use crate::{
    dto::{rate_limits::*, text::IdempotencyKey},
    problem::{Problems, ViewErrors, WriteErrors},
    responses::Ok200,
    scopes::Scope,
    security::BearerOnly,
    services::{Services, UsageParams},
};

pub struct RateLimitsApi;

#[OpenApi(tag = "ApiTag::RateLimits")]
impl RateLimitsApi {
    /// Get the organisation's rate limits
    ///
    /// Returns the limits every key without limits of its own in a family, and every
    /// operator's token, is held to, and the server's ceiling on any limit.
    #[oai(
        path = "/rate-limits",
        method = "get",
        operation_id = "rate_limit_policy_view"
    )]
    async fn rate_limit_policy_view(
        &self,
        #[oai(scope = "Scope::Read")] auth: BearerOnly,
        services: Data<&Services>,
    ) -> Result<Ok200<RateLimitPolicy>, Problems<ViewErrors>> {
        Ok(Ok200(services.rate_limits.policy(&auth.0).await?))
    }

    /// Set the organisation's rate limits
    ///
    /// Replaces the organisation's default limits. They hold on every instance as fast as
    /// a key's revocation does.
    #[oai(
        path = "/rate-limits",
        method = "put",
        operation_id = "rate_limit_policy_update"
    )]
    async fn rate_limit_policy_update(
        &self,
        #[oai(scope = "Scope::Admin")] auth: BearerOnly,
        services: Data<&Services>,
        /// Makes the request safe to retry (see `api_key_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<RateLimitPolicyUpdate>,
    ) -> Result<Ok200<RateLimitPolicy>, Problems<WriteErrors>> {
        Ok(Ok200(
            services.rate_limits.update_policy(&auth.0, body.0).await?,
        ))
    }

    /// Read every key's usage
    ///
    /// Counts each key's requests per family and outcome, grouped by key, in one call (see
    /// `api_key_usage` for buckets, ranges and retention).
    #[oai(path = "/usage", method = "get", operation_id = "usage_report")]
    async fn usage_report(
        &self,
        #[oai(scope = "Scope::Read")] auth: BearerOnly,
        services: Data<&Services>,
        /// The range's start (inclusive); rounded down to the granularity.
        from: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// The range's end (exclusive; default now).
        to: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// The buckets' size (default `hour`).
        granularity: Query<Option<UsageGranularity>>,
    ) -> Result<Ok200<UsageReport>, Problems<ViewErrors>> {
        let params = UsageParams {
            from: from.0,
            to: to.0,
            granularity: granularity.0,
        };
        Ok(Ok200(
            services.rate_limits.usage(&auth.0, None, params).await?,
        ))
    }
}
