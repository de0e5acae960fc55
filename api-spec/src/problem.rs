//! RFC 9457 problem details: the one error schema of every operation, the error type the
//! services return, and the per-operation sets of error statuses the spec documents.

use std::marker::PhantomData;

use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
    ApiResponse, Enum, Object,
};

use crate::scopes::Scope;

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem. `code` is stable and machine-readable; `detail` is for people.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct Problem {
    /// A URI naming the problem type (`urn:videovector:problem:<code>`).
    #[oai(rename = "type")]
    pub problem_type: String,
    /// A short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// A human-readable explanation of this occurrence.
    pub detail: String,
    /// A stable, machine-readable error code.
    pub code: ErrorCode,
    /// The scope the operation requires (only on `insufficient_scope`).
    #[oai(skip_serializing_if_is_none)]
    pub required_scope: Option<Scope>,
    /// Field-level validation errors.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
    /// The request's id, as in its `X-Request-Id`: quote it when asking for help.
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
}

/// One invalid value of a request.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct FieldError {
    /// Which part of the request holds the value.
    pub location: FieldLocation,
    /// An RFC 6901 JSON pointer to the value: into the body (`/segments/3/end_seconds`), or
    /// to a parameter by name (`/limit`).
    pub pointer: String,
    /// What is wrong with it.
    pub message: String,
}

/// The part of a request a [`FieldError`] points into.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum FieldLocation {
    Body,
    Path,
    Query,
    Header,
}

impl FieldError {
    /// An error at `pointer` in `location`.
    pub fn at(
        location: FieldLocation,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            location,
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// An error at `pointer` in the request body.
    pub fn body(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::at(FieldLocation::Body, pointer, message)
    }
}

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal => $status:literal,)+) => {
        /// Every stable `code` a problem can carry; clients may match on it.
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ #[oai(rename = $name)] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code as it appears in a problem.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            /// The HTTP status a problem with this code is sent with (the test harness
            /// holds every answer it sees to it).
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)+
                }
            }

            /// What the code means: its doc comment, for the errors guide.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => concat!($($doc),+).trim_ascii(),)+
                }
            }
        }
    };
}

