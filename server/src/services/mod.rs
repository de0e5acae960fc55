//! The implementations of the contract's service traits, one module per resource.

pub mod api_keys;
pub mod audit_events;
pub mod auth;
pub mod connector_files;
pub mod connector_headers;
pub mod connectors;
pub mod embedder_switch;
pub mod indexes;
pub mod ingest;
pub mod jobs;
pub mod leaked_keys;
pub mod mcp;
pub mod organization;
pub mod page_token;
pub mod pagination;
pub mod prompts;
pub mod queued_work;
pub mod rate_limits;
pub mod readiness;
pub mod retrieval;
pub mod runs;
pub mod webhooks;

use std::fmt::Display;

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Select, SqlErr};
use videovector_api_spec::{services::ServiceResult, ApiError};

/// Logs an internal failure and answers a 500 that says nothing about it; or, when the
/// failure is the database being unreachable, a 503 `unavailable` with `Retry-After`.
pub fn internal(context: &str, error: impl Display + 'static) -> ApiError {
    let unreachable = (&error as &dyn std::any::Any)
        .downcast_ref::<DbErr>()
        .is_some_and(crate::db::reachability::is_unreachable);
    if unreachable {
        tracing::warn!(error = %error, "{context}: the database is unreachable");
        return ApiError::unavailable("the database cannot be reached right now; retry shortly");
    }
    tracing::error!(error = %error, "{context}");
    ApiError::internal()
}

/// A 422 for a name that is only whitespace.
pub fn blank_name() -> ApiError {
    ApiError::validation(vec![videovector_api_spec::problem::FieldError::body(
        "/name",
        "must not be blank",
    )])
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// The row of `query` (already scoped to the caller's organisation) whose `id_column` is
/// `id`, or a 404 naming `what`: another organisation's resource does not exist.
pub async fn find_in_org<E: EntityTrait>(
    db: &DatabaseConnection,
    query: Select<E>,
    id_column: impl ColumnTrait,
    id: &str,
    what: &str,
) -> ServiceResult<E::Model> {
    query
        .filter(id_column.eq(id))
        .one(db)
        .await
        .map_err(|e| internal(&format!("loading {what} {id}"), e))?
        .ok_or_else(|| ApiError::not_found(what, id))
}
