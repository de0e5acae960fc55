//! The HTTP surface: the contract's routes under `/api/v2` (idempotency, request checks,
//! the guard, problem mapping), `/mcp`, Swagger UI, the docs site and the health checks,
//! behind the middleware every request passes (body limit, client address, panics caught,
//! tracing, the response tap, connections kept usable). Built from a [`Surface`]: what the
//! composition root (`crate::app`) hands over.

use std::sync::Arc;

use poem::{
    endpoint::BoxEndpoint, get, handler, http::StatusCode, middleware::CatchPanic, web::Data,
    EndpointExt, IntoResponse, Response, Route,
};
use poem_openapi::types::ToJSON;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use videovector_api_spec::{services::Services, spec::BASE_PATH};

use super::{
    docs,
    idempotency::{BodyFingerprints, Idempotency},
    keep_alive::keep_connections_usable,
    problems::ProblemMapping,
    request_checks::{large_body_budget, RequestChecks, RequestContract},
    request_id, request_span,
    response_tap::{self, ResponseTap},
    site,
};
use crate::{
    auth::{authenticator::Authenticator, guard::Guard, route_table::RouteTable},
    client_address::{self, TrustedProxies},
    mcp::{catalog::Catalog, dispatch::Dispatch, handler::VideoVectorMcp, transport::McpEndpoint},
    metrics::Metrics,
    rate_limits::{limiter::RateLimiter, usage::UsageCounter},
    request_context,
    secrets_at_rest::Keyring,
    traces::Tracing,
};

/// Request bodies above this are refused with 413 (a full batch of 1,000 long segments fits).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What the HTTP surface is built from.
pub struct Surface {
    /// Idempotency records, and what `/readyz` asks.
    pub db: DatabaseConnection,
    /// Seals idempotency records' answers.
    pub keyring: Arc<Keyring>,
    /// Keys idempotency fingerprints.
    pub pepper: Vec<u8>,
    pub table: Arc<RouteTable>,
    pub request_contract: Arc<RequestContract>,
    pub authenticator: Arc<Authenticator>,
    /// Counts authenticated requests against their rate limits.
    pub limiter: Arc<RateLimiter>,
    /// Counts answers to API keys.
    pub usage: Arc<UsageCounter>,
    /// Counts what the guard sees, when metrics are on.
    pub metrics: Option<Arc<Metrics>>,
    /// Whether each request leaves one log line.
    pub access_log: bool,
    /// Makes each request a span, when traces are on.
    pub tracing: Option<Tracing>,
    pub catalog: Arc<Catalog>,
    pub services: Services,
    pub trusted_proxies: Arc<TrustedProxies>,
    /// Observes every exchange (the test harness holds each answer to the spec).
    pub response_tap: Option<ResponseTap>,
    /// Cancelled at shutdown: ends the MCP requests in flight.
    pub shutdown: CancellationToken,
    /// The server's public root URL (MCP allows its host).
    pub public_url: String,
}

