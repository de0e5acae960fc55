//! Trace context on the wire and in the database, in the W3C form (`traceparent`,
//! `tracestate`): read from a caller's request, written onto outbound requests, and kept
//! with queued work as the `traceparent` text.

use std::collections::HashMap;

use opentelemetry::{propagation::TextMapPropagator, trace::TraceContextExt, Context};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;

const TRACEPARENT: &str = "traceparent";

/// The trace context a caller sent (an empty context when none, or a malformed one).
pub fn extract(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// The headers (`traceparent`, `tracestate`) that make an outbound call's receiver continue
/// the current span's trace; none when no trace is being recorded.
pub fn outbound_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    Context::map_current(|cx| {
        if cx.get::<super::Tracing>().is_some() {
            TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(&mut headers));
        }
    });
    headers
}

/// The current span's `traceparent`, to keep with work queued for later, when a trace is
/// being recorded.
pub fn current_traceparent() -> Option<String> {
    Context::map_current(|cx| {
        cx.get::<super::Tracing>()?;
        let span = cx.span();
        let context = span.span_context();
        context.is_valid().then(|| {
            let mut fields = HashMap::new();
            TraceContextPropagator::new().inject_context(cx, &mut fields);
            fields.remove(TRACEPARENT)
        })?
    })
}

/// The remote parent a stored `traceparent` names (an empty context when it is malformed).
pub fn from_traceparent(traceparent: &str) -> Context {
    let fields = HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
    TraceContextPropagator::new().extract(&fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_traceparent_is_read_back_as_the_remote_parent() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = from_traceparent(parent);
        let span = cx.span();
        let context = span.span_context();
        assert!(context.is_remote());
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled());
        assert!(!from_traceparent("not a traceparent")
            .span()
            .span_context()
            .is_valid());
    }
}
