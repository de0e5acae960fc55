//! Prompts and runs through the generated client: variables checked at creation, a run from
//! queued to succeeded with results, cancel and retry (new attempt, history kept), invalid
//! transitions, runs waiting in the database for a worker instance, and interrupted runs.

use std::collections::HashMap;

use reqwest::StatusCode;
use videovector_client::{types, Client, Error};
use videovector_tests::{common_calls::create_index, TestServer};

fn code_of<T: std::fmt::Debug>(result: Result<T, Error<types::Problem>>) -> (StatusCode, String) {
    match result {
        Err(Error::ErrorResponse(problem)) => (problem.status(), problem.code.to_string()),
        other => panic!("expected a problem, got {other:?}"),
    }
}

async fn setup(client: &Client) -> (String, Vec<String>) {
    create_index(client, "idx_city", "City").await;
    let segments = [
        "Flooding closed the riverside road near the old mill",
        "The council met to discuss flooding defences",
        "A jazz festival filled the market square",
    ]
    .iter()
    .enumerate()
    .map(|(i, text)| {
        types::SegmentInput::builder()
            .media_id("city-news")
            .start_seconds(i as f64 * 30.0)
            .end_seconds(i as f64 * 30.0 + 10.0)
            .text(*text)
            .try_into()
            .unwrap()
    })
    .collect::<Vec<types::SegmentInput>>();
    let ids = client
        .segment_ingest()
        .index_id("idx_city")
        .body(types::SegmentBatch::builder().segments(segments).wait(true))
        .send()
        .await
        .unwrap()
        .into_inner()
        .segment_ids;
    let prompt = client
        .prompt_create()
        .body(
            types::PromptCreate::builder()
                .name("Incidents")
                .query_template("{{topic}} near the {{place}}")
                .instructions("Summarise incidents with timestamps.")
                .variables(vec!["topic".parse().unwrap(), "place".parse().unwrap()]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    (prompt.id, ids)
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, types::RunCreateVariablesValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.parse().expect("a valid value")))
        .collect()
}

