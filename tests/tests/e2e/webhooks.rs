//! Webhooks through the generated client: a run's outcome delivered to a local receiver with
//! a Standard Webhooks signature this test verifies on its own, a failing receiver retried,
//! the delivery log, test events, masked secrets, private targets refused by default, an
//! idempotent replay of run creation, and keys' lifecycle and expiry announced.

use std::{collections::HashMap, sync::atomic::Ordering};

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sha2::Sha256;
use videovector_client::{types, Client, Error};
use videovector_tests::{common_calls::create_index, LocalHttp, RecordedRequest, TestServer};

/// Verifies a delivery the way a receiver would, from the Standard Webhooks specification.
pub(crate) fn verify(secret: &str, request: &RecordedRequest) -> serde_json::Value {
    let id = &request.headers["webhook-id"];
    let timestamp: i64 = request.headers["webhook-timestamp"].parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - timestamp).abs() < 300,
        "stale timestamp"
    );
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let signatures: Vec<&str> = request.headers["webhook-signature"].split(' ').collect();
    assert!(
        signatures.contains(&expected.as_str()),
        "bad signature on {id}"
    );
    serde_json::from_slice(&request.body).unwrap()
}

pub(crate) async fn deliveries(client: &Client, webhook_id: &str) -> Vec<types::WebhookDelivery> {
    client
        .webhook_delivery_list()
        .webhook_id(webhook_id)
        .send()
        .await
        .unwrap()
        .into_inner()
        .items
}