error_codes! {
    /// The request is malformed (not JSON, or an unreadable body).
    BadRequest = "bad_request" => 400,
    /// A body or parameter breaks the spec; `errors[]` names each value.
    ValidationFailed = "validation_failed" => 422,
    /// No credential was sent.
    Unauthenticated = "unauthenticated" => 401,
    /// Both `X-API-Key` and `Authorization` were sent.
    AmbiguousCredentials = "ambiguous_credentials" => 401,
    /// The API key is unknown, was deleted, or is a rotated key's old secret past its grace
    /// period.
    InvalidApiKey = "invalid_api_key" => 401,
    /// The value is not an API key this API could have issued: its prefix, length or
    /// checksum is wrong (mistyped, or cut short when copied).
    MalformedApiKey = "malformed_api_key" => 401,
    /// The API key was revoked: create or rotate a key.
    ApiKeyRevoked = "api_key_revoked" => 401,
    /// The API key expired (`detail` says when): create a key, or give the next one a longer
    /// `expires_in_days`.
    ApiKeyExpired = "api_key_expired" => 401,
    /// The bearer token is malformed, invalid or not trusted.
    InvalidToken = "invalid_token" => 401,
    /// The bearer token expired (60 seconds of clock skew are allowed): get a new one from
    /// `POST /auth/token`.
    TokenExpired = "token_expired" => 401,
    /// The tenant token is malformed, forged or expired, asks for more than its key holds,
    /// or its key is revoked, expired or deleted; `detail` says which where it may.
    InvalidTenantToken = "invalid_tenant_token" => 401,
    /// The operation takes a JWT bearer token, not an API key.
    BearerRequired = "bearer_required" => 401,
    /// The operation needs a verified session.
    InsufficientUserAuthentication = "insufficient_user_authentication" => 401,
    /// Email and password do not match an operator.
    InvalidCredentials = "invalid_credentials" => 401,
    /// Too many failed logins; retry after `Retry-After` seconds.
    TooManyAttempts = "too_many_attempts" => 429,
    /// The credential has spent a rate limit of the operation's family; retry after
    /// `Retry-After` seconds (`RateLimit` names the limit).
    RateLimited = "rate_limited" => 429,
    /// The credential lacks the scope in `required_scope`.
    InsufficientScope = "insufficient_scope" => 403,
    /// The API key may not be used from the client's address (its `allowed_cidrs`).
    AddressNotAllowed = "address_not_allowed" => 403,
    /// A signed report's signature does not verify under the reporter key it names.
    InvalidSignature = "invalid_signature" => 401,
    /// The API key may not be used from the web page that sent the request (its
    /// `allowed_origins`).
    OriginNotAllowed = "origin_not_allowed" => 403,
    /// The API key may not touch this index, or any organisation-wide resource (its
    /// `index_ids`).
    IndexNotAllowed = "index_not_allowed" => 403,
    /// The credential may not grant scopes it does not hold itself.
    ScopeEscalation = "scope_escalation" => 403,
    /// The operator's role does not allow the scopes asked for.
    ScopeNotAllowed = "scope_not_allowed" => 422,
    /// The resource does not exist in this organisation (or the path names nothing).
    NotFound = "not_found" => 404,
    /// The path does not take this method; `Allow` lists those it takes.
    MethodNotAllowed = "method_not_allowed" => 405,
    /// The body is larger than the server accepts.
    PayloadTooLarge = "payload_too_large" => 413,
    /// The body's `Content-Type` is not the declared one.
    UnsupportedMediaType = "unsupported_media_type" => 415,
    /// An index with this id already exists.
    IndexExists = "index_exists" => 409,
    /// The index's embedder is already being changed; wait for `reembedding` to finish.
    ReembeddingInProgress = "reembedding_in_progress" => 409,
    /// A prompt with this name already exists.
    PromptExists = "prompt_exists" => 409,
    /// The key is revoked, so it cannot be rotated.
    KeyRevoked = "key_revoked" => 409,
    /// The key has expired, so it cannot be rotated.
    KeyExpired = "key_expired" => 409,
    /// The resource's state does not allow this (cancel a finished run, retry a running job).
    InvalidTransition = "invalid_transition" => 409,
    /// The `Idempotency-Key` was used with another body.
    IdempotencyKeyReused = "idempotency_key_reused" => 422,
    /// A request with this `Idempotency-Key` is still in flight; retry after `Retry-After`.
    IdempotencyRequestInFlight = "idempotency_request_in_flight" => 409,
    /// The list `cursor` is not one this server issued.
    InvalidCursor = "invalid_cursor" => 400,
    /// The search page token is not one this server issued for this organisation.
    InvalidPageToken = "invalid_page_token" => 400,
    /// The search page token has expired.
    PageTokenExpired = "page_token_expired" => 400,
    /// A segment is inconsistent (ends before it starts), or its `vector` does not fit its
    /// index's embedder.
    InvalidSegments = "invalid_segments" => 422,
    /// The search asks for meaning (`semantic`, `hybrid`, a `vector`) of an index without
    /// the embedder it needs.
    NoEmbedder = "no_embedder" => 422,
    /// The embedder settings contradict themselves (`dimensions` for the built-in model,
    /// none for user-provided vectors).
    InvalidEmbedder = "invalid_embedder" => 422,
    /// A search's `vector` does not fit the index's embedder (missing, where none belongs,
    /// of other dimensions, all zeros or not finite).
    InvalidVector = "invalid_vector" => 422,
    /// The index's `rest` embedder failed (no answer in time, an error status after the
    /// retries, or vectors that do not fit): nothing was stored or searched.
    EmbedderFailed = "embedder_failed" => 502,
    /// A template refers to variables it does not declare, or is otherwise unusable.
    InvalidTemplate = "invalid_template" => 422,
    /// A run's variable is not declared by its prompt.
    UndeclaredVariable = "undeclared_variable" => 422,
    /// A run lacks a variable its prompt declares.
    MissingVariable = "missing_variable" => 422,
    /// A run's variable value cannot be used.
    InvalidVariable = "invalid_variable" => 422,
    /// A URL cannot be used (not http(s), or a private address this server may not reach).
    InvalidUrl = "invalid_url" => 422,
    /// Connector headers cannot be sent as HTTP headers.
    InvalidHeaders = "invalid_headers" => 422,
    /// A connector file's caption format cannot be told from its URL.
    UnknownFormat = "unknown_format" => 422,
    /// A connector file names an index that does not exist.
    UnknownIndex = "unknown_index" => 422,
    /// The conversation has no user message to answer.
    NoUserMessage = "no_user_message" => 422,
    /// The server failed; the cause is logged, not returned.
    InternalError = "internal_error" => 500,
    /// A dependency is unavailable; retry after `Retry-After` seconds.
    Unavailable = "unavailable" => 503,
    /// This instance is not ready to serve (`readiness_view`); `detail` names each check
    /// that failed.
    NotReady = "not_ready" => 503,
}

