//! The `/api-keys` operations. JWT bearer only: an API key cannot manage API keys.
//! Scopes: `read` to list, view and read usage, `write` to create, update, rotate and
//! revoke (never granting more than the caller holds), `admin` to delete.

use poem::{web::Data, Request};
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    OpenApi,
};

use super::ApiTag;
use crate::{
    dto::{api_keys::*, rate_limits::*},
    problem::{DeleteErrors, ListErrors, Problems, SignedBodyErrors, ViewErrors, WriteErrors},
    responses::{Created, NoContent, Ok200},
    scopes::Scope,
    security::{BearerOnly, RawBody},
    services::{PageParams, Services, SignedReport, UsageParams},
};

use crate::dto::text::IdempotencyKey;

pub struct ApiKeysApi;

#[OpenApi(tag = "ApiTag::ApiKeys")]
impl ApiKeysApi {
    /// Create an API key
    ///
    /// Creates a key and returns the full secret once: persist it immediately in your own
    /// secret store. The caller's token must hold every scope it grants (no escalation).
    #[oai(path = "/api-keys", method = "post", operation_id = "api_key_create")]
    async fn api_key_create(
        &self,
        #[oai(scope = "Scope::Write")] auth: BearerOnly,
        services: Data<&Services>,
        /// Makes the request safe to retry: a retry with the same key and body returns the
        /// stored response with `Idempotent-Replayed: true`.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<ApiKeyCreate>,
    ) -> Result<Created<ApiKeyWithSecret>, Problems<WriteErrors>> {
        Ok(Created(services.api_keys.create(&auth.0, body.0).await?))
    }

