//! `GET /mcp/config`.

use poem::web::Data;
use poem_openapi::OpenApi;

use super::ApiTag;
use crate::{
    dto::mcp::McpConfig,
    problem::{Problems, VerifiedViewErrors},
    responses::Ok200,
    security::VerifiedBearerOnly,
    services::Services,
};

pub struct McpApi;

#[OpenApi(tag = "ApiTag::Mcp")]
impl McpApi {
    /// Get the MCP client configuration
    ///
    /// Returns the configuration an MCP client needs to reach VideoVector for this
    /// organisation, and the tools it will find. Requires a verified JWT session; an
    /// unverified token gets 401 `insufficient_user_authentication`.
    #[oai(path = "/mcp/config", method = "get", operation_id = "mcp_config_view")]
    async fn mcp_config_view(
        &self,
        auth: VerifiedBearerOnly,
        services: Data<&Services>,
    ) -> Result<Ok200<McpConfig>, Problems<VerifiedViewErrors>> {
        Ok(Ok200(services.mcp.config(&auth.0).await?))
    }
}
