//! `audit_event_list`: the organisation's audit events, oldest first, filtered; the cursor
//! is the last sequence shown.

use async_trait::async_trait;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sea_orm::{ColumnTrait, DatabaseConnection, QueryFilter, QueryOrder, QuerySelect};
use videovector_api_spec::{
    dto::audit::*,
    services::{AuditService, PageParams, ServiceResult},
    ApiError, ErrorCode, Principal,
};

use super::{internal, pagination::PageRequest};
use crate::{audit::changes, db::entities::audit_event};

pub struct AuditEvents {
    pub db: DatabaseConnection,
}

/// An event as the API shows it. Every stored name is one this version writes; a name it
/// does not know (only a newer version's, mid-upgrade) is logged and shown as a defined
/// value rather than failing the whole page.
fn to_dto(model: audit_event::Model) -> AuditEvent {
    if from_wire::<AuditAction>(&model.action).is_none() {
        tracing::error!(event = %model.id, action = %model.action, "an audit action this version does not know");
    }
    AuditEvent {
        changes: changes::from_json(&model.changes),
        id: model.id,
        sequence: model.sequence,
        occurred_at: model.occurred_at,
        action: from_wire(&model.action).unwrap_or(AuditAction::OrganizationUpdate),
        outcome: from_wire(&model.outcome).unwrap_or(AuditOutcome::Failure),
        actor: AuditActor {
            actor_type: from_wire(&model.actor_type).unwrap_or(AuditActorType::Jwt),
            id: model.actor_id,
        },
        target: AuditTarget {
            target_type: from_wire(&model.target_type).unwrap_or(AuditTargetType::Organization),
            id: model.target_id,
        },
        client_address: model.client_address,
        request_id: model.request_id,
        previous_hash: model.previous_hash,
        hash: model.hash,
    }
}

/// The sequence a cursor names.
fn after_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("seq:").and_then(|n| n.parse().ok()))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        ErrorCode::InvalidCursor,
                        "the cursor is not one this API issued",
                    )
                })
        })
        .transpose()
}

#[async_trait]
impl AuditService for AuditEvents {
    async fn list(
        &self,
        who: &Principal,
        page: PageParams,
        filter: AuditEventFilter,
    ) -> ServiceResult<AuditEventPage> {
        let after = after_cursor(page.cursor.as_deref())?;
        let limit = PageRequest::parse(PageParams {
            limit: page.limit,
            cursor: None,
        })?
        .limit;
        let mut query = audit_event::for_org(&who.org_id);
        if let Some(after) = after.into_iter().chain(filter.after_sequence).max() {
            query = query.filter(audit_event::Column::Sequence.gt(after));
        }
        if let Some(action) = filter.action {
            query = query.filter(audit_event::Column::Action.eq(wire_name(&action)));
        }
        if let Some(actor_id) = filter.actor_id {
            query = query.filter(audit_event::Column::ActorId.eq(actor_id));
        }
        if let Some(target_id) = filter.target_id {
            query = query.filter(audit_event::Column::TargetId.eq(target_id));
        }
        if let Some(since) = filter.since {
            query = query.filter(audit_event::Column::OccurredAt.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_event::Column::OccurredAt.lt(until));
        }
        let mut rows = query
            .order_by_asc(audit_event::Column::Sequence)
            .limit(limit + 1)
            .all(&self.db)
            .await
            .map_err(|e| internal("listing audit events", e))?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more
            .then(|| rows.last())
            .flatten()
            .map(|last| URL_SAFE_NO_PAD.encode(format!("seq:{}", last.sequence)));
        Ok(AuditEventPage {
            items: rows.into_iter().map(to_dto).collect(),
            next_cursor,
        })
    }
}