/// An error an operation answers with: a problem plus the headers that go with it.
impl ErrorCode {
    /// An example body of a problem with this code, for the errors guide: its status and
    /// title, its meaning as the `detail`, a request id, and the members the code brings
    /// (`required_scope`, `errors`).
    pub fn example(self) -> serde_json::Value {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let detail = self.meaning().replace('\n', " ");
        let mut error = ApiError::new(status, self, detail);
        match self {
            ErrorCode::InsufficientScope => error.problem.required_scope = Some(Scope::Write),
            ErrorCode::ValidationFailed | ErrorCode::InvalidSegments => {
                error = error.with_field_errors(vec![FieldError::body(
                    "/segments/0/end_seconds",
                    "must not be less than start_seconds",
                )])
            }
            _ => {}
        }
        error.problem.request_id = Some("req_01m8wh6jxhsyee3bcnp9kfhh6m".into());
        error.problem.to_json().unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub problem: Box<Problem>,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            problem: Box::new(Problem {
                problem_type: format!("urn:videovector:problem:{}", code.as_str()),
                title: status.canonical_reason().unwrap_or("Error").to_string(),
                status: status.as_u16(),
                detail: detail.into(),
                code,
                required_scope: None,
                errors: None,
                request_id: None,
            }),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_field_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.problem.errors = Some(errors);
        self
    }

    /// A 422 `validation_failed` naming each invalid value.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("`{}` {}", one.pointer, one.message),
            many if many.len() >= crate::schema_check::MAX_VIOLATIONS => format!(
                "{} or more values are invalid; `errors` lists the first {}",
                many.len(),
                many.len()
            ),
            many => format!("{} values are invalid; see `errors`", many.len()),
        };
        Self::unprocessable(ErrorCode::ValidationFailed, detail).with_field_errors(errors)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn bad_request(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("{what} `{id}` does not exist"),
        )
    }

    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unprocessable(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn forbidden(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// A 503 `unavailable`: a dependency (credentials, storage) cannot be reached now; the
    /// client retries after `Retry-After` seconds.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            detail,
        )
        .with_header("Retry-After", "1")
    }

    /// A 500 whose cause has already been logged; the body says nothing about it.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "the server failed to handle this request; it has been logged",
        )
    }

    pub fn into_problem_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.problem.to_json()).unwrap_or_default();
        let mut builder = Response::builder()
            .status(status)
            .content_type(PROBLEM_CONTENT_TYPE);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder.body(body);
        // For the layers outside (metrics count refusals by code) without reading the body.
        response.set_data(self.problem.code);
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.problem.status,
            self.problem.code.as_str(),
            self.problem.detail
        )
    }
}

impl std::error::Error for ApiError {}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        self.clone().into_problem_response()
    }
}

/// The error statuses an operation documents. Every one carries the `Problem` schema.
pub trait ProblemSet: Send + Sync + 'static {
    const STATUSES: &'static [(u16, &'static str)];
}

macro_rules! problem_set {
    ($(#[$doc:meta])* $name:ident: $($code:literal => $desc:literal),+ $(,)?) => {
        $(#[$doc])*
        pub struct $name;
        impl ProblemSet for $name {
            const STATUSES: &'static [(u16, &'static str)] = &[$(($code, $desc)),+];
        }
    };
}

