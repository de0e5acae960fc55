//! Prometheus metrics (issue 24): served on their own listener only (the API's port has no
//! `/metrics`), in the text format, with the series an operator alerts on: answers by
//! operation, status and scheme with latency histograms, refusals by reason, rate-limit
//! decisions, queue depths and ages, the search copy's lag, the pool, and embedding and
//! indexing counts. No label carries an id. (CI also has a real Prometheus scrape a live
//! server: `.ci/prometheus`.)

use reqwest::StatusCode;
use serde_json::json;
use videovector_api_spec::Scope;
use videovector_tests::TestServer;

/// The value of the sample written exactly as `series` (name and labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_answers_refusals_limits_queues_and_lag_on_their_own_listener() {
    let server = TestServer::start_with(|c| c.metrics_listen = Some("127.0.0.1:0".into())).await;
    let metrics_url = server.metrics_url().expect("metrics listen");
    let http = reqwest::Client::new();
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let created = http
        .post(server.api("/indexes"))
        .bearer_auth(&admin)
        .json(&json!({"id": "idx_metrics", "name": "Metrics"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let ingest = http
        .post(server.api("/indexes/idx_metrics/segments"))
        .bearer_auth(&admin)
        .json(&json!({"segments": [{"media_id": "m1", "start_seconds": 0, "end_seconds": 1, "text": "a bridge at dawn"}], "wait": true}))
        .send()
        .await
        .unwrap();
    assert!(
        ingest.status().is_success(),
        "{}",
        ingest.text().await.unwrap()
    );
    let key = http
        .post(server.api("/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "m", "scopes": ["search"],
                      "rate_limits": [{"name": "tiny", "family": "search", "quota": 3, "window_seconds": 60}]}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let secret = key["secret"].as_str().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let answer = http
            .post(server.api("/indexes/idx_metrics/search"))
            .header("X-API-Key", secret)
            .json(&json!({"query": "bridge"}))
            .send()
            .await
            .unwrap();
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let refused = http
        .get(server.api("/indexes"))
        .header("X-API-Key", "sk_live_not_a_key_at_all_000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // Not on the API's port.
    let api_port = http
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(api_port.status(), StatusCode::NOT_FOUND);

    let scraped = http.get(&metrics_url).send().await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = scraped.text().await.unwrap();
    let search = "operation=\"index_search\"";
    assert_eq!(
        value(
            &text,
            &format!(
                "videovector_http_requests_total{{{search},status=\"200\",scheme=\"api_key\"}}"
            )
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!(
                "videovector_http_requests_total{{{search},status=\"429\",scheme=\"api_key\"}}"
            )
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            &format!(
                "videovector_http_request_duration_seconds_count{{{search},scheme=\"api_key\"}}"
            )
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &text,
            "videovector_rate_limit_decisions_total{family=\"search\",decision=\"refused\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "videovector_rate_limit_decisions_total{family=\"search\",decision=\"allowed\"}"
        ),
        Some(3.0)
    );
    assert!(
        value(
            &text,
            "videovector_auth_refusals_total{reason=\"malformed_api_key\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    for series in [
        "videovector_queue_depth{queue=\"runs\",status=\"queued\"}",
        "videovector_queue_oldest_age_seconds{queue=\"deliveries\",status=\"queued\"}",
        "videovector_search_copy_lag_changes",
        "videovector_db_pool_connections{state=\"idle\"}",
        "videovector_embedded_texts_total{purpose=\"segments\"}",
        "videovector_embedded_texts_total{purpose=\"queries\"}",
        "videovector_indexed_segment_changes_total",
    ] {
        assert!(
            value(&text, series).is_some(),
            "{series} missing from\n{text}"
        );
    }
    assert_eq!(
        value(&text, "videovector_search_copy_lag_changes"),
        Some(0.0)
    );
    assert!(
        value(
            &text,
            "videovector_embedded_texts_total{purpose=\"segments\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(value(&text, "videovector_indexed_segment_changes_total").unwrap() >= 1.0);

    // Bounded labels: no id of any resource appears.
    for id in [
        &org.org_id,
        "idx_metrics",
        key["key"]["id"].as_str().unwrap(),
    ] {
        assert!(!text.contains(id), "{id} in a label");
    }
    server.stop().await;
}

#[tokio::test]
async fn without_metrics_listen_nothing_is_served() {
    let server = TestServer::start().await;
    assert!(server.metrics_url().is_none());
    server.stop().await;
}
