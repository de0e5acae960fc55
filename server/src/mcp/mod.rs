//! The MCP server at `/mcp`: AI clients browse indexes, search media evidence and run
//! prompts with the same keys and scopes as the REST API. Tools come from the committed spec
//! ([`catalog`]); calls run as their REST operations in process ([`dispatch`]); the handler
//! ([`handler`]) answers tools, resources and prompts; [`transport`] authenticates each HTTP
//! request and bridges poem to rmcp's streamable HTTP transport.

pub mod catalog;
pub mod dispatch;
pub mod handler;
pub mod transport;
