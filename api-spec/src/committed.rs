//! The committed OpenAPI document (`api-spec/openapi.json`), as served and enforced.

/// The committed OpenAPI document, as served and enforced.
pub const COMMITTED_SPEC: &str = include_str!("../openapi.json");
