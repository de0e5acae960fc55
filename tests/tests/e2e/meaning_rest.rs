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

/// Polls the index until its re-embedding has finished (succeeded or failed).
pub(super) async fn settled_reembedding(
    caller: &Caller,
    server: &TestServer,
    index: &str,
) -> Value {
    for _ in 0..600 {
        let (status, seen) = caller.get(server, &format!("/indexes/{index}")).await;
        assert_eq!(status, StatusCode::OK, "{seen}");
        let state = &seen["reembedding"]["status"];
        if state == "succeeded" || state == "failed" {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the re-embedding of {index} did not finish");
}

/// Changing an index's embedder re-embeds every segment in the background, with its
/// progress on the index; searches switch at once when it is done, a failure leaves the
/// index as it was, and what cannot be done is refused.
#[tokio::test]
async fn changing_an_embedder_reembeds_in_the_background_and_switches_at_once() {
    let model = EmbeddingsServer::start().await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let caller = Caller::new(&server).await;
    let (status, _) = caller
        .post(
            &server,
            "/indexes",
            json!({"id": "idx_words", "name": "Words", "embedder": {"source": "none"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut segments: Vec<Value> = (0..599)
        .map(|i| {
            segment(
                &format!("m{}", i % 7),
                i as f64,
                &format!("filler line number {i} about the market"),
            )
        })
        .collect();
    segments.push(segment(
        "space",
        0.0,
        "the astronaut floated inside the station",
    ));
    for batch in segments.chunks(300) {
        let (status, _) = caller
            .post(
                &server,
                "/indexes/idx_words/segments",
                json!({"wait": true, "segments": batch}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let meaning =
        json!({"query": "weightless cosmonaut drifting aboard", "mode": "semantic", "top_k": 1});
    let (status, _) = caller
        .post(&server, "/indexes/idx_words/search", meaning.clone())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // To the built-in model: queued with its target and total, then done.
    let patch = |body: Value| {
        let (caller, server) = (&caller, &server);
        async move {
            let answer = caller
                .http
                .patch(server.api("/indexes/idx_words"))
                .header("X-API-Key", &caller.key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            (status, answer.json::<Value>().await.unwrap())
        }
    };
    let (status, changed) = patch(json!({"embedder": {"source": "built_in"}})).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert!(
        changed.get("embedder").is_none(),
        "not switched yet: {changed}"
    );
    assert_eq!(changed["reembedding"]["target"]["source"], "built_in");
    assert_eq!(changed["reembedding"]["total"], 600);
    let done = settled_reembedding(&caller, &server, "idx_words").await;
    assert_eq!(done["reembedding"]["status"], "succeeded", "{done}");
    assert_eq!(done["reembedding"]["done"], 600);
    assert_eq!(done["embedder"]["source"], "built_in");
    assert!(done["reembedding"].get("target").is_none());
    let (status, found) = caller
        .post(&server, "/indexes/idx_words/search", meaning.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids(&found), ["the astronaut floated inside the station"]);

    // To an endpoint that answers slowly: a second change meanwhile is refused, segments
    // ingested meanwhile are embedded too, and searches use the built-in model until the
    // switch.
    model.behave(Behaviour::Slow(150));
    let (status, changed) =
        patch(json!({"embedder": rest(&model.url, json!({"batch_size": 64}))})).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (status, problem) = patch(json!({"embedder": {"source": "built_in"}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "reembedding_in_progress");
    let (status, _) = caller
        .post(
            &server,
            "/indexes/idx_words/segments",
            json!({"wait": true, "segments": [segment("storm", 0.0, "heavy rain floods the streets")]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = caller
        .post(&server, "/indexes/idx_words/search", meaning.clone())
        .await;
    assert_eq!(status, StatusCode::OK);
    let texts_before = model.texts();
    let done = settled_reembedding(&caller, &server, "idx_words").await;
    assert_eq!(done["reembedding"]["status"], "succeeded", "{done}");
    assert_eq!(done["reembedding"]["done"], 601);
    assert_eq!(done["embedder"]["source"], "rest");
    assert_eq!(done["embedder"]["has_api_key"], true);
    assert!(
        model.texts() >= texts_before,
        "the endpoint embedded the segments"
    );
    model.behave(Behaviour::Fine);
    let calls = model.calls();
    let (_, found) = caller
        .post(
            &server,
            "/indexes/idx_words/search",
            json!({"query": "bad weather in the city", "mode": "semantic", "top_k": 1}),
        )
        .await;
    assert_eq!(ids(&found), ["heavy rain floods the streets"]);
    assert_eq!(
        model.calls(),
        calls + 1,
        "the query was embedded by the endpoint"
    );

    // A change that fails after its retries: the index keeps its embedder and says why.
    let (status, _) =
        patch(json!({"embedder": rest(&model.url, json!({"model": "other", "max_retries": 0}))}))
            .await;
    assert_eq!(status, StatusCode::OK);
    model.behave(Behaviour::FailTimes(1_000_000));
    let failed = settled_reembedding(&caller, &server, "idx_words").await;
    assert_eq!(failed["reembedding"]["status"], "failed", "{failed}");
    assert!(
        failed["reembedding"]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{failed}"
    );
    assert_eq!(failed["embedder"]["model"], "minilm-static");
    model.behave(Behaviour::Fine);
    let (status, found) = caller
        .post(&server, "/indexes/idx_words/search", meaning.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids(&found), ["the astronaut floated inside the station"]);

    // Vectors of the caller's own cannot replace stored segments' vectors; words only can.
    let (status, problem) =
        patch(json!({"embedder": {"source": "user_provided", "dimensions": 3}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "invalid_embedder");
    let (status, words) = patch(json!({"embedder": {"source": "none"}})).await;
    assert_eq!(status, StatusCode::OK, "{words}");
    assert!(words.get("embedder").is_none(), "{words}");
    let (status, _) = caller
        .post(&server, "/indexes/idx_words/search", meaning.clone())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, found) = caller
        .post(
            &server,
            "/indexes/idx_words/search",
            json!({"query": "astronaut"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&found), ["the astronaut floated inside the station"]);
    server.stop().await;
}
