//! A property-based attacker over every operation in the committed spec (issue 9): for each
//! operation, proptest builds requests from the operation's declared path parameters, query
//! parameters and body schema, filled with what a hostile caller sends: random Unicode with
//! U+0000, over-long strings, huge and malformed numbers, deep nesting, odd path ids, NUL
//! keys, other types than declared. Every answer must be a success or a 4xx problem: never a
//! 5xx, never a dropped connection; the harness holds each answer to the spec as well. Runs
//! on SQLite and, with `VIDEOVECTOR_TEST_DATABASE_URL`, on PostgreSQL.

use proptest::{
    prelude::*,
    strategy::BoxedStrategy,
    test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner},
};
use serde_json::Value;
use videovector_api_spec::{contract::Contract, problem::FieldLocation, Scope};
use videovector_tests::TestServer;

/// Cases per operation; `VIDEOVECTOR_HOSTILE_CASES` raises it for a longer hunt.
const DEFAULT_CASES: u32 = 100;

/// One operation as the spec declares it.
struct Operation {
    id: String,
    method: reqwest::Method,
    path: String,
    /// (name, schema) of each path parameter.
    path_params: Vec<(String, Value)>,
    /// (name, schema) of each query parameter.
    query_params: Vec<(String, Value)>,
    body: Option<Value>,
}

/// A generated request.
#[derive(Debug, Clone)]
struct Case {
    path: String,
    query: Vec<(String, String)>,
    body: Option<String>,
}

/// `schema` with its top-level `$ref` (through the contract's one resolver) and first
/// `allOf` followed; nested ones are followed as the generator reaches them.
fn resolve<'a>(contract: &'a Contract, schema: &'a Value) -> &'a Value {
    if let Some(target) = schema["$ref"].as_str().and_then(|r| contract.lookup(r)) {
        return resolve(contract, target);
    }
    if let Some(first) = schema["allOf"].as_array().and_then(|all| all.first()) {
        return resolve(contract, first);
    }
    schema
}

fn operations(contract: &Contract) -> Vec<Operation> {
    let mut out: Vec<Operation> = contract
        .operations()
        .iter()
        .map(|operation| {
            let params = |location| {
                operation
                    .parameters_in(location)
                    .map(|p| (p.name.clone(), resolve(contract, &p.schema).clone()))
                    .collect()
            };
            Operation {
                id: operation.id().to_string(),
                method: operation.method.as_str().parse().expect("a method"),
                path: operation.rule.path.clone(),
                path_params: params(FieldLocation::Path),
                query_params: params(FieldLocation::Query),
                body: operation
                    .body
                    .as_ref()
                    .filter(|b| b.schema.is_object())
                    .map(|b| resolve(contract, &b.schema).clone()),
            }
        })
        .collect();
    // Deletions last, so the seeded resources serve the other operations first.
    out.sort_by_key(|o| o.method == reqwest::Method::DELETE);
    out
}

/// Strings a hostile caller sends.
fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        2 => (prop::collection::vec(any::<char>(), 0..12), 0usize..12).prop_map(|(chars, at)| {
            let mut s = String::from_iter(chars);
            let at = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
            s.insert(at, '\0');
            s
        }),
        1 => (1usize..300_000).prop_map(|n| "ж".repeat(n)),
        2 => prop::sample::select(vec![
            "", " ", "\t\n", "..", "../../etc/passwd", "%00", "\u{feff}", "\u{202e}evil",
            "🦀🦀🦀", "null", "{{a}}", "' OR 1=1 --", "idx_live", "-1", "0", "true",
            "99999999999999999999999999999999", "NaN", "\\", "\"", "/",
        ])
        .prop_map(str::to_string),
    ]
    .boxed()
}

