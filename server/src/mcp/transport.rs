//! `/mcp`: the streamable HTTP transport (rmcp's) behind the REST API's authentication.
//!
//! Every HTTP request to `/mcp` (each JSON-RPC message) is authenticated as a REST request
//! is: `X-API-Key` or `Authorization: Bearer`, the same digest lookup, so a revoked key is
//! refused on its very next request; without a valid credential the answer is a 401 problem
//! with `WWW-Authenticate`. The authenticated [`Caller`] travels to the handler in the
//! request's extensions, and each tool call it makes carries its credential on.
//!
//! The server keeps no session, for every protocol revision: each POST is answered on its
//! own, with a JSON body, and nothing outlives it. Nothing a client sends can make the server
//! hold memory after the answer (a flood of `initialize` once cost 57 KB a session for five
//! minutes); any instance behind a round-robin balancer answers any request (a session lived
//! only on the instance that opened it); there is no session for another credential to use
//! or end, and no stream to outlive a revoked key. Revisions before 2026-07-28 negotiate
//! sessions only if the server assigns an id; clients go on without one (the specification
//! lets a server not assign it), and revision 2026-07-28 has none. What is given up is what
//! this server never used: server-initiated messages on a standing stream.

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt};
use poem::{
    http::{HeaderName, StatusCode},
    Body, Endpoint, IntoResponse, Request, Response,
};
use rmcp::transport::streamable_http_server::{
    session::never::NeverSessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
use tower_service::Service;

use super::{dispatch::Credential, handler::Caller, handler::VideoVectorMcp};
use crate::auth::{authenticator::Authenticator, guard::authenticate_caller};
use videovector_api_spec::security::ClientAddress;

/// The `/mcp` endpoint.
pub struct McpEndpoint {
    service: StreamableHttpService<VideoVectorMcp, NeverSessionManager>,
    authenticator: Arc<Authenticator>,
}

impl McpEndpoint {
    /// `allowed_hosts`: the `Host` values accepted (rmcp's DNS-rebinding check); `shutdown`
    /// ends every request in flight when cancelled.
    pub fn new(
        server: VideoVectorMcp,
        authenticator: Arc<Authenticator>,
        allowed_hosts: Vec<String>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> McpEndpoint {
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(allowed_hosts)
            .with_cancellation_token(shutdown)
            .with_legacy_session_mode(false)
            .with_json_response(true);
        McpEndpoint {
            service: StreamableHttpService::new(
                move || Ok(server.clone()),
                NeverSessionManager::default().into(),
                config,
            ),
            authenticator,
        }
    }
}

/// The header that carried the credential, to send on with tool calls.
fn credential_header(req: &Request) -> Option<Credential> {
    ["x-api-key", "authorization"].into_iter().find_map(|name| {
        req.headers().get(name).map(|value| Credential {
            name: HeaderName::from_static(name),
            value: value.clone(),
            client: req.data::<ClientAddress>().copied(),
        })
    })
}

impl Endpoint for McpEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let principal = match authenticate_caller(&self.authenticator, &req).await {
            Ok(principal) => principal,
            Err(problem) => return Ok(problem.into_problem_response()),
        };
        let Some(credential) = credential_header(&req) else {
            return Ok(StatusCode::UNAUTHORIZED.into_response());
        };
        let mut request: http::Request<BoxBody<Bytes, std::io::Error>> = req.into();
        request.extensions_mut().insert(Caller {
            principal,
            credential,
        });
        let mut service = self.service.clone();
        let response = match service.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = body
            .map_err(|never: Infallible| -> std::io::Error { match never {} })
            .boxed();
        Ok(Response::from_parts(
            poem::ResponseParts {
                status: parts.status,
                version: parts.version,
                headers: parts.headers,
                extensions: parts.extensions,
            },
            Body::from(body),
        ))
    }
}