problem_set!(
    /// Errors of the readiness check.
    ReadinessErrors:
    503 => "Not ready (`not_ready`): `detail` names each check that failed; retry after `Retry-After` seconds.",
);
problem_set!(
    /// Errors of a public operation that takes a body (`token_create`).
    PublicBodyErrors:
    400 => "The body is not JSON.",
    401 => "The credentials were rejected.",
    413 => "The body is too large.",
    415 => "The body is not `application/json`.",
    422 => "A value breaks the schema (`errors[]` names each one), or the request is otherwise invalid.",
    429 => "Too many attempts; retry after `Retry-After` seconds.",
);
problem_set!(
    /// Errors of a public operation whose body is signed by its sender (`leaked_key_report`).
    SignedBodyErrors:
    400 => "The body is not JSON.",
    401 => "The signature does not verify, or names a key no reporter is configured with (`invalid_signature`).",
    413 => "The body is too large.",
    415 => "The body is not `application/json`.",
    422 => "A value breaks the schema (`errors[]` names each one).",
);
problem_set!(
    /// Errors of an authenticated read of one resource.
    ViewErrors:
    400 => "The request is malformed (an unreadable page token).",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope.",
    404 => "The resource does not exist in this organisation.",
    422 => "A parameter breaks the schema (`errors[]` names each one).",
);
problem_set!(
    /// Errors of an authenticated read that takes a body (search, chat).
    QueryErrors:
    400 => "The body is not JSON, or a page token is unreadable.",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope.",
    404 => "An index does not exist in this organisation.",
    413 => "The body is too large.",
    415 => "The body is not `application/json`.",
    422 => "A value breaks the schema (`errors[]` names each one), or the request is otherwise invalid.",
    502 => "The index's `rest` embedder failed (`embedder_failed`); retry later.",
);
problem_set!(
    /// Errors of the next page of a search (it embeds the query again).
    SearchPageErrors:
    400 => "The page token is unreadable or has expired.",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope.",
    404 => "An index of the search no longer exists in this organisation.",
    422 => "A parameter breaks the schema (`errors[]` names each one).",
    502 => "The index's `rest` embedder failed (`embedder_failed`); retry later.",
);
problem_set!(
    /// Errors of an authenticated list.
    ListErrors:
    400 => "The `cursor` is not one this server issued.",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope.",
    422 => "A parameter breaks the schema (`limit` out of range; `errors[]` names each one).",
);
problem_set!(
    /// Errors of an authenticated write (create, update, execute, cancel, retry).
    WriteErrors:
    400 => "The body is not JSON.",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope, or may not grant what it asks for.",
    404 => "The resource does not exist in this organisation.",
    409 => "Conflicts with the resource's state, or a request with this `Idempotency-Key` is still in flight.",
    413 => "The body is too large.",
    415 => "The body is not `application/json`.",
    422 => "A value breaks the schema (`errors[]` names each one), the request is otherwise invalid, or it reuses an `Idempotency-Key` with a different body.",
);
problem_set!(
    /// Errors of segment ingestion: a write that may call the index's embedder.
    IngestErrors:
    400 => "The body is not JSON.",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope.",
    404 => "The index does not exist in this organisation.",
    409 => "A request with this `Idempotency-Key` is still in flight.",
    413 => "The body is too large.",
    415 => "The body is not `application/json`.",
    422 => "A value breaks the schema (`errors[]` names each one), a segment is invalid, or the request reuses an `Idempotency-Key` with a different body.",
    502 => "The index's `rest` embedder failed (`embedder_failed`): nothing was stored; retry later.",
);
problem_set!(
    /// Errors of an authenticated delete.
    DeleteErrors:
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope.",
    404 => "The resource does not exist in this organisation.",
    422 => "A parameter breaks the schema (`errors[]` names each one).",
);
problem_set!(
    /// Errors of a read that needs a verified session.
    VerifiedViewErrors:
    401 => "Missing or invalid credentials, or the session is not verified (`insufficient_user_authentication`).",
);

/// Statuses any operation may answer, whatever its set.
const COMMON_STATUSES: &[(u16, &str)] = &[
    (500, "The server failed; the cause is logged, not returned."),
    (
        503,
        "Credentials or storage cannot be reached right now; retry after `Retry-After` seconds.",
    ),
];

/// The error half of an operation's result: an [`ApiError`] documented as the statuses of `S`.
pub struct Problems<S: ProblemSet> {
    pub error: ApiError,
    _set: PhantomData<S>,
}

impl<S: ProblemSet> From<ApiError> for Problems<S> {
    fn from(error: ApiError) -> Self {
        Problems {
            error,
            _set: PhantomData,
        }
    }
}

impl<S: ProblemSet> From<Problems<S>> for poem::Error {
    fn from(p: Problems<S>) -> Self {
        poem::Error::from(p.error)
    }
}

impl<S: ProblemSet> IntoResponse for Problems<S> {
    fn into_response(self) -> Response {
        self.error.into_problem_response()
    }
}

impl<S: ProblemSet> ApiResponse for Problems<S> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: S::STATUSES
                .iter()
                .chain(COMMON_STATUSES)
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_CONTENT_TYPE,
                        schema: Problem::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}
