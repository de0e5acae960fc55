//! What runs and jobs share as queued work: cancelling one (queued or running) with its
//! `*.cancelled` event, and the rule for which may be retried. A retry itself is a new row
//! (a new attempt), which each service builds from its own resource.

use std::future::Future;

use poem_openapi::types::ToJSON;
use sea_orm::DatabaseConnection;
use videovector_api_spec::{
    dto::webhooks::WebhookEventType, services::ServiceResult, ApiError, ErrorCode,
};

use super::internal;
use crate::{
    db::queue::{self, QueueStatus, QueueTable},
    events::Events,
};

/// One kind of queued work, as the services see it.
pub struct Work<'a> {
    pub db: &'a DatabaseConnection,
    pub events: &'a Events,
    pub table: &'a QueueTable,
    /// What the user calls one ("run", "job"), for the messages.
    pub noun: &'static str,
    pub cancelled_event: WebhookEventType,
}

impl Work<'_> {
    /// Cancels the row `id` (already found in the caller's organisation) and emits the
    /// cancelled event with `to_dto` of the row as it then is; a row neither queued nor
    /// running is a 409 naming its status. `find` reads the row again.
    pub async fn cancel<M, D, F, Fut>(
        &self,
        org_id: &str,
        id: &str,
        find: F,
        status: impl Fn(&M) -> QueueStatus,
        to_dto: impl Fn(&M) -> D,
    ) -> ServiceResult<D>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ServiceResult<M>>,
        D: ToJSON,
    {
        let cancelled = queue::cancel(self.db, self.table, id)
            .await
            .map_err(|e| internal("cancelling queued work", e))?;
        let current = find().await?;
        if !cancelled {
            return Err(ApiError::conflict(
                ErrorCode::InvalidTransition,
                format!(
                    "a {} {} cannot be cancelled",
                    status(&current).as_str(),
                    self.noun
                ),
            ));
        }
        let dto = to_dto(&current);
        self.events
            .emit(
                org_id,
                self.cancelled_event,
                dto.to_json().unwrap_or_default(),
            )
            .await;
        Ok(dto)
    }

    /// Whether a row in `status` may be retried (failed or cancelled); a 409 naming it if
    /// not.
    pub fn ensure_retryable(&self, status: QueueStatus) -> ServiceResult<()> {
        if status.retryable() {
            return Ok(());
        }
        Err(ApiError::conflict(
            ErrorCode::InvalidTransition,
            format!(
                "only failed or cancelled {}s can be retried; this one is {}",
                self.noun,
                status.as_str()
            ),
        ))
    }
}
