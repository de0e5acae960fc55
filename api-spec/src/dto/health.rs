//! The body of `readiness_view`: each thing an instance needs to serve, with its state.

use poem_openapi::{Enum, Object};

/// A check's state.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum CheckState {
    /// Working.
    Up,
    /// Not working (for the listener: notices may be missed; caches are off and the
    /// search copy polls, so answers stay correct, only slower).
    Down,
    /// The search copy is behind the database (within the limit, or it would be `down`).
    Behind,
    /// Not used by this deployment (the listener, on SQLite).
    NotApplicable,
}

/// One check.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ReadinessCheck {
    pub state: CheckState,
    /// What is wrong, when it is not `up`.
    pub detail: Option<String>,
    /// Segment changes in the database the search copy has not applied (`search_copy`
    /// only).
    pub lag_changes: Option<i64>,
}

/// Every check of this instance.
#[derive(Object, Debug, Clone)]
pub struct ReadinessChecks {
    /// The database answers.
    pub database: ReadinessCheck,
    /// This instance follows the others' notices (PostgreSQL).
    pub notification_listener: ReadinessCheck,
    /// This instance's search copy is caught up with the database.
    pub search_copy: ReadinessCheck,
    /// The secrets key seals and opens, and is the one the database was sealed with.
    pub secrets_key: ReadinessCheck,
}

/// Whether the instance serves fully, or with something degraded.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ReadinessStatus {
    Ready,
    /// Serving correctly, but the listener is down or the search copy behind.
    Degraded,
}

/// The instance is ready: its checks.
#[derive(Object, Debug, Clone)]
pub struct Readiness {
    pub status: ReadinessStatus,
    pub checks: ReadinessChecks,
}
