//! The downstream crate tested as its authors would: on the generated mocks, no server.

use std::time::Duration;

use serde_json::json;
use videovector_client::{types, ApiError, RetryPolicy};
use videovector_client_mock::{httpmock::MockServer, MockServerExt};
use videovector_downstream_example::Archive;

fn index(id: &str, name: &str) -> serde_json::Value {
    json!({"id": id, "name": name, "segment_count": 0,
           "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
}

fn problem(status: u16, code: &str) -> types::Problem {
    serde_json::from_value(json!({
        "type": format!("urn:videovector:problem:{code}"), "title": "t", "status": status,
        "code": code, "detail": format!("a mocked {code}"), "request_id": "req_mocked"
    }))
    .unwrap()
}

/// An archive on `server` whose retries wait milliseconds, not seconds.
fn archive(server: &MockServer) -> Archive {
    let client = videovector_client::with_api_key(&server.base_url(), "sk_test_mocked")
        .unwrap()
        .with_retry_policy(RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        });
    Archive::with_client(client)
}

#[tokio::test]
async fn indexes_named_reads_every_page() {
    let server = MockServer::start_async().await;
    let first: types::IndexPage = serde_json::from_value(json!({
        "items": [index("idx_1", "news 2024"), index("idx_2", "sport")],
        "next_cursor": "page-2"
    }))
    .unwrap();
    let second: types::IndexPage =
        serde_json::from_value(json!({"items": [index("idx_3", "news 2025")]})).unwrap();
    let page_one = server.index_list(|when, then| {
        when.cursor(None);
        then.ok(&first);
    });
    let page_two = server.index_list(|when, then| {
        when.cursor("page-2");
        then.ok(&second);
    });

    let ids = archive(&server).indexes_named("news").await.unwrap();

    assert_eq!(ids, ["idx_1", "idx_3"]);
    page_one.assert_calls(1);
    page_two.assert_calls(1);
}

#[tokio::test]
async fn best_line_is_the_top_hit_and_a_missing_index_is_none() {
    let server = MockServer::start_async().await;
    let results: types::SearchResults = serde_json::from_value(json!({
        "hits": [{"segment_id": "seg_1", "index_id": "idx_news", "media_id": "m1",
                  "start_seconds": 1.0, "end_seconds": 2.0, "text": "the bridge opened",
                  "labels": [], "score": 3.5, "found_by": ["lexical"], "highlights": []}],
        "total": {"value": 1, "relation": "eq"}
    }))
    .unwrap();
    server.index_search(|when, then| {
        when.index_id("idx_news");
        then.ok(&results);
    });
    server.index_search(|when, then| {
        when.index_id("idx_gone");
        then.not_found(&problem(404, "not_found"));
    });

    let archive = archive(&server);
    assert_eq!(
        archive
            .best_line("idx_news", "bridge")
            .await
            .unwrap()
            .as_deref(),
        Some("the bridge opened")
    );
    assert_eq!(archive.best_line("idx_gone", "bridge").await.unwrap(), None);
}

#[tokio::test]
async fn an_overloaded_server_is_retried_for_reads_then_reported_as_retryable() {
    let server = MockServer::start_async().await;
    let view = server.index_view(|when, then| {
        when.index_id("idx_busy");
        then.service_unavailable(&problem(503, "unavailable"));
    });
    let search = server.index_search(|when, then| {
        when.index_id("idx_busy");
        then.service_unavailable(&problem(503, "unavailable"));
    });
    let archive = archive(&server);

    let error: ApiError = archive.index_name("idx_busy").await.unwrap_err();
    // A read: the default policy's four attempts, then the typed problem.
    view.assert_calls(4);
    assert!(error.is_retryable());
    assert_eq!(error.request_id(), Some("req_mocked"));
    assert!(
        error
            .to_string()
            .starts_with("503 unavailable: a mocked unavailable"),
        "{error}"
    );

    // A search is a POST without an Idempotency-Key: sent once, whatever the answer.
    let error = archive.best_line("idx_busy", "anything").await.unwrap_err();
    search.assert_calls(1);
    assert!(error.is_retryable());
}

/// The Rust client guide quotes a test of this file: the quote must stay what runs here.
#[test]
fn the_rust_client_guide_quotes_this_file() {
    let guide = include_str!("../../../docs/rust-client.md");
    let quoted: Vec<&str> = guide
        .split("```rust,ignore\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    assert!(!quoted.is_empty());
    for block in quoted {
        assert!(
            include_str!("mocked.rs").contains(block),
            "not in mocked.rs:\n{block}"
        );
    }
}
