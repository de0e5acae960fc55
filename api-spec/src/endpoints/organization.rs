//! `/organization`: the caller's organisation and its settings. JWT bearer only, like key
//! management.

use poem::web::Data;
use poem_openapi::{param::Header, payload::Json, OpenApi};

use super::ApiTag;
use crate::{
    dto::{organization::*, text::IdempotencyKey},
    problem::{Problems, ViewErrors, WriteErrors},
    responses::Ok200,
    scopes::Scope,
    security::BearerOnly,
    services::Services,
};

pub struct OrganizationApi;

#[OpenApi(tag = "ApiTag::Organization")]
impl OrganizationApi {
    /// Get the organisation
    ///
    /// Returns the caller's organisation and its settings.
    #[oai(
        path = "/organization",
        method = "get",
        operation_id = "organization_view"
    )]
    async fn organization_view(
        &self,
        #[oai(scope = "Scope::Read")] auth: BearerOnly,
        services: Data<&Services>,
    ) -> Result<Ok200<Organization>, Problems<ViewErrors>> {
        Ok(Ok200(services.organization.view(&auth.0).await?))
    }

    /// Change the organisation's settings
    ///
    /// Renames the organisation or changes what happens to a key reported leaked.
    #[oai(
        path = "/organization",
        method = "patch",
        operation_id = "organization_update"
    )]
    async fn organization_update(
        &self,
        #[oai(scope = "Scope::Admin")] auth: BearerOnly,
        services: Data<&Services>,
        /// Makes the request safe to retry (see `api_key_create`).
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<OrganizationUpdate>,
    ) -> Result<Ok200<Organization>, Problems<WriteErrors>> {
        Ok(Ok200(services.organization.update(&auth.0, body.0).await?))
    }
}
