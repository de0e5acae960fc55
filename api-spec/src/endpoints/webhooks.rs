//! Webhook endpoints, their deliveries, and test events.

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    OpenApi,
};

use super::ApiTag;
use crate::{
    dto::webhooks::*,
    problem::{DeleteErrors, ListErrors, Problems, ViewErrors, WriteErrors},
    responses::{Accepted, Created, NoContent, Ok200},
    scopes::Scope,
    security::ApiKeyOrBearer,
    services::{PageParams, Services},
};

use crate::dto::text::IdempotencyKey;

pub struct WebhooksApi;

#[OpenApi(tag = "ApiTag::Webhooks")]
impl WebhooksApi {
    /// Create a webhook
    ///
    /// Subscribes an endpoint to events and returns its signing secret once. Deliveries are
    /// signed in the Standard Webhooks form (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`) and retried with exponential backoff until the endpoint answers
    /// 2xx. Private, loopback and link-local addresses are refused unless the server allows
    /// them.
    #[oai(path = "/webhooks", method = "post", operation_id = "webhook_create")]
    async fn webhook_create(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Makes the request safe to retry: a retry with the same key and body returns the
        /// stored response with `Idempotent-Replayed: true`.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<WebhookCreate>,
    ) -> Result<Created<WebhookWithSecret>, Problems<WriteErrors>> {
        Ok(Created(services.webhooks.create(&auth.0, body.0).await?))
    }

    /// List webhooks
    ///
    /// Lists this organisation's webhooks, ordered by id.
    #[oai(path = "/webhooks", method = "get", operation_id = "webhook_list")]
    async fn webhook_list(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Ok200<WebhookPage>, Problems<ListErrors>> {
        let page = PageParams {
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(Ok200(services.webhooks.list(&auth.0, page).await?))
    }

    /// Retrieve a webhook
    ///
    /// Returns one webhook (never its secret).
    #[oai(
        path = "/webhooks/:webhook_id",
        method = "get",
        operation_id = "webhook_view"
    )]
    async fn webhook_view(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The webhook's id (`whk_...`), as `webhook_create` returned it.
        webhook_id: Path<String>,
    ) -> Result<Ok200<Webhook>, Problems<ViewErrors>> {
        Ok(Ok200(services.webhooks.view(&auth.0, &webhook_id.0).await?))
    }

    /// Update a webhook
    ///
    /// Changes a webhook's URL, events, description or whether it is enabled.
    #[oai(
        path = "/webhooks/:webhook_id",
        method = "patch",
        operation_id = "webhook_update"
    )]
    async fn webhook_update(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The webhook's id (`whk_...`), as `webhook_create` returned it.
        webhook_id: Path<String>,
        /// Makes the request safe to retry (see `webhook_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<WebhookUpdate>,
    ) -> Result<Ok200<Webhook>, Problems<WriteErrors>> {
        Ok(Ok200(
            services
                .webhooks
                .update(&auth.0, &webhook_id.0, body.0)
                .await?,
        ))
    }

    /// Delete a webhook
    ///
    /// Deletes a webhook and its delivery log; queued deliveries are dropped.
    #[oai(
        path = "/webhooks/:webhook_id",
        method = "delete",
        operation_id = "webhook_delete"
    )]
    async fn webhook_delete(
        &self,
        #[oai(scope = "Scope::Admin")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The webhook's id (`whk_...`), as `webhook_create` returned it.
        webhook_id: Path<String>,
    ) -> Result<NoContent, Problems<DeleteErrors>> {
        services.webhooks.delete(&auth.0, &webhook_id.0).await?;
        Ok(NoContent)
    }

    /// List a webhook's deliveries
    ///
    /// The delivery log: every event sent to this webhook with each attempt's time, HTTP
    /// status and error, oldest first.
    #[oai(
        path = "/webhooks/:webhook_id/deliveries",
        method = "get",
        operation_id = "webhook_delivery_list"
    )]
    async fn webhook_delivery_list(
        &self,
        #[oai(scope = "Scope::Read")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The webhook's id (`whk_...`), as `webhook_create` returned it.
        webhook_id: Path<String>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Ok200<WebhookDeliveryPage>, Problems<ViewErrors>> {
        let page = PageParams {
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(Ok200(
            services
                .webhooks
                .deliveries(&auth.0, &webhook_id.0, page)
                .await?,
        ))
    }

    /// Send a test event
    ///
    /// Queues a `webhook.test` delivery to this webhook (even if it is not subscribed to
    /// it) and answers 202 with the delivery.
    #[oai(
        path = "/webhooks/:webhook_id/test",
        method = "post",
        operation_id = "webhook_test"
    )]
    async fn webhook_test(
        &self,
        #[oai(scope = "Scope::Write")] auth: ApiKeyOrBearer,
        services: Data<&Services>,
        /// The webhook's id (`whk_...`), as `webhook_create` returned it.
        webhook_id: Path<String>,
        /// Makes the request safe to retry (see `webhook_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
    ) -> Result<Accepted<WebhookDelivery>, Problems<WriteErrors>> {
        Ok(Accepted(
            services.webhooks.test(&auth.0, &webhook_id.0).await?,
        ))
    }
}
