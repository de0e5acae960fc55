//! Two instances on one database: what one writes, the other honours. On PostgreSQL the
//! other instance hears of it through LISTEN/NOTIFY, faster than its one-second commit
//! interval and five-second cache TTL, which is what the bounds below tell apart; the
//! latency itself is measured by the bench's `cluster` scenario. On SQLite there is no
//! cache to go stale, and a second instance polls.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use videovector_api_spec::Scope;
use videovector_server::cluster::LISTENER_APPLICATION_NAME;
use videovector_tests::TestServer;

/// Under PostgreSQL's notices a change reaches the other instance well within this; the
/// fallbacks (cache TTL 5 s, commit interval 1 s) never do.
const NOTICE_BOUND: Duration = Duration::from_millis(900);

fn on_postgres(server: &TestServer) -> bool {
    server.database_url.starts_with("postgres")
}

/// Polls `check` every 5 ms until it holds (at most 10 s); returns how long that took.
async fn time_until<F, Fut>(mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never happened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

async fn status_with_key(http: &reqwest::Client, url: &str, secret: &str) -> StatusCode {
    http.get(url)
        .header("X-API-Key", secret)
        .send()
        .await
        .unwrap()
        .status()
}

/// Sends `request` with the bearer `token`: the status, and the JSON body (null if empty).
async fn answer(request: reqwest::RequestBuilder, token: &str) -> (StatusCode, Value) {
    let answer = request.bearer_auth(token).send().await.unwrap();
    let status = answer.status();
    let body = answer.bytes().await.unwrap();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, json)
}