impl Surface {
    /// The whole HTTP application.
    pub fn routes(&self) -> anyhow::Result<impl poem::Endpoint<Output = Response>> {
        let api: Arc<BoxEndpoint<'static, Response>> = Arc::new(
            videovector_api_spec::spec::service()
                .with(Idempotency {
                    db: self.db.clone(),
                    keyring: self.keyring.clone(),
                    fingerprints: BodyFingerprints::new(&self.pepper),
                })
                .with(RequestChecks {
                    contract: self.request_contract.clone(),
                    large_bodies: large_body_budget(),
                })
                // Inside the guard too: the guard adds the rate limit headers to, and counts,
                // the answer as it will leave.
                .with(ProblemMapping)
                .with(Guard {
                    table: self.table.clone(),
                    authenticator: self.authenticator.clone(),
                    limiter: self.limiter.clone(),
                    usage: self.usage.clone(),
                    metrics: self.metrics.clone(),
                })
                .data(self.services.clone())
                .with(ProblemMapping)
                // The request's id and client, for its audit events and webhook deliveries.
                .around(request_context::enter)
                .boxed(),
        );
        let tap = self.response_tap.clone();
        let trusted = self.trusted_proxies.clone();
        let access_log = self.access_log;
        let tracing = self.tracing.clone();
        let mcp = self.mcp_endpoint(api.clone());
        Ok(site::mount(Route::new())?
            .at(docs::SPEC_PATH, get(docs::openapi_json))
            .nest(BASE_PATH, api)
            .at("/mcp", mcp)
            .at("/docs", get(docs::docs_root))
            .at("/docs/", get(docs::docs_index))
            .at("/docs/*path", get(docs::docs_file))
            .at("/healthz", get(healthz))
            .at("/readyz", get(readyz))
            .data(docs::swagger_config())
            .data(self.services.clone())
            .around(limit_body)
            .around(move |next, req| client_address::find_client(next, req, trusted.clone()))
            // A panic in a handler is a logged 500 problem, not a dropped connection.
            .with(CatchPanic::new())
            .with(ProblemMapping)
            // Inside the request's id, around all it does.
            .around(move |next, req| request_span::trace(next, req, tracing.clone()))
            // Outside the request's log lines, inside what the test harness observes.
            .around(move |next, req| request_id::assign(next, req, access_log))
            .around(move |next, req| response_tap::observe(next, req, tap.clone()))
            .around(keep_connections_usable)
            .map_to_response())
    }

    /// The MCP server: its tool calls run through `api` (below the base path), observed by
    /// the response tap as REST requests are.
    fn mcp_endpoint(&self, api: Arc<BoxEndpoint<'static, Response>>) -> McpEndpoint {
        let tap = self.response_tap.clone();
        let access_log = self.access_log;
        let tracing = self.tracing.clone();
        let calls: Arc<BoxEndpoint<'static, Response>> = Arc::new(
            Route::new()
                .nest(BASE_PATH, api)
                .around(move |next, req| request_span::trace(next, req, tracing.clone()))
                // Each tool call is a request of its own, with its own id, access line and
                // span.
                .around(move |next, req| request_id::assign(next, req, access_log))
                .around(move |next, req| response_tap::observe(next, req, tap.clone()))
                .map_to_response()
                .boxed(),
        );
        let mut allowed_hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        if let Some(host) = reqwest::Url::parse(&self.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            allowed_hosts.push(host);
        }
        McpEndpoint::new(
            VideoVectorMcp {
                catalog: self.catalog.clone(),
                dispatch: Dispatch::new(calls),
            },
            self.authenticator.clone(),
            allowed_hosts,
            self.shutdown.child_token(),
        )
    }
}

/// Refuses a body above [`MAX_BODY_BYTES`] with 413: a declared length before reading, any
/// other body (chunked, or HTTP/2 with no length at all) as soon as it grows past the limit.
/// No framing gets past it: an h2c body carries neither `Content-Length` nor
/// `Transfer-Encoding`, and was read in full before this.
async fn limit_body<E: poem::Endpoint>(next: E, mut req: poem::Request) -> poem::Result<Response> {
    use tokio::io::AsyncReadExt;
    let too_large = || {
        poem::Error::from_string(
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    };
    match req.headers().get(poem::http::header::CONTENT_LENGTH) {
        Some(length) => {
            let declared = length.to_str().ok().and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
                return Err(too_large());
            }
        }
        None => {
            let mut body = Vec::new();
            req.take_body()
                .into_async_read()
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut body)
                .await
                .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::BAD_REQUEST))?;
            if body.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            req.set_body(body);
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// `/readyz` beside the API, for probes: the answer of `readiness_view`.
#[handler]
async fn readyz(services: Data<&Services>) -> Response {
    match services.health.readiness().await {
        Ok(readiness) => poem::web::Json(readiness.to_json()).into_response(),
        Err(problem) => problem.into_problem_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[handler]
    fn echo_length(body: Vec<u8>) -> String {
        body.len().to_string()
    }

    /// A body with no declared length and no chunked framing (what an h2c client sends) is
    /// held to the limit like any other.
    #[tokio::test]
    async fn a_body_without_any_framing_header_is_held_to_the_limit() {
        let over = poem::Request::builder()
            .method(poem::http::Method::POST)
            .body(vec![0u8; MAX_BODY_BYTES + 1]);
        assert!(over
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .is_none());
        let refused = limit_body(echo_length, over).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);

        let within = poem::Request::builder()
            .method(poem::http::Method::POST)
            .body(vec![0u8; 1024]);
        let answer = limit_body(echo_length, within).await.unwrap();
        assert_eq!(answer.into_body().into_string().await.unwrap(), "1024");
    }
}
