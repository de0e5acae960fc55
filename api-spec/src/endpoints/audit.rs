//! `/audit-events`: the organisation's audit log, for people and for SIEMs that poll it.
//! JWT bearer only, `admin` scope: the log names every operator's address and the whole
//! security history of the organisation, which a dashboard's `read` token has no need of.
//! Counted in its own rate limit family (`audit`), so a SIEM's polling neither spends nor is
//! starved by the interactive `read` budget.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{param::Query, OpenApi};

use super::ApiTag;
use crate::{
    dto::audit::*,
    problem::{ListErrors, Problems},
    responses::Ok200,
    scopes::Scope,
    security::BearerOnly,
    services::{PageParams, Services},
};

pub struct AuditApi;

#[OpenApi(tag = "ApiTag::Audit")]
impl AuditApi {
    /// List audit events
    ///
    /// Lists the organisation's audit events, oldest first, optionally only those of one
    /// action, actor or target, or of a time range. To follow the log, keep the last
    /// `sequence` you saw and pass it as `after_sequence` on the next poll: sequences have no
    /// gaps and appear in order.
    #[oai(
        path = "/audit-events",
        method = "get",
        operation_id = "audit_event_list"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn audit_event_list(
        &self,
        #[oai(scope = "Scope::Admin")] auth: BearerOnly,
        services: Data<&Services>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Only events of this action.
        action: Query<Option<AuditAction>>,
        /// Only events of this actor (an operator, key or reporter id).
        #[oai(validator(max_length = 300))]
        actor_id: Query<Option<String>>,
        /// Only events about this target (a key, webhook, connector or operator id).
        #[oai(validator(max_length = 300))]
        target_id: Query<Option<String>>,
        /// Only events at or after this time (RFC 3339).
        since: Query<Option<DateTime<Utc>>>,
        /// Only events before this time (RFC 3339).
        until: Query<Option<DateTime<Utc>>>,
        /// Only events after this sequence number (the last one you have).
        #[oai(validator(minimum(value = "0")))]
        after_sequence: Query<Option<i64>>,
    ) -> Result<Ok200<AuditEventPage>, Problems<ListErrors>> {
        let page = PageParams {
            limit: limit.0,
            cursor: cursor.0,
        };
        let filter = AuditEventFilter {
            action: action.0,
            actor_id: actor_id.0,
            target_id: target_id.0,
            since: since.0,
            until: until.0,
            after_sequence: after_sequence.0,
        };
        Ok(Ok200(services.audit.list(&auth.0, page, filter).await?))
    }
}
