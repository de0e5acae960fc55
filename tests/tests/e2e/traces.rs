//! Traces (issue 24) from the wire: with `traces.otlp_endpoint` set, a caller's
//! `traceparent` is continued into the webhook delivery its request caused (a new span of
//! the same trace, sampled as the caller asked), and the spans reach the collector as
//! OTLP protobuf naming that trace and that span; a malformed `traceparent` starts a trace
//! of our own; with traces off nothing is sent and no delivery carries trace context. The
//! parent of every span is checked against a real OTLP receiver in CI (`.ci/traces`).

use std::time::Duration;

use reqwest::StatusCode;
use videovector_api_spec::Scope;
use videovector_tests::{LocalHttp, RecordedRequest, TestServer};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Creates a webhook for `api_key.created` at the receiver, then a key with `traceparent`
/// (when given), and returns the delivery the receiver got.
async fn key_created_delivery(
    server: &TestServer,
    receiver: &LocalHttp,
    traceparent: Option<&str>,
) -> RecordedRequest {
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let hook = http
        .post(server.api("/webhooks"))
        .bearer_auth(&admin)
        .json(
            &serde_json::json!({"url": receiver.url("/hook"), "event_types": ["api_key.created"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), StatusCode::CREATED);
    let mut create = http
        .post(server.api("/api-keys"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "traced", "scopes": ["search"]}));
    if let Some(traceparent) = traceparent {
        create = create.header("traceparent", traceparent);
    }
    assert_eq!(create.send().await.unwrap().status(), StatusCode::CREATED);
    for _ in 0..200 {
        if let Some(delivery) = receiver.recorded().into_iter().find(|r| r.path == "/hook") {
            return delivery;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no delivery arrived");
}

fn bytes_of(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_callers_trace_is_continued_into_its_webhook_delivery_and_exported() {
    let receiver = LocalHttp::start(vec![]).await;
    let collector = LocalHttp::start(vec![]).await;
    let server = TestServer::start_with(|c| {
        c.allow_private_targets = true;
        c.traces.otlp_endpoint = Some(collector.base_url.clone());
    })
    .await;
    let delivery = key_created_delivery(
        &server,
        &receiver,
        Some(&format!("00-{TRACE_ID}-{CALLER_SPAN}-01")),
    )
    .await;
    let sent = &delivery.headers["traceparent"];
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", TRACE_ID, "01"),
        "the delivery continues the caller's sampled trace: {sent}"
    );
    let delivery_span = parts[2];
    assert!(
        delivery_span != CALLER_SPAN && delivery_span != "0000000000000000",
        "the delivery is a span of its own: {sent}"
    );

    // A malformed traceparent is ignored: the request is served, in a trace of our own.
    let http = reqwest::Client::new();
    for hostile in [
        "00-zz-not-hex-01".to_string(),
        format!("00-{}-{CALLER_SPAN}-01", "0".repeat(32)),
        format!("ff-{TRACE_ID}-{CALLER_SPAN}-01"),
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01-{}", "x".repeat(8_000)),
    ] {
        let answer = http
            .get(server.api("/readyz"))
            .header("traceparent", hostile)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }

    // Stopping flushes the batch: the collector got protobuf holding the trace, the
    // delivery's span, and no secret of the key it created.
    server.stop().await;
    let exports: Vec<RecordedRequest> = collector
        .recorded()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/traces")
        .collect();
    assert!(!exports.is_empty(), "no spans were exported");
    assert!(exports
        .iter()
        .all(|r| r.headers["content-type"] == "application/x-protobuf"));
    let sent_bytes: Vec<u8> = exports.iter().flat_map(|r| r.body.clone()).collect();
    assert!(holds(&sent_bytes, &bytes_of(TRACE_ID)));
    assert!(holds(&sent_bytes, &bytes_of(delivery_span)));
    assert!(holds(&sent_bytes, b"api_key_create"));
    assert!(!holds(&sent_bytes, b"sk_live_") && !holds(&sent_bytes, b"sk_test_"));
}

#[tokio::test]
async fn with_traces_off_nothing_is_traced_or_propagated() {
    let receiver = LocalHttp::start(vec![]).await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let delivery = key_created_delivery(
        &server,
        &receiver,
        Some(&format!("00-{TRACE_ID}-{CALLER_SPAN}-01")),
    )
    .await;
    assert!(
        !delivery.headers.contains_key("traceparent"),
        "{:?}",
        delivery.headers
    );
    server.stop().await;
}
