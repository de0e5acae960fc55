//! What the request being handled is, for the records it leaves behind: its id and the
//! client's address. Entered once around the API's endpoint chain (REST and MCP tool calls
//! alike), read by the audit log and by webhook events, which run deep below the handler
//! where threading them through every service signature would add nothing but noise. Work
//! outside a request (workers, the command line) has none.
//!
//! Also what the guard learned of a request ([`Access`], left in the answer's data), for its
//! access log line and metrics.

use std::{future::Future, net::IpAddr};

use poem::{Endpoint, Request};
use videovector_api_spec::{
    security::{ClientAddress, RequestId},
    Credential, Principal,
};

/// The request being handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Its `X-Request-Id`.
    pub request_id: Option<String>,
    /// The client's address, after trusted proxies.
    pub client: Option<IpAddr>,
}

/// How the request authenticated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// A public operation, or no credential checked yet.
    #[default]
    None,
    ApiKey,
    TenantToken,
    Bearer,
}

impl Scheme {
    pub fn of(principal: &Principal) -> Scheme {
        match (&principal.credential, &principal.forced_filters) {
            (Credential::ApiKey { .. }, Some(_)) => Scheme::TenantToken,
            (Credential::ApiKey { .. }, None) => Scheme::ApiKey,
            (Credential::Jwt { .. }, _) => Scheme::Bearer,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::None => "none",
            Scheme::ApiKey => "api_key",
            Scheme::TenantToken => "tenant_token",
            Scheme::Bearer => "bearer",
        }
    }
}

/// What the guard learned of a request, left in its answer's data for the access log.
#[derive(Clone, Debug)]
pub struct Access {
    /// The spec's `operationId`; none for a path no operation serves.
    pub operation: Option<String>,
    pub scheme: Scheme,
    /// The key's id, or the token's issuer and subject.
    pub credential: Option<String>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

impl RequestContext {
    /// The request being handled by this task, if any.
    pub fn current() -> RequestContext {
        CURRENT.try_with(Clone::clone).unwrap_or_default()
    }

    /// The id of the request being handled by this task, if any.
    pub fn current_request_id() -> Option<String> {
        CURRENT
            .try_with(|context| context.request_id.clone())
            .ok()
            .flatten()
    }

    /// Runs `work` as part of this request.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

/// The middleware: enters the request's context around the rest of the chain.
pub async fn enter<E: Endpoint>(next: E, req: Request) -> poem::Result<E::Output> {
    let context = RequestContext {
        request_id: req.data::<RequestId>().map(|id| id.0.clone()),
        client: req.data::<ClientAddress>().map(|c| c.0),
    };
    context.scope(next.call(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_context_is_the_scope_s_and_absent_outside() {
        assert_eq!(RequestContext::current(), RequestContext::default());
        let context = RequestContext {
            request_id: Some("req_1".into()),
            client: Some("192.0.2.1".parse().unwrap()),
        };
        let seen = context
            .clone()
            .scope(async { RequestContext::current() })
            .await;
        assert_eq!(seen, context);
        assert_eq!(RequestContext::current_request_id(), None);
    }
}
