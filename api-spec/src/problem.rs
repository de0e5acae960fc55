//! RFC 9457 problem details: the one error schema of every operation, the error type the
//! services return, and the per-operation sets of error statuses the spec documents.

use std::marker::PhantomData;

use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
    ApiResponse, Object,
};

use crate::scopes::Scope;

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem. `code` is stable and machine-readable; `detail` is for people.
#[derive(Object, Debug, Clone, PartialEq)]
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
    pub code: String,
    /// The scope the operation requires (only on `insufficient_scope`).
    #[oai(skip_serializing_if_is_none)]
    pub required_scope: Option<Scope>,
    /// Field-level validation errors.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
}

/// One invalid field of a request.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Where the field is, e.g. `segments[3].end_seconds`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An error an operation answers with: a problem plus the headers that go with it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub problem: Box<Problem>,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        ApiError {
            problem: Box::new(Problem {
                problem_type: format!("urn:videovector:problem:{code}"),
                title: status.canonical_reason().unwrap_or("Error").to_string(),
                status: status.as_u16(),
                detail: detail.into(),
                code: code.to_string(),
                required_scope: None,
                errors: None,
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

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} `{id}` does not exist"),
        )
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn forbidden(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// A 500 whose cause has already been logged; the body says nothing about it.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
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
        builder.body(body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.problem.status, self.problem.code, self.problem.detail
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
    /// Errors of a public operation that takes a body (`token_create`).
    PublicBodyErrors:
    400 => "The request is malformed.",
    401 => "The credentials were rejected.",
    422 => "The request is well-formed but invalid.",
    429 => "Too many attempts; retry after `Retry-After` seconds.",
);
problem_set!(
    /// Errors of an authenticated read of one resource.
    ViewErrors:
    400 => "The request is malformed.",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope.",
    404 => "The resource does not exist in this organisation.",
);
problem_set!(
    /// Errors of an authenticated list.
    ListErrors:
    400 => "The request is malformed (bad `limit` or `cursor`).",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope.",
);
problem_set!(
    /// Errors of an authenticated write (create, update, execute, cancel, retry).
    WriteErrors:
    400 => "The request is malformed.",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope, or may not grant what it asks for.",
    404 => "The resource does not exist in this organisation.",
    409 => "Conflicts with the resource's state, or a request with this `Idempotency-Key` is still in flight.",
    422 => "The request is invalid, or reuses an `Idempotency-Key` with a different body.",
);
problem_set!(
    /// Errors of an authenticated delete.
    DeleteErrors:
    400 => "The request is malformed.",
    401 => "Missing or invalid credentials.",
    403 => "The credential lacks the required scope.",
    404 => "The resource does not exist in this organisation.",
);
problem_set!(
    /// Errors of a read that needs a verified session.
    VerifiedViewErrors:
    401 => "Missing or invalid credentials, or the session is not verified (`insufficient_user_authentication`).",
);

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
