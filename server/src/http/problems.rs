//! Every error leaves as `application/problem+json`: errors our code raises already are;
//! poem's own (parse errors, 404, 405, 413) and anything else are rewritten here. A 5xx
//! body never carries its cause; the cause is logged.
//!
//! Requests are checked against the spec before any handler (`request_checks`), so poem's
//! parameter and payload parse errors only fire where a Rust type refuses what its schema
//! allows. Such a value is still the caller's to fix and gets the one validation answer: 422
//! `validation_failed` with `errors[]`, never poem's bare 400.

use poem::{
    http::{header::CONTENT_TYPE, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response,
};
use poem_openapi::error::{ParseParamError, ParsePathError, ParseRequestPayloadError};
use videovector_api_spec::{
    contract::{Contract, Segment},
    problem::{FieldError, FieldLocation, PROBLEM_CONTENT_TYPE},
    spec::BASE_PATH,
    ApiError, ErrorCode,
};

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
        let query = req.uri().query().map(str::to_string);
        let asked = Asked {
            path: path.clone(),
            content_type: req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(100).collect()),
        };
        let response = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => {
                if let Some(api_error) = e.downcast_ref::<ApiError>() {
                    api_error.clone().into_problem_response()
                } else if let Some(invalid) = parse_error_problem(&e, query.as_deref()) {
                    invalid.into_problem_response()
                } else {
                    let status = e.status();
                    let detail = e.to_string();
                    if status.is_server_error() {
                        tracing::error!(%method, %path, error = %detail, "request failed");
                    }
                    rewrite(status, detail, &asked)
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
            let mut rewritten = rewrite(status, body, &asked);
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

/// poem-openapi's parse errors as a 422 `validation_failed` naming the value. A parameter is
/// located in the query when the query names it, else in the headers (the only other
/// place poem reads named parameters from).
fn parse_error_problem(error: &poem::Error, query: Option<&str>) -> Option<ApiError> {
    let field = if let Some(e) = error.downcast_ref::<ParseRequestPayloadError>() {
        FieldError::body("", e.reason.clone())
    } else if let Some(e) = error.downcast_ref::<ParsePathError>() {
        FieldError::at(
            FieldLocation::Path,
            format!("/{}", e.name),
            e.reason.clone(),
        )
    } else if let Some(e) = error.downcast_ref::<ParseParamError>() {
        let in_query = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .any(|(name, _)| name == e.name);
        let location = if in_query {
            FieldLocation::Query
        } else {
            FieldLocation::Header
        };
        FieldError::at(location, format!("/{}", e.name), e.reason.clone())
    } else {
        return None;
    };
    Some(ApiError::validation(vec![field]))
}

/// What the request asked for, for an error poem raised before our code saw it.
struct Asked {
    path: String,
    content_type: Option<String>,
}

/// The detail of an error poem raised: one that says how to fix the request where we know
/// (the base path left out, a body that is not JSON), else poem's own, else the status's.
fn rewrite(status: StatusCode, detail: String, asked: &Asked) -> Response {
    let detail = match status {
        StatusCode::NOT_FOUND => not_found_detail(&asked.path),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => match &asked.content_type {
            Some(sent) => format!(
                "send the body as JSON, with `Content-Type: application/json` (this request's \
                 is `{sent}`)"
            ),
            None => "send the body as JSON, with `Content-Type: application/json`".into(),
        },
        StatusCode::METHOD_NOT_ALLOWED => "this path does not accept that method; `Allow` lists \
            the ones it does"
            .to_string(),
        s if s.is_server_error() => {
            "the server failed to handle this request; it has been logged".to_string()
        }
        s if detail.trim().is_empty() => s.canonical_reason().unwrap_or("error").to_string(),
        _ => detail,
    };
    ApiError::new(status, code_for(status), detail).into_problem_response()
}

/// "no such path", and where the path left out the API's base path (`/indexes`), the path
/// that was meant (`/api/v2/indexes`).
fn not_found_detail(path: &str) -> String {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let meant = !path.starts_with(BASE_PATH)
        && Contract::committed().operations().iter().any(|operation| {
            matches!(operation.template.first(), Some(Segment::Literal(l)) if l == first)
        });
    if meant {
        let shown: String = path.chars().take(200).collect();
        format!("no such path: the API is under {BASE_PATH} (did you mean `{BASE_PATH}{shown}`?)")
    } else {
        "no such path".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_error(problem: ApiError) -> (u16, ErrorCode, FieldError) {
        let body = *problem.problem;
        let errors = body.errors.expect("errors[]");
        assert_eq!(errors.len(), 1);
        (body.status, body.code, errors.into_iter().next().unwrap())
    }

    #[test]
    fn poem_parse_errors_become_one_located_validation_problem() {
        let payload = poem::Error::from(ParseRequestPayloadError {
            reason: "expected a string".into(),
        });
        let (status, code, field) = only_error(parse_error_problem(&payload, None).unwrap());
        assert_eq!((status, code), (422, ErrorCode::ValidationFailed));
        assert_eq!(field.location, FieldLocation::Body);
        assert_eq!(field.pointer, "");

        let in_query = poem::Error::from(ParseParamError {
            name: "limit",
            reason: "not a number".into(),
        });
        let (_, _, field) =
            only_error(parse_error_problem(&in_query, Some("cursor=a&limit=x")).unwrap());
        assert_eq!(field.location, FieldLocation::Query);
        assert_eq!(field.pointer, "/limit");
        let (_, _, field) = only_error(parse_error_problem(&in_query, Some("cursor=a")).unwrap());
        assert_eq!(field.location, FieldLocation::Header);

        let in_path = poem::Error::from(ParsePathError {
            name: "index_id",
            reason: "too long".into(),
        });
        let (_, _, field) = only_error(parse_error_problem(&in_path, None).unwrap());
        assert_eq!(field.location, FieldLocation::Path);
    }

    #[test]
    fn other_errors_are_left_to_the_status_mapping() {
        let not_found = poem::Error::from_status(StatusCode::NOT_FOUND);
        assert!(parse_error_problem(&not_found, None).is_none());
    }
}
