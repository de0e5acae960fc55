//! Bodies built to hurt the request checks: nesting past any sane depth, a flood of invalid
//! values, a megabyte where an enum is expected, U+0000 in a name. Each gets a
//! small, clear 4xx, and the server keeps answering.

use reqwest::StatusCode;
use serde_json::{json, Value};
use videovector_api_spec::{schema_check::MAX_VIOLATIONS, Scope};
use videovector_tests::TestServer;

/// Status, raw length and parsed body of an answer.
async fn send(request: reqwest::RequestBuilder) -> (StatusCode, usize, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        bytes.len(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn hostile_bodies_get_small_clear_refusals() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let token = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let (status, _, _) = send(
        http.post(server.api("/indexes"))
            .bearer_auth(&token)
            .json(&json!({"id": "idx_hostile", "name": "Hostile"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let segments = server.api("/indexes/idx_hostile/segments");

    // 200,000 levels of nesting in free-form metadata: malformed for us (serde's depth limit),
    // not a stack overflow.
    let depth = 200_000;
    let deep = format!(
        r#"{{"segments":[{{"media_id":"m","start_seconds":0,"end_seconds":1,"text":"t","metadata":{{"a":{}{}}}}}]}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let (status, _, body) = send(
        http.post(&segments)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(deep),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_request");

    // Nesting within the limit is data like any other: stored and returned as sent.
    let mut nested = json!("bottom");
    for _ in 0..100 {
        nested = json!({ "down": nested });
    }
    let (status, _, _) = send(http.post(&segments).bearer_auth(&token).json(&json!({
        "wait": true,
        "segments": [{"media_id": "m", "start_seconds": 0, "end_seconds": 1,
                      "text": "deeply annotated", "metadata": {"tree": nested.clone()}}]
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, hits) = send(
        http.post(server.api("/indexes/idx_hostile/search"))
            .bearer_auth(&token)
            .json(&json!({"query": "annotated"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hits["hits"][0]["metadata"]["tree"], nested);

    // 300,000 invalid segments: one bounded answer listing the first problems.
    let flood: Vec<Value> = (0..300_000).map(|_| json!({})).collect();
    let (status, length, body) = send(
        http.post(&segments)
            .bearer_auth(&token)
            .json(&json!({ "segments": flood })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "validation_failed");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), MAX_VIOLATIONS);
    assert_eq!(errors[0]["pointer"], "/segments");
    assert!(length < 32 * 1024, "a {length}-byte answer");

    // A megabyte where a scope is expected is quoted shortened, not echoed.
    let (status, length, body) = send(
        http.post(server.api("/api-keys"))
            .bearer_auth(&token)
            .json(&json!({"name": "k", "scopes": ["x".repeat(1 << 20)]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["pointer"], "/scopes/0");
    assert!(length < 2048, "a {length}-byte answer");

    // A map's name with U+0000 (found by schemathesis): the map is named, so no pointer in
    // the answer carries U+0000 either.
    let (status, _, body) = send(http.post(&segments).bearer_auth(&token).json(&json!({
        "segments": [{"media_id": "m", "start_seconds": 0, "end_seconds": 1, "text": "t",
                      "metadata": {"ok": 1, "bad\u{0}name": true}}]
    })))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["pointer"], "/segments/0/metadata");
    assert_eq!(body["errors"][0]["message"], "has a name containing U+0000");
    let (status, _, body) = send(
        http.post(server.api("/runs"))
            .bearer_auth(&token)
            .json(&json!({"prompt_id": "p", "index_id": "idx_hostile",
                          "variables": {"x\u{0}": true}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["pointer"], "/variables");
    // An unknown property is ignored whatever its name, as the schema allows.
    let (status, _, _) = send(
        http.patch(server.api("/indexes/idx_hostile"))
            .bearer_auth(&token)
            .json(&json!({"description": "still here", "x\u{0}": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The review's megabyte media id in a search filter: every list item has a limit.
    let (status, _, body) = send(
        http.post(server.api("/indexes/idx_hostile/search"))
            .bearer_auth(&token)
            .json(
                &json!({"query": "t", "filters": {"media_ids": ["m".repeat(1 << 20)],
                                                    "labels": ["l".repeat(201)]}}),
            ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/filters/labels/0", "/filters/media_ids/0"]);

    // And the server is still there.
    let (status, _, _) = send(
        http.get(server.api("/indexes/idx_hostile"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// Found by the property suite (`hostile_inputs.rs`): an empty path id (`/api-keys//revoke`)
/// fell past the guard, which knows no such operation, into poem's router, which matched it;
/// the operation's credential extractor then answered 401 to a valid token. Every path the
/// spec does not declare is a 404 problem.
#[tokio::test]
async fn an_empty_path_id_is_a_404_whatever_the_credential() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let token = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::POST, "/api-keys//revoke"),
        (reqwest::Method::POST, "/indexes//search"),
        (reqwest::Method::GET, "/webhooks//deliveries"),
    ] {
        let (status, _, body) =
            send(http.request(method, server.api(path)).bearer_auth(&token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "not_found", "{path}");
    }
    server.stop().await;
}
