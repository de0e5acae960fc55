//! Restricted keys (issue 23, first part): the networks a key may be used from, held on
//! every operation and MCP tool call whatever the client claims; the key's metadata and
//! owner, and listing keys by owner; the web pages a key may be used from (CORS); hostile
//! values of every restriction refused.

use reqwest::StatusCode;
use serde_json::{json, Value};
use videovector_api_spec::Scope;
use videovector_tests::{answer, TestOrg, TestServer};

/// Creates a key through the API with `extra` fields; returns the answer's key and secret.
async fn create(server: &TestServer, org: &TestOrg, extra: Value) -> (Value, String) {
    let mut body = json!({"name": "restricted", "scopes": ["read"]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, created) = answer(
        reqwest::Client::new()
            .post(server.api("/api-keys"))
            .bearer_auth(server.token(org, &[Scope::Admin]))
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    (created["key"].clone(), secret)
}

async fn list_indexes(
    server: &TestServer,
    secret: &str,
    forwarded: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .get(server.api("/indexes"))
        .header("X-API-Key", secret);
    if let Some(address) = forwarded {
        request = request.header("X-Forwarded-For", address);
    }
    answer(request).await
}

#[tokio::test]
async fn a_key_is_used_only_from_its_networks_whatever_an_untrusted_peer_claims() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let (open_key, open) = create(&server, &org, json!({})).await;
    assert_eq!(open_key["allowed_cidrs"], json!([]));
    let (_, loopback) = create(
        &server,
        &org,
        json!({"allowed_cidrs": ["127.0.0.0/8", "::1"]}),
    )
    .await;
    let (elsewhere_key, elsewhere) = create(
        &server,
        &org,
        json!({"allowed_cidrs": ["10.0.0.0/8", "2001:db8::/32"]}),
    )
    .await;
    assert_eq!(
        elsewhere_key["allowed_cidrs"],
        json!(["10.0.0.0/8", "2001:db8::/32"])
    );
    assert_eq!(list_indexes(&server, &open, None).await.0, StatusCode::OK);
    assert_eq!(
        list_indexes(&server, &loopback, None).await.0,
        StatusCode::OK
    );
    let (status, refused) = list_indexes(&server, &elsewhere, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["code"], "address_not_allowed");
    // The peer is not a trusted proxy: what it forwards is not believed.
    let (status, _) = list_indexes(&server, &elsewhere, Some("10.1.2.3")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A wrong secret is still just unknown: the address is checked after the key.
    let (status, unknown) = list_indexes(&server, "sk_live_notakey", Some("10.1.2.3")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{unknown}");
    // Through MCP, the session itself is refused as the REST call is.
    let mcp = reqwest::Client::new()
        .post(format!("{}/mcp", server.url()))
        .header("X-API-Key", &elsewhere)
        .header("Accept", "application/json, text/event-stream")
        .json(&super::mcp::initialize_request("2025-06-18"));
    let (status, problem) = answer(mcp).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "address_not_allowed");
    server.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_one_held_to_the_networks() {
    let server = TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    let org = server.org(true).await;
    let (_, key) = create(&server, &org, json!({"allowed_cidrs": ["203.0.113.0/24"]})).await;
    assert_eq!(
        list_indexes(&server, &key, Some("203.0.113.7")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        list_indexes(&server, &key, Some("198.51.100.7")).await.0,
        StatusCode::FORBIDDEN
    );
    // Without a forwarded address the client is the proxy itself, outside the network.
    assert_eq!(
        list_indexes(&server, &key, None).await.0,
        StatusCode::FORBIDDEN
    );
    server.stop().await;
}

#[tokio::test]
async fn a_keys_networks_metadata_and_owner_change_and_keys_are_listed_by_owner() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let (alice_key, _) = create(
        &server,
        &org,
        json!({"owner_id": "user_alice", "metadata": {"app": "search-box", "env": "prod"}}),
    )
    .await;
    assert_eq!(alice_key["owner_id"], "user_alice");
    assert_eq!(
        alice_key["metadata"],
        json!({"app": "search-box", "env": "prod"})
    );
    create(&server, &org, json!({"owner_id": "user_bob"})).await;
    let (_, anyone) = create(&server, &org, json!({})).await;
    let (status, page) = answer(
        http.get(server.api("/api-keys?owner_id=user_alice"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [alice_key["id"].as_str().unwrap()]);
    // Another organisation's owner of the same name shows nothing of this one.
    let other = server.org(true).await;
    let (_, theirs) = answer(
        http.get(server.api("/api-keys?owner_id=user_alice"))
            .bearer_auth(server.token(&other, &[Scope::Admin])),
    )
    .await;
    assert_eq!(theirs["items"], json!([]));

    let key_id = alice_key["id"].as_str().unwrap();
    let (status, updated) = answer(
        http.patch(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin)
            .json(&json!({"allowed_cidrs": ["192.0.2.0/24"], "metadata": {"app": "batch"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["allowed_cidrs"], json!(["192.0.2.0/24"]));
    assert_eq!(updated["metadata"], json!({"app": "batch"}));
    assert_eq!(updated["owner_id"], "user_alice", "left out: unchanged");
    let (status, updated) = answer(
        http.patch(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin)
            .json(&json!({"owner_id": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert!(
        updated.get("owner_id").is_none(),
        "null removes it: {updated}"
    );
    assert_eq!(
        updated["metadata"],
        json!({"app": "batch"}),
        "the rest stays"
    );
    // The key that was open keeps working.
    assert_eq!(list_indexes(&server, &anyone, None).await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn a_network_set_on_one_instance_holds_on_the_other() {
    let a = TestServer::start().await;
    let b = a.second_instance().await;
    let org = a.org(true).await;
    let (key, secret) = create(&a, &org, json!({})).await;
    assert_eq!(list_indexes(&b, &secret, None).await.0, StatusCode::OK);
    let key_id = key["id"].as_str().unwrap();
    let (status, _) = answer(
        reqwest::Client::new()
            .patch(a.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(a.token(&org, &[Scope::Admin]))
            .json(&json!({"allowed_cidrs": ["10.0.0.0/8"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let started = std::time::Instant::now();
    while list_indexes(&b, &secret, None).await.0 != StatusCode::FORBIDDEN {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "never held on b"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn hostile_restrictions_are_refused_by_pointer() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let index_ids: Vec<String> = (0..101).map(|i| format!("idx_{i}")).collect();
    let cases = [
        (
            json!({"allowed_cidrs": ["10.0.0.0/33"]}),
            "/allowed_cidrs/0",
        ),
        (
            json!({"allowed_cidrs": ["10.0.0.0/8", "not a network"]}),
            "/allowed_cidrs/1",
        ),
        (json!({"allowed_cidrs": ["::1/129"]}), "/allowed_cidrs/0"),
        (
            json!({"allowed_cidrs": ["10.0.0.0/8\u{0}"]}),
            "/allowed_cidrs/0",
        ),
        (
            json!({"allowed_cidrs": vec!["10.0.0.0/8"; 33]}),
            "/allowed_cidrs",
        ),
        (json!({"allowed_cidrs": "10.0.0.0/8"}), "/allowed_cidrs"),
        (json!({"metadata": many}), "/metadata"),
        (json!({"metadata": {"x".repeat(41): "v"}}), "/metadata/"),
        (json!({"metadata": {"": "v"}}), "/metadata/"),
        (json!({"metadata": {"k": "v".repeat(501)}}), "/metadata/k"),
        (json!({"metadata": {"k": "a\u{0}b"}}), "/metadata/k"),
        (json!({"metadata": {"k": {"nested": 1}}}), "/metadata/k"),
        (json!({"owner_id": "x".repeat(129)}), "/owner_id"),
        (json!({"owner_id": ""}), "/owner_id"),
        (json!({"owner_id": "a\u{0}"}), "/owner_id"),
        (json!({"index_ids": ["idx_../x"]}), "/index_ids/0"),
        (
            json!({"index_ids": ["idx_a", "idx_a\u{0}"]}),
            "/index_ids/1",
        ),
        (json!({"index_ids": ["IDX_UPPER"]}), "/index_ids/0"),
        (
            json!({"index_ids": [format!("idx_{}", "a".repeat(61))]}),
            "/index_ids/0",
        ),
        (json!({"index_ids": index_ids}), "/index_ids"),
        (json!({"index_ids": "idx_a"}), "/index_ids"),
        (json!({"index_ids": [["idx_a"]]}), "/index_ids/0"),
        (json!({"max_top_k": 0}), "/max_top_k"),
        (json!({"max_top_k": 1001}), "/max_top_k"),
        (json!({"max_top_k": -1}), "/max_top_k"),
        (json!({"max_top_k": "5"}), "/max_top_k"),
        (
            json!({"allowed_origins": ["shop.example.com"]}),
            "/allowed_origins/0",
        ),
        (
            json!({"allowed_origins": ["https://a.test", "https://a.test/path"]}),
            "/allowed_origins/1",
        ),
        (json!({"allowed_origins": ["*"]}), "/allowed_origins/0"),
        (
            json!({"allowed_origins": ["https://*.com"]}),
            "/allowed_origins/0",
        ),
        (
            json!({"allowed_origins": ["https://A.test"]}),
            "/allowed_origins/0",
        ),
        (
            json!({"allowed_origins": ["https://a.test\u{0}"]}),
            "/allowed_origins/0",
        ),
        (
            json!({"allowed_origins": [format!("https://{}.test", "a".repeat(300))]}),
            "/allowed_origins/0",
        ),
        (
            json!({"allowed_origins": vec!["https://a.test"; 33]}),
            "/allowed_origins",
        ),
    ];
    let (existing, _) = create(&server, &org, json!({})).await;
    let key_id = existing["id"].as_str().unwrap();
    for (extra, pointer) in cases {
        let mut body = json!({"name": "k", "scopes": ["read"]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        for request in [
            http.post(server.api("/api-keys")).json(&body),
            http.patch(server.api(&format!("/api-keys/{key_id}")))
                .json(&extra),
        ] {
            let (status, problem) = answer(request.bearer_auth(&admin)).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{extra}: {problem}"
            );
            let pointers: Vec<&str> = problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["pointer"].as_str())
                .collect();
            assert!(
                pointers.iter().any(|p| p.starts_with(pointer)),
                "{extra}: {pointers:?}"
            );
        }
    }
    let (_, unchanged) = answer(
        http.get(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(unchanged["allowed_cidrs"], json!([]));
    assert_eq!(unchanged["metadata"], json!({}));
    assert_eq!(unchanged["index_ids"], json!([]));
    assert_eq!(unchanged["allowed_origins"], json!([]));
    assert!(unchanged.get("max_top_k").is_none(), "{unchanged}");
    let (status, _) = answer(
        http.get(server.api(&format!("/api-keys?owner_id={}", "x".repeat(129))))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    server.stop().await;
}

/// `GET /indexes` with `key` as the page at `origin` would send it.
async fn list_from_page(server: &TestServer, key: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(server.api("/indexes"))
        .header("X-API-Key", key)
        .header("Origin", origin)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_is_used_only_from_the_web_pages_it_names() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let shop = "https://shop.example.com";
    let (key, listed) = create(
        &server,
        &org,
        json!({"allowed_origins": [shop, "https://*.example.net"]}),
    )
    .await;
    assert_eq!(
        key["allowed_origins"],
        json!([shop, "https://*.example.net"])
    );
    let (_, unlisted) = create(&server, &org, json!({})).await;

    // A preflight carries no key: it is answered for any page, at paths the API serves.
    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            server.api("/indexes/idx_a/search"),
        )
        .header("Origin", "https://elsewhere.test")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-api-key, content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some("https://elsewhere.test")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-methods").as_deref(),
        Some("POST")
    );
    assert!(header(&preflight, "access-control-allow-headers")
        .unwrap()
        .contains("X-API-Key"));

    // The request itself is held to the key's pages.
    for (secret, origin, allowed) in [
        (&listed, shop, true),
        (&listed, "https://a.example.net", true),
        (&listed, "https://shop.example.com.evil.test", false),
        (&listed, "http://shop.example.com", false),
        (&unlisted, shop, false),
    ] {
        let answer = list_from_page(&server, secret, origin).await;
        // Readable by the page either way, so a refusal says why.
        assert_eq!(
            header(&answer, "access-control-allow-origin").as_deref(),
            Some(origin)
        );
        assert!(header(&answer, "vary").unwrap().contains("Origin"));
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        match allowed {
            true => assert_eq!(status, StatusCode::OK, "{origin}: {body}"),
            false => {
                assert_eq!(status, StatusCode::FORBIDDEN, "{origin}: {body}");
                assert_eq!(body["code"], "origin_not_allowed", "{body}");
                assert!(body["detail"].as_str().unwrap().contains(origin), "{body}");
            }
        }
    }
    // The server's own pages (Swagger UI, the docs) are same-origin; clients that are not
    // browsers send no `Origin`.
    let own = server.url();
    assert_eq!(
        list_from_page(&server, &unlisted, &own).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        list_indexes(&server, &unlisted, None).await.0,
        StatusCode::OK
    );
    // A tenant token is held to its key's pages.
    let token = videovector_client::tenant_token(
        key["id"].as_str().unwrap(),
        &listed,
        std::time::Duration::from_secs(60),
        &Default::default(),
    )
    .unwrap();
    let search = |origin: &'static str| {
        reqwest::Client::new()
            .post(server.api("/search"))
            .header("X-API-Key", &token)
            .header("Origin", origin)
            .json(&json!({"query": "x", "index_ids": ["idx_none"]}))
            .send()
    };
    let refused = search("https://elsewhere.test").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // Past the origin check, the search itself answers (the index does not exist).
    assert_eq!(
        search("https://shop.example.com").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}
