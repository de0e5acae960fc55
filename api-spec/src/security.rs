//! The three security schemes and the typed arguments that carry an authenticated principal
//! into handlers.
//!
//! Authentication itself happens before routing reaches a handler: the server's guard looks
//! the matched operation up in a table built from the committed spec, checks the credential
//! and its scope, and stores a [`Principal`] in the request. These extractors only declare
//! which schemes an operation accepts (so the spec says it) and hand the principal over.

use poem::{http::StatusCode, Request, RequestBody};
use poem_openapi::{
    registry::{MetaSecurityScheme, Registry},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

use crate::{
    problem::{ApiError, ErrorCode},
    scopes::Scope,
};

/// Scheme name of `X-API-Key: sk_live_...`.
pub const API_KEY_SCHEME: &str = "ApiKey";
/// Scheme name of `Authorization: Bearer <jwt>`.
pub const BEARER_SCHEME: &str = "Bearer";
/// Scheme name of a bearer JWT whose session is verified.
pub const VERIFIED_BEARER_SCHEME: &str = "VerifiedBearer";
/// The API key header.
pub const API_KEY_HEADER: &str = "X-API-Key";

/// The client's address as the server established it (the peer, or the address a trusted
/// proxy forwarded for), in the request's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub std::net::IpAddr);

/// The request's id (`X-Request-Id`), in the request's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A request's body exactly as received, kept in the request's data for an operation that
/// checks a signature over it (`x-signed-body`); its handler parses the same bytes.
#[derive(Debug, Clone)]
pub struct RawBody(pub bytes::Bytes);

/// Who is calling, as established by the server's guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The organisation every resource of this request belongs to.
    pub org_id: String,
    /// The credential that authenticated the request.
    pub credential: Credential,
    /// The scopes the credential holds, as granted.
    pub scopes: Vec<Scope>,
    /// Whether the session is verified (always `false` for API keys).
    pub verified: bool,
    /// The credential's own rate limits (an API key's); a family none of them names is held
    /// to the organisation's.
    pub rate_limits: std::sync::Arc<[crate::dto::rate_limits::RateLimit]>,
    /// The indexes the credential may touch (an API key's `index_ids`); empty: every index
    /// of the organisation.
    pub index_ids: std::sync::Arc<[String]>,
    /// The most hits one request may ask for (an API key's `max_top_k`).
    pub max_top_k: Option<u32>,
    /// Limits counted per client address rather than for the whole credential (a key's
    /// `client_rate_limits`).
    pub client_rate_limits: std::sync::Arc<[crate::dto::rate_limits::RateLimit]>,
    /// Filters every search of the request is held to (a tenant token's).
    pub forced_filters: Option<std::sync::Arc<ForcedFilters>>,
}

/// What a tenant token lets its holder see, whatever the request's own filters ask for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForcedFilters {
    /// Only these media (empty: any).
    pub media_ids: Vec<String>,
    /// Only segments carrying every one of these labels.
    pub labels: Vec<String>,
}

/// The kind of credential behind a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    ApiKey { key_id: String },
    Jwt { issuer: String, subject: String },
}

impl Principal {
    /// The highest scope held; `None` when the credential holds no public scope.
    pub fn highest_scope(&self) -> Option<Scope> {
        Scope::highest(self.scopes.iter().copied())
    }

    /// Whether the principal satisfies a requirement of `required`.
    pub fn holds(&self, required: Scope) -> bool {
        self.highest_scope().is_some_and(|s| s.satisfies(required))
    }

    /// Whether the credential may touch the index `index_id`.
    pub fn may_touch_index(&self, index_id: &str) -> bool {
        self.index_ids.is_empty() || self.index_ids.iter().any(|id| id == index_id)
    }

    /// The indexes the credential is restricted to; `None` when it may touch every one.
    pub fn index_restriction(&self) -> Option<&[String]> {
        (!self.index_ids.is_empty()).then_some(&*self.index_ids)
    }

