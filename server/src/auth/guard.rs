//! The guard: before a request reaches routing and body parsing, find its operation in the
//! spec-built [`RouteTable`], authenticate the credential its schemes allow, count it
//! against the rate limits of its family, check the required scope, and store the
//! [`Principal`] (and the matched rule) in the request. Every answer to an authenticated
//! request carries the rate limit headers and is counted in the key's usage. A method the
//! spec does not declare at a known path gets 405 with `Allow`.
//!
//! A request is counted before its scope is checked: a flood of refused requests spends the
//! budget like any other.

use std::{sync::Arc, time::Instant};

use poem::{
    http::{HeaderValue, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response,
};
use videovector_api_spec::ErrorCode;
use videovector_api_spec::{
    rules::OperationRule,
    security::{ClientAddress, Credential, API_KEY_SCHEME, BEARER_SCHEME, VERIFIED_BEARER_SCHEME},
    ApiError, Principal,
};

use super::{
    authenticator::{Authenticator, CredentialError},
    index_restriction,
    jwt::TokenError,
    route_table::RouteTable,
};
use crate::rate_limits::{
    limiter::{RateLimiter, Verdict},
    usage::UsageCounter,
};
use crate::{
    browser_origins,
    metrics::Metrics,
    request_context::{Access, Scheme},
};

/// The matched operation's rule, stored in request data for later layers.
#[derive(Clone)]
pub struct MatchedRule(pub OperationRule);

pub struct Guard {
    pub table: Arc<RouteTable>,
    pub authenticator: Arc<Authenticator>,
    pub limiter: Arc<RateLimiter>,
    pub usage: Arc<UsageCounter>,
    /// Counts each answer by operation, status and scheme, when metrics are on.
    pub metrics: Option<Arc<Metrics>>,
}

impl<E: Endpoint> Middleware<E> for Guard {
    type Output = GuardEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        GuardEndpoint {
            inner,
            table: self.table.clone(),
            authenticator: self.authenticator.clone(),
            limiter: self.limiter.clone(),
            usage: self.usage.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

pub struct GuardEndpoint<E> {
    inner: E,
    table: Arc<RouteTable>,
    authenticator: Arc<Authenticator>,
    limiter: Arc<RateLimiter>,
    usage: Arc<UsageCounter>,
    metrics: Option<Arc<Metrics>>,
}

impl<E: Endpoint> Endpoint for GuardEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let mut note = Note::default();
        let mut response = self.answer(req, &mut note).await?;
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let operation = note.operation.as_deref().unwrap_or("unmatched");
        if let Some(metrics) = &self.metrics {
            let refusal = response.data::<ErrorCode>().map(|code| code.as_str());
            metrics
                .requests
                .observe(operation, note.scheme, status, elapsed, refusal);
        }
        response.set_data(Access {
            operation: note.operation.take(),
            scheme: note.scheme,
            credential: note.credential.take(),
        });
        Ok(response)
    }
}

/// What the guard learned of a request, for its metrics and (as [`Access`] in the answer's
/// data) its access log line.
#[derive(Default)]
struct Note {
    operation: Option<String>,
    scheme: Scheme,
    /// The key's id, or the token's issuer and subject.
    credential: Option<String>,
}

impl<E: Endpoint> GuardEndpoint<E> {
    /// The answer; `note` learns the operation and the credential.
    async fn answer(&self, req: Request, note: &mut Note) -> poem::Result<Response> {
        // Every answer to another site's page is readable by it: the key's own pages are
        // held in `authenticate`, and the answers hold nothing the key did not give.
        let origin = browser_origins::cross_origin(req.headers()).map(str::to_string);
        let mut response = match &origin {
            Some(origin) if is_preflight(&req) => self.preflight(&req, origin),
            _ => self.respond(req, note).await?,
        };
        if let Some(origin) = &origin {
            browser_origins::allow(response.headers_mut(), origin);
        }
        Ok(response)
    }
}

/// `path` below the API's base path (as the route table and the spec name it).
fn below_base(path: &str) -> &str {
    path.strip_prefix(videovector_api_spec::spec::BASE_PATH)
        .unwrap_or(path)
}

/// A CORS preflight: `OPTIONS` asking which method and headers another site's page may send.
fn is_preflight(req: &Request) -> bool {
    req.method() == poem::http::Method::OPTIONS
        && req.headers().contains_key("access-control-request-method")
}

impl<E: Endpoint> GuardEndpoint<E> {
    /// The answer to a preflight at a path the API serves: any page may ask (a preflight
    /// carries no credential, so no key's list can be read); the request that follows is
    /// held to its key's `allowed_origins`.
    fn preflight(&self, req: &Request, origin: &str) -> Response {
        let path = below_base(req.uri().path());
        let methods = self.table.allowed_methods(path);
        if methods.is_empty() {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("no operation lives at {}", req.original_uri().path()),
            )
            .into_problem_response();
        }
        let methods = methods
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut response = Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header("access-control-allow-methods", methods)
            .header(
                "access-control-allow-headers",
                browser_origins::ALLOW_HEADERS,
            )
            .header("access-control-max-age", browser_origins::MAX_AGE_SECONDS)
            .finish();
        browser_origins::allow(response.headers_mut(), origin);
        response
    }

    async fn respond(&self, mut req: Request, note: &mut Note) -> poem::Result<Response> {
        let path = below_base(req.uri().path());
        let Some(rule) = self.table.find(req.method(), path).cloned() else {
            let allowed = self.table.allowed_methods(path);
            if allowed.is_empty() {
                // Every path under the base path is an operation of the spec, so a path the
                // table does not know is a 404 here, before the router: poem's router may
                // still match it (`/api-keys//revoke`, an empty id), and the operation's
                // credential extractor would then answer 401 for a request the guard never
                // authenticated.
                return Ok(ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    format!("no operation lives at {}", req.original_uri().path()),
                )
                .into_problem_response());
            }
            // RFC 9110 §15.5.6: a 405 lists the methods the path takes.
            let allow = allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Ok(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                format!("{} is not accepted here; use {allow}", req.method()),
            )
            .with_header("Allow", allow)
            .into_problem_response());
        };
        note.operation = Some(rule.operation_id.clone());
        if rule.schemes.is_empty() {
            req.set_data(MatchedRule(rule));
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let principal = match authenticate(&self.authenticator, &req, &rule).await {
            Ok(principal) => principal,
            Err(error) => return Ok(error.into_problem_response()),
        };
        note.scheme = Scheme::of(&principal);
        note.credential = Some(match &principal.credential {
            Credential::ApiKey { key_id } => key_id.clone(),
            Credential::Jwt { issuer, subject } => format!("{issuer}|{subject}"),
        });
        let Some(family) = rule.family else {
            return self.call_inner(req, principal, rule).await;
        };
        let client = req.data::<ClientAddress>().map(|c| c.0);
        let verdict = match self.limiter.check(&principal, family, client).await {
            Ok(verdict) => verdict,
            Err(error) => return Ok(error.into_problem_response()),
        };
        if let Some(metrics) = &self.metrics {
            let allowed = verdict.as_ref().is_none_or(|v| v.allowed);
            metrics.requests.rate_limit(family, allowed);
        }
        let counted = self.usage.counts(&principal);
        let response = match verdict {
            Some(refused) if !refused.allowed => refused.refusal().into_problem_response(),
            verdict => {
                let mut response = self.call_inner(req, principal, rule).await?;
                for (name, value) in verdict.into_iter().flat_map(Verdict::headers) {
                    if let Ok(value) = HeaderValue::try_from(value) {
                        response.headers_mut().insert(name, value);
                    }
                }
                response
            }
        };
        if let Some(counted) = counted {
            self.usage
                .record(counted, family, response.status(), chrono::Utc::now());
        }
        Ok(response)
    }

    /// Checks the scope and hands the request on with its principal.
    async fn call_inner(
        &self,
        mut req: Request,
        principal: Principal,
        rule: OperationRule,
    ) -> poem::Result<Response> {
        if let Err(error) = check_scope(&principal, &rule) {
            return Ok(error.into_problem_response());
        }
        let path = below_base(req.uri().path());
        if let Err(error) = index_restriction::check(&principal, &rule, path) {
            return Ok(error.into_problem_response());
        }
        req.set_data(principal);
        req.set_data(MatchedRule(rule));
        Ok(match self.inner.call(req).await {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        })
    }
}

