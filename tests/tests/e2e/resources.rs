//! Index CRUD and pagination, durability across restarts (including a lost or damaged
//! search index), operator login, and the problem bodies clients see.

use reqwest::StatusCode;
use serde_json::{json, Value};
use videovector_api_spec::Scope;
use videovector_client::types;
use videovector_tests::{common_calls::create_index, TestServer};

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn index_crud_and_cursor_pagination() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    for i in 0..5 {
        create_index(&client, &format!("idx_page_{i}"), "Page").await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut request = client.index_list().limit(2);
        if let Some(c) = &cursor {
            request = request.cursor(c.clone());
        }
        let page = request.send().await.unwrap().into_inner();
        pages += 1;
        seen.extend(page.items.into_iter().map(|i| i.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        (0..5).map(|i| format!("idx_page_{i}")).collect::<Vec<_>>()
    );

    let token = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let (status, body) = send(
        http.get(server.api("/indexes?cursor=%%%"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cursor"))
    );
    let (status, body) = send(http.get(server.api("/indexes?limit=0")).bearer_auth(&token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    assert_eq!(body["errors"][0]["location"], "query");
    assert_eq!(body["errors"][0]["pointer"], "/limit");

    let updated = client
        .index_update()
        .index_id("idx_page_0")
        .body(types::IndexUpdate::builder().name("Renamed"))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "Renamed");
    assert!(updated.updated_at > updated.created_at);

    // Delete removes the index and its segments; the id can be reused, empty.
    client
        .segment_ingest()
        .index_id("idx_page_1")
        .body(types::SegmentBatch::builder().wait(true).segments(
            vec![types::SegmentInput::builder()
            .media_id("m")
            .start_seconds(0.0)
            .end_seconds(1.0)
            .text("archived footage of the harbour")
            .try_into()
            .unwrap()],
        ))
        .send()
        .await
        .unwrap();
    client
        .index_delete()
        .index_id("idx_page_1")
        .send()
        .await
        .unwrap();
    let (status, _) = send(
        http.get(server.api("/indexes/idx_page_1"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let again = client
        .index_create()
        .body(types::IndexCreate::builder().id("idx_page_1").name("Again"))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.segment_count, 0);
    let (status, body) = send(
        http.post(server.api("/indexes/idx_page_1/search"))
            .bearer_auth(&token)
            .json(&json!({"query": "harbour"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["hits"],
        json!([]),
        "a deleted index's segments came back"
    );
    server.stop().await;
}

async fn search_hits(server: &TestServer, token: &str, query: &str) -> Vec<Value> {
    search_top(server, token, query, 10).await
}

async fn search_top(server: &TestServer, token: &str, query: &str, top_k: u32) -> Vec<Value> {
    let (status, body) = send(
        reqwest::Client::new()
            .post(server.api("/indexes/idx_durable/search"))
            .bearer_auth(token)
            .json(&json!({"query": query, "top_k": top_k})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["hits"].as_array().unwrap().clone()
}

#[tokio::test]
async fn data_and_search_survive_restarts_and_a_lost_or_damaged_search_index() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    create_index(&client, "idx_durable", "Durable").await;
    let segments = (0..50)
        .map(|i| {
            types::SegmentInput::builder()
                .media_id(format!("m{i}"))
                .start_seconds(i as f64)
                .end_seconds(i as f64 + 1.0)
                .text(format!("lighthouse keeper log entry number {i}"))
                .try_into()
                .unwrap()
        })
        .collect::<Vec<types::SegmentInput>>();
    // Not waiting: the segments must still become searchable within the indexer's commit
    // interval (one second), give or take a poll.
    client
        .segment_ingest()
        .index_id("idx_durable")
        .body(types::SegmentBatch::builder().segments(segments))
        .send()
        .await
        .unwrap();
    let token = server.token(&org, &[Scope::Search]);
    let mut found = 0;
    for _ in 0..60 {
        found = search_hits(&server, &token, "lighthouse").await.len();
        if found == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        found, 10,
        "segments were not searchable within three seconds"
    );

    let server = server.restart(|_| {}).await;
    assert_eq!(search_hits(&server, &token, "lighthouse").await.len(), 10);

    // Stopped after a search commit but before its cursor was saved: the batch is applied
    // again at start, and the index (which records its last change) must not hold it twice.
    let server = server
        .restart(|dir| std::fs::write(dir.join("search/cursor"), "0").unwrap())
        .await;
    let hits = search_top(&server, &token, "lighthouse", 100).await;
    let distinct: std::collections::BTreeSet<&str> = hits
        .iter()
        .map(|h| h["segment_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        (hits.len(), distinct.len()),
        (50, 50),
        "a re-applied batch was indexed twice"
    );

    // The whole search root lost: rebuilt from the database at start.
    let server = server
        .restart(|dir| std::fs::remove_dir_all(dir.join("search")).unwrap())
        .await;
    assert_eq!(
        search_hits(&server, &token, "lighthouse keeper")
            .await
            .len(),
        10
    );

    // One index damaged: rebuilt from the database at start.
    let server = server
        .restart(|dir| {
            let indexes = dir.join("search/indexes");
            for entry in std::fs::read_dir(&indexes).unwrap() {
                std::fs::write(entry.unwrap().path().join("meta.json"), b"{ not json").unwrap();
            }
        })
        .await;
    assert_eq!(search_hits(&server, &token, "entry").await.len(), 10);
    let index = server
        .admin_client(&org)
        .index_view()
        .index_id("idx_durable")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(index.segment_count, 50);
    server.stop().await;
}

#[tokio::test]
async fn failed_logins_are_refused_and_rate_limited() {
    let server = TestServer::start_with(|config| config.login_max_failures = 2).await;
    let http = reqwest::Client::new();
    let login = |password: &str| {
        http.post(server.api("/auth/token"))
            .json(&json!({"email": "bootstrap@example.com", "password": password}))
    };
    let (status, body) = send(login("wrong")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    send(login("wrong again")).await;
    let response = login("bootstrap-password").send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the limit holds even for the right password"
    );
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0);
    server.stop().await;
}

/// The review's race: the limit was consulted before the ~400 ms password check and the
/// failure recorded after it, so 40 concurrent guesses all got a 401 against a limit of 10.
#[tokio::test]
async fn concurrent_wrong_passwords_are_held_to_the_limit() {
    let server = TestServer::start_with(|config| config.login_max_failures = 10).await;
    let statuses = forty_wrong_passwords(&[&server]).await;
    assert_eq!(checked_and_refused(&statuses), (10, 30), "{statuses:?}");
    server.stop().await;
}

/// 40 concurrent logins with wrong passwords, sent to `servers` in turn; their statuses.
async fn forty_wrong_passwords(servers: &[&TestServer]) -> Vec<StatusCode> {
    let http = reqwest::Client::new();
    let guesses = (0..40).map(|i| {
        http.post(servers[i % servers.len()].api("/auth/token"))
            .json(&json!({"email": "bootstrap@example.com", "password": format!("guess {i}")}))
            .send()
    });
    futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect()
}

/// How many guesses were checked (401) and how many refused unchecked (429).
fn checked_and_refused(statuses: &[StatusCode]) -> (usize, usize) {
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    (
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::TOO_MANY_REQUESTS),
    )
}

/// The review's scale-out finding: 40 wrong passwords split across two instances on one
/// database got 21 verified against a limit of 10, each instance counting on its own. The
/// count is kept in the database, reserved under a lock per key.
#[tokio::test]
async fn two_instances_share_one_login_limit() {
    let a = TestServer::start_with(|config| config.login_max_failures = 10).await;
    let b = a.second_instance().await;
    let statuses = forty_wrong_passwords(&[&a, &b]).await;
    let http = reqwest::Client::new();
    assert_eq!(checked_and_refused(&statuses), (10, 30), "{statuses:?}");
    // The right password on B is refused too while the email is at its limit.
    let right = http
        .post(b.api("/auth/token"))
        .json(&json!({"email": "bootstrap@example.com", "password": "bootstrap-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn problem_bodies() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let read = server.token(&org, &[Scope::Read]);
    let admin = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let mut bodies = serde_json::Map::new();
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("no_credentials", http.get(server.api("/indexes"))),
        (
            "api_key_on_jwt_only_path",
            http.get(server.api("/api-keys"))
                .header("X-API-Key", "sk_live_x"),
        ),
        (
            "insufficient_scope",
            http.post(server.api("/indexes"))
                .bearer_auth(&read)
                .json(&json!({"name": "x"})),
        ),
        (
            "unverified_mcp",
            http.get(server.api("/mcp/config"))
                .bearer_auth(server.unverified_token(&org, &[Scope::Admin])),
        ),
        (
            "unknown_index",
            http.get(server.api("/indexes/idx_missing"))
                .bearer_auth(&admin),
        ),
        (
            "malformed_json",
            http.post(server.api("/indexes"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{"),
        ),
        (
            "bad_index_id",
            http.post(server.api("/indexes"))
                .bearer_auth(&admin)
                .json(&json!({"id": "Archive", "name": "x"})),
        ),
        (
            "invalid_values",
            http.post(server.api("/indexes"))
                .bearer_auth(&admin)
                .header("Idempotency-Key", "x".repeat(256))
                .json(&json!({"name": "a\u{0}b", "description": 7})),
        ),
        (
            "nul_in_path",
            http.get(server.api("/indexes/idx_%00")).bearer_auth(&admin),
        ),
        (
            "no_such_path",
            http.get(server.api("/nowhere")).bearer_auth(&admin),
        ),
        (
            "wrong_method",
            http.put(server.api("/indexes")).bearer_auth(&admin),
        ),
    ];
    for (name, request) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "application/problem+json",
            "{name}"
        );
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let mut body: Value = response.json().await.unwrap();
        // Each problem names its request, as its header does; the snapshot keeps the rest.
        let named = body.as_object_mut().unwrap().remove("request_id");
        assert_eq!(named, Some(Value::String(id)), "{name}");
        bodies.insert(name.to_string(), body);
    }
    insta::assert_json_snapshot!(Value::Object(bodies));
    server.stop().await;
}

#[tokio::test]
async fn two_instances_on_one_database_keep_their_search_copies_current() {
    let first = TestServer::start().await;
    let second = first.second_instance().await;
    let org = first.org(true).await;
    let token = first.token(&org, &[Scope::Admin]);
    let (_, key) = first.api_key(&org, &[Scope::Admin]).await;
    let http = reqwest::Client::new();
    // Credentials issued through one instance work on the other.
    let (status, _) = send(
        http.post(second.api("/indexes"))
            .header("X-API-Key", &key)
            .json(&json!({"id": "idx_durable", "name": "Shared"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = send(
        http.post(first.api("/indexes/idx_durable/segments"))
            .bearer_auth(&token)
            .json(
                &json!({"segments": [{"media_id": "m", "start_seconds": 0, "end_seconds": 1,
                                         "text": "ferry departs from the northern pier"}]}),
            ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut hits = Vec::new();
    for _ in 0..60 {
        hits = search_hits(&second, &token, "northern pier").await;
        if !hits.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        hits.len(),
        1,
        "the other instance did not pick the change up within three seconds"
    );
    // A delete through one instance reaches the other's copy too.
    let (status, _) = send(
        http.delete(first.api("/indexes/idx_durable"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut dropped = false;
    for _ in 0..20 {
        if second
            .server
            .state
            .indexer
            .engine()
            .uids_on_disk()
            .is_empty()
        {
            dropped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        dropped,
        "the other instance kept the deleted index's search copy"
    );
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_chunked() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let token = server.token(&org, &[Scope::Write]);
    let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024 * 1024]));
    let response = reqwest::Client::new()
        .post(server.api("/indexes"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    match response {
        Ok(response) => {
            assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "payload_too_large");
        }
        // The server may answer and close before the client finished sending.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let (status, _) = send(
        reqwest::Client::new()
            .post(server.api("/indexes"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(" ".repeat(33 * 1024 * 1024)),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_ingests_and_index_updates_all_land() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    create_index(&client, "idx_busy", "Busy").await;
    // Segment batches (written on their own connection) interleave with renames (written
    // through the pool): every request succeeds and the segment count adds up.
    let ingests = (0..8).map(|batch| {
        let client = client.clone();
        async move {
            let segments = (0..200)
                .map(|i| {
                    types::SegmentInput::builder()
                        .media_id(format!("m{batch}"))
                        .start_seconds(i as f64)
                        .end_seconds(i as f64 + 1.0)
                        .text(format!("busy harbour crane {batch} {i}"))
                        .try_into()
                        .unwrap()
                })
                .collect::<Vec<types::SegmentInput>>();
            client
                .segment_ingest()
                .index_id("idx_busy")
                .body(types::SegmentBatch::builder().segments(segments).wait(true))
                .send()
                .await
                .map(|r| r.into_inner().segment_ids.len())
        }
    });
    let renames = (0..16).map(|i| {
        let client = client.clone();
        async move {
            client
                .index_update()
                .index_id("idx_busy")
                .body(types::IndexUpdate::builder().name(format!("Busy {i}")))
                .send()
                .await
                .map(|_| 0)
        }
    });
    let (stored, renamed) = tokio::join!(
        futures_util::future::join_all(ingests),
        futures_util::future::join_all(renames)
    );
    let stored: usize = stored.into_iter().map(|r| r.unwrap()).sum();
    renamed.into_iter().for_each(|r| {
        r.unwrap();
    });
    assert_eq!(stored, 1_600);
    let index = client
        .index_view()
        .index_id("idx_busy")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(index.segment_count, 1_600);
    let hits = client
        .index_search()
        .index_id("idx_busy")
        .body(types::SearchRequest::builder().query("crane 7").top_k(100))
        .send()
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert!(
        hits.iter().any(|h| h.media_id == "m7"),
        "the last batches are searchable"
    );
    server.stop().await;
}

async fn compacted_hits(server: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = send(
        reqwest::Client::new()
            .post(server.api("/indexes/idx_compacted/search"))
            .bearer_auth(token)
            .json(&json!({ "query": query })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["hits"].as_array().cloned().unwrap_or_default()
}

/// The change log each search copy follows is compacted; a copy that fell behind the
/// horizon (an instance stopped while its changes were compacted away) rebuilds from the
/// segments instead of silently missing them.
#[tokio::test(flavor = "multi_thread")]
async fn a_search_copy_behind_the_compacted_change_log_rebuilds() {
    let first = TestServer::start().await;
    let org = first.org(true).await;
    let token = first.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let ingest = |server: &TestServer, text: &str| {
        http.post(server.api("/indexes/idx_compacted/segments"))
            .bearer_auth(&token)
            .json(
                &json!({"wait": true, "segments": [{"media_id": "m", "start_seconds": 0,
                                                       "end_seconds": 1, "text": text}]}),
            )
            .send()
    };
    let (status, _) = send(
        http.post(first.api("/indexes"))
            .bearer_auth(&token)
            .json(&json!({"id": "idx_compacted", "name": "Compacted"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    ingest(&first, "ferry departs from the northern pier")
        .await
        .unwrap();
    let second = first.second_instance_with(|c| c.workers = false).await;
    for _ in 0..60 {
        if !compacted_hits(&second, &token, "northern pier")
            .await
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        compacted_hits(&second, &token, "northern pier").await.len(),
        1
    );
    // While the second instance is stopped, more changes land and the log is compacted.
    let handle = tokio::runtime::Handle::current();
    let second = second
        .restart(|_| {
            tokio::task::block_in_place(|| {
                handle.block_on(async {
                    for text in ["storm closes the harbour", "lighthouse keeper retires"] {
                        assert!(ingest(&first, text).await.unwrap().status().is_success());
                    }
                    let horizon = videovector_server::db::change_log::compact(first.db(), 0)
                        .await
                        .unwrap();
                    assert!(horizon >= 3, "compacted through {horizon}");
                })
            })
        })
        .await;
    let mut found = Vec::new();
    for _ in 0..100 {
        found = compacted_hits(&second, &token, "lighthouse keeper").await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(found.len(), 1, "the copy missed changes compacted away");
    assert_eq!(compacted_hits(&second, &token, "harbour").await.len(), 1);
    assert_eq!(
        compacted_hits(&second, &token, "northern pier").await.len(),
        1
    );
    second.stop().await;
    first.stop().await;
}
