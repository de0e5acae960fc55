//! Request ids: every answer carries `X-Request-Id`, the caller's own when it sent a
//! well-formed one (so its logs and ours name the same request), else one made here
//! (`req_...`). Every problem body names it in `request_id`, and every log line written
//! while the request is handled carries it (a `request` span around the whole chain, with
//! the method and path). The id travels in the request's data as [`RequestId`].
//!
//! With the access log on, each request ends with one line (target `videovector::access`):
//! its id, method and path, status, duration, and what the guard learned ([`Access`]: the
//! operation, the credential scheme and the key or token subject).

use poem::{
    http::{header::CONTENT_TYPE, HeaderValue},
    Endpoint, IntoResponse, Request, Response,
};
use tracing::Instrument;
use videovector_api_spec::problem::PROBLEM_CONTENT_TYPE;
pub use videovector_api_spec::security::RequestId;

use crate::{ids::new_id, request_context::Access};

/// The header, as sent and answered.
pub const HEADER: &str = "x-request-id";
/// The longest id kept from a caller.
const MAX_LEN: usize = 200;

/// Whether a caller's id is kept: 1–200 of letters, digits and `._:/+=-` (UUIDs, ULIDs,
/// base64 and the ids of common proxies); anything else is replaced, never echoed.
pub fn well_formed(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/+=-".contains(&b))
}

/// The middleware: gives the request its id, and the answer its header (and, for a
/// problem, its `request_id`); with `access_log`, writes the request's line.
pub async fn assign<E: Endpoint>(
    next: E,
    mut req: Request,
    access_log: bool,
) -> poem::Result<Response> {
    let started = std::time::Instant::now();
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map(str::to_string)
        .unwrap_or_else(|| new_id("req"));
    req.set_data(RequestId(id.clone()));
    let method = req.method().clone();
    let path = access_log.then(|| req.uri().path().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        path = %req.uri().path(),
    );
    let mut response = match next.call(req).instrument(span).await {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    };
    if let Some(path) = path {
        // Whole by itself: a filter that keeps only these lines (`videovector::access=info`)
        // drops the request's span, so the line names the request itself.
        let access = response.data::<Access>();
        tracing::info!(
            target: "videovector::access",
            request_id = %id,
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            duration_us = started.elapsed().as_micros() as u64,
            operation = access.and_then(|a| a.operation.as_deref()).unwrap_or("-"),
            scheme = access.map_or("-", |a| a.scheme.name()),
            credential = access.and_then(|a| a.credential.as_deref()).unwrap_or("-"),
            "answered"
        );
    }
    if is_problem(&response) {
        response = with_request_id(response, &id).await;
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    Ok(response)
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(PROBLEM_CONTENT_TYPE))
}

/// A problem answer with `request_id` in its body (problems are small and whole).
async fn with_request_id(mut response: Response, id: &str) -> Response {
    let bytes = response.take_body().into_bytes().await.unwrap_or_default();
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut problem)) => {
            problem.insert("request_id".into(), id.into());
            serde_json::to_vec(&problem).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    };
    response
        .headers_mut()
        .remove(poem::http::header::CONTENT_LENGTH);
    response.set_body(body);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_kept() {
        for kept in [
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "01HZX3Y9J7K8M2N4P6Q8R0S2T4",
            "Root=1-67891233-abcdef012345678912345678",
            "a",
        ] {
            assert!(well_formed(kept), "{kept}");
        }
        for replaced in [
            "",
            "has space",
            "quote\"",
            "new\nline",
            "ünï",
            &"x".repeat(201),
        ] {
            assert!(!well_formed(replaced), "{replaced:?}");
        }
    }
}
