//! Search by meaning through the API: an index's embedder (built-in by default, the
//! client's own vectors, or none), semantic and hybrid modes under filters, and what a
//! hostile or careless caller gets (vectors that do not fit, meaning asked of an index
//! without an embedder), on both databases.

use reqwest::StatusCode;
use serde_json::{json, Value};
use videovector_api_spec::Scope;
use videovector_tests::TestServer;

struct Caller {
    http: reqwest::Client,
    key: String,
}

impl Caller {
    async fn new(server: &TestServer) -> Caller {
        let org = server.org(true).await;
        let (_, key) = server.api_key(&org, &[Scope::Admin]).await;
        Caller {
            http: reqwest::Client::new(),
            key,
        }
    }

    async fn post(&self, server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
        let answer = self
            .http
            .post(server.api(path))
            .header("X-API-Key", &self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }
}

fn segment(media: &str, start: f64, text: &str) -> Value {
    json!({"media_id": media, "start_seconds": start, "end_seconds": start + 4.0, "text": text})
}

fn ids(answer: &Value) -> Vec<String> {
    answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_built_in_embedder_finds_what_was_meant_and_hybrid_says_who_found_it() {
    let server = TestServer::start().await;
    let caller = Caller::new(&server).await;
    let (status, index) = caller
        .post(
            &server,
            "/indexes",
            json!({"id": "idx_news", "name": "News"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{index}");
    assert_eq!(index["embedder"]["source"], "built_in");
    assert_eq!(index["embedder"]["dimensions"], 128);
    let (status, _) = caller
        .post(
            &server,
            "/indexes/idx_news/segments",
            json!({"wait": true, "segments": [
                segment("space", 0.0, "the astronaut floated inside the station"),
                segment("storm", 0.0, "heavy rain floods the streets"),
                segment("kitchen", 0.0, "the chef chopped onions for the soup"),
                segment("storm", 10.0, "weather forecast for the city"),
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Words alone do not find the astronaut; meaning does, first.
    let query = "weightless cosmonaut drifting aboard";
    let (_, lexical) = caller
        .post(&server, "/indexes/idx_news/search", json!({"query": query}))
        .await;
    assert!(ids(&lexical).is_empty(), "{lexical}");
    let (status, semantic) = caller
        .post(
            &server,
            "/indexes/idx_news/search",
            json!({"query": query, "mode": "semantic", "top_k": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{semantic}");
    assert_eq!(
        ids(&semantic)[0],
        "the astronaut floated inside the station"
    );
    assert_eq!(semantic["hits"][0]["found_by"], json!(["semantic"]));

    // A score floor leaves out what is not near enough: here, all but the astronaut.
    let best = semantic["hits"][0]["score"].as_f64().unwrap();
    let second = semantic["hits"][1]["score"].as_f64().unwrap();
    let floor = (best + second) / 2.0;
    let (_, floored) = caller
        .post(
            &server,
            "/indexes/idx_news/search",
            json!({"query": query, "mode": "semantic", "min_score": floor}),
        )
        .await;
    assert_eq!(ids(&floored), ["the astronaut floated inside the station"]);

    // Filters hold on the semantic side.
    let (_, filtered) = caller
        .post(
            &server,
            "/indexes/idx_news/search",
            json!({"query": query, "mode": "semantic", "filters": {"media_ids": ["kitchen"]}}),
        )
        .await;
    assert_eq!(ids(&filtered), ["the chef chopped onions for the soup"]);

    // Hybrid: the word match and the meaning match both come back, each marked.
    let (_, hybrid) = caller
        .post(
            &server,
            "/indexes/idx_news/search",
            json!({"query": "bad weather in the city", "mode": "hybrid", "semantic_ratio": 0.5}),
        )
        .await;
    let hits = hybrid["hits"].as_array().unwrap();
    let found_by = |text: &str| {
        hits.iter()
            .find(|h| h["text"] == text)
            .map(|h| h["found_by"].clone())
    };
    assert_eq!(
        found_by("weather forecast for the city"),
        Some(json!(["lexical", "semantic"]))
    );
    assert!(
        found_by("heavy rain floods the streets").is_some(),
        "{hybrid}"
    );
    server.stop().await;
}

#[tokio::test]
async fn user_provided_vectors_must_fit_and_meaning_needs_an_embedder() {
    let server = TestServer::start().await;
    let caller = Caller::new(&server).await;
    let (status, index) = caller
        .post(
            &server,
            "/indexes",
            json!({"id": "idx_clips", "name": "Clips",
                   "embedder": {"source": "user_provided", "dimensions": 3}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{index}");
    assert_eq!(
        index["embedder"],
        json!({"source": "user_provided", "dimensions": 3})
    );
    let with = |text: &str, vector: Value| {
        let mut s = segment("clip", 0.0, text);
        s["vector"] = vector;
        s
    };
    let (status, _) = caller
        .post(
            &server,
            "/indexes/idx_clips/segments",
            json!({"wait": true, "segments": [
                with("a red sunset over the sea", json!([1.0, 0.0, 0.0])),
                with("a green forest", json!([0.0, 1.0, 0.0])),
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, found) = caller
        .post(
            &server,
            "/indexes/idx_clips/search",
            json!({"query": "sunset", "mode": "semantic", "vector": [0.9, 0.1, 0.0], "top_k": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids(&found), ["a red sunset over the sea"]);

    // What a careless or hostile caller sends.
    for (vector, why) in [
        (None, "required"),
        (Some(json!([1.0, 0.0])), "3 dimensions"),
        (Some(json!([0.0, 0.0, 0.0])), "all zeros"),
        // Valid JSON, and a `float` by the schema, but no f32 holds it.
        (Some(json!([1e39, 0.0, 1.0])), "finite"),
    ] {
        let sent = match &vector {
            Some(vector) => with("x", vector.clone()),
            None => segment("clip", 0.0, "x"),
        };
        let body = json!({"segments": [sent]});
        let (status, problem) = caller
            .post(&server, "/indexes/idx_clips/segments", body)
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{vector:?}: {problem}"
        );
        assert_eq!(problem["code"], "invalid_segments");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
    }
    let (status, problem) = caller
        .post(
            &server,
            "/indexes/idx_clips/search",
            json!({"query": "sunset", "mode": "semantic", "vector": [1.0]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "invalid_vector");

    // An index without an embedder: words only, and a vector is refused at ingest.
    let (_, plain) = caller
        .post(
            &server,
            "/indexes",
            json!({"id": "idx_plain", "name": "Plain", "embedder": {"source": "none"}}),
        )
        .await;
    assert!(plain.get("embedder").is_none(), "{plain}");
    let (status, problem) = caller
        .post(
            &server,
            "/indexes/idx_plain/search",
            json!({"query": "sunset", "mode": "hybrid"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "no_embedder");
    let (status, problem) = caller
        .post(
            &server,
            "/indexes/idx_plain/segments",
            json!({"segments": [with("x", json!([1.0, 0.0, 0.0]))]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "invalid_segments");

    // Settings that contradict themselves.
    for embedder in [
        json!({"source": "user_provided"}),
        json!({"source": "built_in", "dimensions": 64}),
        json!({"source": "user_provided", "dimensions": 5000}),
    ] {
        let (status, problem) = caller
            .post(
                &server,
                "/indexes",
                json!({"name": "Bad", "embedder": embedder.clone()}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{embedder}: {problem}"
        );
    }
    server.stop().await;
}