#[tokio::test]
async fn run_outcomes_are_delivered_signed_and_failures_retried() {
    let receiver = LocalHttp::start(vec![]).await;
    receiver.post_status.store(500, Ordering::SeqCst);
    let server = TestServer::start_with(|c| {
        c.allow_private_targets = true;
        c.webhook_retry_base_ms = 100;
        c.webhook_max_attempts = 5;
    })
    .await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    let created = client
        .webhook_create()
        .body(
            types::WebhookCreate::builder()
                .url(receiver.url("/hooks/videovector"))
                .event_types(vec![
                    types::WebhookEventType::RunSucceeded,
                    types::WebhookEventType::RunFailed,
                ]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(created.secret.starts_with("whsec_"));
    let viewed = client
        .webhook_view()
        .webhook_id(&created.webhook.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(!serde_json::to_string(&viewed)
        .unwrap()
        .contains(&created.secret[6..]));

    create_index(&client, "idx_hooks", "Hooks").await;
    let prompt = client
        .prompt_create()
        .body(
            types::PromptCreate::builder()
                .name("Anything")
                .query_template("anything"),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let body = types::RunCreate::builder()
        .prompt_id(prompt.id.clone())
        .index_id("idx_hooks")
        .variables(HashMap::new());
    let run = client
        .run_create()
        .idempotency_key("run-1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), StatusCode::ACCEPTED);
    let cause = run.headers()["x-request-id"].to_str().unwrap().to_string();
    let run = run.into_inner();
    let replay = client
        .run_create()
        .idempotency_key("run-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(
        replay.into_inner().id,
        run.id,
        "a replay must not queue a second run"
    );

    // The first attempt meets a failing receiver; it is retried and then succeeds.
    let mut log = Vec::new();
    for _ in 0..100 {
        log = deliveries(&client, &created.webhook.id).await;
        if log.first().is_some_and(|d| !d.attempts.is_empty()) {
            receiver.post_status.store(200, Ordering::SeqCst);
        }
        if log
            .first()
            .is_some_and(|d| d.status == types::DeliveryStatus::Succeeded)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let delivery = log.first().expect("a delivery");
    assert_eq!(
        delivery.status,
        types::DeliveryStatus::Succeeded,
        "{delivery:?}"
    );
    assert_eq!(delivery.event_type, types::WebhookEventType::RunSucceeded);
    assert!(delivery.attempts.len() >= 2);
    assert_eq!(delivery.attempts[0].status_code, Some(500));
    assert_eq!(delivery.attempts.last().unwrap().status_code, Some(200));
    assert!(delivery.delivered_at.is_some());

    let posts: Vec<RecordedRequest> = receiver
        .recorded()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(posts.len() >= 2);
    assert!(posts.iter().all(|p| p.path == "/hooks/videovector"));
    assert!(
        posts.iter().all(|p| p.headers["webhook-id"] == delivery.id),
        "retries keep the message id"
    );
    let event = verify(&created.secret, posts.last().unwrap());
    assert_eq!(event["type"], "run.succeeded");
    // The request that created the run, named in the body and in a header (the worker
    // finished it long after that request ended).
    assert_eq!(event["request_id"], cause.as_str(), "{event}");
    assert_eq!(posts.last().unwrap().headers["x-request-id"], cause);
    assert_eq!(event["data"]["id"], run.id.as_str());
    assert_eq!(event["data"]["status"], "succeeded");

    // A test event goes out on request.
    let test = client
        .webhook_test()
        .webhook_id(&created.webhook.id)
        .send()
        .await
        .unwrap();
    assert_eq!(test.status(), StatusCode::ACCEPTED);
    let test = test.into_inner();
    let mut delivered = false;
    for _ in 0..100 {
        let log = deliveries(&client, &created.webhook.id).await;
        if log
            .iter()
            .any(|d| d.id == test.id && d.status == types::DeliveryStatus::Succeeded)
        {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(delivered, "the test event was not delivered");
    let test_post = receiver
        .recorded()
        .into_iter()
        .find(|r| r.headers.get("webhook-id") == Some(&test.id))
        .unwrap();
    assert_eq!(verify(&created.secret, &test_post)["type"], "webhook.test");
    server.stop().await;
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_exhausts_its_attempts_and_private_targets_need_opt_in() {
    let receiver = LocalHttp::start(vec![]).await;
    receiver.post_status.store(503, Ordering::SeqCst);
    let server = TestServer::start_with(|c| {
        c.allow_private_targets = true;
        c.webhook_retry_base_ms = 20;
        c.webhook_max_attempts = 3;
    })
    .await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    let hook = client
        .webhook_create()
        .body(
            types::WebhookCreate::builder()
                .url(receiver.url("/down"))
                .event_types(vec![types::WebhookEventType::JobFailed]),
        )
        .send()
        .await
        .unwrap()
        .into_inner()
        .webhook;
    let queued = client
        .webhook_test()
        .webhook_id(&hook.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    for _ in 0..100 {
        let log = deliveries(&client, &hook.id).await;
        last = log.into_iter().find(|d| d.id == queued.id);
        if last
            .as_ref()
            .is_some_and(|d| d.status == types::DeliveryStatus::Failed)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let failed = last.unwrap();
    assert_eq!(failed.status, types::DeliveryStatus::Failed);
    assert_eq!(failed.attempts.len(), 3);
    assert!(failed.attempts.iter().all(|a| a.status_code == Some(503)));
    server.stop().await;

    let strict = TestServer::start().await;
    let org = strict.org(true).await;
    match strict
        .admin_client(&org)
        .webhook_create()
        .body(
            types::WebhookCreate::builder()
                .url("http://169.254.169.254/latest/meta-data")
                .event_types(vec![types::WebhookEventType::RunFailed]),
        )
        .send()
        .await
    {
        Err(Error::ErrorResponse(problem)) => {
            assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(problem.code, types::ErrorCode::InvalidUrl);
        }
        other => panic!("expected 422, got {other:?}"),
    }
    strict.stop().await;
}

#[tokio::test]
async fn key_lifecycle_events_are_delivered_masked_and_name_who_acted() {
    let receiver = LocalHttp::start(vec![]).await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    let hook = client
        .webhook_create()
        .body(
            types::WebhookCreate::builder()
                .url(receiver.url("/hooks/keys"))
                .event_types(vec![
                    types::WebhookEventType::ApiKeyCreated,
                    types::WebhookEventType::ApiKeyUpdated,
                    types::WebhookEventType::ApiKeyRotated,
                    types::WebhookEventType::ApiKeyRevoked,
                    types::WebhookEventType::ApiKeyDeleted,
                ]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let created = client
        .api_key_create()
        .body(
            types::ApiKeyCreate::builder()
                .name("watched")
                .scopes(vec![types::Scope::Read]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let id = created.key.id.clone();
    client
        .api_key_update()
        .key_id(&id)
        .body(types::ApiKeyUpdate::builder().name("renamed"))
        .send()
        .await
        .unwrap();
    let rotated = client
        .api_key_rotate()
        .key_id(&id)
        .body(types::ApiKeyRotate::builder())
        .send()
        .await
        .unwrap()
        .into_inner();
    client.api_key_revoke().key_id(&id).send().await.unwrap();
    client.api_key_delete().key_id(&id).send().await.unwrap();

    let started = std::time::Instant::now();
    let bodies = loop {
        let received: Vec<RecordedRequest> = receiver.requests.lock().unwrap().clone();
        if received.len() >= 5 {
            break received;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{} of 5 delivered",
            received.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut types_seen: Vec<String> = Vec::new();
    for request in &bodies {
        let event = verify(&hook.secret, request);
        let text = String::from_utf8_lossy(&request.body);
        for secret in [&created.secret, &rotated.secret] {
            assert!(!text.contains(&secret[8..]), "a secret in {text}");
        }
        assert_eq!(event["data"]["key"]["id"], id.as_str(), "{event}");
        assert!(event["data"]["key"]["masked_key"]
            .as_str()
            .unwrap()
            .contains('…'));
        assert!(event["data"]["actor"].as_str().unwrap().starts_with("jwt:"));
        types_seen.push(event["type"].as_str().unwrap().to_string());
    }
    types_seen.sort();
    assert_eq!(
        types_seen,
        [
            "api_key.created",
            "api_key.deleted",
            "api_key.revoked",
            "api_key.rotated",
            "api_key.updated"
        ]
    );
    server.stop().await;
}

/// The events `receiver` has received, verified, as `(type, key id)`.
fn key_events(receiver: &LocalHttp, secret: &str) -> Vec<(String, String)> {
    let received: Vec<RecordedRequest> = receiver.requests.lock().unwrap().clone();
    received
        .iter()
        .map(|request| {
            let event = verify(secret, request);
            assert_eq!(event["data"]["actor"], "videovector", "{event}");
            (
                event["type"].as_str().unwrap().to_string(),
                event["data"]["key"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn expiring_and_expired_keys_are_announced_once_by_one_of_two_instances() {
    use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
    use videovector_server::db::entities::api_key;
    let receiver = LocalHttp::start(vec![]).await;
    let soon = |c: &mut videovector_server::config::Config| {
        c.allow_private_targets = true;
        c.key_expiry_check_ms = 20;
        c.key_expiry_warning_seconds = 2 * 86_400;
    };
    let server = TestServer::start_with(soon).await;
    let other = server.second_instance_with(soon).await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    let hook = client
        .webhook_create()
        .body(
            types::WebhookCreate::builder()
                .url(receiver.url("/hooks/expiry"))
                .event_types(vec![
                    types::WebhookEventType::ApiKeyExpiring,
                    types::WebhookEventType::ApiKeyExpired,
                ]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let key = |days: u32| {
        let client = &client;
        async move {
            client
                .api_key_create()
                .body(
                    types::ApiKeyCreate::builder()
                        .name("expiring")
                        .scopes(vec![types::Scope::Read])
                        .expires_in_days(days),
                )
                .send()
                .await
                .unwrap()
                .into_inner()
                .key
                .id
        }
    };
    // Revoked first, then brought within the warning time: never announced.
    let revoked = key(30).await;
    client
        .api_key_revoke()
        .key_id(&revoked)
        .send()
        .await
        .unwrap();
    let expires_in = |id: &str, seconds: i64| {
        let id = id.to_string();
        let db = server.db().clone();
        async move {
            api_key::Entity::update_many()
                .col_expr(
                    api_key::Column::ExpiresAt,
                    Expr::value(chrono::Utc::now() + chrono::Duration::seconds(seconds)),
                )
                .filter(api_key::Column::Id.eq(id))
                .exec(&db)
                .await
                .unwrap();
        }
    };
    expires_in(&revoked, 3600).await;
    let tomorrow = key(1).await;
    let next_month = key(30).await;

    let until = |wanted: usize| {
        let (receiver, secret) = (&receiver, &hook.secret);
        async move {
            let started = std::time::Instant::now();
            loop {
                let events = key_events(receiver, secret);
                if events.len() >= wanted {
                    return events;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "{events:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(
        until(1).await,
        [("api_key.expiring".to_string(), tomorrow.clone())]
    );
    // It expires (moved into the past, as time would).
    expires_in(&tomorrow, -1).await;
    let events = until(2).await;
    assert_eq!(events[1], ("api_key.expired".to_string(), tomorrow.clone()));
    // Many looks later, by both instances: still once each, and nothing of the others.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events = key_events(&receiver, &hook.secret);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(!events
        .iter()
        .any(|(_, id)| *id == next_month || *id == revoked));
    other.stop().await;
    server.stop().await;
}
