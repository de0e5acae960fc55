//! Request and response bodies, one module per resource.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod chat;
pub mod connectors;
pub mod health;
pub mod indexes;
pub mod mcp;
pub mod organization;
pub mod prompts;
pub mod rate_limits;
pub mod runs;
pub mod search;
pub mod text;
pub mod webhooks;
