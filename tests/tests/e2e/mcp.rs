//! The MCP server through a real MCP client (rmcp's, over streamable HTTP), configured from
//! `GET /mcp/config`: initialize; the tool lists of a search, a read and a write key differ
//! as the spec's scopes say; search returns ingested segments; a saved prompt runs and its
//! result is read back; a read key calling a write tool gets an error naming `write`;
//! indexes are resources and saved prompts are prompts; a revoked key is refused at once;
//! the same with JWTs; no credential gets 401. Every REST answer behind a tool call is held
//! to the spec by the harness, as any other.

use std::collections::{BTreeSet, HashMap};

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::{
    model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams},
    service::RunningService,
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport,
    },
    RoleClient, ServiceExt,
};
use serde_json::{json, Value};
use videovector_api_spec::{contract::Contract, security::API_KEY_SCHEME, Scope};
use videovector_client::types;
use videovector_tests::{balancer::RoundRobin, common_calls::create_index, TestServer};

pub type McpClient = RunningService<RoleClient, ()>;

/// A session against `url` sending one credential header.
pub async fn connect(url: &str, header: &'static str, value: &str) -> McpClient {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).custom_headers(
        HashMap::from([(
            HeaderName::from_static(header),
            HeaderValue::from_str(value).unwrap(),
        )]),
    );
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("the MCP session initializes")
}

/// An `initialize` request for `revision`, as a client sends it first.
pub fn initialize_request(revision: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": revision, "capabilities": {},
        "clientInfo": { "name": "test", "version": "1" } } })
}

/// The tools the committed spec says a credential holding `scope` may call.
fn tools_for(scope: Scope) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = Contract::committed()
        .operations()
        .iter()
        .map(|o| &o.rule)
        .filter(|r| r.schemes.iter().any(|s| s == API_KEY_SCHEME))
        .filter(|r| r.required_scope.is_none_or(|s| scope.satisfies(s)))
        .map(|r| r.operation_id.clone())
        .collect();
    names.insert("credential_inspect".into());
    names
}

