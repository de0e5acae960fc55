//! Rate limits and usage (issue 22), through raw HTTP so the headers are read as sent: the
//! headers on every answer to a credential, the 429 and the budget back after it, named
//! limits, the organisation's defaults and a key's own, a change made on one instance held
//! on the other (and, on PostgreSQL, one budget across both), hostile limits, and usage
//! counts by family and outcome rolled up to hours and days; limits counted per client
//! address.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{header::HeaderMap, StatusCode};
use serde_json::{json, Value};
use videovector_api_spec::Scope;
use videovector_tests::{TestOrg, TestServer};

fn on_postgres(server: &TestServer) -> bool {
    server.database_url.starts_with("postgres")
}

/// An answer: status, headers, JSON body (null if empty).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `RateLimit` header's remaining count.
    fn remaining(&self) -> u32 {
        let header = self.header("ratelimit").expect("a RateLimit header");
        let r = header
            .split(';')
            .find_map(|p| p.strip_prefix("r="))
            .expect("r=");
        r.parse().expect("a number")
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let answer = request.send().await.expect("the server answers");
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.expect("a body");
    let body = match bytes.is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    Answer {
        status,
        headers,
        body,
    }
}

struct Caller<'a> {
    server: &'a TestServer,
    http: reqwest::Client,
    secret: String,
}

impl Caller<'_> {
    async fn get(&self, path: &str) -> Answer {
        send(
            self.http
                .get(self.server.api(path))
                .header("X-API-Key", &self.secret),
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        send(
            self.http
                .post(self.server.api(path))
                .header("X-API-Key", &self.secret)
                .json(&body),
        )
        .await
    }
}

/// Creates a key through the API with `rate_limits` (JSON) of its own.
async fn key_with_limits(
    server: &TestServer,
    org: &TestOrg,
    scopes: &[&str],
    rate_limits: Value,
) -> (String, String) {
    let admin = server.token(org, &[Scope::Admin]);
    let created = send(
        reqwest::Client::new()
            .post(server.api("/api-keys"))
            .bearer_auth(admin)
            .json(&json!({"name": "limited", "scopes": scopes, "rate_limits": rate_limits})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    (
        created.body["key"]["id"].as_str().unwrap().to_string(),
        created.body["secret"].as_str().unwrap().to_string(),
    )
}

fn caller(server: &TestServer, secret: String) -> Caller<'_> {
    Caller {
        server,
        http: reqwest::Client::new(),
        secret,
    }
}

/// Sleeps until just after the start of the next window of `seconds`, so that a test's few
/// requests fall in one window.
async fn start_of_next_window(seconds: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = now.as_millis() as u64 % (seconds * 1000);
    tokio::time::sleep(Duration::from_millis(seconds * 1000 - into + 20)).await;
}

#[tokio::test]
async fn every_answer_to_a_credential_carries_the_limits_of_its_family() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let (_, secret) = server.api_key(&org, &[Scope::Search, Scope::Read]).await;
    let key = caller(&server, secret);
    let search = key
        .post(
            "/search",
            json!({"query": "bridge", "index_ids": ["idx_none"]}),
        )
        .await;
    let read = key.get("/indexes").await;
    let not_found = key.get("/indexes/idx_missing").await;
    let refused = key.post("/indexes", json!({"name": "x"})).await;
    let invalid = key.get("/indexes?limit=0").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (answer, family) in [
        (&search, "search"),
        (&read, "read"),
        (&not_found, "read"),
        (&refused, "write"),
        (&invalid, "read"),
    ] {
        assert_eq!(
            answer.header("ratelimit-policy"),
            Some(format!("\"{family}_per_second\";q=1000000;w=1").as_str()),
            "{} {}",
            answer.status,
            answer.body
        );
        let limit = answer.header("ratelimit").unwrap();
        assert!(
            limit.starts_with(&format!("\"{family}_per_second\";r=")) && limit.ends_with(";t=1"),
            "{limit}"
        );
    }
    // An operator's token is held to the same limits, as the operator.
    let admin = server.token(&org, &[Scope::Admin]);
    let as_operator = send(
        reqwest::Client::new()
            .get(server.api("/api-keys"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(as_operator.status, StatusCode::OK);
    assert!(as_operator.header("ratelimit").is_some());
    // Before the credential is known there is nothing to count against.
    let unknown = send(
        reqwest::Client::new()
            .get(server.api("/indexes"))
            .header("X-API-Key", "sk_live_unknown"),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.header("ratelimit-policy").is_none());
    // Public operations are not counted.
    let login = send(
        reqwest::Client::new()
            .post(server.api("/auth/token"))
            .json(&json!({"email": "nobody@example.com", "password": "wrong-password"})),
    )
    .await;
    assert!(login.header("ratelimit-policy").is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_spent_limit_answers_429_with_retry_after_and_the_budget_comes_back() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let (_, secret) = key_with_limits(
        &server,
        &org,
        &["read"],
        json!([{"name": "burst", "family": "read", "quota": 3, "window_seconds": 3}]),
    )
    .await;
    let key = caller(&server, secret);
    start_of_next_window(3).await;
    for left in [2, 1, 0] {
        let answer = key.get("/indexes").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.remaining(), left);
        assert_eq!(answer.header("ratelimit-policy"), Some("\"burst\";q=3;w=3"));
    }
    let refused = key.get("/indexes").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body["code"], "rate_limited");
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3).contains(&wait), "Retry-After {wait}");
    assert_eq!(refused.remaining(), 0);
    assert!(refused.body["detail"].as_str().unwrap().contains("burst"));
    // Refusals are not counted: waiting as told is enough.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let back = key.get("/indexes").await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(back.remaining(), 2);
    server.stop().await;
}

