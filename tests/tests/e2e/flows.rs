//! End-to-end flows through the generated client: the newcomer's first search, the API key
//! lifecycle, tenant isolation, idempotency and search relevance.

use reqwest::StatusCode;
use videovector_api_spec::Scope;
use videovector_client::{types, Client, Error};
use videovector_tests::{common_calls::create_index, TestServer};

fn segment(media: &str, start: f64, text: &str) -> types::builder::SegmentInput {
    types::SegmentInput::builder()
        .media_id(media)
        .start_seconds(start)
        .end_seconds(start + 4.0)
        .text(text)
}

async fn ingest(
    client: &Client,
    index: &str,
    segments: Vec<types::builder::SegmentInput>,
) -> types::SegmentBatchResult {
    let segments = segments
        .into_iter()
        .map(|s| types::SegmentInput::try_from(s).unwrap())
        .collect::<Vec<_>>();
    client
        .segment_ingest()
        .index_id(index)
        .body(types::SegmentBatch::builder().segments(segments).wait(true))
        .send()
        .await
        .expect("segments ingested")
        .into_inner()
}

async fn search(
    client: &Client,
    index: &str,
    query: &str,
) -> Result<types::SearchResults, Error<types::Problem>> {
    client
        .index_search()
        .index_id(index)
        .body(types::SearchRequest::builder().query(query).top_k(10))
        .send()
        .await
        .map(|r| r.into_inner())
}

fn status_of<T: std::fmt::Debug>(result: Result<T, Error<types::Problem>>) -> (StatusCode, String) {
    match result {
        Err(Error::ErrorResponse(problem)) => (problem.status(), problem.code.to_string()),
        other => panic!("expected a problem, got {other:?}"),
    }
}

#[tokio::test]
async fn newcomer_gets_a_token_creates_a_key_and_searches() {
    let server = TestServer::start().await;
    // The bootstrap operator logs in with the configured credentials.
    let anonymous = videovector_client::anonymous(&server.url()).unwrap();
    let token = anonymous
        .token_create()
        .body(
            types::TokenRequest::builder()
                .email("bootstrap@example.com")
                .password("bootstrap-password"),
        )
        .send()
        .await
        .expect("login")
        .into_inner();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.scopes, vec![types::Scope::Admin]);
    let operator =
        videovector_client::with_bearer_token(&server.url(), &token.access_token).unwrap();

    // The page's example: a production search key with read and search.
    let created = operator
        .api_key_create()
        .body(
            types::ApiKeyCreate::builder()
                .name("Production search key")
                .scopes(vec![types::Scope::Read, types::Scope::Search])
                .expires_in_days(90),
        )
        .send()
        .await
        .expect("key created")
        .into_inner();
    assert!(created.secret.starts_with("sk_live_"));
    assert!(created.key.expires_at.is_some());

    // Loading data takes a write key: mint one with the same token.
    let writer = videovector_client::with_api_key(&server.url(), &{
        operator
            .api_key_create()
            .body(
                types::ApiKeyCreate::builder()
                    .name("loader")
                    .scopes(vec![types::Scope::Write]),
            )
            .send()
            .await
            .unwrap()
            .into_inner()
            .secret
    })
    .unwrap();
    create_index(&writer, "idx_archive", "Archive").await;
    let stored = ingest(
        &writer,
        "idx_archive",
        vec![
            segment(
                "news-1",
                12.0,
                "The reporter is standing at the station entrance",
            ),
            segment("news-1", 20.0, "Commuters walk past the ticket barrier"),
            segment("news-2", 3.0, "Weather for the weekend looks dry"),
        ],
    )
    .await;
    assert!(stored.searchable);
    assert_eq!(stored.segment_ids.len(), 3);

    let searcher = videovector_client::with_api_key(&server.url(), &created.secret).unwrap();
    let results = search(&searcher, "idx_archive", "reporter at station entrance")
        .await
        .unwrap();
    assert_eq!(results.hits.len(), 1);
    let hit = &results.hits[0];
    assert_eq!(hit.media_id, "news-1");
    assert_eq!(hit.start_seconds, 12.0);
    assert_eq!(hit.segment_id, stored.segment_ids[0]);
    assert!(!hit.highlights.is_empty());
    // The search key cannot write.
    let (status, code) = status_of(
        searcher
            .index_create()
            .body(types::IndexCreate::builder().name("nope"))
            .send()
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    server.stop().await;
}

