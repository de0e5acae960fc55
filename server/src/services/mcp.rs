//! `mcp_config_view`: the MCP client configuration, with the tools derived from the
//! committed spec (every operation an API key may call, and the scope it needs).

use async_trait::async_trait;
use serde_json::Value;
use videovector_api_spec::{
    dto::mcp::*,
    rules::operation_rules,
    security::API_KEY_SCHEME,
    services::{McpService, ServiceResult},
    Principal, COMMITTED_SPEC,
};

pub struct Mcp {
    pub public_url: String,
    tools: Vec<McpTool>,
}

impl Mcp {
    pub fn new(public_url: String) -> anyhow::Result<Self> {
        let spec: Value = serde_json::from_str(COMMITTED_SPEC)?;
        let rules = operation_rules(&spec).map_err(anyhow::Error::msg)?;
        let tools = rules
            .iter()
            .filter(|r| r.schemes.iter().any(|s| s == API_KEY_SCHEME))
            .filter_map(|r| {
                let op = &spec["paths"][&r.path][r.method.to_lowercase()];
                Some(McpTool {
                    name: r.operation_id.clone(),
                    description: op["summary"].as_str().unwrap_or_default().to_string(),
                    required_scope: r.required_scope?,
                })
            })
            .collect();
        Ok(Mcp { public_url, tools })
    }
}

#[async_trait]
impl McpService for Mcp {
    async fn config(&self, who: &Principal) -> ServiceResult<McpConfig> {
        Ok(McpConfig {
            mcp_servers: McpServers {
                videovector: McpServer {
                    url: format!("{}/api/v2", self.public_url.trim_end_matches('/')),
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
