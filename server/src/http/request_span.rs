//! The request's server span: continues the caller's trace (`traceparent`) or starts one,
//! is current for everything the request does, and ends with the answer's status and, once
//! the guard has named it, the operation.

use opentelemetry::{
    context::FutureExt,
    trace::{SpanKind, Status, TraceContextExt},
    KeyValue,
};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::request_id::RequestId;
use crate::{
    request_context::Access,
    traces::{propagation, Tracing},
};

/// The middleware: with tracing on, runs the rest of the chain inside the request's span.
pub async fn trace<E: Endpoint>(
    next: E,
    req: Request,
    tracing: Option<Tracing>,
) -> poem::Result<Response> {
    let Some(tracing) = tracing else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    let parent = propagation::extract(req.headers());
    let method = req.method().as_str().to_string();
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.clone()),
        KeyValue::new("url.path", req.uri().path().to_string()),
    ];
    if let Some(id) = req.data::<RequestId>() {
        attributes.push(KeyValue::new("videovector.request_id", id.0.clone()));
    }
    let cx = tracing.start(method.clone(), SpanKind::Server, attributes, &parent);
    let response = match next.call(req).with_context(cx.clone()).await {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    };
    let span = cx.span();
    if let Some(operation) = response
        .data::<Access>()
        .and_then(|access| access.operation.clone())
    {
        span.update_name(format!("{method} {operation}"));
        span.set_attribute(KeyValue::new("videovector.operation_id", operation));
    }
    let status = response.status();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        span.set_status(Status::error(status.to_string()));
    }
    span.end();
    Ok(response)
}