#[tokio::test]
async fn api_key_lifecycle() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.admin_client(&org);
    let (key_id, secret) = server.api_key(&org, &[Scope::Read]).await;
    let with_key = videovector_client::with_api_key(&server.url(), &secret).unwrap();
    with_key
        .index_list()
        .send()
        .await
        .expect("a fresh key works");

    // Masked everywhere after creation.
    let listed = admin.api_key_list().send().await.unwrap().into_inner();
    let raw = serde_json::to_string(&listed).unwrap();
    assert!(!raw.contains(&secret[8..]), "the list leaks the secret");
    let viewed = admin
        .api_key_view()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        viewed.masked_key,
        format!("sk_live_…{}", &secret[secret.len() - 4..])
    );
    assert_eq!(viewed.status, types::ApiKeyStatus::Active);

    // last_used_at is recorded (off the request path, so poll briefly).
    let mut used = None;
    for _ in 0..50 {
        used = admin
            .api_key_view()
            .key_id(&key_id)
            .send()
            .await
            .unwrap()
            .into_inner()
            .last_used_at;
        if used.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(used.is_some());

    // Rotation returns a new secret and the old one stops working at once.
    let rotated = admin
        .api_key_rotate()
        .key_id(&key_id)
        .body(types::ApiKeyRotate::builder())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.secret, secret);
    assert_eq!(rotated.key.id, key_id);
    let (status, _) = status_of(with_key.index_list().send().await);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let with_new = videovector_client::with_api_key(&server.url(), &rotated.secret).unwrap();
    with_new
        .index_list()
        .send()
        .await
        .expect("the rotated secret works");

    // A grace period keeps the old secret alive.
    let graced = admin
        .api_key_rotate()
        .key_id(&key_id)
        .body(types::ApiKeyRotate::builder().grace_period_seconds(60))
        .send()
        .await
        .unwrap()
        .into_inner();
    with_new
        .index_list()
        .send()
        .await
        .expect("old secret inside its grace period");
    let with_graced = videovector_client::with_api_key(&server.url(), &graced.secret).unwrap();
    with_graced.index_list().send().await.unwrap();

    // Revoke soft-disables, immediately, including the graced secret.
    let revoked = admin
        .api_key_revoke()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.status, types::ApiKeyStatus::Revoked);
    assert_eq!(
        status_of(with_graced.index_list().send().await).0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(with_new.index_list().send().await).0,
        StatusCode::UNAUTHORIZED
    );

    // Delete removes it.
    admin.api_key_delete().key_id(&key_id).send().await.unwrap();
    assert_eq!(
        status_of(admin.api_key_view().key_id(&key_id).send().await).0,
        StatusCode::NOT_FOUND
    );

    // Key management takes scopes too. A token without scopes (the review's attack) or with
    // `search` alone cannot even list keys; `read` lists and views, and no more.
    for scopes in [&[][..], &[Scope::Search][..]] {
        let weak =
            videovector_client::with_bearer_token(&server.url(), &server.token(&org, scopes))
                .unwrap();
        assert_eq!(
            status_of(weak.api_key_list().send().await).0,
            StatusCode::FORBIDDEN,
            "{scopes:?}"
        );
    }
    let reader =
        videovector_client::with_bearer_token(&server.url(), &server.token(&org, &[Scope::Read]))
            .unwrap();
    reader.api_key_list().send().await.expect("read lists keys");
    let (status, code) = status_of(
        reader
            .api_key_create()
            .body(
                types::ApiKeyCreate::builder()
                    .name("not allowed")
                    .scopes(vec![types::Scope::Search]),
            )
            .send()
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    // No escalation: a write token cannot mint an admin key, nor touch one.
    let writer =
        videovector_client::with_bearer_token(&server.url(), &server.token(&org, &[Scope::Write]))
            .unwrap();
    let (status, code) = status_of(
        writer
            .api_key_create()
            .body(
                types::ApiKeyCreate::builder()
                    .name("escalate")
                    .scopes(vec![types::Scope::Admin]),
            )
            .send()
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "scope_escalation")
    );
    let (admin_key, _) = server.api_key(&org, &[Scope::Admin]).await;
    assert_eq!(
        status_of(writer.api_key_revoke().key_id(&admin_key).send().await).0,
        StatusCode::FORBIDDEN
    );
    let minted = writer
        .api_key_create()
        .body(
            types::ApiKeyCreate::builder()
                .name("ok")
                .scopes(vec![types::Scope::Search]),
        )
        .send()
        .await
        .expect("a write token may mint a search key")
        .into_inner();
    // Deleting takes admin.
    assert_eq!(
        status_of(writer.api_key_delete().key_id(&minted.key.id).send().await).0,
        StatusCode::FORBIDDEN
    );
    server.stop().await;
}

