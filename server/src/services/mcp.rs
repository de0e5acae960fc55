//! `mcp_config_view`: the MCP client configuration for the server at `/mcp`, with its tools
//! (from the MCP catalog, handed over by the composition root: every operation an API key
//! may call, and the scope it needs).

use async_trait::async_trait;
use videovector_api_spec::{
    dto::mcp::*,
    services::{McpService, ServiceResult},
    Principal,
};

pub struct Mcp {
    pub public_url: String,
    tools: Vec<McpTool>,
}

impl Mcp {
    /// `tools`: the MCP catalog's tools, as the configuration lists them.
    pub fn new(public_url: String, tools: Vec<McpTool>) -> Self {
        Mcp { public_url, tools }
    }
}

#[async_trait]
impl McpService for Mcp {
    async fn config(&self, who: &Principal) -> ServiceResult<McpConfig> {
        Ok(McpConfig {
            mcp_servers: McpServers {
                videovector: McpServer {
                    transport: "http".into(),
                    url: format!("{}/mcp", self.public_url.trim_end_matches('/')),
                    headers: McpHeaders {
                        api_key: "${VIDEOVECTOR_API_KEY}".into(),
                    },
                },
            },
            organization_id: who.org_id.clone(),
            tools: self.tools.clone(),
        })
    }
}
