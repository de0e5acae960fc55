//! Keys restricted to indexes (issue 23): every operation holds a key's `index_ids` as its
//! `x-index-access` in the committed spec declares, tried with another index by path, by
//! body, by page token, through runs and lists, and through MCP tools and resources; the cap
//! on hits (`max_top_k`). Hostile restriction values are in `key_restrictions`.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use videovector_api_spec::{
    contract::Contract, index_access::IndexAccess, rules::OperationRule, security::API_KEY_SCHEME,
    Scope,
};
use videovector_tests::{answer, TestOrg, TestServer};

const MINE: &str = "idx_mine";
const THEIRS: &str = "idx_theirs";
/// In the key's list, but never created: a path naming it passes the door and finds nothing.
const UNBORN: &str = "idx_unborn";

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    credential: &Credential<'_>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, server.api(path));
    request = match credential {
        Credential::Key(secret) => request.header("X-API-Key", *secret),
        Credential::Bearer(token) => request.bearer_auth(token),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request).await
}

enum Credential<'a> {
    Key(&'a str),
    Bearer(String),
}

/// Creates a key through the API with `extra` fields; returns its view and its secret.
async fn create_key(
    server: &TestServer,
    org: &TestOrg,
    scopes: &[&str],
    extra: Value,
) -> (Value, String) {
    let mut body = json!({"name": "restricted", "scopes": scopes});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let admin = Credential::Bearer(server.token(org, &[Scope::Admin]));
    let (status, created) = send(server, Method::POST, "/api-keys", &admin, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    (created["key"].clone(), secret)
}

/// An index with `texts` as segments of one media, searchable on return.
async fn index_with(server: &TestServer, admin: &Credential<'_>, id: &str, texts: &[&str]) {
    let (status, body) = send(
        server,
        Method::POST,
        "/indexes",
        admin,
        Some(json!({"id": id, "name": id})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let segments: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            json!({"media_id": format!("{id}-media"), "start_seconds": i as f64 * 10.0,
                   "end_seconds": i as f64 * 10.0 + 5.0, "text": text})
        })
        .collect();
    let (status, body) = send(
        server,
        Method::POST,
        &format!("/indexes/{id}/segments"),
        admin,
        Some(json!({"segments": segments, "wait": true})),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
}

/// What the matrix works with: two indexes, a prompt, a run over each, a page token of
/// each, and an admin key restricted to [`MINE`] and [`UNBORN`].
struct World {
    server: TestServer,
    org: TestOrg,
    restricted_id: String,
    restricted: String,
    prompt_id: String,
    my_run: String,
    their_run: String,
    my_page_token: String,
    their_page_token: String,
}

async fn world() -> World {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = Credential::Bearer(server.token(&org, &[Scope::Admin]));
    let texts = [
        "the bridge at dawn",
        "a bridge in fog",
        "bridge traffic at night",
    ];
    index_with(&server, &admin, MINE, &texts).await;
    index_with(&server, &admin, THEIRS, &texts).await;
    let (key, restricted) = create_key(
        &server,
        &org,
        &["admin"],
        json!({"index_ids": [UNBORN, MINE]}),
    )
    .await;
    assert_eq!(key["index_ids"], json!([MINE, UNBORN]), "kept sorted");
    let (status, prompt) = send(
        &server,
        Method::POST,
        "/prompts",
        &admin,
        Some(json!({"name": "bridges", "query_template": "bridge", "instructions": "Answer."})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{prompt}");
    let prompt_id = prompt["id"].as_str().unwrap().to_string();
    let mut runs = Vec::new();
    for index in [MINE, THEIRS] {
        let body = json!({"prompt_id": prompt_id, "index_id": index});
        let (status, run) = send(&server, Method::POST, "/runs", &admin, Some(body)).await;
        assert!(status.is_success(), "{status} {run}");
        runs.push(run["id"].as_str().unwrap().to_string());
    }
    let mut tokens = Vec::new();
    for (index, credential) in [(MINE, Credential::Key(&restricted)), (THEIRS, admin)] {
        let body = json!({"query": "bridge", "index_ids": [index], "page_size": 1});
        let (status, page) = send(&server, Method::POST, "/search", &credential, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        tokens.push(page["next_page_token"].as_str().unwrap().to_string());
    }
    World {
        server,
        org,
        restricted_id: key["id"].as_str().unwrap().to_string(),
        restricted,
        prompt_id,
        their_run: runs.pop().unwrap(),
        my_run: runs.pop().unwrap(),
        their_page_token: tokens.pop().unwrap(),
        my_page_token: tokens.pop().unwrap(),
    }
}

fn refused_as_not_allowed(rule: &OperationRule, case: &str, (status, body): &(StatusCode, Value)) {
    let id = &rule.operation_id;
    assert_eq!(*status, StatusCode::FORBIDDEN, "{id} / {case}: {body}");
    assert_eq!(body["code"], "index_not_allowed", "{id} / {case}: {body}");
}

fn passes(rule: &OperationRule, case: &str, (status, body): &(StatusCode, Value)) {
    let id = &rule.operation_id;
    assert!(
        !matches!(
            *status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ) || (*status == StatusCode::NOT_FOUND && body["detail"].to_string().contains(UNBORN)),
        "{id} / {case}: expected to get past the restriction, got {status} {body}"
    );
}

/// The request's path with its parameters filled: `index` for an index, the world's own
/// resources for the rest.
fn path_of(rule: &OperationRule, world: &World, index: &str, run: &str) -> String {
    rule.path
        .replace("{index_id}", index)
        .replace("{run_id}", run)
        .replace("{prompt_id}", "prm_does_not_exist")
        .replace("{page_token}", &world.my_page_token)
        .replace("{connector_id}", "con_does_not_exist")
        .replace("{job_id}", "job_does_not_exist")
        .replace("{webhook_id}", "whk_does_not_exist")
        .replace("{key_id}", "key_does_not_exist")
}

fn method(rule: &OperationRule) -> Method {
    Method::from_bytes(rule.method.as_bytes()).unwrap()
}

/// A body for `rule` (an empty object where it takes one).
fn empty_body(rule: &OperationRule) -> Option<Value> {
    (rule.method != "GET" && rule.method != "DELETE").then(|| json!({}))
}

/// Calls an operation that names indexes once with another index and once with the key's
/// own; each `named` operation of the spec must have a case here.
async fn check_named(world: &World, rule: &OperationRule) {
    let key = Credential::Key(&world.restricted);
    let server = &world.server;
    let post = |path: &'static str, body: Value| {
        let key = &key;
        async move { send(server, Method::POST, path, key, Some(body)).await }
    };
    let chat = |indexes: Value| json!({"messages": [{"role": "user", "content": "bridge?"}], "index_ids": indexes});
    let run = |index: &str| json!({"prompt_id": world.prompt_id, "index_id": index});
    let search = |indexes: Value| json!({"query": "bridge", "index_ids": indexes});
    let (other, own) = match rule.operation_id.as_str() {
        "chat_completion_create" => (
            post("/chat/completions", chat(json!([MINE, THEIRS]))).await,
            post("/chat/completions", chat(json!([MINE]))).await,
        ),
        "index_create" => {
            // Without an id the new index would be outside the key's list.
            let unnamed = post("/indexes", json!({"name": "new"})).await;
            refused_as_not_allowed(rule, "an index without an id", &unnamed);
            (
                post("/indexes", json!({"id": "idx_new", "name": "new"})).await,
                post("/indexes", json!({"id": UNBORN, "name": "new"})).await,
            )
        }
        "run_create" => (
            post("/runs", run(THEIRS)).await,
            post("/runs", run(MINE)).await,
        ),
        "search_query" => (
            post("/search", search(json!([THEIRS, MINE]))).await,
            post("/search", search(json!([MINE]))).await,
        ),
        "search_page_view" => {
            let view = |token: &str| format!("/search/{token}");
            (
                send(
                    server,
                    Method::GET,
                    &view(&world.their_page_token),
                    &key,
                    None,
                )
                .await,
                send(server, Method::GET, &view(&world.my_page_token), &key, None).await,
            )
        }
        other => panic!("{other} names indexes (`named`) but the test has no case for it"),
    };
    refused_as_not_allowed(rule, "another index named", &other);
    passes(rule, "its own index named", &own);
    assert!(own.0.is_success(), "{}: {own:?}", rule.operation_id);
}

/// Lists as the restricted key; each `listed` operation of the spec must have a case here.
async fn check_listed(world: &World, rule: &OperationRule) {
    let key = Credential::Key(&world.restricted);
    let (status, page) = send(&world.server, Method::GET, &rule.path, &key, None).await;
    assert_eq!(status, StatusCode::OK, "{}: {page}", rule.operation_id);
    let items = page["items"].as_array().unwrap();
    let seen: BTreeSet<&str> = match rule.operation_id.as_str() {
        "index_list" => items.iter().map(|i| i["id"].as_str().unwrap()).collect(),
        "run_list" => items
            .iter()
            .map(|r| r["index_id"].as_str().unwrap())
            .collect(),
        other => panic!("{other} is `listed` but the test has no case for it"),
    };
    assert!(seen.contains(MINE), "{}: {page}", rule.operation_id);
    assert!(!seen.contains(THEIRS), "{}: {page}", rule.operation_id);
}

#[tokio::test]
async fn every_operation_holds_a_keys_indexes_as_the_spec_declares() {
    let world = world().await;
    let key = Credential::Key(&world.restricted);
    let server = &world.server;
    let rules: Vec<OperationRule> = Contract::committed()
        .operations()
        .iter()
        .map(|o| o.rule.clone())
        .filter(|r| r.schemes.iter().any(|s| s == API_KEY_SCHEME))
        .collect();
    let mut kinds = BTreeSet::new();
    for rule in &rules {
        let access = rule
            .index_access
            .unwrap_or_else(|| panic!("{} declares no index access", rule.operation_id));
        kinds.insert(access.as_str());
        let call = |index: &'static str, run: String| {
            let path = path_of(rule, &world, index, &run);
            let key = &key;
            async move { send(server, method(rule), &path, key, empty_body(rule)).await }
        };
        match access {
            IndexAccess::Path => {
                // Another index, and one that does not exist: refused alike, so the answer
                // says nothing of what exists outside the key's list.
                for other in [THEIRS, "idx_does_not_exist"] {
                    let got = call(other, String::new()).await;
                    refused_as_not_allowed(rule, other, &got);
                }
                passes(
                    rule,
                    "an index of its list",
                    &call(UNBORN, String::new()).await,
                );
            }
            IndexAccess::Organisation => {
                refused_as_not_allowed(
                    rule,
                    "an organisation-wide operation",
                    &call("", "".into()).await,
                );
            }
            IndexAccess::Owned => {
                let (status, body) = call("", world.their_run.clone()).await;
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{}: {body}",
                    rule.operation_id
                );
                passes(
                    rule,
                    "a run of its index",
                    &call("", world.my_run.clone()).await,
                );
            }
            IndexAccess::Named => check_named(&world, rule).await,
            IndexAccess::Listed => check_listed(&world, rule).await,
            IndexAccess::Independent => {
                let (status, body) = call("", String::new()).await;
                assert_ne!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{}: {body}",
                    rule.operation_id
                );
            }
        }
    }
    // The spec uses every kind, so none of the branches above is dead.
    assert_eq!(kinds.len(), 6, "{kinds:?}");
    world.server.stop().await;
}

#[tokio::test]
async fn narrowing_a_key_ends_what_it_could_reach_even_a_page_token_it_holds() {
    let world = world().await;
    let server = &world.server;
    let key = Credential::Key(&world.restricted);
    let view = format!("/search/{}", world.my_page_token);
    assert_eq!(
        send(server, Method::GET, &view, &key, None).await.0,
        StatusCode::OK
    );
    let admin = Credential::Bearer(server.token(&world.org, &[Scope::Admin]));
    let path = format!("/api-keys/{}", world.restricted_id);
    let (status, narrowed) = send(
        server,
        Method::PATCH,
        &path,
        &admin,
        Some(json!({"index_ids": [UNBORN]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(narrowed["index_ids"], json!([UNBORN]));
    let got = send(server, Method::GET, &view, &key, None).await;
    assert_eq!(got.0, StatusCode::FORBIDDEN, "{:?}", got.1);
    assert_eq!(got.1["code"], "index_not_allowed");
    let run = format!("/runs/{}", world.my_run);
    assert_eq!(
        send(server, Method::GET, &run, &key, None).await.0,
        StatusCode::NOT_FOUND
    );
    // An empty list lifts the restriction.
    let (status, lifted) = send(
        server,
        Method::PATCH,
        &path,
        &admin,
        Some(json!({"index_ids": []})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{lifted}");
    assert_eq!(lifted["index_ids"], json!([]));
    let their = format!("/indexes/{THEIRS}");
    assert_eq!(
        send(server, Method::GET, &their, &key, None).await.0,
        StatusCode::OK
    );
    world.server.stop().await;
}

#[tokio::test]
async fn through_mcp_a_restricted_key_sees_and_reaches_only_its_indexes() {
    let world = world().await;
    let url = format!("{}/mcp", world.server.url());
    let client = super::mcp::connect(&url, "x-api-key", &world.restricted).await;
    let resources = serde_json::to_value(client.list_resources(None).await.unwrap()).unwrap();
    let uris: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [format!("videovector://indexes/{MINE}")],
        "{resources}"
    );
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(format!(
            "videovector://indexes/{THEIRS}"
        )))
        .await;
    assert!(read.is_err(), "{read:?}");
    let (failed, problem) = super::mcp::call(
        &client,
        "index_search",
        json!({"index_id": THEIRS, "body": {"query": "bridge"}}),
    )
    .await;
    assert!(failed);
    assert_eq!(problem["code"], "index_not_allowed", "{problem}");
    let (failed, problem) = super::mcp::call(
        &client,
        "chat_completion_create",
        json!({"body": {"messages": [{"role": "user", "content": "bridge?"}],
                        "index_ids": [MINE, THEIRS]}}),
    )
    .await;
    assert!(failed);
    assert_eq!(problem["code"], "index_not_allowed", "{problem}");
    let (failed, answer) = super::mcp::call(
        &client,
        "chat_completion_create",
        json!({"body": {"messages": [{"role": "user", "content": "bridge?"}],
                        "index_ids": [MINE]}}),
    )
    .await;
    assert!(!failed, "{answer}");
    let cited: BTreeSet<&str> = answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index_id"].as_str().unwrap())
        .collect();
    assert_eq!(cited, BTreeSet::from([MINE]), "{answer}");
    // The tools it is offered leave out what it may not call.
    let offered: BTreeSet<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(offered.contains("index_search") && offered.contains("prompt_list"));
    assert!(!offered.contains("webhook_list") && !offered.contains("connector_create"));
    let (_, inspected) = super::mcp::call(&client, "credential_inspect", json!({})).await;
    assert_eq!(inspected["index_ids"], json!([MINE, UNBORN]), "{inspected}");
    let allowed = |name: &str| {
        inspected["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["allowed"].clone())
    };
    assert_eq!(allowed("webhook_list"), Some(json!(false)), "{inspected}");
    assert_eq!(allowed("index_search"), Some(json!(true)), "{inspected}");
    let (failed, problem) = super::mcp::call(&client, "webhook_list", json!({})).await;
    assert!(failed);
    assert_eq!(problem["code"], "index_not_allowed", "{problem}");
    world.server.stop().await;
}

#[tokio::test]
async fn a_keys_hit_cap_holds_on_every_search_and_the_defaults_shrink_to_it() {
    let world = world().await;
    let server = &world.server;
    let (key, capped) = create_key(server, &world.org, &["write"], json!({"max_top_k": 2})).await;
    assert_eq!(key["max_top_k"], 2);
    let key = Credential::Key(&capped);
    let search = format!("/indexes/{MINE}/search");
    for (path, body, pointer) in [
        (
            search.as_str(),
            json!({"query": "bridge", "top_k": 3}),
            "/top_k",
        ),
        (
            "/search",
            json!({"query": "bridge", "index_ids": [MINE], "page_size": 3}),
            "/page_size",
        ),
        (
            "/chat/completions",
            json!({"messages": [{"role": "user", "content": "bridge?"}], "index_ids": [MINE],
                   "top_k": 3}),
            "/top_k",
        ),
        (
            "/runs",
            json!({"prompt_id": world.prompt_id, "index_id": MINE, "top_k": 3}),
            "/top_k",
        ),
    ] {
        let (status, problem) = send(server, Method::POST, path, &key, Some(body)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {problem}"
        );
        assert_eq!(
            problem["errors"][0]["pointer"], pointer,
            "{path}: {problem}"
        );
        assert!(problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("max_top_k"));
    }
    // Omitted, the operation's default (10 hits) shrinks to the cap.
    let (status, found) = send(
        server,
        Method::POST,
        &search,
        &key,
        Some(json!({"query": "bridge"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["hits"].as_array().unwrap().len(), 2, "{found}");
    let (status, run) = send(
        server,
        Method::POST,
        "/runs",
        &key,
        Some(json!({"prompt_id": world.prompt_id, "index_id": MINE})),
    )
    .await;
    assert!(status.is_success(), "{run}");
    assert_eq!(run["top_k"], 2, "{run}");
    // The cap is lifted with `null`.
    let admin = Credential::Bearer(server.token(&world.org, &[Scope::Admin]));
    let path = format!("/api-keys/{}", world.restricted_id);
    let (status, lifted) = send(
        server,
        Method::PATCH,
        &path,
        &admin,
        Some(json!({"max_top_k": 5})),
    )
    .await;
    assert_eq!(
        (status, &lifted["max_top_k"]),
        (StatusCode::OK, &json!(5)),
        "{lifted}"
    );
    let (status, lifted) = send(
        server,
        Method::PATCH,
        &path,
        &admin,
        Some(json!({"max_top_k": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{lifted}");
    assert!(lifted.get("max_top_k").is_none(), "{lifted}");
    world.server.stop().await;
}