async fn tool_names(client: &McpClient) -> BTreeSet<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// Calls a tool; returns whether it failed and its structured content.
pub async fn call(client: &McpClient, name: &'static str, arguments: Value) -> (bool, Value) {
    let result = client
        .call_tool(
            CallToolRequestParams::new(name).with_arguments(arguments.as_object().unwrap().clone()),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (
        result.is_error == Some(true),
        result.structured_content.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn an_mcp_client_is_held_to_its_credentials_scopes() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.admin_client(&org);

    // The configuration names the real endpoint.
    let config = admin.mcp_config_view().send().await.unwrap().into_inner();
    let url = config.mcp_servers.videovector.url.clone();
    assert_eq!(url, format!("{}/mcp", server.url()));
    assert_eq!(config.mcp_servers.videovector.type_, "http");

    create_index(&admin, "idx_mcp", "Evening news").await;
    let segment = |media: &str, start: f64, text: &str| json!({ "media_id": media, "start_seconds": start, "end_seconds": start + 4.0, "text": text });
    let ingest = reqwest::Client::new()
        .post(server.api("/indexes/idx_mcp/segments"))
        .bearer_auth(server.token(&org, &[Scope::Admin]))
        .json(&json!({ "wait": true, "segments": [
            segment("bulletin", 0.0, "the mayor opened the new bridge over the river"),
            segment("bulletin", 4.0, "heavy rain is expected over the weekend"),
            segment("sport", 0.0, "the home team won the cup final"),
        ]}))
        .send()
        .await
        .unwrap();
    assert!(ingest.status().is_success());
    let prompt = reqwest::Client::new()
        .post(server.api("/prompts"))
        .bearer_auth(server.token(&org, &[Scope::Admin]))
        .json(
            &json!({ "name": "Topic watch", "description": "Evidence about a topic",
            "query_template": "{{topic}} over the river", "variables": ["topic"] }),
        )
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let prompt_id = prompt["id"].as_str().unwrap().to_string();

    let (_, search_key) = server.api_key(&org, &[Scope::Search]).await;
    let (read_key_id, read_key) = server.api_key(&org, &[Scope::Read]).await;
    let (_, write_key) = server.api_key(&org, &[Scope::Write]).await;

    // A search key: initialize, then exactly the search tools.
    let searcher = connect(&url, "x-api-key", &search_key).await;
    let info = searcher.peer_info().expect("the server introduced itself");
    assert_eq!(info.server_info.as_ref().unwrap().name, "videovector");
    let search_tools = tool_names(&searcher).await;
    assert_eq!(search_tools, tools_for(Scope::Search));
    println!("tools/list for a search key: {search_tools:?}");
    let (failed, hits) = call(
        &searcher,
        "index_search",
        json!({ "index_id": "idx_mcp", "body": { "query": "bridge over the river" } }),
    )
    .await;
    assert!(!failed, "{hits}");
    assert_eq!(hits["hits"][0]["media_id"], "bulletin", "{hits}");
    assert!(hits["hits"][0]["text"].as_str().unwrap().contains("bridge"));
    // ...and why the others are missing.
    let (_, inspected) = call(&searcher, "credential_inspect", json!({})).await;
    let run_create = inspected["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "run_create")
        .unwrap();
    assert_eq!(run_create["allowed"], false);
    assert_eq!(run_create["required_scope"], "write");

    // A write key sees more, as the spec says; it runs the saved prompt.
    let writer = connect(&url, "x-api-key", &write_key).await;
    let write_tools = tool_names(&writer).await;
    assert_eq!(write_tools, tools_for(Scope::Write));
    assert!(write_tools.is_superset(&search_tools) && write_tools.len() > search_tools.len());
    let (failed, run) = call(
        &writer,
        "run_create",
        json!({ "idempotency_key": "mcp-run-1", "body": { "prompt_id": prompt_id,
            "index_id": "idx_mcp", "variables": { "topic": "the bridge" } } }),
    )
    .await;
    assert!(!failed, "{run}");
    let run_id = run["id"].as_str().unwrap().to_string();
    let mut finished = Value::Null;
    for _ in 0..200 {
        let (_, viewed) = call(&writer, "run_view", json!({ "run_id": run_id })).await;
        if viewed["status"] == "succeeded" || viewed["status"] == "failed" {
            finished = viewed;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["query"], "the bridge over the river");
    assert_eq!(
        finished["result"]["citations"][0]["media_id"], "bulletin",
        "{finished}"
    );

    // A read key calling a write tool: a tool error naming `write`.
    let reader = connect(&url, "x-api-key", &read_key).await;
    let (failed, problem) = call(
        &reader,
        "segment_ingest",
        json!({ "index_id": "idx_mcp", "body": { "segments": [segment("x", 0.0, "y")] } }),
    )
    .await;
    assert!(failed);
    assert_eq!(problem["code"], "insufficient_scope", "{problem}");
    assert_eq!(problem["required_scope"], "write");
    assert!(problem["detail"].as_str().unwrap().contains("`write`"));

    // Indexes are resources; saved prompts are prompts.
    let resources = serde_json::to_value(reader.list_resources(None).await.unwrap()).unwrap();
    assert_eq!(
        resources["resources"][0]["uri"],
        "videovector://indexes/idx_mcp"
    );
    let read = reader
        .read_resource(ReadResourceRequestParams::new(
            "videovector://indexes/idx_mcp",
        ))
        .await
        .unwrap();
    let read = serde_json::to_value(read).unwrap();
    let index: Value = serde_json::from_str(read["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(index["segment_count"], 3);
    let prompts = serde_json::to_value(reader.list_prompts(None).await.unwrap()).unwrap();
    assert_eq!(prompts["prompts"][0]["name"], prompt_id.as_str());
    assert_eq!(prompts["prompts"][0]["arguments"][0]["name"], "topic");
    let mut request = GetPromptRequestParams::new(prompt_id.clone());
    request.arguments = Some(json!({ "topic": "rain" }).as_object().unwrap().clone());
    let got = serde_json::to_value(reader.get_prompt(request).await.unwrap()).unwrap();
    let text = got["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(text.contains("rain over the river"), "{text}");

    // Revoked: the very next request is refused.
    admin
        .api_key_revoke()
        .key_id(&read_key_id)
        .send()
        .await
        .unwrap();
    assert!(reader.list_resources(None).await.is_err());

    // The same rules for JWTs.
    let token = server.token(&org, &[Scope::Search]);
    let bearer = connect(&url, "authorization", &format!("Bearer {token}")).await;
    assert_eq!(tool_names(&bearer).await, tools_for(Scope::Search));
    let (failed, problem) = call(
        &bearer,
        "index_create",
        json!({ "body": { "id": "idx_nope", "name": "No" } }),
    )
    .await;
    assert!(failed);
    assert_eq!(problem["required_scope"], "write", "{problem}");

    // No credential: 401 with a challenge, before any MCP.
    let anonymous = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_request("2025-06-18"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));

    for client in [searcher, writer, reader, bearer] {
        let _ = client.cancel().await;
    }
    server.stop().await;
}

/// The MCP server's attacker: another organisation's index through a tool, U+0000 and a
/// megabyte in tool arguments, unknown arguments, and another key's session id. Every one
/// gets the REST operation's refusal, for the caller's own credential; no session exists to
/// take over.
#[tokio::test]
async fn mcp_tool_calls_are_refused_as_their_rest_operations() {
    let server = TestServer::start().await;
    let ours = server.org(true).await;
    let theirs = server.org(true).await;
    server
        .admin_client(&theirs)
        .index_create()
        .body(
            types::IndexCreate::builder()
                .id("idx_theirs")
                .name("Theirs"),
        )
        .send()
        .await
        .unwrap();
    let (_, key) = server.api_key(&ours, &[Scope::Admin]).await;
    let url = format!("{}/mcp", server.url());
    let client = connect(&url, "x-api-key", &key).await;

    let (failed, problem) = call(&client, "index_view", json!({ "index_id": "idx_theirs" })).await;
    assert!(failed);
    assert_eq!(problem["code"], "not_found", "{problem}");
    let (failed, problem) = call(
        &client,
        "index_create",
        json!({ "body": { "id": "idx_nul", "name": "bad\u{0}name" } }),
    )
    .await;
    assert!(failed);
    assert_eq!(problem["code"], "validation_failed", "{problem}");
    let (failed, problem) = call(
        &client,
        "index_search",
        json!({ "index_id": "x".repeat(1 << 20), "body": { "query": "q" } }),
    )
    .await;
    assert!(failed);
    assert_eq!(problem["code"], "invalid_arguments", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("at most 8192"));
    let (failed, problem) = call(
        &client,
        "index_view",
        json!({ "index_id": "idx_theirs", "org_id": "theirs" }),
    )
    .await;
    assert!(failed);
    assert_eq!(problem["code"], "invalid_arguments", "{problem}");
    assert!(client
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await
        .is_err());
    // An idempotency key the `Idempotency-Key` header could not carry is refused as the
    // header is, never dropped (the review's finding 6: the same call twice made two
    // indexes); a valid one makes the retry a replay.
    let count_indexes = || async {
        let (_, listed) = call(&client, "index_list", json!({})).await;
        listed["items"].as_array().map_or(0, Vec::len)
    };
    let before = count_indexes().await;
    for _ in 0..2 {
        let (failed, problem) = call(
            &client,
            "index_create",
            json!({ "idempotency_key": "retry-me\n1", "body": { "name": "Retried" } }),
        )
        .await;
        assert!(failed);
        assert_eq!(problem["code"], "invalid_arguments", "{problem}");
        assert!(problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"));
    }
    assert_eq!(count_indexes().await, before);
    let mut created = Vec::new();
    for _ in 0..2 {
        let (failed, index) = call(
            &client,
            "index_create",
            json!({ "idempotency_key": "retry-me 1", "body": { "name": "Retried" } }),
        )
        .await;
        assert!(!failed, "{index}");
        created.push(index["id"].clone());
    }
    assert_eq!(created[0], created[1]);
    assert_eq!(count_indexes().await, before + 1);

    // No session is kept (the review's finding 4: another organisation's key could post
    // into, stream from and end a session): initialize assigns none, a session id from
    // elsewhere changes nothing (each request runs for its own credential), and there is no
    // session to end and no stream to open.
    let http = reqwest::Client::new();
    let accept = "application/json, text/event-stream";
    let opened = http
        .post(&url)
        .header("x-api-key", &key)
        .header("accept", accept)
        .json(&initialize_request("2025-06-18"))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    assert!(opened.headers().get("mcp-session-id").is_none());
    assert_eq!(opened.headers()["content-type"], "application/json");
    let (_, search_key) = server.api_key(&ours, &[Scope::Search]).await;
    let listed: Value = http
        .post(&url)
        .header("x-api-key", &search_key)
        .header("accept", accept)
        .header("mcp-session-id", "a-session-of-another-key")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names = listed["result"]["tools"].to_string();
    assert!(names.contains("\"index_search\""), "{listed}");
    assert!(!names.contains("\"index_delete\""), "{listed}");
    for method in [reqwest::Method::DELETE, reqwest::Method::GET] {
        let answer = http
            .request(method.clone(), &url)
            .header("x-api-key", &search_key)
            .header("accept", accept)
            .header("mcp-session-id", "a-session-of-another-key")
            .header("mcp-protocol-version", "2025-06-18")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405, "{method}");
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
    }

    let _ = client.cancel().await;
    server.stop().await;
}

/// Two instances behind a balancer that sends each request to the next one (the review's
/// finding 3: `initialize` on one instance, then `tools/list` on the other, answered 404
/// "Session not found"). A real MCP client initializes, lists, searches and reads a resource
/// through it, with requests alternating between the instances.
#[tokio::test]
async fn an_mcp_client_is_served_by_any_instance_behind_a_round_robin_balancer() {
    let first = TestServer::start().await;
    let second = first.second_instance().await;
    let org = first.org(true).await;
    first
        .admin_client(&org)
        .index_create()
        .body(
            types::IndexCreate::builder()
                .id("idx_balanced")
                .name("Balanced"),
        )
        .send()
        .await
        .unwrap();
    let (_, key) = first.api_key(&org, &[Scope::Read, Scope::Search]).await;
    let balancer = RoundRobin::start(vec![first.url(), second.url()]).await;

    let client = connect(&format!("{}/mcp", balancer.url), "x-api-key", &key).await;
    for _ in 0..3 {
        let listed = tool_names(&client).await;
        assert!(listed.contains("index_search"), "{listed:?}");
        let (failed, hits) = call(
            &client,
            "index_search",
            json!({ "index_id": "idx_balanced", "body": { "query": "anything" } }),
        )
        .await;
        assert!(!failed, "{hits}");
        let resources = serde_json::to_value(client.list_resources(None).await.unwrap()).unwrap();
        assert_eq!(
            resources["resources"][0]["uri"],
            "videovector://indexes/idx_balanced"
        );
    }
    let counts = balancer.counts();
    assert!(
        counts.iter().all(|&n| n >= 4),
        "answered per instance: {counts:?}"
    );
    let _ = client.cancel().await;
    drop(balancer);
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn a_tool_call_past_its_keys_limit_is_a_tool_error_naming_the_wait() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let created: Value = reqwest::Client::new()
        .post(server.api("/api-keys"))
        .bearer_auth(server.token(&org, &[Scope::Admin]))
        .json(&json!({"name": "mcp", "scopes": ["read"], "rate_limits": [
            {"name": "reads_today", "family": "read", "quota": 3, "window_seconds": 86400}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["secret"].as_str().unwrap();
    let client = connect(&format!("{}/mcp", server.url()), "x-api-key", key).await;
    let mut answered = 0;
    let problem = loop {
        let (failed, content) = call(&client, "index_list", json!({})).await;
        if failed {
            break content;
        }
        answered += 1;
        assert!(answered <= 3, "a fourth read was answered");
    };
    assert_eq!(answered, 3, "each tool call is one request of its family");
    assert_eq!(problem["code"], "rate_limited", "{problem}");
    assert_eq!(problem["status"], 429);
    let wait = problem["retry_after_seconds"].as_u64().unwrap();
    assert!((1..=86_400).contains(&wait), "{problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("retry after {wait} seconds")));
    let _ = client.cancel().await;
    server.stop().await;
}