/// JSON numbers a hostile caller sends, as text (some beyond any Rust number type).
fn hostile_number() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        prop::sample::select(vec![
            "1e309",
            "-1e400",
            "18446744073709551616",
            "-9223372036854775809",
            "-0",
            "0.5",
            "1e-400",
            "4294967296",
        ])
        .prop_map(str::to_string),
        (1usize..2_000).prop_map(|n| "9".repeat(n)),
    ]
    .boxed()
}

/// Any JSON value, hostile in shape: the wrong type, deep nesting, NUL keys, long arrays.
fn hostile_json() -> BoxedStrategy<String> {
    prop_oneof![
        3 => hostile_string().prop_map(|s| json_string(&s)),
        2 => hostile_number(),
        1 => Just("null".to_string()),
        1 => Just("true".to_string()),
        1 => (1usize..200_000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        1 => (1usize..5_000).prop_map(|n| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))),
        1 => Just("{\"\\u0000\":1}".to_string()),
        1 => (1usize..50_000).prop_map(|n| format!("[{}0]", "0,".repeat(n))),
    ]
    .boxed()
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Values for `schema`: mostly hostile, sometimes of the declared shape, so requests also
/// get past the first check and reach deeper ones.
fn value_for(
    contract: &Contract,
    schema: &Value,
    seeds: &Seeds,
    depth: u32,
) -> BoxedStrategy<String> {
    let schema = resolve(contract, schema);
    let declared: BoxedStrategy<String> = match schema["type"].as_str() {
        _ if depth > 4 => hostile_json(),
        Some("object") if schema["properties"].is_object() => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let members: Vec<BoxedStrategy<Option<String>>> = schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, property)| {
                    let key = json_string(name);
                    let weight = if required.contains(&name.as_str()) {
                        0.95
                    } else {
                        0.5
                    };
                    let value = match seeds.get(name.as_str()) {
                        // A seeded id half the time, so the request reaches past "unknown".
                        Some(id) => prop_oneof![
                            Just(json_string(id)),
                            value_for(contract, property, seeds, depth + 1)
                        ]
                        .boxed(),
                        None => value_for(contract, property, seeds, depth + 1),
                    };
                    prop::option::weighted(weight, value)
                        .prop_map(move |v| v.map(|v| format!("{key}:{v}")))
                        .boxed()
                })
                .collect();
            members
                .prop_map(|members| {
                    let present: Vec<String> = members.into_iter().flatten().collect();
                    format!("{{{}}}", present.join(","))
                })
                .boxed()
        }
        Some("array") => prop::collection::vec(
            value_for(contract, &schema["items"], seeds, depth + 1),
            0..4,
        )
        .prop_map(|items| format!("[{}]", items.join(",")))
        .boxed(),
        Some("string") => match schema["enum"].as_array() {
            Some(values) => prop::sample::select(values.clone())
                .prop_map(|v| v.to_string())
                .boxed(),
            None => hostile_string().prop_map(|s| json_string(&s)).boxed(),
        },
        Some("integer") | Some("number") => {
            prop_oneof![(0i64..100).prop_map(|n| n.to_string()), hostile_number()].boxed()
        }
        Some("boolean") => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        _ => hostile_json(),
    };
    prop_oneof![3 => declared, 1 => hostile_json()].boxed()
}

/// A query or path value for `schema`, as text before percent-encoding: at most 1,500
/// characters (18 KB encoded), so the URL stays within what an HTTP client builds (64 KiB).
fn text_for(schema: &Value) -> BoxedStrategy<String> {
    url_text_for(schema)
        .prop_map(|s| s.chars().take(1_500).collect())
        .boxed()
}

fn url_text_for(schema: &Value) -> BoxedStrategy<String> {
    match schema["type"].as_str() {
        Some("integer") | Some("number") => prop_oneof![
            (0i64..100).prop_map(|n| n.to_string()),
            hostile_number(),
            hostile_string()
        ]
        .boxed(),
        _ => match schema["enum"].as_array() {
            Some(values) => prop_oneof![
                prop::sample::select(values.clone())
                    .prop_map(|v| v.as_str().unwrap_or_default().to_string()),
                hostile_string()
            ]
            .boxed(),
            None => hostile_string(),
        },
    }
}

