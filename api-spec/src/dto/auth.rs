//! Bodies of `POST /auth/token`.

use poem_openapi::Object;

use crate::scopes::Scope;

/// Operator credentials exchanged for a JWT.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenRequest {
    /// The operator's email address.
    #[oai(validator(min_length = 3, max_length = 320))]
    pub email: String,
    /// The operator's password.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
    /// Narrow the token to these scopes (each at or below the operator's role). Defaults to
    /// the role's scope.
    pub scopes: Option<Vec<Scope>>,
}

/// A JWT bearer token issued by this server.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenResponse {
    /// The JWT; send it as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// The scopes the token holds.
    pub scopes: Vec<Scope>,
    /// The organisation the token acts in.
    pub organization_id: String,
}