#[tokio::test]
async fn organisations_are_isolated() {
    let server = TestServer::start().await;
    let a = server.org(true).await;
    let b = server.org(true).await;
    let client_a = server.admin_client(&a);
    let client_b = server.admin_client(&b);
    create_index(&client_a, "idx_archive", "Archive").await;
    ingest(
        &client_a,
        "idx_archive",
        vec![segment("m", 0.0, "secret plans of organisation a")],
    )
    .await;
    // Both may use the same public id; neither sees the other's.
    create_index(&client_b, "idx_archive", "Archive").await;
    ingest(
        &client_b,
        "idx_archive",
        vec![segment("m", 0.0, "plans of organisation b")],
    )
    .await;
    let hits = search(&client_b, "idx_archive", "secret plans")
        .await
        .unwrap()
        .hits;
    assert_eq!(hits.len(), 1);
    assert!(hits[0].text.contains("organisation b"));
    create_index(&client_a, "idx_only_a", "Archive").await;
    assert_eq!(
        status_of(client_b.index_view().index_id("idx_only_a").send().await).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(search(&client_b, "idx_only_a", "plans").await).0,
        StatusCode::NOT_FOUND
    );
    let listed = client_b.index_list().send().await.unwrap().into_inner();
    assert_eq!(listed.items.len(), 1);
    let (key_a, _) = server.api_key(&a, &[Scope::Read]).await;
    assert_eq!(
        status_of(client_b.api_key_view().key_id(&key_a).send().await).0,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn idempotency_replays_rejects_mismatch_and_in_flight() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let token = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let post = |key: &str, body: &str| {
        http.post(server.api("/indexes"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let first = post("k1", r#"{"id":"idx_once","name":"Once"}"#)
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().await.unwrap();
    let again = post("k1", r#"{"id":"idx_once","name":"Once"}"#)
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    let other = post("k1", r#"{"id":"idx_other","name":"Other"}"#)
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Without the key the same request is a real second create: a conflict.
    let conflict = http
        .post(server.api("/indexes"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"id":"idx_once","name":"Once"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(conflict.status(), StatusCode::CONFLICT);

    // A request still in flight (simulated by its record) answers 409 with Retry-After.
    use sea_orm::{ActiveValue::Set, EntityTrait};
    use videovector_server::db::entities::idempotency_record as record;
    let owner = format!("jwt:videovector|{}", org.operator.id);
    let body = r#"{"name":"Busy"}"#;
    let scope_key = videovector_server::http::idempotency::scope_key(
        &org.org_id,
        &owner,
        "POST",
        "/indexes",
        "busy",
    );
    let now = chrono::Utc::now();
    record::Entity::insert(record::ActiveModel {
        scope_key: Set(scope_key),
        fingerprint: Set(
            videovector_server::http::idempotency::BodyFingerprints::new(
                &server.server.state.pepper,
            )
            .of(body.as_bytes()),
        ),
        state: Set(record::RecordState::InFlight),
        status: Set(None),
        headers: Set(None),
        body: Set(None),
        created_at: Set(now),
        expires_at: Set(now + chrono::Duration::hours(24)),
    })
    .exec(server.db())
    .await
    .unwrap();
    let busy = post("busy", body).await.unwrap();
    assert_eq!(busy.status(), StatusCode::CONFLICT);
    assert_eq!(busy.headers()["retry-after"], "1");
    server.stop().await;
}

#[tokio::test]
async fn search_ranks_a_small_corpus_sensibly() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    create_index(&client, "idx_corpus", "Archive").await;
    let ids = ingest(
        &client,
        "idx_corpus",
        vec![
            segment(
                "a",
                0.0,
                "A fire broke out at the central station late last night",
            ),
            segment(
                "a",
                5.0,
                "Firefighters arrived at the station within minutes",
            ),
            segment("b", 0.0, "The football match ended in a draw"),
            segment(
                "b",
                5.0,
                "Station staff evacuated passengers from the platforms",
            ),
            segment("c", 0.0, "Stock markets rallied on Tuesday"),
        ],
    )
    .await
    .segment_ids;
    let hits = search(&client, "idx_corpus", "fire at the station")
        .await
        .unwrap()
        .hits;
    assert_eq!(
        hits[0].segment_id, ids[0],
        "the segment with both rare terms ranks first"
    );
    let returned: Vec<_> = hits.iter().map(|h| h.segment_id.clone()).collect();
    assert!(
        !returned.contains(&ids[4]),
        "a segment sharing no term matched: {returned:?}"
    );
    // "the football match" shares only the common word "the": it ranks below every
    // segment about the station.
    if let Some(pos) = returned.iter().position(|id| id == &ids[2]) {
        assert_eq!(pos, returned.len() - 1, "{returned:?}");
    }
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // Filters narrow hits.
    let filtered = client
        .index_search()
        .index_id("idx_corpus")
        .body(
            types::SearchRequest::builder()
                .query("station")
                .filters(types::SearchFilters::builder().media_ids(vec!["b".parse().unwrap()])),
        )
        .send()
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].segment_id, ids[3]);
    // Bad input is a 4xx problem, never a 500.
    let bad = ingest_raw(
        &server,
        &org,
        r#"{"segments":[{"media_id":"m","start_seconds":5,"end_seconds":1,"text":"x"}]}"#,
    )
    .await;
    assert_eq!(bad.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.1["errors"][0]["pointer"], "/segments/0/end_seconds");
    let bad = ingest_raw(&server, &org, r#"{"segments":[]}"#).await;
    assert_eq!(bad.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.1["errors"][0]["pointer"], "/segments");
    let bad = ingest_raw(&server, &org, r#"{"segments":[{"media_id":"m","#).await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST);
    server.stop().await;
}

async fn ingest_raw(
    server: &TestServer,
    org: &videovector_tests::TestOrg,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(server.api("/indexes/idx_corpus/segments"))
        .bearer_auth(server.token(org, &[Scope::Write]))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn mcp_config_needs_a_verified_session() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let config = server
        .admin_client(&org)
        .mcp_config_view()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        config.mcp_servers.videovector.url,
        format!("{}/mcp", server.url())
    );
    assert_eq!(
        config.mcp_servers.videovector.headers.x_api_key,
        "${VIDEOVECTOR_API_KEY}"
    );
    assert!(config
        .tools
        .iter()
        .any(|t| t.name == "index_search" && t.required_scope == types::Scope::Search));
    server.stop().await;
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_ingest_once() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    create_index(&client, "idx_retry", "Archive").await;
    let token = server.token(&org, &[Scope::Write]);
    let body = serde_json::json!({"wait": true, "segments": (0..200).map(|i| serde_json::json!({
        "media_id": "m", "start_seconds": i, "end_seconds": i + 1, "text": format!("line {i}")
    })).collect::<Vec<_>>()})
    .to_string();
    let http = reqwest::Client::new();
    let attempts = (0..6).map(|_| {
        http.post(server.api("/indexes/idx_retry/segments"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "batch-1")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    });
    let responses = join_spawned(attempts).await;
    let mut fresh = 0;
    for response in responses {
        let response = response.unwrap();
        match response.status() {
            StatusCode::CREATED if response.headers().get("idempotent-replayed").is_none() => {
                fresh += 1
            }
            StatusCode::CREATED => {}
            StatusCode::CONFLICT => assert_eq!(response.headers()["retry-after"], "1"),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one attempt may run");
    let index = client
        .index_view()
        .index_id("idx_retry")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(index.segment_count, 200);
    server.stop().await;
}

/// Runs futures concurrently on the runtime and collects their outputs in order.
async fn join_spawned<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}