/// A long value cut for a failure message, with its length.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(300) {
        Some((end, _)) => format!("{}... ({} chars)", &s[..end], s.chars().count()),
        None => s.to_string(),
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn case_for(contract: &Contract, operation: &Operation, seeds: &Seeds) -> BoxedStrategy<Case> {
    let template = operation.path.clone();
    let path_values: Vec<BoxedStrategy<(String, String)>> = operation
        .path_params
        .iter()
        .map(|(name, schema)| {
            let name = name.clone();
            // A third of the ids are seeded live ones, so the operation reaches its handler.
            let live = seeds.get(name.as_str()).cloned().unwrap_or_default();
            prop_oneof![
                1 => Just(live),
                2 => text_for(schema),
            ]
            .prop_map(move |value| (name.clone(), value))
            .boxed()
        })
        .collect();
    let queries: Vec<BoxedStrategy<Option<(String, String)>>> = operation
        .query_params
        .iter()
        .map(|(name, schema)| {
            let name = name.clone();
            prop::option::weighted(0.6, text_for(schema))
                .prop_map(move |v| v.map(|v| (name.clone(), v)))
                .boxed()
        })
        .collect();
    let body: BoxedStrategy<Option<String>> = match &operation.body {
        Some(schema) => value_for(contract, schema, seeds, 0).prop_map(Some).boxed(),
        None => Just(None).boxed(),
    };
    (path_values, queries, body)
        .prop_map(move |(values, queries, body)| {
            let mut path = template.clone();
            for (name, value) in values {
                path = path.replace(&format!("{{{name}}}"), &encode(&value));
            }
            Case {
                path,
                query: queries.into_iter().flatten().collect(),
                body,
            }
        })
        .boxed()
}

/// What the server answered, or why there was no answer.
async fn send(
    http: &reqwest::Client,
    server: &TestServer,
    token: &str,
    operation: &Operation,
    case: &Case,
) -> Result<(u16, String, Vec<u8>), String> {
    let mut url = server.api(&case.path);
    if !case.query.is_empty() {
        let pairs: Vec<String> = case
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        url = format!("{url}?{}", pairs.join("&"));
    }
    let mut request = http
        .request(operation.method.clone(), url)
        .bearer_auth(token);
    if let Some(body) = &case.body {
        request = request
            .header("content-type", "application/json")
            .body(body.clone());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("the body broke off: {e}"))?;
    Ok((status, content_type, body.to_vec()))
}

/// The id of one live resource of each kind, by the parameter or field name that takes it.
type Seeds = std::collections::HashMap<&'static str, String>;

