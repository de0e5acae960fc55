//! An optional observer of every exchange, installed outermost so that it sees each response
//! exactly as the client receives it (after problem mapping). The test harness installs one
//! to hold every answer to the committed spec; a server started without one pays nothing.

use std::sync::Arc;

use poem::{
    http::{header::CONTENT_TYPE, HeaderMap, Method, StatusCode},
    Body, Endpoint, IntoResponse, Request, Response,
};

/// One request's method and path with the response it got.
pub struct Exchange<'a> {
    pub method: &'a Method,
    /// The path as sent, still percent-encoded, without the query.
    pub path: &'a str,
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What observes exchanges; set it in [`crate::Config::response_tap`].
#[derive(Clone)]
pub struct ResponseTap(Arc<dyn Fn(&Exchange<'_>) + Send + Sync>);

impl ResponseTap {
    pub fn new(observe: impl Fn(&Exchange<'_>) + Send + Sync + 'static) -> Self {
        ResponseTap(Arc::new(observe))
    }
}

/// Calls `next`, then shows the response to `tap` (streams of events are passed on unread).
pub async fn observe<E: Endpoint>(
    next: E,
    req: Request,
    tap: Option<ResponseTap>,
) -> poem::Result<Response> {
    let Some(tap) = tap else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.call(req).await?.into_response();
    let streaming = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = body.into_bytes().await.unwrap_or_default();
    (tap.0)(&Exchange {
        method: &method,
        path: &path,
        status: parts.status,
        headers: &parts.headers,
        body: &bytes,
    });
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
