//! The Rust client as a downstream crate uses it: lists as streams that keep their filters,
//! retries through a proxy that drops connections and answers 503 and 429 on purpose (one
//! resource created, however many attempts), and typed errors.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use videovector_api_spec::Scope;
use videovector_client::{
    types::{self, ErrorCode},
    ApiError, Client, ProblemExt, RetryPolicy,
};
use videovector_tests::{
    common_calls::create_index,
    faults::{Fault, FaultyProxy},
    TestOrg, TestServer,
};

/// Retries as the default policy makes them, with waits short enough for a test.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_server_wait: Duration::from_secs(5),
        ..RetryPolicy::default()
    }
}

/// An admin client of `org` that talks to the server through `proxy`.
fn through(proxy: &FaultyProxy, server: &TestServer, org: &TestOrg) -> Client {
    videovector_client::with_bearer_token(&proxy.url, &server.token(org, &[Scope::Admin]))
        .expect("client")
        .with_retry_policy(quick_retries())
}

async fn index_names(client: &Client) -> Vec<String> {
    client
        .index_list()
        .stream()
        .map_ok(|index| index.name)
        .try_collect()
        .await
        .expect("indexes listed")
}

#[tokio::test]
async fn a_list_streams_every_page_and_each_page_keeps_the_filters() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let proxy = FaultyProxy::start(&server.url()).await;
    let client = through(&proxy, &server, &org);
    for i in 0..7 {
        create_index(&client, &format!("idx_stream_{i}"), "Stream").await;
    }
    let before = proxy.seen().len();
    let ids: Vec<String> = client
        .index_list()
        .limit(3)
        .stream()
        .map_ok(|index| index.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        ids,
        (0..7)
            .map(|i| format!("idx_stream_{i}"))
            .collect::<Vec<_>>()
    );
    let pages: Vec<String> = proxy.seen()[before..]
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[1].contains("cursor=") && pages[2].contains("limit=3"),
        "{pages:?}"
    );

    // A filtered list: every page asks with the filter, so no other owner's key slips in.
    let admin = server.admin_client(&org);
    for (i, owner) in ["alice", "bob", "alice", "bob", "alice", "alice", "bob"]
        .iter()
        .enumerate()
    {
        admin
            .api_key_create()
            .body(
                types::ApiKeyCreate::builder()
                    .name(format!("key {i}"))
                    .scopes(vec![types::Scope::Read])
                    .owner_id(*owner),
            )
            .send()
            .await
            .unwrap();
    }
    let before = proxy.seen().len();
    let owners: Vec<Option<String>> = client
        .api_key_list()
        .owner_id("alice")
        .limit(2)
        .stream()
        .map_ok(|key| key.owner_id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(owners, vec![Some("alice".to_string()); 4]);
    let pages = &proxy.seen()[before..];
    assert_eq!(pages.len(), 2);
    assert!(pages.iter().all(|r| r.target.contains("owner_id=alice")));

    // A cursor the server refuses ends the stream with its problem.
    let refused = client
        .index_list()
        .cursor("not-a-cursor")
        .stream()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::InvalidCursor));
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_retried_and_creates_once() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let proxy = FaultyProxy::start(&server.url()).await;
    let client = through(&proxy, &server, &org);
    proxy.script([
        Fault::DropAfterForwarding,
        Fault::Answer {
            status: 503,
            retry_after: Some(0),
        },
        Fault::DropBeforeForwarding,
    ]);
    let created = client
        .index_create()
        .body(types::IndexCreate::builder().name("Created once"))
        .send()
        .await
        .expect("the fourth attempt succeeds")
        .into_inner();
    let attempts = proxy.seen();
    assert_eq!(attempts.len(), 4);
    let key = attempts[0]
        .idempotency_key
        .clone()
        .expect("a key was added");
    assert!(key.starts_with("vvc_"), "{key}");
    assert!(attempts
        .iter()
        .all(|a| a.idempotency_key.as_deref() == Some(&key)));
    // The server acted on the first attempt; the last got its stored answer.
    let names = index_names(&server.admin_client(&org)).await;
    assert_eq!(names, ["Created once"]);
    let view = server
        .admin_client(&org)
        .index_view()
        .index_id(&created.id)
        .send()
        .await
        .unwrap();
    assert_eq!(view.name, "Created once");

    // A caller's own key is kept, on every attempt.
    proxy.script([Fault::DropAfterForwarding]);
    client
        .index_create()
        .idempotency_key("caller-chosen-1")
        .body(types::IndexCreate::builder().name("Keyed by the caller"))
        .send()
        .await
        .expect("retried");
    let attempts = &proxy.seen()[4..];
    assert_eq!(attempts.len(), 2);
    assert!(attempts
        .iter()
        .all(|a| a.idempotency_key.as_deref() == Some("caller-chosen-1")));
    assert_eq!(
        index_names(&server.admin_client(&org)).await,
        ["Created once", "Keyed by the caller"]
    );
}