async fn wait_done(client: &Client, run_id: &str) -> types::Run {
    for _ in 0..100 {
        let run = client
            .run_view()
            .run_id(run_id)
            .send()
            .await
            .unwrap()
            .into_inner();
        if !matches!(
            run.status,
            types::RunStatus::Queued | types::RunStatus::Running
        ) {
            return run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("run {run_id} did not finish");
}

#[tokio::test]
async fn a_run_goes_from_queued_to_succeeded_with_results() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    let (prompt_id, segment_ids) = setup(&client).await;

    // Templates may only use declared variables.
    let (status, code) = code_of(
        client
            .prompt_create()
            .body(
                types::PromptCreate::builder()
                    .name("bad")
                    .query_template("{{who}}"),
            )
            .send()
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "undeclared_variable")
    );
    let run_with = |variables: HashMap<String, types::RunCreateVariablesValue>| {
        client
            .run_create()
            .body(
                types::RunCreate::builder()
                    .prompt_id(prompt_id.clone())
                    .index_id("idx_city")
                    .variables(variables),
            )
            .send()
    };
    let (status, code) = code_of(run_with(vars(&[("topic", "flooding")])).await);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "missing_variable")
    );
    let (status, code) = code_of(
        run_with(vars(&[
            ("topic", "flooding"),
            ("place", "mill"),
            ("mood", "grim"),
        ]))
        .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "undeclared_variable")
    );

    let queued = run_with(vars(&[("topic", "flooding"), ("place", "mill")]))
        .await
        .unwrap();
    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    let queued = queued.into_inner();
    assert_eq!(queued.query, "flooding near the mill");
    assert_eq!(queued.attempt, 1);
    let done = wait_done(&client, &queued.id).await;
    assert_eq!(done.status, types::RunStatus::Succeeded, "{done:?}");
    assert!(done.started_at.is_some() && done.finished_at.is_some() && done.duration_ms.is_some());
    let result = done.result.expect("a result");
    assert_eq!(result.citations[0].segment_id, segment_ids[0]);
    assert!(result
        .citations
        .iter()
        .all(|c| segment_ids.contains(&c.segment_id)));
    assert!(result.answer.contains("[1]"));

    // Finished runs cannot be cancelled or retried.
    assert_eq!(
        code_of(client.run_cancel().run_id(&queued.id).send().await).0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        code_of(client.run_retry().run_id(&queued.id).send().await).0,
        StatusCode::CONFLICT
    );
    let listed = client.run_list().send().await.unwrap().into_inner();
    assert_eq!(listed.items.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn queued_runs_wait_for_a_worker_and_cancel_and_retry_keep_history() {
    // An API-only instance: runs stay queued in the database.
    let api = TestServer::start_with(|config| config.workers = false).await;
    let org = api.org(true).await;
    let client = api.admin_client(&org);
    let (prompt_id, _) = setup(&client).await;
    let create = || {
        client
            .run_create()
            .body(
                types::RunCreate::builder()
                    .prompt_id(prompt_id.clone())
                    .index_id("idx_city")
                    .variables(vars(&[("topic", "jazz"), ("place", "square")])),
            )
            .send()
    };
    let first = create().await.unwrap().into_inner();
    let cancelled = client
        .run_cancel()
        .run_id(&first.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, types::RunStatus::Cancelled);
    assert_eq!(
        code_of(client.run_cancel().run_id(&first.id).send().await).0,
        StatusCode::CONFLICT
    );
    let retried = client
        .run_retry()
        .run_id(&first.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.attempt, 2);
    assert_eq!(retried.retry_of.as_deref(), Some(first.id.as_str()));
    assert_eq!(retried.status, types::RunStatus::Queued);
    let doomed = create().await.unwrap().into_inner();
    client
        .index_delete()
        .index_id("idx_city")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        client
            .run_view()
            .run_id(&retried.id)
            .send()
            .await
            .unwrap()
            .into_inner()
            .status,
        types::RunStatus::Queued,
        "no worker runs on this instance"
    );

    // A worker instance on the same database picks the queue up.
    let worker = api
        .second_instance_with(|config| config.workers = true)
        .await;
    let failed = wait_done(&client, &doomed.id).await;
    assert_eq!(failed.status, types::RunStatus::Failed);
    assert!(failed.error.unwrap().contains("idx_city"));
    let retried = wait_done(&client, &retried.id).await;
    assert_eq!(
        retried.status,
        types::RunStatus::Failed,
        "its index is gone too"
    );
    let original = client
        .run_view()
        .run_id(&first.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        original.status,
        types::RunStatus::Cancelled,
        "history is kept"
    );
    worker.stop().await;
    api.stop().await;
}

