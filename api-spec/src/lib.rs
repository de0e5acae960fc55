//! The VideoVector API v2 contract: the poem-openapi declarations of every operation, their
//! bodies, the security schemes and scopes, and the committed OpenAPI document generated
//! from them. Nothing here touches a database: the server supplies [`services::Services`].

pub mod committed;
pub mod contract;
pub mod dto;
pub mod endpoints;
pub mod examples;
pub mod index_access;
pub mod paged;
pub mod pagination;
pub mod patterns;
pub mod problem;
pub mod refs;
pub mod responses;
pub mod rules;
pub mod schema_check;
pub mod scopes;
pub mod security;
pub mod services;
pub mod spec;

pub use committed::COMMITTED_SPEC;
pub use problem::{ApiError, ErrorCode, Problem};
pub use scopes::Scope;
pub use security::{Credential, Principal};
