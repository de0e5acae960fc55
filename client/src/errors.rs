//! [`ApiError`]: an operation's failure as a caller handles it. Every error the server
//! answers is a typed [`Problem`] with its stable [`ErrorCode`]; the request id to quote
//! when asking for help and whether trying again may succeed are on the error itself, and
//! its `Display` is the problem (`404 not_found: no index idx_… (request req_…)`), not
//! the answer's headers.
//!
//! The generated methods return progenitor's `Error<Problem>`; `?` turns it into an
//! [`ApiError`] in a function that returns one, and [`ProblemExt`] gives the same questions
//! on the generated error without converting it.

use std::{fmt, time::Duration};

use reqwest::{header::HeaderMap, StatusCode};

use crate::{
    retry::is_retryable_status,
    types::{ErrorCode, Problem},
    Error,
};

/// Why an operation failed.
#[derive(Debug)]
pub enum ApiError {
    /// The server answered with a problem.
    Problem {
        status: StatusCode,
        problem: Problem,
        /// The answer's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
        /// Whether another attempt may succeed (see [`ApiError::is_retryable`]).
        retryable: bool,
    },
    /// No answer came: the connection failed, timed out, or broke while the answer was read.
    Communication(reqwest::Error),
    /// The client refused to send the request: an argument did not convert to the type the
    /// spec declares (a name too long, a number out of range).
    InvalidRequest(String),
    /// An answer the spec does not declare for the operation: a status it does not list, or a
    /// body that is not its schema (a proxy's error page, say).
    UnexpectedAnswer {
        status: Option<StatusCode>,
        request_id: Option<String>,
        why: String,
    },
}

/// A failure with no answer that another attempt may get past.
fn unanswered_is_retryable(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request()
}

/// An answer the spec does not declare, judged by its status (a gateway's 502, say).
fn undeclared_is_retryable(status: StatusCode) -> bool {
    is_retryable_status(status, &HeaderMap::new())
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl From<Error<Problem>> for ApiError {
    fn from(error: Error<Problem>) -> Self {
        match error {
            Error::ErrorResponse(answer) => {
                let status = answer.status();
                let headers = answer.headers();
                let retry_after = header(headers, "retry-after")
                    .and_then(|v| v.trim().parse().ok())
                    .map(Duration::from_secs);
                let retryable = is_retryable_status(status, headers);
                let request_id = header(headers, "x-request-id");
                let mut problem = answer.into_inner();
                if problem.request_id.is_none() {
                    problem.request_id = request_id;
                }
                ApiError::Problem {
                    status,
                    problem,
                    retry_after,
                    retryable,
                }
            }
            Error::CommunicationError(e)
            | Error::InvalidUpgrade(e)
            | Error::ResponseBodyError(e) => ApiError::Communication(e),
            Error::InvalidRequest(why) | Error::Custom(why) => ApiError::InvalidRequest(why),
            Error::InvalidResponsePayload(_, e) => ApiError::UnexpectedAnswer {
                status: None,
                request_id: None,
                why: format!("the answer's body is not what the spec declares: {e}"),
            },
            Error::UnexpectedResponse(answer) => ApiError::UnexpectedAnswer {
                status: Some(answer.status()),
                request_id: header(answer.headers(), "x-request-id"),
                why: format!("the spec declares no {} answer here", answer.status()),
            },
        }
    }
}

impl ApiError {
    /// The problem the server answered, if it answered one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ApiError::Problem { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The problem's stable code (`not_found`, `rate_limited`, ...).
    pub fn code(&self) -> Option<ErrorCode> {
        self.problem().map(|p| p.code)
    }

    /// The answer's HTTP status, if there was an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Problem { status, .. } => Some(*status),
            ApiError::Communication(e) => e.status(),
            ApiError::UnexpectedAnswer { status, .. } => *status,
            ApiError::InvalidRequest(_) => None,
        }
    }

    /// The id the server gave the request (`X-Request-Id`): quote it when asking for help.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Problem { problem, .. } => problem.request_id.as_deref(),
            ApiError::UnexpectedAnswer { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the same request may succeed later: a rate limit, an overloaded or
    /// unreachable server, the same idempotent request still in flight. A client built by
    /// `with_api_key`/`with_bearer_token` has already retried these as its
    /// [`crate::RetryPolicy`] allows; a `true` here means it gave up.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Problem { retryable, .. } => *retryable,
            ApiError::Communication(e) => unanswered_is_retryable(e),
            ApiError::UnexpectedAnswer { status, .. } => {
                status.is_some_and(undeclared_is_retryable)
            }
            ApiError::InvalidRequest(_) => false,
        }
    }

    /// How long the server asked to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Problem { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Problem {
                status, problem, ..
            } => {
                write!(
                    f,
                    "{} {}: {}",
                    status.as_u16(),
                    problem.code,
                    problem.detail
                )?;
                for field in &problem.errors {
                    write!(
                        f,
                        "; {} {}: {}",
                        field.location, field.pointer, field.message
                    )?;
                }
            }
            ApiError::Communication(e) => write!(f, "no answer: {e}")?,
            ApiError::InvalidRequest(why) => write!(f, "not sent: {why}")?,
            ApiError::UnexpectedAnswer { why, .. } => f.write_str(why)?,
        }
        match self.request_id() {
            Some(id) => write!(f, " (request {id})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Communication(e) => Some(e),
            _ => None,
        }
    }
}

/// The questions of [`ApiError`] on the generated methods' own error type.
pub trait ProblemExt {
    /// The problem the server answered, if it answered one.
    fn problem(&self) -> Option<&Problem>;
    /// The problem's stable code.
    fn code(&self) -> Option<ErrorCode> {
        self.problem().map(|p| p.code)
    }
    /// The id the server gave the request.
    fn request_id(&self) -> Option<&str>;
    /// Whether the same request may succeed later (see [`ApiError::is_retryable`]).
    fn is_retryable(&self) -> bool;
}

impl ProblemExt for Error<Problem> {
    fn problem(&self) -> Option<&Problem> {
        match self {
            Error::ErrorResponse(answer) => Some(&**answer),
            _ => None,
        }
    }

    fn request_id(&self) -> Option<&str> {
        match self {
            Error::ErrorResponse(answer) => answer
                .request_id
                .as_deref()
                .or_else(|| answer.headers().get("x-request-id")?.to_str().ok()),
            Error::UnexpectedResponse(answer) => {
                answer.headers().get("x-request-id")?.to_str().ok()
            }
            _ => None,
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            Error::ErrorResponse(answer) => is_retryable_status(answer.status(), answer.headers()),
            Error::CommunicationError(e) => unanswered_is_retryable(e),
            Error::UnexpectedResponse(answer) => undeclared_is_retryable(answer.status()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_problem_and_its_request_not_the_headers() {
        let problem: Problem = serde_json::from_value(serde_json::json!({
            "type": "urn:videovector:problem:validation_failed",
            "title": "Validation failed",
            "status": 422,
            "code": "validation_failed",
            "detail": "the body does not match the schema",
            "errors": [{"pointer": "/name", "location": "body", "message": "too long"}],
            "request_id": "req_123"
        }))
        .unwrap();
        let error = ApiError::Problem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            problem,
            retry_after: None,
            retryable: false,
        };
        let shown = error.to_string();
        assert_eq!(
            shown,
            "422 validation_failed: the body does not match the schema; body /name: too long \
             (request req_123)"
        );
        assert_eq!(error.code(), Some(ErrorCode::ValidationFailed));
        assert!(!error.is_retryable());
    }
}