#[tokio::test]
async fn reads_are_retried_writes_without_a_key_and_clients_without_retries_are_not() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    create_index(&server.admin_client(&org), "idx_retry", "Retry").await;
    let proxy = FaultyProxy::start(&server.url()).await;
    let client = through(&proxy, &server, &org);

    proxy.script([
        Fault::DropBeforeForwarding,
        Fault::Answer {
            status: 502,
            retry_after: None,
        },
        Fault::Answer {
            status: 504,
            retry_after: None,
        },
    ]);
    let index = client.index_view().index_id("idx_retry").send().await;
    assert_eq!(index.expect("read retried").name, "Retry");
    assert_eq!(proxy.seen().len(), 4);

    // A search is a POST the spec gives no Idempotency-Key: sent once.
    proxy.script([Fault::Answer {
        status: 503,
        retry_after: Some(0),
    }]);
    let refused = client
        .search_query()
        .body(
            types::CrossSearchRequest::builder()
                .query("anything")
                .index_ids(vec!["idx_retry".parse().unwrap()]),
        )
        .send()
        .await
        .unwrap_err();
    assert!(refused.is_retryable());
    let searches = &proxy.seen()[4..];
    assert_eq!(searches.len(), 1);
    assert_eq!(searches[0].idempotency_key, None);

    // Retries off: one attempt, and no key added.
    let once = client.with_retry_policy(RetryPolicy::none());
    proxy.script([Fault::Answer {
        status: 503,
        retry_after: Some(0),
    }]);
    let error = ApiError::from(
        once.index_create()
            .body(types::IndexCreate::builder().name("Never"))
            .send()
            .await
            .unwrap_err(),
    );
    assert!(error.is_retryable(), "{error}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(503));
    let writes = &proxy.seen()[5..];
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].idempotency_key, None);
    assert_eq!(index_names(&server.admin_client(&org)).await, ["Retry"]);
}

#[tokio::test]
async fn a_429_is_waited_out_as_the_server_asks_unless_it_asks_too_much() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let proxy = FaultyProxy::start(&server.url()).await;
    let client = through(&proxy, &server, &org);

    proxy.script([Fault::Answer {
        status: 429,
        retry_after: Some(1),
    }]);
    let started = Instant::now();
    client
        .index_list()
        .send()
        .await
        .expect("the retry succeeds");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(proxy.seen().len(), 2);

    // Longer than the policy's `max_server_wait` (5 s here): returned to the caller.
    proxy.script([Fault::Answer {
        status: 429,
        retry_after: Some(120),
    }]);
    let error = ApiError::from(client.index_list().send().await.unwrap_err());
    assert_eq!(proxy.seen().len(), 3);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(429));
    assert!(error.is_retryable());
}

#[tokio::test]
async fn errors_are_typed_problems_with_their_request_id() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);

    async fn view(client: &Client, id: &str) -> Result<types::Index, ApiError> {
        Ok(client.index_view().index_id(id).send().await?.into_inner())
    }
    let error = view(&client, "idx_missing").await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::NotFound));
    assert_eq!(error.status().map(|s| s.as_u16()), Some(404));
    assert!(!error.is_retryable());
    let request_id = error.request_id().expect("a request id").to_string();
    assert!(request_id.starts_with("req_"), "{request_id}");
    let shown = error.to_string();
    assert!(
        shown.starts_with("404 not_found: ") && shown.ends_with(&format!("(request {request_id})")),
        "{shown}"
    );
    assert!(
        !shown.to_ascii_lowercase().contains("content-type"),
        "{shown}"
    );

    // The same questions on the generated error, unconverted.
    let raw = client
        .index_view()
        .index_id("idx_missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(raw.code(), Some(ErrorCode::NotFound));
    assert!(raw.request_id().is_some_and(|id| id.starts_with("req_")));
    assert!(!raw.is_retryable());

    // A request the server refuses names the parameter.
    let error = ApiError::from(client.index_list().limit(500).send().await.unwrap_err());
    assert_eq!(error.code(), Some(ErrorCode::ValidationFailed), "{error}");
    let problem = error.problem().expect("a problem");
    assert_eq!(problem.errors[0].pointer, "/limit", "{error}");
    assert!(error.to_string().contains("query /limit: "), "{error}");
}