    /// List API keys
    ///
    /// Lists this organisation's keys, masked, oldest first (those of one `owner_id`, when
    /// given).
    #[oai(path = "/api-keys", method = "get", operation_id = "api_key_list")]
    async fn api_key_list(
        &self,
        #[oai(scope = "Scope::Read")] auth: BearerOnly,
        services: Data<&Services>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Only the keys with this `owner_id`.
        #[oai(validator(max_length = 128))]
        owner_id: Query<Option<String>>,
    ) -> Result<Ok200<ApiKeyPage>, Problems<ListErrors>> {
        let page = PageParams {
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(Ok200(
            services
                .api_keys
                .list(&auth.0, page, owner_id.0.as_deref())
                .await?,
        ))
    }

    /// Retrieve an API key
    ///
    /// Returns one key, masked.
    #[oai(
        path = "/api-keys/:key_id",
        method = "get",
        operation_id = "api_key_view"
    )]
    async fn api_key_view(
        &self,
        #[oai(scope = "Scope::Read")] auth: BearerOnly,
        services: Data<&Services>,
        /// The API key's id (`key_...`), as `api_key_create` returned it: the id, never the secret.
        key_id: Path<String>,
    ) -> Result<Ok200<ApiKey>, Problems<ViewErrors>> {
        Ok(Ok200(services.api_keys.view(&auth.0, &key_id.0).await?))
    }

    /// Update an API key
    ///
    /// Renames the key or replaces its own rate limits. New limits hold on every instance
    /// as fast as a revocation does. The caller's token must hold every scope of the key.
    #[oai(
        path = "/api-keys/:key_id",
        method = "patch",
        operation_id = "api_key_update"
    )]
    async fn api_key_update(
        &self,
        #[oai(scope = "Scope::Write")] auth: BearerOnly,
        services: Data<&Services>,
        /// The API key's id (`key_...`), as `api_key_create` returned it: the id, never the secret.
        key_id: Path<String>,
        /// Makes the request safe to retry (see `api_key_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<ApiKeyUpdate>,
    ) -> Result<Ok200<ApiKey>, Problems<WriteErrors>> {
        Ok(Ok200(
            services.api_keys.update(&auth.0, &key_id.0, body.0).await?,
        ))
    }

    /// Read an API key's usage
    ///
    /// Counts the key's requests per family and outcome in minute, hour or day buckets over
    /// `from`..`to` (default: the last 24 hours, by hour). Counts are written in batches a
    /// few seconds apart; minute buckets are kept 48 hours, hour buckets 90 days, day
    /// buckets two years.
    #[oai(
        path = "/api-keys/:key_id/usage",
        method = "get",
        operation_id = "api_key_usage"
    )]
    async fn api_key_usage(
        &self,
        #[oai(scope = "Scope::Read")] auth: BearerOnly,
        services: Data<&Services>,
        /// The API key's id (`key_...`), as `api_key_create` returned it: the id, never the secret.
        key_id: Path<String>,
        /// The range's start (inclusive); rounded down to the granularity.
        from: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// The range's end (exclusive; default now). At most 24 hours after `from` by
        /// minute, 31 days by hour, 366 days by day.
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
            services
                .rate_limits
                .usage(&auth.0, Some(&key_id.0), params)
                .await?,
        ))
    }

    /// Rotate an API key
    ///
    /// Returns a new full secret for the key and revokes the old secret (at once, or after
    /// `grace_period_seconds`). The key keeps its id, name, scopes and expiry.
    #[oai(
        path = "/api-keys/:key_id/rotate",
        method = "post",
        operation_id = "api_key_rotate"
    )]
    async fn api_key_rotate(
        &self,
        #[oai(scope = "Scope::Write")] auth: BearerOnly,
        services: Data<&Services>,
        /// The API key's id (`key_...`), as `api_key_create` returned it: the id, never the secret.
        key_id: Path<String>,
        /// Makes the request safe to retry (see `api_key_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<Option<ApiKeyRotate>>,
    ) -> Result<Ok200<ApiKeyWithSecret>, Problems<WriteErrors>> {
        let options = body.0.unwrap_or_default();
        Ok(Ok200(
            services
                .api_keys
                .rotate(&auth.0, &key_id.0, options)
                .await?,
        ))
    }

    /// Revoke an API key
    ///
    /// Soft-disables the key: it stops working at once and stays listed as `revoked`.
    #[oai(
        path = "/api-keys/:key_id/revoke",
        method = "post",
        operation_id = "api_key_revoke"
    )]
    async fn api_key_revoke(
        &self,
        #[oai(scope = "Scope::Write")] auth: BearerOnly,
        services: Data<&Services>,
        /// The API key's id (`key_...`), as `api_key_create` returned it: the id, never the secret.
        key_id: Path<String>,
        /// Makes the request safe to retry (see `api_key_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
    ) -> Result<Ok200<ApiKey>, Problems<WriteErrors>> {
        Ok(Ok200(services.api_keys.revoke(&auth.0, &key_id.0).await?))
    }

    /// Delete an API key
    ///
    /// Removes the key; it stops working at once.
    #[oai(
        path = "/api-keys/:key_id",
        method = "delete",
        operation_id = "api_key_delete"
    )]
    async fn api_key_delete(
        &self,
        #[oai(scope = "Scope::Admin")] auth: BearerOnly,
        services: Data<&Services>,
        /// The API key's id (`key_...`), as `api_key_create` returned it: the id, never the secret.
        key_id: Path<String>,
    ) -> Result<NoContent, Problems<DeleteErrors>> {
        services.api_keys.delete(&auth.0, &key_id.0).await?;
        Ok(NoContent)
    }

    /// Report leaked keys
    ///
    /// Public, and signed: for secret scanners (GitHub's secret scanning partner program
    /// sends exactly this). The body lists tokens found in public; it is signed with ECDSA
    /// P-256 over SHA-256 by a key the server is configured with (`leak_reporters`), named
    /// in `Github-Public-Key-Identifier`, the base64 DER signature in
    /// `Github-Public-Key-Signature`. Each token that is one of this server's keys is
    /// recorded on the key (its view's `leak`), announced as `api_key.leaked`, and revoked at
    /// once unless its organisation turned `revoke_leaked_keys` off.
    #[oai(
        path = "/leaked-keys",
        method = "post",
        operation_id = "leaked_key_report"
    )]
    async fn leaked_key_report(
        &self,
        services: Data<&Services>,
        request: &Request,
        /// Which reporter key signed the body.
        #[oai(
            name = "Github-Public-Key-Identifier",
            validator(min_length = 1, max_length = 256)
        )]
        key_identifier: Header<String>,
        /// Base64 of the DER ECDSA P-256 SHA-256 signature of the body.
        #[oai(
            name = "Github-Public-Key-Signature",
            validator(min_length = 1, max_length = 1024)
        )]
        signature: Header<String>,
        /// The tokens found (at most 1,000).
        body: Json<Vec<LeakedKeyReport>>,
    ) -> Result<Ok200<Vec<LeakedKeyVerdict>>, Problems<SignedBodyErrors>> {
        let raw = request
            .data::<RawBody>()
            .map(|b| &b.0[..])
            .unwrap_or_default();
        let report = SignedReport {
            key_identifier: &key_identifier.0,
            signature: &signature.0,
            body: raw,
        };
        Ok(Ok200(services.api_keys.report_leaks(report, body.0).await?))
    }
}