#[tokio::test]
async fn several_named_limits_all_hold_and_the_one_that_refuses_is_named() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let (_, secret) = key_with_limits(
        &server,
        &org,
        &["read"],
        json!([
            {"name": "per_two_seconds", "family": "read", "quota": 2, "window_seconds": 2},
            {"name": "per_day", "family": "read", "quota": 3, "window_seconds": 86400},
        ]),
    )
    .await;
    let key = caller(&server, secret);
    start_of_next_window(2).await;
    assert_eq!(key.get("/indexes").await.status, StatusCode::OK);
    let second = key.get("/indexes").await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        second.header("ratelimit-policy"),
        Some("\"per_two_seconds\";q=2;w=2, \"per_day\";q=3;w=86400")
    );
    let short = key.get("/indexes").await;
    assert_eq!(short.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(short
        .header("ratelimit")
        .unwrap()
        .starts_with("\"per_two_seconds\";r=0"));
    start_of_next_window(2).await;
    let third = key.get("/indexes").await;
    assert_eq!(third.status, StatusCode::OK);
    let day = key.get("/indexes").await;
    assert_eq!(day.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(day
        .header("ratelimit")
        .unwrap()
        .starts_with("\"per_day\";r=0"));
    let wait: u64 = day.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 2, "the day's wait, not the short window's: {wait}");
    server.stop().await;
}

