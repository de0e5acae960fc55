//! Authentication: API key secrets, operator passwords, JWTs (and the ones recently
//! verified), login rate limiting and turns, and the guard that enforces each operation's
//! spec-declared requirement.

pub mod api_key_secret;
pub mod authenticator;
pub mod guard;
pub mod index_restriction;
pub mod jwt;
pub mod leak_reporters;
pub mod login_turns;
pub mod passwords;
pub mod rate_limit;
pub mod route_table;
pub mod server_secrets;
pub mod tenant_tokens;
pub mod verified_tokens;