const REALM: &str = "realm=\"videovector\"";

/// Authenticates a request that is not an operation of the spec (`/mcp`) as the operations
/// that accept an API key or a bearer token do, with no scope required: scopes are then
/// enforced per operation.
pub async fn authenticate_caller(
    authenticator: &Authenticator,
    req: &Request,
) -> Result<Principal, ApiError> {
    let rule = OperationRule {
        operation_id: "mcp".into(),
        method: req.method().as_str().into(),
        path: "/mcp".into(),
        schemes: vec![API_KEY_SCHEME.into(), BEARER_SCHEME.into()],
        required_scope: None,
        idempotent: false,
        family: None,
        index_access: None,
        signed_body: false,
    };
    authenticate(authenticator, req, &rule).await
}

fn unauthorized(code: ErrorCode, detail: &str, challenge: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, detail).with_header("WWW-Authenticate", challenge)
}

async fn authenticate(
    authenticator: &Authenticator,
    req: &Request,
    rule: &OperationRule,
) -> Result<Principal, ApiError> {
    let accepts = |scheme: &str| rule.schemes.iter().any(|s| s == scheme);
    let accepts_key = accepts(API_KEY_SCHEME);
    let needs_verified = accepts(VERIFIED_BEARER_SCHEME);
    let api_key = req
        .headers()
        .get("x-api-key")
        .map(|v| v.to_str().unwrap_or(""));
    let authorization = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap_or(""));
    let client = req.data::<ClientAddress>().map(|c| c.0);
    let origin = browser_origins::cross_origin(req.headers());
    let challenge = if accepts_key {
        format!("ApiKey {REALM}, Bearer {REALM}")
    } else {
        format!("Bearer {REALM}")
    };

    let principal = match (api_key, authorization) {
        (Some(_), Some(_)) if accepts_key => {
            return Err(unauthorized(
                ErrorCode::AmbiguousCredentials,
                "send either X-API-Key or Authorization, not both",
                challenge,
            ))
        }
        (Some(secret), _) if accepts_key => {
            match authenticator.api_key(secret, client, origin).await {
                Ok(p) => p,
                Err(CredentialError::Unavailable) => return Err(unavailable()),
                Err(CredentialError::InvalidTenantToken(why)) => {
                    return Err(unauthorized(
                        ErrorCode::InvalidTenantToken,
                        &why.to_string(),
                        format!("ApiKey {REALM}, error=\"invalid_token\""),
                    ))
                }
                Err(CredentialError::OriginNotAllowed) => {
                    return Err(ApiError::forbidden(
                        ErrorCode::OriginNotAllowed,
                        format!(
                            "this API key may not be used from the web page at {} (add the \
                         origin to the key's `allowed_origins`, or mint a tenant token from a \
                         key that lists it)",
                            origin.unwrap_or_default()
                        ),
                    ))
                }
                Err(CredentialError::AddressNotAllowed) => {
                    return Err(ApiError::forbidden(
                        ErrorCode::AddressNotAllowed,
                        "this API key may not be used from your address (see its `allowed_cidrs`)",
                    ))
                }
                Err(refused) => {
                    let (code, detail) = match refused {
                        CredentialError::MalformedKey => (
                            ErrorCode::MalformedApiKey,
                            "this is not an API key this API issues (its checksum does not \
                             match): check it was copied whole"
                                .to_string(),
                        ),
                        CredentialError::RevokedKey => (
                            ErrorCode::ApiKeyRevoked,
                            "the API key was revoked: create or rotate a key".to_string(),
                        ),
                        CredentialError::ExpiredKey(at) => (
                            ErrorCode::ApiKeyExpired,
                            format!(
                                "the API key expired at {}: create a new key",
                                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                            ),
                        ),
                        _ => (
                            ErrorCode::InvalidApiKey,
                            "the API key is unknown or was deleted".to_string(),
                        ),
                    };
                    return Err(unauthorized(
                        code,
                        &detail,
                        format!("ApiKey {REALM}, error=\"invalid_key\""),
                    ));
                }
            }
        }
        (Some(_), None) => {
            return Err(unauthorized(
                ErrorCode::BearerRequired,
                "this operation requires a JWT bearer token (Authorization: Bearer <jwt>); \
                 API keys cannot be used here",
                challenge,
            ))
        }
        (_, Some(header)) => {
            let token = bearer_token(header).ok_or_else(|| {
                unauthorized(
                    ErrorCode::InvalidToken,
                    "the Authorization header must be `Bearer <jwt>`",
                    format!("Bearer {REALM}, error=\"invalid_request\""),
                )
            })?;
            match authenticator.bearer(token).await {
                Ok(p) => p,
                Err(CredentialError::Unavailable) => return Err(unavailable()),
                Err(CredentialError::InvalidToken(TokenError::Expired)) => {
                    return Err(unauthorized(
                        ErrorCode::TokenExpired,
                        "the bearer token expired: get a new one from POST /api/v2/auth/token",
                        format!(
                            "Bearer {REALM}, error=\"invalid_token\", \
                             error_description=\"the token expired\""
                        ),
                    ))
                }
                Err(_) => {
                    return Err(unauthorized(
                        ErrorCode::InvalidToken,
                        "the bearer token is malformed, invalid or not trusted",
                        format!("Bearer {REALM}, error=\"invalid_token\""),
                    ))
                }
            }
        }
        (None, None) => {
            let detail = if accepts_key {
                "send an API key (X-API-Key) or a JWT bearer token (Authorization: Bearer <jwt>)"
            } else {
                "send a JWT bearer token (Authorization: Bearer <jwt>)"
            };
            return Err(unauthorized(ErrorCode::Unauthenticated, detail, challenge));
        }
    };

    if needs_verified && !principal.verified {
        return Err(unauthorized(
            ErrorCode::InsufficientUserAuthentication,
            "this operation requires a verified session",
            format!(
                "Bearer {REALM}, error=\"insufficient_user_authentication\", \
                 error_description=\"a verified session is required\""
            ),
        ));
    }
    if !accepts(BEARER_SCHEME) && !needs_verified && !accepts_key {
        return Err(ApiError::internal());
    }
    Ok(principal)
}

/// 403 `insufficient_scope` unless `principal` holds the rule's scope.
fn check_scope(principal: &Principal, rule: &OperationRule) -> Result<(), ApiError> {
    if let Some(required) = rule.required_scope {
        if !principal.holds(required) {
            let mut error = ApiError::forbidden(
                ErrorCode::InsufficientScope,
                format!("this operation requires the `{required}` scope"),
            )
            .with_header(
                "WWW-Authenticate",
                format!("Bearer {REALM}, error=\"insufficient_scope\", scope=\"{required}\""),
            );
            error.problem.required_scope = Some(required);
            return Err(error);
        }
    }
    Ok(())
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unavailable() -> ApiError {
    ApiError::unavailable("credentials cannot be checked right now; retry shortly")
}
