//! Body of `GET /mcp/config`.

use poem_openapi::Object;

use crate::scopes::Scope;

/// MCP client configuration for this organisation, ready to paste into a client's settings.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct McpConfig {
    #[oai(rename = "mcpServers")]
    pub mcp_servers: McpServers,
    /// The organisation the configuration acts in.
    pub organization_id: String,
    /// The tools an MCP client will find, with the scope each needs from the API key.
    pub tools: Vec<McpTool>,
}

/// The servers an MCP client should connect to.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct McpServers {
    pub videovector: McpServer,
}

/// One MCP server entry.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct McpServer {
    /// The transport: `http` (MCP's streamable HTTP).
    #[oai(rename = "type")]
    pub transport: String,
    /// The MCP endpoint: `<public URL>/mcp`.
    pub url: String,
    /// Headers the client sends; `${VIDEOVECTOR_API_KEY}` is read from the client's environment.
    pub headers: McpHeaders,
}

/// Headers of an MCP server entry.
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct McpHeaders {
    #[oai(rename = "X-API-Key")]
    pub api_key: String,
}

/// A tool an MCP client can call (with a credential holding its scope).
#[derive(Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct McpTool {
    pub name: String,
    pub description: String,
    /// The scope the API key needs for this tool.
    pub required_scope: Scope,
}
