//! The one end-to-end test binary: a real server per test on 127.0.0.1:0, driven by the
//! generated client (and by raw HTTP where a test must send what the client cannot).

mod audit_log;
mod chaos;
mod child_server;
mod cluster;
mod conformance;
mod connections;
mod connectors;
mod contract_checker;
mod docs_site;
mod every_operation;
mod external_issuers;
mod floods;
mod flows;
mod hostile_bodies;
mod hostile_inputs;
mod index_restrictions;
mod jwt_attacks;
mod key_restrictions;
mod leaked_keys;
mod logins;
mod mcp;
mod meaning;
mod meaning_rest;
mod metrics;
mod rate_limits;
mod readiness;
mod request_ids;
mod resources;
mod retrieval;
mod runs;
mod secrets_at_rest;
mod spec_sync;
mod tenant_tokens;
mod traces;
mod webhooks;
