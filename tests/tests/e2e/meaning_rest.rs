//! The `rest` embedder against a real OpenAI-compatible server (ours, from the built-in
//! model): its settings tried at creation, its API key sealed and never returned, batches,
//! and each way such a server fails (slow, 500 for a while or for good, vectors of other
//! dimensions), which must leave nothing half-stored and say why.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use videovector_tests::{
    embeddings_server::{Behaviour, EmbeddingsServer, API_KEY},
    TestServer,
};

use super::meaning::{ids, segment, Caller};

fn rest(url: &str, extra: Value) -> Value {
    let mut embedder = json!({"source": "rest", "url": url, "model": "minilm-static",
                              "dimensions": 128, "api_key": API_KEY});
    for (k, v) in extra.as_object().unwrap() {
        embedder[k] = v.clone();
    }
    embedder
}

#[tokio::test]
async fn a_rest_embedder_embeds_through_its_endpoint_and_its_failures_say_why() {
    let model = EmbeddingsServer::start().await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let caller = Caller::new(&server).await;
    let (status, index) = caller
        .post(
            &server,
            "/indexes",
            json!({"id": "idx_rest", "name": "Rest",
                   "embedder": rest(&model.url, json!({"batch_size": 2, "timeout_seconds": 1, "max_retries": 2}))}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{index}");
    assert_eq!(
        index["embedder"],
        json!({"source": "rest", "model": "minilm-static", "dimensions": 128, "url": model.url,
               "batch_size": 2, "timeout_seconds": 1, "max_retries": 2, "has_api_key": true})
    );
    assert_eq!(model.calls(), 1, "the settings were tried once");
    // The key is sealed at rest and never answered.
    let row = server
        .db()
        .query_one(Statement::from_string(
            server.db().get_database_backend(),
            "SELECT embedder, embedder_secret FROM indexes WHERE id = 'idx_rest'",
        ))
        .await
        .unwrap()
        .unwrap();
    let embedder: String = row.try_get_by_index(0).unwrap();
    let secret: String = row.try_get_by_index(1).unwrap();
    assert!(
        !embedder.contains(API_KEY) && !secret.contains(API_KEY),
        "{secret}"
    );
    let (_, listed) = caller.get(&server, "/indexes").await;
    assert!(!listed.to_string().contains(API_KEY));

    // Five segments in batches of two: three calls; then found by meaning.
    let (status, stored) = caller
        .post(
            &server,
            "/indexes/idx_rest/segments",
            json!({"wait": true, "segments": [
                segment("space", 0.0, "the astronaut floated inside the station"),
                segment("storm", 0.0, "heavy rain floods the streets"),
                segment("kitchen", 0.0, "the chef chopped onions for the soup"),
                segment("storm", 10.0, "weather forecast for the city"),
                segment("market", 0.0, "traders shout prices across the square"),
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(model.calls(), 4);
    let search =
        json!({"query": "weightless cosmonaut drifting aboard", "mode": "semantic", "top_k": 1});
    let (status, found) = caller
        .post(&server, "/indexes/idx_rest/search", search.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids(&found), ["the astronaut floated inside the station"]);

    // Failing for a while: retried with backoff, and the ingest succeeds.
    model.behave(Behaviour::FailTimes(2));
    let before = model.calls();
    let (status, _) = caller
        .post(
            &server,
            "/indexes/idx_rest/segments",
            json!({"segments": [segment("space", 20.0, "the capsule splashed down")]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(model.calls() - before, 3);

    // Failing for good, slow past the timeout, or answering the wrong shape: a 502 that
    // says why, and nothing stored.
    let segments_now = || async {
        let (_, index) = caller.get(&server, "/indexes/idx_rest").await;
        index["segment_count"].as_u64().unwrap()
    };
    let count = segments_now().await;
    for (behaviour, why) in [
        (
            Behaviour::FailTimes(10),
            "HTTP 500 Internal Server Error (after 3 attempts)",
        ),
        (Behaviour::Slow(1_500), "no answer within 1 s"),
        (Behaviour::WrongDimensions, "vectors of 129 dimensions"),
    ] {
        model.behave(behaviour);
        let (status, problem) = caller
            .post(
                &server,
                "/indexes/idx_rest/segments",
                json!({"segments": [segment("x", 0.0, "anything at all")]}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{behaviour:?}: {problem}");
        assert_eq!(problem["code"], "embedder_failed");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(why), "{behaviour:?}: {detail}");
        assert!(!detail.contains(API_KEY));
        if behaviour == Behaviour::WrongDimensions {
            let (status, problem) = caller
                .post(&server, "/indexes/idx_rest/search", search.clone())
                .await;
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{problem}");
        }
    }
    assert_eq!(segments_now().await, count);
    model.behave(Behaviour::Fine);

    // Settings that cannot work are refused at creation, saying why.
    let refused = |embedder: Value| {
        let caller = &caller;
        let server = &server;
        async move {
            let (status, problem) = caller
                .post(
                    server,
                    "/indexes",
                    json!({"name": "Bad", "embedder": embedder.clone()}),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{embedder}: {problem}"
            );
            assert_eq!(problem["code"], "invalid_embedder", "{problem}");
            problem["detail"].as_str().unwrap().to_string()
        }
    };
    assert!(refused(rest(&model.url, json!({"dimensions": 64})))
        .await
        .contains("vectors of 128 dimensions"));
    assert!(refused(rest(&model.url, json!({"api_key": "sk-wrong"})))
        .await
        .contains("HTTP 401"));
    let mut keyless = rest(&model.url, json!({}));
    keyless.as_object_mut().unwrap().remove("api_key");
    assert!(refused(keyless).await.contains("HTTP 401"));
    let mut modelless = rest(&model.url, json!({}));
    modelless.as_object_mut().unwrap().remove("model");
    assert!(refused(modelless).await.contains("/embedder/model"));
    assert!(refused(json!({"source": "built_in", "url": model.url}))
        .await
        .contains("/embedder/url"));
    server.stop().await;

    // A server that keeps outbound calls off private networks names the setting.
    let strict = TestServer::start().await;
    let caller = Caller::new(&strict).await;
    let (status, problem) = caller
        .post(
            &strict,
            "/indexes",
            json!({"name": "Local", "embedder": rest(&model.url, json!({}))}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("VIDEOVECTOR_ALLOW_PRIVATE_TARGETS"),
        "{problem}"
    );
    strict.stop().await;
}
