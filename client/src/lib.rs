//! Typed Rust client for the VideoVector API v2.
//!
//! [`generated`] is produced by progenitor from the committed `api-spec/openapi.json`
//! (regenerate with `cargo run -p videovector-codegen -- generate`), with a `stream()` on
//! every paginated list (`generated_streams`, see [`streams`]). This file adds the helpers
//! that build a client authenticated with an API key or a bearer token, each retrying as its
//! [`RetryPolicy`] says ([`retry`]); [`errors`] turns a failure into an [`ApiError`]; and
//! [`tenant_token`] mints tenant tokens.

#[rustfmt::skip]
#[allow(clippy::all, unused_imports, dead_code, missing_docs)]
mod generated;
#[rustfmt::skip]
mod generated_idempotent;
#[rustfmt::skip]
mod generated_streams;

pub mod errors;
/// The Rust client guide of the docs site (`docs/rust-client.md`), here so that its examples
/// are compiled as doc tests.
#[doc = include_str!("../../docs/rust-client.md")]
pub mod guide {}

/// The tenant tokens guide of the docs site (`docs/tenant-tokens.md`), here so that its
/// Rust example is compiled as a doc test.
#[doc = include_str!("../../docs/tenant-tokens.md")]
pub mod tenant_tokens_guide {}
pub mod retry;
pub mod streams;
pub mod tenant_token;

pub use errors::{ApiError, ProblemExt};
pub use generated::*;
pub use retry::RetryPolicy;
pub use streams::ItemStream;
pub use tenant_token::{tenant_token, TenantTokenOptions};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

/// Appends the API's base path to a server's root URL (`http://127.0.0.1:8080`).
pub fn api_base_url(server_url: &str) -> String {
    format!("{}/api/v2", server_url.trim_end_matches('/'))
}

fn build(server_url: &str, headers: HeaderMap) -> Result<Client, ClientSetupError> {
    let root = server_url.trim_end_matches('/');
    if root.ends_with("/api/v2") || !(root.starts_with("http://") || root.starts_with("https://")) {
        return Err(ClientSetupError::ServerUrl(format!(
            "give the server's root URL with its scheme, without /api/v2 (`{server_url}`)"
        )));
    }
    // reqwest's rustls needs a process-wide crypto provider; a program that chose its own
    // keeps it (installing fails then, and that is fine).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(ClientSetupError::Http)?;
    Ok(Client::new_with_client(
        &api_base_url(server_url),
        http,
        RetryPolicy::default(),
    ))
}

/// Every request goes through the client's [`RetryPolicy`].
impl progenitor_client::ClientHooks<RetryPolicy> for Client {
    async fn exec(
        &self,
        request: reqwest::Request,
        info: &progenitor_client::OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        use progenitor_client::ClientInfo;
        self.inner()
            .execute(self.client(), request, info.operation_id)
            .await
    }
}

impl Client {
    /// The same client (credentials, connection pool) with another retry policy;
    /// `RetryPolicy::none()` turns retries off.
    pub fn with_retry_policy(&self, policy: RetryPolicy) -> Client {
        use progenitor_client::ClientInfo;
        Client::new_with_client(self.baseurl(), self.client().clone(), policy)
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, ClientSetupError> {
    let mut value =
        HeaderValue::from_str(value).map_err(|_| ClientSetupError::InvalidCredential)?;
    value.set_sensitive(true);
    Ok(value)
}

/// A JWT's shape: three base64url parts, the first a JSON object (`eyJ`).
fn looks_like_jwt(credential: &str) -> bool {
    credential.starts_with("eyJ") && credential.split('.').count() == 3
}

/// Why a client could not be built.
#[derive(Debug)]
pub enum ClientSetupError {
    /// The credential has characters a header cannot carry.
    InvalidCredential,
    /// The credential is of the other kind (a JWT given as an API key, or the reverse).
    WrongCredential(&'static str),
    /// The server URL is not a root URL (`https://videovector.example`).
    ServerUrl(String),
    /// The HTTP client failed to build.
    Http(reqwest::Error),
}

impl std::fmt::Display for ClientSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientSetupError::InvalidCredential => {
                f.write_str("the credential is not a valid header value")
            }
            ClientSetupError::WrongCredential(why) => f.write_str(why),
            ClientSetupError::ServerUrl(why) => f.write_str(why),
            ClientSetupError::Http(e) => write!(f, "building the HTTP client: {e}"),
        }
    }
}

impl std::error::Error for ClientSetupError {}

/// A client that sends `X-API-Key: <api_key>` on every request.
pub fn with_api_key(server_url: &str, api_key: &str) -> Result<Client, ClientSetupError> {
    if looks_like_jwt(api_key) {
        return Err(ClientSetupError::WrongCredential(
            "that is a JWT, not an API key: use with_bearer_token",
        ));
    }
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", sensitive(api_key)?);
    build(server_url, headers)
}

/// A client that sends `Authorization: Bearer <token>` on every request.
pub fn with_bearer_token(server_url: &str, token: &str) -> Result<Client, ClientSetupError> {
    if !looks_like_jwt(token) {
        return Err(ClientSetupError::WrongCredential(
            "that is not a JWT (without `Bearer `): an API key goes in with_api_key",
        ));
    }
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, sensitive(&format!("Bearer {token}"))?);
    build(server_url, headers)
}

/// A client without credentials (for `token_create`).
pub fn anonymous(server_url: &str) -> Result<Client, ClientSetupError> {
    build(server_url, HeaderMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_refuses_a_credential_of_the_other_kind_and_a_url_with_the_base_path() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let refused = |r: Result<Client, ClientSetupError>| r.err().map(|e| e.to_string());
        assert!(refused(with_api_key("http://127.0.0.1:1", jwt))
            .is_some_and(|e| e.contains("with_bearer_token")));
        assert!(
            refused(with_bearer_token("http://127.0.0.1:1", "sk_live_x"))
                .is_some_and(|e| e.contains("with_api_key"))
        );
        assert!(refused(with_bearer_token(
            "http://127.0.0.1:1",
            &format!("Bearer {jwt}")
        ))
        .is_some());
        assert!(refused(anonymous("http://127.0.0.1:1/api/v2/"))
            .is_some_and(|e| e.contains("root URL")));
        assert!(refused(anonymous("127.0.0.1:8080")).is_some());
        assert!(with_api_key("http://127.0.0.1:1/", "sk_live_x").is_ok());
        assert!(with_bearer_token("https://videovector.example", jwt).is_ok());
    }
}
