//! Tenant tokens (issue 23): minted offline by the Rust client's and the Python SDK's
//! helpers from a search key, sent as `X-API-Key`, held to their indexes and forced filters
//! on every search, cross-index page, chat and MCP call; never wider than their key (a
//! widened, tampered, forged, expired or `alg: none` token is refused); ended by revoking
//! or rotating the key.

use std::{collections::BTreeSet, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use videovector_api_spec::Scope;
use videovector_client::{tenant_token, tenant_token::tenant_token_at, TenantTokenOptions};
use videovector_tests::{answer, TestOrg, TestServer};

const HOUR: Duration = Duration::from_secs(3600);

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.api(path))
        .header("X-API-Key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request).await
}

/// A search of `idx_a` for "bridge" with `key` (a secret or a token).
async fn search_a(server: &TestServer, key: String) -> (StatusCode, Value) {
    let body = json!({"query": "bridge"});
    send(
        server,
        Method::POST,
        "/indexes/idx_a/search",
        &key,
        Some(body),
    )
    .await
}

/// Two indexes, each with two tenants' media: `m1` labelled `tenant:1`, `m2` `tenant:2`.
async fn tenants(server: &TestServer, org: &TestOrg) {
    let admin = server.admin_client(org);
    for index in ["idx_a", "idx_b"] {
        videovector_tests::common_calls::create_index(&admin, index, index).await;
        let segments: Vec<Value> = [("m1", "tenant:1"), ("m2", "tenant:2")]
            .iter()
            .flat_map(|(media, label)| {
                (0..3).map(move |i| {
                    json!({"media_id": media, "start_seconds": i as f64 * 10.0,
                           "end_seconds": i as f64 * 10.0 + 5.0, "labels": [label],
                           "text": format!("the bridge at dusk, part {i}")})
                })
            })
            .collect();
        let response = reqwest::Client::new()
            .post(server.api(&format!("/indexes/{index}/segments")))
            .bearer_auth(server.token(org, &[Scope::Admin]))
            .json(&json!({"segments": segments, "wait": true}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{response:?}");
    }
}

/// A key created through the API with `extra` fields: (id, secret).
async fn key(server: &TestServer, org: &TestOrg, extra: Value) -> (String, String) {
    let mut body = json!({"name": "search box", "scopes": ["search"]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let response = reqwest::Client::new()
        .post(server.api("/api-keys"))
        .bearer_auth(server.token(org, &[Scope::Admin]))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    (
        created["key"]["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

/// The labels of every hit in `hits`.
fn labels_of(hits: &Value) -> BTreeSet<String> {
    hits.as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["labels"].as_array().unwrap().clone())
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

fn refused(case: &str, (status, body): &(StatusCode, Value), detail: &str) {
    assert_eq!(*status, StatusCode::UNAUTHORIZED, "{case}: {body}");
    assert_eq!(body["code"], "invalid_tenant_token", "{case}: {body}");
    assert!(
        body["detail"].as_str().unwrap().contains(detail),
        "{case}: {body}"
    );
}

fn tenant_one() -> TenantTokenOptions {
    TenantTokenOptions {
        index_ids: Some(vec!["idx_a".into()]),
        labels: vec!["tenant:1".into()],
        subject: Some("user_42".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_tenant_token_sees_only_its_tenant_on_every_search() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    tenants(&server, &org).await;
    let (key_id, secret) = key(&server, &org, json!({})).await;
    let token = tenant_token(&key_id, &secret, HOUR, &tenant_one()).unwrap();
    let search = |index: &str, body: Value| {
        let (server, token) = (&server, &token);
        let path = format!("/indexes/{index}/search");
        async move { send(server, Method::POST, &path, token, Some(body)).await }
    };

    let (status, found) = search("idx_a", json!({"query": "bridge", "top_k": 50})).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["hits"].as_array().unwrap().len(), 3, "{found}");
    assert_eq!(
        labels_of(&found["hits"]),
        BTreeSet::from(["tenant:1".into()])
    );
    // The request's own filters only narrow further: another tenant's label or media
    // finds nothing, never the other tenant.
    for filters in [
        json!({"labels": ["tenant:2"]}),
        json!({"media_ids": ["m2"]}),
    ] {
        let (status, found) = search("idx_a", json!({"query": "bridge", "filters": filters})).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(found["hits"], json!([]), "{filters}: {found}");
    }
    let (status, problem) = search("idx_b", json!({"query": "bridge"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "index_not_allowed");

    // Across indexes, page by page, even on a page token the key itself made.
    let body = json!({"query": "bridge", "index_ids": ["idx_a"], "page_size": 1});
    let (status, page) = send(&server, Method::POST, "/search", &secret, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut token_path = format!("/search/{}", page["next_page_token"].as_str().unwrap());
    let mut seen = BTreeSet::new();
    loop {
        let (status, page) = send(&server, Method::GET, &token_path, &token, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(labels_of(&page["hits"]));
        match page["next_page_token"].as_str() {
            Some(next) => token_path = format!("/search/{next}"),
            None => break,
        }
    }
    assert_eq!(seen, BTreeSet::from(["tenant:1".into()]));
    let body = json!({"query": "bridge", "index_ids": ["idx_a"], "page_size": 50});
    let (status, page) = send(&server, Method::POST, "/search", &token, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        labels_of(&page["hits"]),
        BTreeSet::from(["tenant:1".into()])
    );
    let body = json!({"query": "bridge", "index_ids": ["idx_a", "idx_b"]});
    let (status, problem) = send(&server, Method::POST, "/search", &token, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");

    // Chat cites only the tenant's segments.
    let body = json!({"messages": [{"role": "user", "content": "the bridge?"}],
                      "index_ids": ["idx_a"], "top_k": 20});
    let (status, answer) = send(
        &server,
        Method::POST,
        "/chat/completions",
        &token,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let media: BTreeSet<&str> = answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["media_id"].as_str().unwrap())
        .collect();
    assert_eq!(media, BTreeSet::from(["m1"]), "{answer}");

    // Every operation a tenant token may call (the spec's `search` scope) was tried above,
    // so a new one cannot escape the forced filters untested.
    let searches: BTreeSet<String> = videovector_api_spec::contract::Contract::committed()
        .operations()
        .iter()
        .filter(|o| o.rule.required_scope == Some(Scope::Search))
        .map(|o| o.rule.operation_id.clone())
        .collect();
    let tried = [
        "index_search",
        "search_query",
        "search_page_view",
        "chat_completion_create",
    ];
    assert_eq!(searches, tried.iter().map(|s| s.to_string()).collect());

    // Only `search`: reading and writing are refused by scope.
    let (status, problem) = send(&server, Method::GET, "/indexes", &token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "insufficient_scope");

    // Through MCP: the same filters on a tool call.
    let url = format!("{}/mcp", server.url());
    let client = super::mcp::connect(&url, "x-api-key", &token).await;
    let (failed, found) = super::mcp::call(
        &client,
        "index_search",
        json!({"index_id": "idx_a", "body": {"query": "bridge", "top_k": 50}}),
    )
    .await;
    assert!(!failed, "{found}");
    assert_eq!(
        labels_of(&found["hits"]),
        BTreeSet::from(["tenant:1".into()])
    );
    server.stop().await;
}

/// `token` with its claims replaced by `claims`, the signature kept.
fn with_claims(token: &str, claims: Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{body}.{}", parts[0], parts[2])
}

#[tokio::test]
async fn a_token_never_widens_its_key_and_forgeries_are_refused() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    tenants(&server, &org).await;
    let (key_id, secret) = key(&server, &org, json!({"index_ids": ["idx_a"]})).await;
    let (other_id, other_secret) = key(&server, &org, json!({})).await;
    let search = |token: String| search_a(&server, token);
    let valid = tenant_token(&key_id, &secret, HOUR, &tenant_one()).unwrap();
    assert_eq!(search(valid.clone()).await.0, StatusCode::OK);

    let widened = TenantTokenOptions {
        index_ids: Some(vec!["idx_a".into(), "idx_b".into()]),
        ..Default::default()
    };
    let widened = tenant_token(&key_id, &secret, HOUR, &widened).unwrap();
    refused("widened", &search(widened).await, "only narrows");
    let tampered = with_claims(
        &valid,
        json!({"exp": 4_000_000_000u64, "index_ids": ["idx_a"]}),
    );
    refused("tampered", &search(tampered).await, "signature");
    // Signed with another key's secret, or naming another key.
    let forged = tenant_token(&key_id, &other_secret, HOUR, &tenant_one()).unwrap();
    refused("forged", &search(forged).await, "signature");
    let borrowed = tenant_token(&other_id, &secret, HOUR, &tenant_one()).unwrap();
    refused("another key's id", &search(borrowed).await, "signature");
    let unknown = tenant_token("key_unknown", &secret, HOUR, &tenant_one()).unwrap();
    refused("an unknown key", &search(unknown).await, "signature");
    let now = chrono::Utc::now().timestamp() as u64;
    // Correctly signed, but asking for what a token cannot carry.
    let signed = |claims: Value| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(key_id.clone());
        let key = videovector_client::tenant_token::signing_key(&secret);
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&key),
        )
        .unwrap()
    };
    let expired = tenant_token_at(&key_id, &secret, now - 7200, HOUR, &tenant_one()).unwrap();
    refused("expired", &search(expired).await, "expired");
    let long = signed(json!({"exp": now + 3 * 86_400}));
    refused("too long", &search(long).await, "24 hours");
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": key_id}).to_string());
    let claims = URL_SAFE_NO_PAD.encode(json!({"exp": now + 600}).to_string());
    refused(
        "alg none",
        &search(format!("{header}.{claims}.")).await,
        "HS256",
    );
    assert_eq!(
        search(signed(json!({"exp": now + 600}))).await.0,
        StatusCode::OK
    );
    let scopes = signed(json!({"exp": now + 600, "scopes": ["admin"]}));
    refused("a claim it does not know", &search(scopes).await, "scopes");
    let none = signed(json!({"exp": now + 600, "index_ids": []}));
    refused("no index", &search(none).await, "at least one");
    let nul = signed(json!({"exp": now + 600, "filters": {"labels": ["a\u{0}"]}}));
    refused("a NUL label", &search(nul).await, "U+0000");
    let many = signed(json!({"exp": now + 600, "filters": {"media_ids": vec!["m"; 101]}}));
    refused("too many media", &search(many).await, "more than 100");
    let no_exp = signed(json!({"index_ids": ["idx_a"]}));
    refused("no expiry", &search(no_exp).await, "exp");
    server.stop().await;
}

#[tokio::test]
async fn revoking_or_rotating_the_key_ends_its_tokens() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    tenants(&server, &org).await;
    let admin = server.admin_client(&org);
    let search = |token: String| search_a(&server, token);
    let (key_id, secret) = key(&server, &org, json!({})).await;
    let before = tenant_token(&key_id, &secret, HOUR, &tenant_one()).unwrap();
    assert_eq!(search(before.clone()).await.0, StatusCode::OK);
    let rotated = admin
        .api_key_rotate()
        .key_id(&key_id)
        .body(videovector_client::types::ApiKeyRotate {
            grace_period_seconds: Some(3600),
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    refused(
        "minted before the rotation",
        &search(before).await,
        "signature",
    );
    let after = tenant_token(&key_id, &rotated.secret, HOUR, &tenant_one()).unwrap();
    assert_eq!(search(after.clone()).await.0, StatusCode::OK);
    admin.api_key_revoke().key_id(&key_id).send().await.unwrap();
    refused("after revocation", &search(after).await, "revoked");
    server.stop().await;
}

#[tokio::test]
async fn the_python_sdks_helper_mints_tokens_the_server_accepts() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    tenants(&server, &org).await;
    let (key_id, secret) = key(&server, &org, json!({})).await;
    let helper = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sdks/python/videovector_client/tenant_token.py"
    );
    // Loaded by path: the helper needs only the standard library, not the SDK's
    // dependencies.
    let script = format!(
        "import importlib.util, sys\n\
         spec = importlib.util.spec_from_file_location('tenant_token', {helper:?})\n\
         module = importlib.util.module_from_spec(spec)\n\
         spec.loader.exec_module(module)\n\
         print(module.tenant_token({key_id:?}, sys.stdin.read(), 600, \
               index_ids=['idx_b'], media_ids=['m2']))\n"
    );
    let mut python = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    python
        .stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let body = json!({"query": "bridge", "top_k": 50});
    let (status, found) = send(
        &server,
        Method::POST,
        "/indexes/idx_b/search",
        &token,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let media: BTreeSet<&str> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["media_id"].as_str().unwrap())
        .collect();
    assert_eq!(media, BTreeSet::from(["m2"]), "{found}");
    server.stop().await;
}

#[tokio::test]
async fn a_key_without_a_readable_token_key_says_to_rotate_it() {
    use sea_orm::{sea_query::Expr, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
    use videovector_server::{
        db::entities::api_key,
        secrets_at_rest::{places, Keyring},
    };
    let server = TestServer::start().await;
    let org = server.org(true).await;
    tenants(&server, &org).await;
    let (key_id, secret) = key(&server, &org, json!({})).await;
    let token = tenant_token(&key_id, &secret, HOUR, &tenant_one()).unwrap();
    let search = |token: String| search_a(&server, token);
    let foreign = Keyring::new(&["a key that no instance of this deployment holds"]).unwrap();
    let lost = foreign.seal(&places::api_key_tenant_key(&key_id), b"lost");
    for (stored, detail) in [(Some(lost), "cannot be read"), (None, "rotate it")] {
        api_key::Entity::update_many()
            .col_expr(api_key::Column::TenantKey, Expr::value(stored))
            .filter(api_key::Column::Id.eq(&key_id))
            .exec(server.db())
            .await
            .unwrap();
        // Past PostgreSQL's read cache (a direct write sends no notice).
        if server.db().get_database_backend() == sea_orm::DbBackend::Postgres {
            tokio::time::sleep(videovector_server::db::point_reads::CACHE_TTL).await;
        }
        refused(detail, &search(token.clone()).await, detail);
        // The key itself is untouched.
        assert_eq!(search(secret.clone()).await.0, StatusCode::OK);
    }
    server.stop().await;
}