/// Runs and jobs left `running` by a stopped server, with no live lease (an older version's
/// rows: one started long ago, ones with no `started_at` at all), are taken over and
/// finished, with their webhook events: a run is run again and succeeds; a job whose
/// connector is gone fails with that reason. (Killed instances, with leases, are in
/// `chaos`.) An older claim set `started_at` in a separate statement, so a crash between
/// the two left a row an older sweep (by `started_at`) never matched: stuck `running`
/// forever.
#[tokio::test]
async fn runs_and_jobs_left_running_by_a_stopped_server_are_taken_over_with_events() {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    use videovector_server::db::{
        columns::JsonText,
        entities::{job, run},
    };
    let receiver = videovector_tests::LocalHttp::start(vec![]).await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    client
        .webhook_create()
        .body(
            types::WebhookCreate::builder()
                .url(receiver.url("/hooks"))
                .event_types(vec![
                    types::WebhookEventType::RunSucceeded,
                    types::WebhookEventType::RunFailed,
                    types::WebhookEventType::JobFailed,
                ]),
        )
        .send()
        .await
        .unwrap();
    let (prompt_id, _) = setup(&client).await;
    let long_ago = chrono::Utc::now() - chrono::Duration::minutes(45);
    for (id, started_at) in [
        ("run_interrupted", Some(long_ago)),
        ("run_claimed_never_started", None),
    ] {
        run::Entity::insert(run::ActiveModel {
            id: Set(id.into()),
            org_id: Set(org.org_id.clone()),
            prompt_id: Set(prompt_id.clone()),
            index_id: Set("idx_city".into()),
            variables: Set(JsonText(Default::default())),
            status: Set(run::RUNNING),
            attempt: Set(1),
            retry_of: Set(None),
            query: Set("flooding".into()),
            instructions: Set(String::new()),
            top_k: Set(5),
            retrieval: Set(None),
            result: Set(None),
            error: Set(None),
            created_at: Set(long_ago),
            started_at: Set(started_at),
            finished_at: Set(None),
            request_id: Set(None),
            trace_parent: Set(None),
        })
        .exec(server.db())
        .await
        .unwrap();
    }
    job::Entity::insert(job::ActiveModel {
        id: Set("job_claimed_never_started".into()),
        org_id: Set(org.org_id.clone()),
        connector_id: Set("con_x".into()),
        status: Set(job::RUNNING),
        attempt: Set(1),
        retry_of: Set(None),
        files: Set(JsonText(Vec::new())),
        error: Set(None),
        created_at: Set(long_ago),
        started_at: Set(None),
        finished_at: Set(None),
        request_id: Set(None),
        trace_parent: Set(None),
    })
    .exec(server.db())
    .await
    .unwrap();
    let server = server.restart(|_| {}).await;
    let client = server.admin_client(&org);
    for id in ["run_interrupted", "run_claimed_never_started"] {
        let run = wait_done(&client, id).await;
        assert_eq!(
            run.status,
            types::RunStatus::Succeeded,
            "{id}: {:?}",
            run.error
        );
        assert!(!run.result.unwrap().citations.is_empty(), "{id}");
    }
    let mut events = Vec::new();
    for _ in 0..200 {
        events = receiver
            .recorded()
            .iter()
            .filter(|r| r.method == "POST")
            .map(|r| {
                let event: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                format!(
                    "{} {}",
                    event["type"].as_str().unwrap(),
                    event["data"]["id"].as_str().unwrap()
                )
            })
            .collect();
        events.sort();
        events.dedup();
        if events.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        events,
        [
            "job.failed job_claimed_never_started",
            "run.succeeded run_claimed_never_started",
            "run.succeeded run_interrupted",
        ]
    );
    let job = client
        .job_view()
        .job_id("job_claimed_never_started")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.status, types::JobStatus::Failed);
    assert_eq!(job.error.as_deref(), Some("the connector was deleted"));
    server.stop().await;
}

/// The review's expansion bomb: each variable's value full of the next one's placeholder.
/// Substituting one variable after another multiplied the query (a 15 KB request aborted the
/// server on a multi-gigabyte allocation); one pass copies values without scanning them.
#[tokio::test]
async fn a_template_expansion_bomb_is_refused_and_values_are_never_rescanned() {
    let server = TestServer::start_with(|c| c.workers = false).await;
    let org = server.org(true).await;
    let token = server.token(&org, &[videovector_api_spec::Scope::Write]);
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(server.api(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let response = post(
        "/indexes",
        serde_json::json!({"id": "idx_bomb", "name": "Bomb"}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let prompt: serde_json::Value = post(
        "/prompts",
        serde_json::json!({"name": "bomb", "query_template": "{{a}}".repeat(400),
                           "variables": ["a", "b"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let run = |a: String, b: String| {
        post(
            "/runs",
            serde_json::json!({"prompt_id": prompt["id"], "index_id": "idx_bomb",
                               "variables": {"a": a, "b": b}}),
        )
    };

    let bomb = run("{{b}}".repeat(200), "{{a}}".repeat(200)).await.unwrap();
    assert_eq!(bomb.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: serde_json::Value = bomb.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_variable", "{problem}");

    // A value over 1,000 characters is refused as declared.
    let long = run("x".repeat(1_001), "y".into()).await.unwrap();
    assert_eq!(long.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: serde_json::Value = long.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/variables/a");

    // A value holding a placeholder stays text.
    let prompt: serde_json::Value = post(
        "/prompts",
        serde_json::json!({"name": "plain", "query_template": "{{a}} and {{ b }}",
                           "variables": ["a", "b"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let created = post(
        "/runs",
        serde_json::json!({"prompt_id": prompt["id"], "index_id": "idx_bomb",
                           "variables": {"a": "{{b}}", "b": "x"}}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), StatusCode::ACCEPTED);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["query"], "{{b}} and x");
    server.stop().await;
}
