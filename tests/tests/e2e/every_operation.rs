//! One tour through every operation of the committed spec, through the generated client. The
//! harness checks each answer against the spec; the tour then proves it reached every
//! operation, so a new endpoint cannot go untested by the contract check. Workers are off, so
//! runs and jobs stay queued and every state change the tour asks for is allowed.

use std::collections::{BTreeSet, HashMap};

use reqwest::StatusCode;
use videovector_api_spec::contract::Contract;
use videovector_client::{types, Client, Error};
use videovector_tests::{
    common_calls::{connector_file, create_index},
    fixture, LocalHttp, TestServer,
};

/// Every `operationId` in the committed spec.
fn spec_operations() -> BTreeSet<String> {
    Contract::committed()
        .operations()
        .iter()
        .map(|o| o.id().to_string())
        .collect()
}

/// The problem a call answered with; panics on success.
fn problem<T: std::fmt::Debug>(result: Result<T, Error<types::Problem>>) -> types::Problem {
    match result {
        Err(Error::ErrorResponse(problem)) => problem.into_inner(),
        other => panic!("expected a problem, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tour_reaches_every_operation_and_every_answer_keeps_the_spec() {
    let files = LocalHttp::start(vec![("/bulletin.vtt", fixture("captions/bulletin.vtt"))]).await;
    let server = TestServer::start_with(|c| {
        c.allow_private_targets = true;
        c.workers = false;
    })
    .await;
    let org = server.org(true).await;

    let anonymous = videovector_client::anonymous(&server.url()).unwrap();
    let token = anonymous
        .token_create()
        .body(
            types::TokenRequest::builder()
                .email(org.operator.email.clone())
                .password(org.password.clone()),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let client = videovector_client::with_bearer_token(&server.url(), &token.access_token).unwrap();

    api_keys(&client).await;
    rate_limits_and_usage(&client, &server.url()).await;
    let index = indexes_and_retrieval(&client).await;
    prompts_and_runs(&client, &index).await;
    connectors_and_jobs(&client, &index, &files).await;
    webhooks(&client, &files).await;
    client.mcp_config_view().send().await.unwrap();
    let ready = anonymous
        .readiness_view()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ready.checks.database.state, types::CheckState::Up);
    organization(&client, &anonymous).await;
    client.index_delete().index_id(&index).send().await.unwrap();

    // A typed problem for an id that does not exist, with its documented code.
    let missing = problem(client.index_view().index_id("idx_missing").send().await);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code, types::ErrorCode::NotFound);

    let missed: Vec<String> = spec_operations()
        .difference(&server.contract.operations())
        .cloned()
        .collect();
    assert!(missed.is_empty(), "the tour never reached {missed:?}");
    assert!(server.contract.violations().is_empty());
    server.stop().await;
}

async fn api_keys(client: &Client) {
    let created = client
        .api_key_create()
        .body(
            types::ApiKeyCreate::builder()
                .name("tour")
                .scopes(vec![types::Scope::Read]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let id = created.key.id;
    client.api_key_list().send().await.unwrap();
    client.api_key_view().key_id(&id).send().await.unwrap();
    let rotated = client
        .api_key_rotate()
        .key_id(&id)
        .body(types::ApiKeyRotate::builder())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_ne!(
        rotated.secret, created.secret,
        "a rotation issues a new secret"
    );
    let revoked = client
        .api_key_revoke()
        .key_id(&id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.status, types::ApiKeyStatus::Revoked);
    client.api_key_delete().key_id(&id).send().await.unwrap();
}

/// Limits a key, spends them through the generated client (which sees the headers and the
/// typed 429), and reads the organisation's limits and usage.
async fn rate_limits_and_usage(client: &Client, url: &str) {
    let policy = client.rate_limit_policy_view().send().await.unwrap();
    assert!(policy.headers().contains_key("ratelimit-policy"));
    assert_eq!(policy.source, types::RateLimitSource::Server);
    let limit = |name: &str, family, quota: u32| types::RateLimit {
        name: name.parse().unwrap(),
        family,
        quota: quota.try_into().unwrap(),
        window_seconds: 86_400.try_into().unwrap(),
    };
    let updated = client
        .rate_limit_policy_update()
        .body(types::RateLimitPolicyUpdate {
            limits: vec![limit("org_writes", types::RateLimitFamily::Write, 100_000)],
        })
        .send()
        .await
        .unwrap();
    assert_eq!(updated.source, types::RateLimitSource::Organization);
    let created = client
        .api_key_create()
        .body(
            types::ApiKeyCreate::builder()
                .name("limited")
                .scopes(vec![types::Scope::Read]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let key_id = created.key.id;
    let updated = client
        .api_key_update()
        .key_id(&key_id)
        .body(types::ApiKeyUpdate::builder().rate_limits(vec![limit(
            "twice",
            types::RateLimitFamily::Read,
            2,
        )]))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.rate_limits.len(), 1);
    let keyed = videovector_client::with_api_key(url, &created.secret).unwrap();
    for left in ["1", "0"] {
        let listed = keyed.index_list().send().await.unwrap();
        let header = listed.headers()["ratelimit"].to_str().unwrap().to_string();
        assert_eq!(
            header,
            format!(
                "\"twice\";r={left};t={}",
                header.rsplit("t=").next().unwrap()
            )
        );
    }
    let refused = problem(keyed.index_list().send().await);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.code, types::ErrorCode::RateLimited);
    client
        .api_key_usage()
        .key_id(&key_id)
        .granularity(types::UsageGranularity::Minute)
        .send()
        .await
        .unwrap();
    client.usage_report().send().await.unwrap();
    client
        .rate_limit_policy_update()
        .body(types::RateLimitPolicyUpdate { limits: vec![] })
        .send()
        .await
        .unwrap();
}

/// The organisation's settings and their audit event, and a leaked-key report no configured
/// reporter signed.
async fn organization(client: &Client, anonymous: &Client) {
    let settings = client
        .organization_view()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(settings.revoke_leaked_keys);
    let changed = client
        .organization_update()
        .body(types::OrganizationUpdate::builder().revoke_leaked_keys(false))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(!changed.revoke_leaked_keys);
    // The change is in the audit log, with what changed.
    let audited = client
        .audit_event_list()
        .action(types::AuditAction::OrganizationUpdate)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(audited.items.len(), 1);
    assert!(audited.items[0].changes.contains_key("revoke_leaked_keys"));
    let unsigned = problem(
        anonymous
            .leaked_key_report()
            .github_public_key_identifier("nobody")
            .github_public_key_signature("AAAA")
            .body(vec![types::LeakedKeyReport::builder()
                .token("sk_live_x")
                .try_into()
                .unwrap()])
            .send()
            .await,
    );
    assert_eq!(unsigned.code, types::ErrorCode::InvalidSignature);
}

/// Creates, reads, fills and searches an index; returns its id.
async fn indexes_and_retrieval(client: &Client) -> String {
    let index = "idx_tour".to_string();
    create_index(client, &index, "Tour").await;
    let again = problem(
        client
            .index_create()
            .body(
                types::IndexCreate::builder()
                    .id(index.as_str())
                    .name("Tour"),
            )
            .send()
            .await,
    );
    assert_eq!(again.code, types::ErrorCode::IndexExists);
    client.index_list().send().await.unwrap();
    client.index_view().index_id(&index).send().await.unwrap();
    client
        .index_update()
        .index_id(&index)
        .body(types::IndexUpdate::builder().description("renamed"))
        .send()
        .await
        .unwrap();
    let segments = (0..3)
        .map(|i| {
            types::SegmentInput::builder()
                .media_id("news")
                .start_seconds(f64::from(i))
                .end_seconds(f64::from(i) + 1.0)
                .text(format!("the reporter at the station, take {i}"))
                .try_into()
                .unwrap()
        })
        .collect::<Vec<types::SegmentInput>>();
    client
        .segment_ingest()
        .index_id(&index)
        .body(types::SegmentBatch::builder().segments(segments).wait(true))
        .send()
        .await
        .unwrap();
    let hits = client
        .index_search()
        .index_id(&index)
        .body(types::SearchRequest::builder().query("reporter"))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hits.hits.len(), 3);
    let page = client
        .search_query()
        .body(
            types::CrossSearchRequest::builder()
                .query("reporter")
                .index_ids(vec![index.parse().unwrap()])
                .page_size(2),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let token = page.next_page_token.expect("a second page");
    let rest = client
        .search_page_view()
        .page_token(&token)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.hits.len(), 1);
    client
        .chat_completion_create()
        .body(
            types::ChatRequest::builder()
                .index_ids(vec![index.parse().unwrap()])
                .messages(vec![types::ChatMessage {
                    role: types::ChatRole::User,
                    content: "where is the reporter?".parse().unwrap(),
                }]),
        )
        .send()
        .await
        .unwrap();
    index
}

async fn prompts_and_runs(client: &Client, index: &str) {
    let prompt = client
        .prompt_create()
        .body(
            types::PromptCreate::builder()
                .name("Tour prompt")
                .query_template("reports about {{topic}}")
                .variables(vec!["topic".parse().unwrap()]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    client.prompt_list().send().await.unwrap();
    client
        .prompt_view()
        .prompt_id(&prompt.id)
        .send()
        .await
        .unwrap();
    client
        .prompt_update()
        .prompt_id(&prompt.id)
        .body(types::PromptUpdate::builder().description("updated"))
        .send()
        .await
        .unwrap();
    let run = client
        .run_create()
        .body(
            types::RunCreate::builder()
                .prompt_id(prompt.id.clone())
                .index_id(index)
                .variables(HashMap::from([(
                    "topic".to_string(),
                    "station".parse().unwrap(),
                )])),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    client.run_list().send().await.unwrap();
    client.run_view().run_id(&run.id).send().await.unwrap();
    // Workers are off: the run is still queued, so it can be cancelled, then retried.
    client.run_cancel().run_id(&run.id).send().await.unwrap();
    let retried = client
        .run_retry()
        .run_id(&run.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.retry_of.as_deref(), Some(run.id.as_str()));
    let retry_again = problem(client.run_retry().run_id(&retried.id).send().await);
    assert_eq!(retry_again.status, 409);
    assert_eq!(retry_again.code, types::ErrorCode::InvalidTransition);
    client
        .prompt_delete()
        .prompt_id(&prompt.id)
        .send()
        .await
        .unwrap();
}

async fn connectors_and_jobs(client: &Client, index: &str, files: &LocalHttp) {
    let file = |path: &str| connector_file(files.url(path), "bulletin", index);
    let connector = client
        .connector_create()
        .body(
            types::ConnectorCreate::builder()
                .name("Tour connector")
                .kind(types::ConnectorKind::Http)
                .files(vec![file("/bulletin.vtt")]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    client.connector_list().send().await.unwrap();
    client
        .connector_view()
        .connector_id(&connector.id)
        .send()
        .await
        .unwrap();
    client
        .connector_update()
        .connector_id(&connector.id)
        .body(types::ConnectorUpdate::builder().name("Renamed"))
        .send()
        .await
        .unwrap();
    let job = client
        .connector_sync()
        .connector_id(&connector.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    client.job_list().send().await.unwrap();
    client.job_view().job_id(&job.id).send().await.unwrap();
    client.job_cancel().job_id(&job.id).send().await.unwrap();
    let retried = client
        .job_retry()
        .job_id(&job.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.retry_of.as_deref(), Some(job.id.as_str()));
    client
        .connector_delete()
        .connector_id(&connector.id)
        .send()
        .await
        .unwrap();
}

async fn webhooks(client: &Client, files: &LocalHttp) {
    let created = client
        .webhook_create()
        .body(
            types::WebhookCreate::builder()
                .url(files.url("/hooks"))
                .event_types(vec![types::WebhookEventType::RunSucceeded]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let id = created.webhook.id;
    client.webhook_list().send().await.unwrap();
    client.webhook_view().webhook_id(&id).send().await.unwrap();
    client
        .webhook_update()
        .webhook_id(&id)
        .body(types::WebhookUpdate::builder().enabled(false))
        .send()
        .await
        .unwrap();
    let test = client.webhook_test().webhook_id(&id).send().await;
    let deliveries = client
        .webhook_delivery_list()
        .webhook_id(&id)
        .send()
        .await
        .unwrap()
        .into_inner();
    match test {
        Ok(_) => assert_eq!(deliveries.items.len(), 1, "the test delivery is queued"),
        Err(e) => panic!("webhook_test: {e:?}"),
    }
    client
        .webhook_delete()
        .webhook_id(&id)
        .send()
        .await
        .unwrap();
    let gone = problem(client.webhook_view().webhook_id(&id).send().await);
    assert_eq!(gone.status, StatusCode::NOT_FOUND.as_u16());
}