/// Creates one live resource of each kind for the cases to act on.
async fn seed(server: &TestServer, token: &str) -> Seeds {
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let request = http.post(server.api(&path)).bearer_auth(token).json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(
                response.status().is_success(),
                "seeding {path}: {}",
                response.status()
            );
            response.json::<Value>().await.unwrap()
        }
    };
    let text = |v: &Value| v.as_str().expect("an id").to_string();
    let mut seeds = Seeds::new();
    post(
        "/indexes".into(),
        serde_json::json!({ "id": "idx_live", "name": "Live" }),
    )
    .await;
    seeds.insert("index_id", "idx_live".into());
    let segments: Vec<Value> = (0..20)
        .map(|i| {
            serde_json::json!({ "media_id": format!("m{}", i % 3), "start_seconds": i,
            "end_seconds": i + 1, "text": format!("the bridge reopened, take {i}") })
        })
        .collect();
    post(
        "/indexes/idx_live/segments".into(),
        serde_json::json!({ "segments": segments, "wait": true }),
    )
    .await;
    let prompt = post(
        "/prompts".into(),
        serde_json::json!({ "name": "live", "query_template": "news about {{topic}}",
            "variables": ["topic"] }),
    )
    .await;
    seeds.insert("prompt_id", text(&prompt["id"]));
    let key = post(
        "/api-keys".into(),
        serde_json::json!({ "name": "live", "scopes": ["read"] }),
    )
    .await;
    seeds.insert("key_id", text(&key["key"]["id"]));
    let healthz = format!("{}/healthz", server.url());
    let connector = post(
        "/connectors".into(),
        serde_json::json!({ "name": "live", "kind": "http", "files": [{ "url": healthz,
            "format": "webvtt", "media_id": "m1", "index_id": "idx_live" }] }),
    )
    .await;
    seeds.insert("connector_id", text(&connector["id"]));
    let webhook = post(
        "/webhooks".into(),
        serde_json::json!({ "url": healthz, "event_types": ["run.succeeded"] }),
    )
    .await;
    seeds.insert("webhook_id", text(&webhook["webhook"]["id"]));
    let run = post(
        "/runs".into(),
        serde_json::json!({ "prompt_id": seeds["prompt_id"], "index_id": "idx_live",
            "variables": { "topic": "bridge" } }),
    )
    .await;
    seeds.insert("run_id", text(&run["id"]));
    let job = post(
        format!("/connectors/{}/sync", seeds["connector_id"]),
        serde_json::json!({}),
    )
    .await;
    seeds.insert("job_id", text(&job["id"]));
    let page = post(
        "/search".into(),
        serde_json::json!({ "query": "bridge", "index_ids": ["idx_live"], "page_size": 2 }),
    )
    .await;
    seeds.insert("page_token", text(&page["next_page_token"]));
    seeds
}

#[test]
fn every_operation_answers_hostile_input_with_a_problem_or_a_success() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, token, seeds) = runtime.block_on(async {
        let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
        let org = server.org(true).await;
        let token = server.token(&org, &[Scope::Admin]);
        let seeds = seed(&server, &token).await;
        (server, token, seeds)
    });
    let contract = Contract::committed();
    let cases = std::env::var("VIDEOVECTOR_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let http = reqwest::Client::new();
    // The runner's test is a `Fn`, so the tallies are cells.
    let sent = std::cell::Cell::new(0usize);
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
    let operations = operations(contract);
    for operation in &operations {
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 200,
            ..Config::default()
        };
        // Deterministic: the same cases on every run, so a failure reproduces.
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let result = runner.run(&case_for(contract, operation, &seeds), |case| {
            let answer = runtime.block_on(send(&http, &server, &token, operation, &case));
            sent.set(sent.get() + 1);
            let (status, content_type, body) = answer.map_err(TestCaseError::fail)?;
            *statuses.borrow_mut().entry(status).or_default() += 1;
            prop_assert!(
                status < 500,
                "{} answered {status}: {}",
                operation.id,
                String::from_utf8_lossy(&body)
            );
            if status >= 400 {
                prop_assert_eq!(content_type.as_str(), "application/problem+json");
                let problem: Value = serde_json::from_slice(&body)
                    .map_err(|e| TestCaseError::fail(format!("a problem that is not JSON: {e}")))?;
                prop_assert!(problem["code"].is_string(), "{}", problem);
            }
            Ok(())
        });
        if let Err(error) = result {
            let shown = match error {
                TestError::Fail(reason, case) => format!(
                    "{reason}\nsmallest failing case: {} {} body {}",
                    shorten(&case.path),
                    shorten(&format!("{:?}", case.query)),
                    shorten(&format!("{:?}", case.body))
                ),
                other => other.to_string(),
            };
            panic!(
                "{} ({} {}): {shown}",
                operation.id, operation.method, operation.path
            );
        }
    }
    let statuses = statuses.into_inner();
    println!(
        "hostile inputs: {} requests over {} operations; statuses {statuses:?}",
        sent.get(),
        operations.len()
    );
    assert!(statuses.keys().any(|s| *s < 300), "no case ever succeeded");
    runtime.block_on(server.stop());
}