#[tokio::test]
async fn a_key_follows_its_own_limits_then_its_organisation_then_the_server() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let policy = send(http.get(server.api("/rate-limits")).bearer_auth(&admin)).await;
    assert_eq!(policy.status, StatusCode::OK);
    assert_eq!(policy.body["source"], "server");
    assert_eq!(policy.body["max_requests_per_second"], 10_000);
    let set = send(
        http.put(server.api("/rate-limits"))
            .bearer_auth(&admin)
            .json(&json!({"limits": [
                {"name": "org_search", "family": "search", "quota": 50, "window_seconds": 60}
            ]})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["source"], "organization");
    let (key_id, secret) = server.api_key(&org, &[Scope::Search, Scope::Read]).await;
    let key = caller(&server, secret);
    let search = json!({"query": "bridge", "index_ids": ["idx_none"]});
    let by_org = key.post("/search", search.clone()).await;
    assert_eq!(
        by_org.header("ratelimit-policy"),
        Some("\"org_search\";q=50;w=60")
    );
    // A family the organisation leaves out keeps the server's.
    assert_eq!(
        key.get("/indexes").await.header("ratelimit-policy"),
        Some("\"read_per_second\";q=1000000;w=1")
    );
    let updated = send(
        http.patch(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin)
            .json(&json!({"rate_limits": [
                {"name": "mine", "family": "search", "quota": 500, "window_seconds": 60}
            ]})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["rate_limits"][0]["name"], "mine");
    let viewed = send(
        http.get(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(viewed.body["rate_limits"], updated.body["rate_limits"]);
    assert_eq!(
        key.post("/search", search.clone())
            .await
            .header("ratelimit-policy"),
        Some("\"mine\";q=500;w=60")
    );
    // An empty list hands the key back to its organisation.
    let cleared = send(
        http.patch(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin)
            .json(&json!({"rate_limits": []})),
    )
    .await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(
        key.post("/search", search).await.header("ratelimit-policy"),
        Some("\"org_search\";q=50;w=60")
    );
    // Another organisation is untouched.
    let other = server.org(true).await;
    let other_admin = server.token(&other, &[Scope::Admin]);
    let theirs = send(
        http.get(server.api("/rate-limits"))
            .bearer_auth(&other_admin),
    )
    .await;
    assert_eq!(theirs.body["source"], "server");
    server.stop().await;
}

#[tokio::test]
async fn hostile_limits_are_refused_by_pointer_and_change_nothing() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let (key_id, _) = server.api_key(&org, &[Scope::Read]).await;
    let http = reqwest::Client::new();
    let limit = |name: Value, family: Value, quota: Value, window: Value| json!({"name": name, "family": family, "quota": quota, "window_seconds": window});
    let fine = || (json!("ok"), json!("read"), json!(10), json!(60));
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let (n, f, q, w) = fine();
    cases.push((
        json!([limit(json!("a\u{0}b"), f.clone(), q.clone(), w.clone())]),
        "/rate_limits/0/name",
    ));
    cases.push((
        json!([limit(json!("Upper"), f.clone(), q.clone(), w.clone())]),
        "/rate_limits/0/name",
    ));
    cases.push((
        json!([limit(
            json!("x".repeat(65)),
            f.clone(),
            q.clone(),
            w.clone()
        )]),
        "/rate_limits/0/name",
    ));
    cases.push((
        json!([limit(json!(""), f.clone(), q.clone(), w.clone())]),
        "/rate_limits/0/name",
    ));
    cases.push((
        json!([limit(n.clone(), json!("delete"), q.clone(), w.clone())]),
        "/rate_limits/0/family",
    ));
    cases.push((
        json!([limit(n.clone(), f.clone(), json!(0), w.clone())]),
        "/rate_limits/0/quota",
    ));
    cases.push((
        json!([limit(n.clone(), f.clone(), json!(-1), w.clone())]),
        "/rate_limits/0/quota",
    ));
    cases.push((
        json!([limit(n.clone(), f.clone(), json!(1e300), w.clone())]),
        "/rate_limits/0/quota",
    ));
    cases.push((
        json!([limit(n.clone(), f.clone(), json!("10"), w.clone())]),
        "/rate_limits/0/quota",
    ));
    cases.push((
        json!([limit(n.clone(), f.clone(), q.clone(), json!(0))]),
        "/rate_limits/0/window_seconds",
    ));
    cases.push((
        json!([limit(n.clone(), f.clone(), q.clone(), json!(86_401))]),
        "/rate_limits/0/window_seconds",
    ));
    // Past the ceiling of 10,000 a second, averaged over the window.
    cases.push((
        json!([limit(n.clone(), f.clone(), json!(10_001), json!(1))]),
        "/rate_limits/0/quota",
    ));
    cases.push((
        json!([limit(n.clone(), f.clone(), json!(600_001), json!(60))]),
        "/rate_limits/0/quota",
    ));
    cases.push((
        json!([
            limit(n.clone(), f.clone(), q.clone(), w.clone()),
            limit(n.clone(), json!("search"), q.clone(), w.clone())
        ]),
        "/rate_limits/1/name",
    ));
    cases.push((
        Value::Array(vec![limit(n.clone(), f.clone(), q.clone(), w.clone()); 25]),
        "/rate_limits",
    ));
    let nested = format!("{}1{}", "[".repeat(64), "]".repeat(64));
    cases.push((serde_json::from_str(&nested).unwrap(), "/rate_limits/0"));
    cases.push((json!({"name": "not a list"}), "/rate_limits"));
    for (limits, pointer) in cases {
        for (method, path, field) in [
            (
                reqwest::Method::POST,
                "/api-keys".to_string(),
                "rate_limits",
            ),
            (
                reqwest::Method::PATCH,
                format!("/api-keys/{key_id}"),
                "rate_limits",
            ),
            (
                reqwest::Method::POST,
                "/api-keys".to_string(),
                "client_rate_limits",
            ),
            (
                reqwest::Method::PATCH,
                format!("/api-keys/{key_id}"),
                "client_rate_limits",
            ),
        ] {
            let pointer = pointer.replacen("/rate_limits", &format!("/{field}"), 1);
            let body = json!({"name": "k", "scopes": ["read"], field: limits});
            let answer = send(
                http.request(method.clone(), server.api(&path))
                    .bearer_auth(&admin)
                    .json(&body),
            )
            .await;
            assert_eq!(
                answer.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {limits}: {}",
                answer.body
            );
            let pointers: Vec<&str> = answer.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["pointer"].as_str())
                .collect();
            assert!(
                pointers.iter().any(|p| p.starts_with(&pointer)),
                "{method} {field} {limits}: {pointers:?}"
            );
        }
        let put = send(
            http.put(server.api("/rate-limits"))
                .bearer_auth(&admin)
                .json(&json!({"limits": limits})),
        )
        .await;
        assert_eq!(put.status, StatusCode::UNPROCESSABLE_ENTITY, "PUT {limits}");
    }
    let viewed = send(
        http.get(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(viewed.body["rate_limits"], json!([]));
    let policy = send(http.get(server.api("/rate-limits")).bearer_auth(&admin)).await;
    assert_eq!(policy.body["source"], "server");
    // Setting the organisation's limits takes `admin`; reading them and usage `read`; an
    // API key may do none of it.
    let write_token = server.token(&org, &[Scope::Write]);
    let put = send(
        http.put(server.api("/rate-limits"))
            .bearer_auth(&write_token)
            .json(&json!({"limits": []})),
    )
    .await;
    assert_eq!(put.status, StatusCode::FORBIDDEN);
    let (_, admin_key) = server.api_key(&org, &[Scope::Admin]).await;
    for path in [
        "/rate-limits",
        "/usage",
        &format!("/api-keys/{key_id}/usage"),
    ] {
        let answer = send(http.get(server.api(path)).header("X-API-Key", &admin_key)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(answer.body["code"], "bearer_required");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_limit_changed_on_one_instance_holds_on_the_other() {
    let a = TestServer::start().await;
    let b = a.second_instance().await;
    let org = a.org(true).await;
    let admin = a.token(&org, &[Scope::Admin]);
    let (key_id, secret) = a.api_key(&org, &[Scope::Read]).await;
    let on_a = caller(&a, secret.clone());
    let on_b = caller(&b, secret);
    assert_eq!(
        on_b.get("/indexes").await.header("ratelimit-policy"),
        Some("\"read_per_second\";q=1000000;w=1")
    );
    let updated = send(
        reqwest::Client::new()
            .patch(a.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin)
            .json(&json!({"rate_limits": [
                {"name": "shared", "family": "read", "quota": 4, "window_seconds": 86400}
            ]})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK);
    // As fast as a revocation: the notice on PostgreSQL, no cache on SQLite.
    let started = Instant::now();
    loop {
        let answer = on_b.get("/indexes").await;
        if answer.header("ratelimit-policy") == Some("\"shared\";q=4;w=86400") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never held on b"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if on_postgres(&a) {
        // One budget across both: the request above spent one; three more in all.
        let mut admitted = 1;
        for round in 0..6 {
            let answer = match round % 2 {
                0 => on_a.get("/indexes").await,
                _ => on_b.get("/indexes").await,
            };
            if answer.status == StatusCode::OK {
                admitted += 1;
            } else {
                assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
            }
        }
        assert_eq!(
            admitted, 4,
            "the two instances admitted one quota between them"
        );
    }
    b.stop().await;
    a.stop().await;
}

/// Polls `path` (a usage read) with `token` until `done` holds of its body (at most 5 s).
async fn usage_until(
    server: &TestServer,
    token: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let answer = send(http.get(server.api(path)).bearer_auth(token)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        if done(&answer.body) {
            return answer.body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "usage never matched: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sums of one key's buckets per family and outcome.
fn totals(usage: &Value) -> Value {
    let mut sums = serde_json::Map::new();
    for bucket in usage["buckets"].as_array().into_iter().flatten() {
        let family = bucket["family"].as_str().unwrap().to_string();
        let entry = sums.entry(family).or_insert_with(|| json!({}));
        for outcome in [
            "allowed",
            "rate_limited",
            "refused_by_scope",
            "not_found",
            "client_error",
            "server_error",
        ] {
            let n = bucket[outcome].as_u64().unwrap() + entry[outcome].as_u64().unwrap_or(0);
            entry[outcome] = json!(n);
        }
    }
    Value::Object(sums)
}

#[tokio::test]
async fn usage_counts_every_answer_by_family_and_outcome_in_every_granularity() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let (key_id, secret) = key_with_limits(
        &server,
        &org,
        &["search", "read"],
        json!([{"name": "searches", "family": "search", "quota": 2, "window_seconds": 86400}]),
    )
    .await;
    let (quiet_id, _) = server.api_key(&org, &[Scope::Read]).await;
    let key = caller(&server, secret);
    for _ in 0..3 {
        assert_eq!(key.get("/indexes").await.status, StatusCode::OK);
    }
    for _ in 0..2 {
        assert_eq!(
            key.get("/indexes/idx_missing").await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        key.post("/indexes", json!({"name": "x"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        key.get("/indexes?limit=1000").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let search = json!({"query": "bridge", "index_ids": ["idx_missing"]});
    let mut searches = Vec::new();
    for _ in 0..3 {
        searches.push(key.post("/search", search.clone()).await.status);
    }
    assert_eq!(searches[2], StatusCode::TOO_MANY_REQUESTS);
    // An operator's requests are not a key's usage.
    send(
        reqwest::Client::new()
            .get(server.api("/indexes"))
            .bearer_auth(&admin),
    )
    .await;
    let expected = json!({
        "read": {"allowed": 3, "rate_limited": 0, "refused_by_scope": 0, "not_found": 2,
                 "client_error": 1, "server_error": 0},
        "search": {"allowed": 0, "rate_limited": 1, "refused_by_scope": 0, "not_found": 2,
                   "client_error": 0, "server_error": 0},
        "write": {"allowed": 0, "rate_limited": 0, "refused_by_scope": 1, "not_found": 0,
                  "client_error": 0, "server_error": 0},
    });
    for granularity in ["minute", "hour", "day"] {
        let path = format!("/api-keys/{key_id}/usage?granularity={granularity}");
        let report = usage_until(&server, &admin, &path, |r| {
            r["keys"].as_array().is_some_and(|k| k.len() == 1) && totals(&r["keys"][0]) == expected
        })
        .await;
        assert_eq!(report["granularity"], granularity);
        assert_eq!(report["keys"][0]["key_id"], key_id.as_str());
        assert_eq!(report["keys"][0]["name"], "limited");
    }
    // The organisation's view: every key with requests, in one call.
    let everyone = usage_until(&server, &admin, "/usage?granularity=day", |r| {
        r["keys"].as_array().is_some_and(|k| !k.is_empty())
    })
    .await;
    let ids: Vec<&str> = everyone["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [key_id.as_str()],
        "the quiet key {quiet_id} made no requests"
    );
    assert_eq!(totals(&everyone["keys"][0]), expected);
    // Another organisation sees neither the key nor its usage.
    let other = server.org(true).await;
    let other_admin = server.token(&other, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let theirs = send(http.get(server.api("/usage")).bearer_auth(&other_admin)).await;
    assert_eq!(theirs.body["keys"], json!([]));
    let foreign = send(
        http.get(server.api(&format!("/api-keys/{key_id}/usage")))
            .bearer_auth(&other_admin),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn usage_ranges_that_make_no_sense_are_refused() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    for (query, pointer) in [
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "/from"),
        (
            "from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&granularity=minute",
            "/to",
        ),
        (
            "from=2025-01-01T00:00:00Z&to=2026-06-01T00:00:00Z&granularity=day",
            "/to",
        ),
        ("granularity=week", "/granularity"),
        ("from=yesterday", "/from"),
        ("from=2026-01-01T00:00:00Z%00", "/from"),
    ] {
        let answer = send(
            http.get(server.api(&format!("/usage?{query}")))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            answer.body
        );
        assert_eq!(answer.body["errors"][0]["pointer"], pointer, "{query}");
    }
    server.stop().await;
}

#[tokio::test]
async fn usage_counts_are_exact_under_32_connections() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let (key_id, secret) = server.api_key(&org, &[Scope::Read]).await;
    let url = server.api("/indexes");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (url, secret) = (url.clone(), secret.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for _ in 0..25 {
                    let answer = http
                        .get(&url)
                        .header("X-API-Key", &secret)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(answer.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let path = format!("/api-keys/{key_id}/usage?granularity=minute");
    usage_until(&server, &admin, &path, |r| {
        totals(&r["keys"][0])["read"]["allowed"] == json!(800)
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn operators_tokens_are_counted_per_operator_against_the_organisations_limits() {
    use videovector_server::{db::columns::Role, services::auth::create_operator};
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let http = reqwest::Client::new();
    let admin = server.token(&org, &[Scope::Admin]);
    let set = send(
        http.put(server.api("/rate-limits"))
            .bearer_auth(&admin)
            .json(&json!({"limits": [
                {"name": "org_reads", "family": "read", "quota": 2, "window_seconds": 86400}
            ]})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK);
    let get = |token: String| {
        let request = http.get(server.api("/indexes")).bearer_auth(token);
        send(request)
    };
    assert_eq!(get(admin.clone()).await.status, StatusCode::OK);
    assert_eq!(get(admin.clone()).await.status, StatusCode::OK);
    let refused = get(admin).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"org_reads\";q=2;w=86400")
    );
    // Another token of the same operator shares the budget: it is the operator's.
    let again = server.token(&org, &[Scope::Read]);
    assert_eq!(get(again).await.status, StatusCode::TOO_MANY_REQUESTS);
    // Another operator of the organisation has its own.
    let email = format!("second-{}@example.com", std::process::id());
    let operator = create_operator(
        server.db(),
        &org.org_id,
        &email,
        "a-long-password",
        Role::Admin,
        true,
    )
    .await
    .unwrap();
    let second = TestOrg {
        org_id: org.org_id.clone(),
        operator,
        password: "a-long-password".into(),
    };
    assert_eq!(
        get(server.token(&second, &[Scope::Read])).await.status,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn client_limits_hold_each_visitor_of_a_key_apart() {
    let server = TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let limit = json!([{"name": "per_visitor", "family": "search", "quota": 2,
                        "window_seconds": 3600}]);
    let created = send(
        reqwest::Client::new()
            .post(server.api("/api-keys"))
            .bearer_auth(&admin)
            .json(&json!({"name": "browser", "scopes": ["search"], "client_rate_limits": limit})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["key"]["client_rate_limits"], limit);
    let key_id = created.body["key"]["id"].as_str().unwrap();
    // Held for the key's tenant tokens, whose visitors it is meant for.
    let token = videovector_client::tenant_token(
        key_id,
        created.body["secret"].as_str().unwrap(),
        Duration::from_secs(600),
        &Default::default(),
    )
    .unwrap();
    let search_from = |address: &'static str| {
        send(
            reqwest::Client::new()
                .post(server.api("/search"))
                .header("X-API-Key", &token)
                .header("X-Forwarded-For", address)
                .json(&json!({"query": "x", "index_ids": ["idx_none"]})),
        )
    };
    // Past the limit, the search answers 404 (no such index): the budget was not the issue.
    for _ in 0..2 {
        assert_eq!(
            search_from("203.0.113.1").await.status,
            StatusCode::NOT_FOUND
        );
    }
    let refused = search_from("203.0.113.1").await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("per_visitor"));
    assert!(refused.header("retry-after").is_some());
    // Another visitor has a budget of its own; one IPv6 subscriber's /64 is one visitor.
    assert_eq!(
        search_from("203.0.113.2").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        search_from("2001:db8:1:2::1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        search_from("2001:db8:1:2::ffff").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        search_from("2001:db8:1:2::abcd").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The limit is the search family's: reads of the key are not counted in it.
    let limits = send(
        reqwest::Client::new()
            .patch(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin)
            .json(&json!({"client_rate_limits": []})),
    )
    .await;
    assert_eq!(limits.status, StatusCode::OK, "{}", limits.body);
    assert_eq!(limits.body["client_rate_limits"], json!([]));
    assert_eq!(
        search_from("203.0.113.1").await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}