async fn create_index(server: &TestServer, admin: &str) -> String {
    let request = reqwest::Client::new()
        .post(server.api("/indexes"))
        .json(&json!({"name": "shared"}));
    let (status, created) = answer(request, admin).await;
    assert_eq!(status, StatusCode::CREATED);
    created["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_key_revoked_on_one_instance_is_refused_on_the_other_within_the_notice_delay() {
    let a = TestServer::start().await;
    let b = a.second_instance().await;
    let org = a.org(true).await;
    let admin = a.token(&org, &[Scope::Admin]);
    let index_id = create_index(&a, &admin).await;
    let (key_id, secret) = a.api_key(&org, &[Scope::Read]).await;
    let http = reqwest::Client::new();
    let on_a = a.api(&format!("/indexes/{index_id}"));
    let on_b = b.api(&format!("/indexes/{index_id}"));
    for url in [&on_a, &on_b, &on_b] {
        assert_eq!(status_with_key(&http, url, &secret).await, StatusCode::OK);
    }

    let revoke = http.post(a.api(&format!("/api-keys/{key_id}/revoke")));
    assert_eq!(answer(revoke, &admin).await.0, StatusCode::OK);
    assert_eq!(
        status_with_key(&http, &on_a, &secret).await,
        StatusCode::UNAUTHORIZED,
        "the instance that revoked refuses the key on the very next request"
    );
    let took = time_until(|| async {
        status_with_key(&http, &on_b, &secret).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(took < NOTICE_BOUND, "B refused the key only after {took:?}");
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn index_changes_and_waited_batches_reach_the_other_instance_at_once() {
    let a = TestServer::start().await;
    let b = a.second_instance().await;
    let org = a.org(true).await;
    let admin = a.token(&org, &[Scope::Admin]);
    let index_id = create_index(&a, &admin).await;
    let http = reqwest::Client::new();
    let on_index = |server: &TestServer, method: reqwest::Method, suffix: &str| {
        http.request(method, server.api(&format!("/indexes/{index_id}{suffix}")))
    };
    let view_on_b = || answer(on_index(&b, reqwest::Method::GET, ""), &admin);
    // B has read (and on PostgreSQL cached) the index before A changes it.
    assert_eq!(view_on_b().await.1["segment_count"], 0);

    let ingest = on_index(&a, reqwest::Method::POST, "/segments").json(&json!({
        "wait": true, "segments": [{"media_id": "m1", "start_seconds": 0.0,
        "end_seconds": 2.0, "text": "the quokka crossed the harbour bridge"}]}));
    assert_eq!(answer(ingest, &admin).await.0, StatusCode::CREATED);
    let searchable_on_b = time_until(|| async {
        let search =
            on_index(&b, reqwest::Method::POST, "/search").json(&json!({"query": "quokka"}));
        let (_, found) = answer(search, &admin).await;
        found["hits"].as_array().is_some_and(|hits| hits.len() == 1)
    })
    .await;
    let counted_on_b = time_until(|| async { view_on_b().await.1["segment_count"] == 1 }).await;

    let rename = on_index(&a, reqwest::Method::PATCH, "").json(&json!({"name": "renamed"}));
    assert_eq!(answer(rename, &admin).await.0, StatusCode::OK);
    let renamed_on_b = time_until(|| async { view_on_b().await.1["name"] == "renamed" }).await;

    let delete = on_index(&a, reqwest::Method::DELETE, "");
    assert_eq!(answer(delete, &admin).await.0, StatusCode::NO_CONTENT);
    let gone_on_b = time_until(|| async { view_on_b().await.0 == StatusCode::NOT_FOUND }).await;

    if on_postgres(&a) {
        for (what, took) in [
            ("searchable", searchable_on_b),
            ("counted", counted_on_b),
            ("renamed", renamed_on_b),
            ("deleted", gone_on_b),
        ] {
            assert!(took < NOTICE_BOUND, "{what} on B after {took:?}");
        }
    }
    b.stop().await;
    a.stop().await;
}

/// Runs `select` (of `pid`) over this instance's listening connections (PostgreSQL);
/// returns how many there were.
async fn over_listeners(server: &TestServer, select: &str) -> usize {
    server
        .db()
        .query_all(Statement::from_string(
            server.db().get_database_backend(),
            format!(
                "SELECT {select} FROM pg_stat_activity \
                 WHERE application_name = '{LISTENER_APPLICATION_NAME}' \
                 AND datname = current_database()"
            ),
        ))
        .await
        .unwrap()
        .len()
}

async fn kill_listener(server: &TestServer) -> usize {
    over_listeners(server, "pg_terminate_backend(pid)").await
}

async fn listeners(server: &TestServer) -> usize {
    over_listeners(server, "pid").await
}

/// Revokes `key_id` in the database without a notice, as a lost notice would leave it.
async fn revoke_silently(server: &TestServer, key_id: &str) {
    let backend = server.db().get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "UPDATE api_keys SET revoked_at = now() WHERE id = $1",
        _ => "UPDATE api_keys SET revoked_at = '2026-01-01 00:00:00+00:00' WHERE id = ?",
    };
    let done = server
        .db()
        .execute(Statement::from_sql_and_values(
            backend,
            sql,
            [key_id.into()],
        ))
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

#[tokio::test]
async fn while_notices_cannot_arrive_nothing_is_cached() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let index_id = create_index(&server, &admin).await;
    let url = server.api(&format!("/indexes/{index_id}"));
    let http = reqwest::Client::new();
    let (key_id, secret) = server.api_key(&org, &[Scope::Read]).await;
    assert_eq!(status_with_key(&http, &url, &secret).await, StatusCode::OK);
    revoke_silently(&server, &key_id).await;
    if !on_postgres(&server) {
        // Nothing is cached on SQLite: the database's answer is the answer.
        assert_eq!(
            status_with_key(&http, &url, &secret).await,
            StatusCode::UNAUTHORIZED
        );
        server.stop().await;
        return;
    }
    // The cached key is served until a notice, the TTL or a lost connection ends it (an
    // instance follows notices from the moment it serves).
    assert!(server.server.state.reads.is_live());
    assert_eq!(status_with_key(&http, &url, &secret).await, StatusCode::OK);
    assert_eq!(kill_listener(&server).await, 1);
    time_until(|| async { !server.server.state.reads.is_live() }).await;
    let refused = time_until(|| async {
        status_with_key(&http, &url, &secret).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused < NOTICE_BOUND, "refused only after {refused:?}");

    // Listening again, the cache serves (and goes stale on a silent write) once more.
    time_until(|| async { listeners(&server).await == 1 && server.server.state.reads.is_live() })
        .await;
    let (key_id, secret) = server.api_key(&org, &[Scope::Read]).await;
    assert_eq!(status_with_key(&http, &url, &secret).await, StatusCode::OK);
    revoke_silently(&server, &key_id).await;
    assert_eq!(status_with_key(&http, &url, &secret).await, StatusCode::OK);
    server.stop().await;
}

/// Instances started together on a new PostgreSQL database all come up: one applies the
/// migrations and the others wait for it (without the lock they raced and failed with
/// "relation already exists").
#[tokio::test]
async fn instances_starting_together_on_a_new_database_migrate_it_once() {
    let Ok(admin_url) = std::env::var(videovector_tests::PG_ENV) else {
        return; // One SQLite file has one instance.
    };
    let (url, _) = videovector_tests::fresh_pg_database(&admin_url)
        .await
        .unwrap();
    let starts = (0..4).map(|_| videovector_server::db::connect_and_migrate(&url));
    for started in futures_util::future::join_all(starts).await {
        started.expect("an instance starting beside others migrates or finds it done");
    }
}
