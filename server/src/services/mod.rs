//! The implementations of the contract's service traits, one module per resource.

pub mod api_keys;
pub mod auth;
pub mod connectors;
pub mod indexes;
pub mod jobs;
pub mod mcp;
pub mod page_token;
pub mod pagination;
pub mod prompts;
pub mod retrieval;
pub mod runs;
pub mod webhooks;

use std::fmt::Display;

use sea_orm::{DbErr, SqlErr};
use videovector_api_spec::ApiError;

/// Logs an internal failure and answers a 500 that says nothing about it.
pub fn internal(context: &str, error: impl Display) -> ApiError {
    tracing::error!(error = %error, "{context}");
    ApiError::internal()
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
