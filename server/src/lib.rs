//! The VideoVector API v2 service: configuration, storage, authentication, search and the
//! HTTP surface that enforces the committed contract. The binary (`videovector`) is a thin
//! CLI over [`app`], the composition root.

pub mod app;
pub mod audit;
pub mod auth;
pub mod browser_origins;
pub mod captions;
pub mod client_address;
pub mod cluster;
pub mod config;
pub mod db;
pub mod embed;
pub mod events;
pub mod http;
pub mod ids;
pub mod logging;
pub mod mcp;
pub mod memory;
pub mod metrics;
pub mod net_guard;
pub mod purpose_key;
pub mod rate_limits;
pub mod request_context;
pub mod search;
pub mod secrets_at_rest;
pub mod services;
pub mod traces;
pub mod workers;

pub use app::{start, start_observed, AppState, RunningServer};
pub use config::Config;
