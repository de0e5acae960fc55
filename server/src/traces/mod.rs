//! OpenTelemetry traces, exported over OTLP/HTTP when `traces.otlp_endpoint` is set and not
//! made at all when it is not.
//!
//! Each request is a server span (`crate::http::request_span`), continuing the caller's trace when it
//! sent a `traceparent`. Below it: one span per database statement ([`database`]), per
//! search and per outbound call (an embedder's, [`in_span`]). Work a request queues (a run,
//! a job, a webhook delivery) keeps the request's trace context with it, so the worker's
//! span, and the `traceparent` a webhook receiver or an embedder gets, continue the trace of
//! the request that caused it.
//!
//! The tracer travels in the OpenTelemetry context the request's span is attached with, not
//! in a process global: code deep below a handler finds it there, and several servers in one
//! process (the tests) trace, or not, each by its own configuration. With tracing off no
//! context is attached, so each of those places costs one look at an empty context.

pub mod database;
pub mod export;
pub mod propagation;

use std::future::Future;

use opentelemetry::{
    context::FutureExt,
    trace::{SpanKind, Status, TraceContextExt, Tracer},
    Context, KeyValue,
};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

use crate::config::TracesConfig;

/// The instrumentation scope the spans are reported under.
const SCOPE: &str = "videovector-server";

/// The server's tracer, when tracing is on.
#[derive(Clone, Debug)]
pub struct Tracing {
    tracer: SdkTracer,
}

/// Owns the export pipeline: [`Exporter::shutdown`] sends what is still queued.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// The tracer and its exporter per `config`, or none when tracing is off. Spans are
    /// batched and sent from a thread of their own; the HTTP requests run on the current
    /// Tokio runtime.
    pub fn from_config(config: &TracesConfig) -> anyhow::Result<Option<(Tracing, Exporter)>> {
        let Some(url) = config.traces_url()? else {
            return Ok(None);
        };
        let exporter = export::span_exporter(&url, &config.otlp_headers)?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, SCOPE);
        Ok(Some((Tracing { tracer }, Exporter { provider })))
    }

    /// The tracer of the trace being recorded on this task, if any.
    pub fn current() -> Option<Tracing> {
        Context::map_current(|cx| cx.get::<Tracing>().cloned())
    }

    /// Starts a span under `parent` and returns the context that holds it (and this
    /// tracer, for the spans below it).
    pub fn start(
        &self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        parent: &Context,
    ) -> Context {
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, parent);
        parent.with_span(span).with_value(self.clone())
    }

    /// A span of work already done, from `started` until now, under `parent`.
    pub fn record_done(
        &self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        attributes: Vec<KeyValue>,
        started: std::time::SystemTime,
        failure: Option<String>,
        parent: &Context,
    ) {
        use opentelemetry::trace::Span;
        let mut span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .with_start_time(started)
            .start_with_context(&self.tracer, parent);
        if let Some(failure) = failure {
            span.set_status(Status::error(failure));
        }
        span.end();
    }
}

impl Exporter {
    /// Sends the spans still queued, waiting at most a few seconds. Blocking: call it off
    /// the async threads.
    pub fn shutdown(&self) {
        if let Err(e) = self
            .provider
            .shutdown_with_timeout(std::time::Duration::from_secs(5))
        {
            tracing::warn!(error = %e, "sending the last spans");
        }
    }
}

/// Whether an outcome is a failure, and why (for a span's status).
pub trait Outcome {
    fn failure(&self) -> Option<String>;
}

impl<T, E: std::fmt::Display> Outcome for Result<T, E> {
    fn failure(&self) -> Option<String> {
        self.as_ref().err().map(ToString::to_string)
    }
}

/// Runs `work` in a child span of the current one (named `name`, of `kind`, with the
/// attributes `attributes` makes), ending it with `work`'s outcome; just runs `work` when no
/// trace is being recorded.
pub async fn in_span<F>(
    name: &'static str,
    kind: SpanKind,
    attributes: impl FnOnce() -> Vec<KeyValue>,
    work: F,
) -> F::Output
where
    F: Future,
    F::Output: Outcome,
{
    match child(name, kind, attributes) {
        Some(cx) => in_context(cx, work).await,
        None => work.await,
    }
}

/// Runs `work` with `cx` current, then ends `cx`'s span with `work`'s outcome.
async fn in_context<F>(cx: Context, work: F) -> F::Output
where
    F: Future,
    F::Output: Outcome,
{
    let outcome = work.with_context(cx.clone()).await;
    if let Some(failure) = outcome.failure() {
        cx.span().set_status(Status::error(failure));
    }
    cx.span().end();
    outcome
}

/// A child of the current span, when a trace is being recorded.
fn child(
    name: &'static str,
    kind: SpanKind,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Option<Context> {
    Context::map_current(|cx| {
        let tracing = cx.get::<Tracing>()?;
        cx.has_active_span()
            .then(|| tracing.start(name, kind, attributes(), cx))
    })
}

/// The current trace context, to be entered again on another thread (blocking work),
/// when a trace is being recorded.
#[derive(Default)]
pub struct Carried(Option<Context>);

impl Carried {
    /// Takes the current context along, if it holds a trace.
    pub fn current() -> Carried {
        Carried(Context::map_current(|cx| {
            cx.get::<Tracing>().is_some().then(|| cx.clone())
        }))
    }

    /// Makes the carried context current until the guard drops.
    pub fn enter(self) -> Option<opentelemetry::ContextGuard> {
        self.0.map(Context::attach)
    }
}

/// Runs queued `work` as a span (`name`, of `kind`) continuing the trace it was queued in
/// (its stored `traceparent`), or starting one when it kept none; just runs it with
/// tracing off.
pub async fn continuing<F>(
    tracing: Option<&Tracing>,
    traceparent: Option<&str>,
    name: &'static str,
    kind: SpanKind,
    attributes: impl FnOnce() -> Vec<KeyValue>,
    work: F,
) -> F::Output
where
    F: Future,
    F::Output: Outcome,
{
    let Some(tracing) = tracing else {
        return work.await;
    };
    let parent = traceparent
        .map(propagation::from_traceparent)
        .unwrap_or_default();
    in_context(tracing.start(name, kind, attributes(), &parent), work).await
}
