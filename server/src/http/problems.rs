//! Every error leaves as `application/problem+json`: errors our code raises already are;
//! poem's own (parse errors, 404, 405, 413) and anything else are rewritten here. A 5xx
//! body never carries its cause; the cause is logged.

use poem::{
    http::{header::CONTENT_TYPE, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response,
};
use videovector_api_spec::{problem::PROBLEM_CONTENT_TYPE, ApiError, ErrorCode};

pub struct ProblemMapping;

impl<E: Endpoint> Middleware<E> for ProblemMapping {
    type Output = ProblemEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ProblemEndpoint { inner }
    }
}

pub struct ProblemEndpoint<E> {
    inner: E,
}

/// The code of an error poem raised itself; any other client error is a malformed request.
fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::ValidationFailed,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::BadRequest,
    }
}

impl<E: Endpoint> Endpoint for ProblemEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let response = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => {
                if let Some(api_error) = e.downcast_ref::<ApiError>() {
                    api_error.clone().into_problem_response()
                } else {
                    let status = e.status();
                    let detail = e.to_string();
                    if status.is_server_error() {
                        tracing::error!(%method, %path, error = %detail, "request failed");
                    }
                    rewrite(status, detail)
                }
            }
        };
        let status = response.status();
        let is_problem = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()));
        if (status.is_client_error() || status.is_server_error()) && !is_problem {
            let headers = response.headers().clone();
            let body = response.into_body().into_string().await.unwrap_or_default();
            if status.is_server_error() {
                tracing::error!(%method, %path, error = %body, "request failed");
            }
            let mut rewritten = rewrite(status, body);
            for (name, value) in headers.iter() {
                if name == "allow" || name == "retry-after" || name == "www-authenticate" {
                    rewritten.headers_mut().insert(name.clone(), value.clone());
                }
            }
            return Ok(rewritten);
        }
        Ok(response)
    }
}

fn rewrite(status: StatusCode, detail: String) -> Response {
    let detail = if status.is_server_error() || detail.trim().is_empty() {
        match status {
            StatusCode::NOT_FOUND => "no such path".to_string(),
            StatusCode::METHOD_NOT_ALLOWED => "this path does not accept that method".to_string(),
            s if s.is_server_error() => {
                "the server failed to handle this request; it has been logged".to_string()
            }
            s => s.canonical_reason().unwrap_or("error").to_string(),
        }
    } else {
        detail
    };
    ApiError::new(status, code_for(status), detail).into_problem_response()
}
