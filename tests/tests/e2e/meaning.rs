//! Search by meaning through the API: an index's embedder (built-in by default, the
//! client's own vectors, or none), semantic and hybrid modes under filters, and what a
//! hostile or careless caller gets (vectors that do not fit, meaning asked of an index
//! without an embedder), on both databases.

use reqwest::StatusCode;
use serde_json::{json, Value};
use videovector_api_spec::Scope;
use videovector_tests::TestServer;

pub(crate) struct Caller {
    pub(crate) http: reqwest::Client,
    pub(crate) key: String,
}

impl Caller {
    pub(crate) async fn new(server: &TestServer) -> Caller {
        let org = server.org(true).await;
        let (_, key) = server.api_key(&org, &[Scope::Admin]).await;
        Caller {
            http: reqwest::Client::new(),
            key,
        }
    }

    pub(crate) async fn post(
        &self,
        server: &TestServer,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
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

    pub(crate) async fn get(&self, server: &TestServer, path: &str) -> (StatusCode, Value) {
        let answer = self
            .http
            .get(server.api(path))
            .header("X-API-Key", &self.key)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }
}

pub(crate) fn segment(media: &str, start: f64, text: &str) -> Value {
    json!({"media_id": media, "start_seconds": start, "end_seconds": start + 4.0, "text": text})
}

pub(crate) fn ids(answer: &Value) -> Vec<String> {
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

/// Every way in reaches meaning: cross-index search (its pages keep the mode and the
/// caller's vector), chat and runs; answers say how many segments matched, and group by
/// media on request.
#[tokio::test]
async fn every_search_path_searches_by_meaning_counts_and_groups() {
    let server = TestServer::start().await;
    let caller = Caller::new(&server).await;
    for (id, embedder) in [
        ("idx_news", json!({"source": "built_in"})),
        ("idx_talks", json!({"source": "built_in"})),
        ("idx_plain", json!({"source": "none"})),
        (
            "idx_clips",
            json!({"source": "user_provided", "dimensions": 2}),
        ),
    ] {
        let (status, _) = caller
            .post(
                &server,
                "/indexes",
                json!({"id": id, "name": id, "embedder": embedder}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _) = caller
        .post(
            &server,
            "/indexes/idx_news/segments",
            json!({"wait": true, "segments": [
                segment("space", 0.0, "the astronaut floated inside the station"),
                segment("space", 5.0, "the rocket reached orbit around the earth"),
                segment("space", 9.0, "mission control talked to the crew in orbit"),
                segment("storm", 0.0, "heavy rain floods the streets"),
                segment("kitchen", 0.0, "the chef chopped onions for the soup"),
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = caller
        .post(
            &server,
            "/indexes/idx_talks/segments",
            json!({"wait": true, "segments": [
                segment("lecture", 0.0, "satellites circle the planet far above us"),
                segment("lecture", 8.0, "the station kitchen serves onion soup"),
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Totals: words count the segments holding a query term, meaning counts them all.
    let (_, lexical) = caller
        .post(
            &server,
            "/indexes/idx_news/search",
            json!({"query": "orbit", "top_k": 1}),
        )
        .await;
    assert_eq!(lexical["total"], json!({"value": 2, "relation": "eq"}));
    assert_eq!(lexical["hits"].as_array().unwrap().len(), 1);
    let (_, semantic) = caller
        .post(
            &server,
            "/indexes/idx_news/search",
            json!({"query": "outer space travel", "mode": "semantic", "top_k": 1}),
        )
        .await;
    assert_eq!(semantic["total"], json!({"value": 5, "relation": "eq"}));
    let (_, filtered) = caller
        .post(
            &server,
            "/indexes/idx_news/search",
            json!({"query": "outer space travel", "mode": "hybrid",
                   "filters": {"media_ids": ["space", "storm"]}}),
        )
        .await;
    assert_eq!(filtered["total"], json!({"value": 4, "relation": "eq"}));

    // Grouped by media: one hit per media, the best of its segments, with their count.
    let (status, grouped) = caller
        .post(
            &server,
            "/indexes/idx_news/search",
            json!({"query": "outer space travel", "mode": "semantic", "group_by": "media"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{grouped}");
    let groups = grouped["hits"].as_array().unwrap();
    let media: Vec<&str> = groups
        .iter()
        .map(|h| h["media_id"].as_str().unwrap())
        .collect();
    assert_eq!(media.len(), 3, "{grouped}");
    assert_eq!(media[0], "space", "{grouped}");
    assert_eq!(groups[0]["media_matches"], 3);
    assert_eq!(groups[1]["media_matches"], 1);
    assert!(semantic["hits"][0].get("media_matches").is_none());
    let (_, two_groups) = caller
        .post(
            &server,
            "/indexes/idx_news/search",
            json!({"query": "orbit", "group_by": "media", "top_k": 2}),
        )
        .await;
    let only: Vec<&Value> = two_groups["hits"].as_array().unwrap().iter().collect();
    assert_eq!(only.len(), 1, "{two_groups}");
    assert_eq!(only[0]["media_matches"], 2);

    // Across indexes by meaning, a page at a time: the next page keeps the mode.
    let (status, first) = caller
        .post(
            &server,
            "/search",
            json!({"query": "spaceflight and satellites", "index_ids": ["idx_news", "idx_talks"],
                   "mode": "semantic", "page_size": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["total"], json!({"value": 7, "relation": "eq"}));
    let token = first["next_page_token"].as_str().unwrap().to_string();
    let (status, second) = caller.get(&server, &format!("/search/{token}")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let mut seen: Vec<String> = Vec::new();
    let mut last_score = f64::INFINITY;
    for hit in first["hits"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["hits"].as_array().unwrap())
    {
        assert_eq!(hit["found_by"], json!(["semantic"]), "{hit}");
        let score = hit["score"].as_f64().unwrap();
        assert!(
            score <= last_score,
            "pages keep the order: {first} {second}"
        );
        last_score = score;
        seen.push(hit["segment_id"].as_str().unwrap().to_string());
    }
    let texts = ids(&first);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("satellites") || t.contains("orbit")),
        "{first}"
    );
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4);

    // Meaning across an index without an embedder: a 422 naming it.
    let (status, problem) = caller
        .post(
            &server,
            "/search",
            json!({"query": "space", "index_ids": ["idx_news", "idx_plain"], "mode": "hybrid"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "no_embedder");
    assert!(problem["detail"].as_str().unwrap().contains("idx_plain"));

    // The caller's own vector across pages.
    let (status, _) = caller
        .post(
            &server,
            "/indexes/idx_clips/segments",
            json!({"wait": true, "segments": [
                {"media_id": "c", "start_seconds": 0.0, "end_seconds": 1.0, "text": "east", "vector": [1.0, 0.0]},
                {"media_id": "c", "start_seconds": 1.0, "end_seconds": 2.0, "text": "north-east", "vector": [1.0, 1.0]},
                {"media_id": "c", "start_seconds": 2.0, "end_seconds": 3.0, "text": "north", "vector": [0.0, 1.0]},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, first) = caller
        .post(
            &server,
            "/search",
            json!({"query": "east", "index_ids": ["idx_clips"], "mode": "semantic",
                   "vector": [1.0, 0.1], "page_size": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(ids(&first), ["east"]);
    let token = first["next_page_token"].as_str().unwrap().to_string();
    let (_, second) = caller.get(&server, &format!("/search/{token}")).await;
    assert_eq!(ids(&second), ["north-east"]);
    for vector in [
        json!([f64::MAX, 0.0]),
        json!([0.0, 0.0]),
        json!([1.0, 0.0, 0.0]),
    ] {
        let (status, problem) = caller
            .post(
                &server,
                "/search",
                json!({"query": "east", "index_ids": ["idx_clips"], "mode": "semantic",
                       "vector": vector.clone()}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{vector}: {problem}"
        );
        assert_eq!(problem["code"], "invalid_vector");
    }

    // Chat retrieves by meaning on request: words alone find nothing here.
    let question = |mode: &str| {
        json!({"messages": [{"role": "user", "content": "weightless cosmonaut drifting aboard"}],
               "index_ids": ["idx_news"], "top_k": 1, "mode": mode})
    };
    let (_, by_words) = caller
        .post(&server, "/chat/completions", question("lexical"))
        .await;
    assert_eq!(by_words["citations"], json!([]), "{by_words}");
    let (status, by_meaning) = caller
        .post(&server, "/chat/completions", question("semantic"))
        .await;
    assert_eq!(status, StatusCode::OK, "{by_meaning}");
    assert_eq!(
        by_meaning["citations"][0]["text"],
        "the astronaut floated inside the station"
    );

    // A run keeps its mode, and a mode its index cannot serve is refused when it is made.
    let (status, prompt) = caller
        .post(
            &server,
            "/prompts",
            json!({"name": "Space", "query_template": "weightless {{who}} drifting aboard",
                   "variables": ["who"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{prompt}");
    let run_of = |index: &str, mode: &str| {
        json!({"prompt_id": prompt["id"], "index_id": index, "variables": {"who": "cosmonaut"},
               "top_k": 1, "mode": mode})
    };
    let (status, run) = caller
        .post(&server, "/runs", run_of("idx_news", "hybrid"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["mode"], "hybrid");
    assert_eq!(run["semantic_ratio"], 0.8);
    let run_id = run["id"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..200 {
        let (_, seen) = caller.get(&server, &format!("/runs/{run_id}")).await;
        if seen["status"] == "succeeded" || seen["status"] == "failed" {
            done = seen;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["result"]["citations"][0]["text"],
        "the astronaut floated inside the station"
    );
    for index in ["idx_plain", "idx_clips"] {
        let (status, problem) = caller
            .post(&server, "/runs", run_of(index, "semantic"))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{index}: {problem}"
        );
    }
    server.stop().await;
}
