//! `POST /auth/token`.

use poem::{web::Data, Request};
use poem_openapi::{payload::Json, OpenApi};

use super::ApiTag;
use crate::{
    dto::auth::{TokenRequest, TokenResponse},
    problem::{Problems, PublicBodyErrors},
    responses::Ok200,
    security::ClientAddress,
    services::Services,
};

pub struct AuthApi;

#[OpenApi(tag = "ApiTag::Auth")]
impl AuthApi {
    /// Exchange operator credentials for a JWT
    ///
    /// Public. Returns a JWT bearer token signed by this server's built-in issuer, holding
    /// the operator's role scope (or the narrower `scopes` asked for). Failed attempts are
    /// limited per email and client address together, and per client address (429 with
    /// `Retry-After`); an email with many recent failures from elsewhere is slowed down,
    /// never locked.
    #[oai(path = "/auth/token", method = "post", operation_id = "token_create")]
    async fn token_create(
        &self,
        services: Data<&Services>,
        request: &Request,
        body: Json<TokenRequest>,
    ) -> Result<Ok200<TokenResponse>, Problems<PublicBodyErrors>> {
        let client = request
            .data::<ClientAddress>()
            .map(|c| c.0)
            .or_else(|| request.remote_addr().as_socket_addr().map(|a| a.ip()));
        Ok(Ok200(services.auth.token_create(body.0, client).await?))
    }
}