    /// The number of hits a request asks for at `pointer`: `asked`, else `default` within
    /// the credential's `max_top_k`; a 422 when `asked` is past it.
    pub fn hits_wanted(
        &self,
        asked: Option<u32>,
        default: u32,
        pointer: &str,
    ) -> Result<u32, ApiError> {
        match (asked, self.max_top_k) {
            (Some(asked), Some(cap)) if asked > cap => Err(ApiError::validation(vec![
                crate::problem::FieldError::body(
                    pointer,
                    format!("at most {cap} for this key (its `max_top_k`)"),
                ),
            ])),
            (Some(asked), _) => Ok(asked),
            (None, Some(cap)) => Ok(default.min(cap)),
            (None, None) => Ok(default),
        }
    }

    /// A stable name for the credential's owner (idempotency records are scoped by it).
    pub fn owner(&self) -> String {
        match &self.credential {
            Credential::ApiKey { key_id } => format!("key:{key_id}"),
            Credential::Jwt { issuer, subject } => format!("jwt:{issuer}|{subject}"),
        }
    }
}

fn register_api_key(registry: &mut Registry) {
    registry.create_security_scheme(
        API_KEY_SCHEME,
        MetaSecurityScheme {
            ty: "apiKey",
            description: Some(
                "An API key (`sk_live_...` or `sk_test_...`), sent as `X-API-Key`. Preferred for \
                 programmatic clients. API keys cannot manage API keys. A tenant token (a JWT \
                 minted offline from a key's secret, narrowed to some indexes and forced \
                 filters) is sent the same way; it holds only the `search` scope.",
            ),
            name: Some(API_KEY_HEADER),
            key_in: Some("header"),
            scheme: None,
            bearer_format: None,
            flows: None,
            openid_connect_url: None,
        },
    );
}

fn register_bearer(registry: &mut Registry) {
    registry.create_security_scheme(
        BEARER_SCHEME,
        MetaSecurityScheme {
            ty: "http",
            description: Some(
                "A JWT sent as `Authorization: Bearer <jwt>`, from `POST /api/v2/auth/token` or \
                 a configured identity provider. Scopes come from its `scope` or `scopes` claim.",
            ),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        },
    );
}

fn register_verified_bearer(registry: &mut Registry) {
    registry.create_security_scheme(
        VERIFIED_BEARER_SCHEME,
        MetaSecurityScheme {
            ty: "http",
            description: Some(
                "A JWT bearer token of a verified session: its `email_verified` claim (the claim \
                 name is configurable) must be `true`. Otherwise the answer is 401 with \
                 `WWW-Authenticate: Bearer error=\"insufficient_user_authentication\"`.",
            ),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        },
    );
}

/// The principal the guard stored, or a 401 if the guard did not run (a wiring bug, never a
/// client's fault, but still answered without a panic).
fn principal_of(request: &Request) -> poem::Result<Principal> {
    request.data::<Principal>().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "this operation requires credentials",
        )
        .into()
    })
}

macro_rules! security_extractor {
    ($(#[$doc:meta])* $name:ident, [$($scheme:expr),+], [$($register:ident),+]) => {
        $(#[$doc])*
        pub struct $name(pub Principal);

        impl<'a> ApiExtractor<'a> for $name {
            const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
            type ParamType = ();
            type ParamRawType = ();

            fn register(registry: &mut Registry) {
                $($register(registry);)+
            }

            fn security_schemes() -> Vec<&'static str> {
                vec![$($scheme),+]
            }

            async fn from_request(
                request: &'a Request,
                _body: &mut RequestBody,
                _param_opts: ExtractParamOptions<Self::ParamType>,
            ) -> poem::Result<Self> {
                principal_of(request).map($name)
            }
        }
    };
}

security_extractor!(
    /// Workflow operations: an API key or a JWT bearer token.
    ApiKeyOrBearer,
    [API_KEY_SCHEME, BEARER_SCHEME],
    [register_api_key, register_bearer]
);
security_extractor!(
    /// API key management: a JWT bearer token only.
    BearerOnly,
    [BEARER_SCHEME],
    [register_bearer]
);
security_extractor!(
    /// `/mcp/config`: a JWT bearer token of a verified session only.
    VerifiedBearerOnly,
    [VERIFIED_BEARER_SCHEME],
    [register_verified_bearer]
);
