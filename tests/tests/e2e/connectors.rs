//! Connectors and jobs through the generated client: a sync against a local HTTP server
//! serving WebVTT, SRT and JSON fixtures (one malformed), secrets never returned, private
//! targets refused by default, idempotent sync replays, cancel and retry.

use std::collections::HashMap;

use reqwest::StatusCode;
use videovector_api_spec::Scope;
use videovector_client::{types, Error};
use videovector_tests::{
    common_calls::{connector_file, create_and_sync, create_connector, create_index, wait_job},
    fixture, LocalHttp, TestServer,
};

fn file(url: String, media: &str) -> types::ConnectorFile {
    connector_file(url, media, "idx_captions")
}

#[tokio::test]
async fn a_sync_ingests_caption_files_and_fails_only_the_malformed_one() {
    let files = LocalHttp::start(vec![
        ("/bulletin.vtt", fixture("captions/bulletin.vtt")),
        ("/interview.srt", fixture("captions/interview.srt")),
        ("/broken.srt", fixture("captions/broken.srt")),
        ("/weather.json", fixture("captions/weather.json")),
        // A cue's text obeys a segment's rule: no U+0000 (PostgreSQL cannot store it).
        (
            "/nul.vtt",
            b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nbad\0cue\n".to_vec(),
        ),
        // ...and a segment's length: the review's 24,011-character cue.
        (
            "/long.vtt",
            format!(
                "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n{}\n",
                "w".repeat(24_011)
            )
            .into_bytes(),
        ),
    ])
    .await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    create_index(&client, "idx_captions", "Captions").await;
    let connector = client
        .connector_create()
        .body(
            types::ConnectorCreate::builder()
                .name("Evening news")
                .kind(types::ConnectorKind::Http)
                .files(vec![
                    file(files.url("/bulletin.vtt"), "bulletin"),
                    file(files.url("/interview.srt"), "interview"),
                    file(files.url("/broken.srt"), "broken"),
                    file(files.url("/weather.json"), "weather"),
                    file(files.url("/missing.vtt"), "missing"),
                    file("http://127.0.0.1:1/closed.vtt".into(), "closed"),
                    file(files.url("/nul.vtt"), "nul"),
                    file(files.url("/long.vtt"), "long"),
                ])
                .headers(HashMap::from([(
                    "Authorization".to_string(),
                    "Bearer source-secret-123".to_string(),
                )])),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    // The header's value is a secret: masked here and in every later read.
    assert_eq!(connector.headers["Authorization"], "********");
    let viewed = client
        .connector_view()
        .connector_id(&connector.id)
        .send()
        .await
        .unwrap();
    let raw = serde_json::to_string(&viewed.into_inner()).unwrap();
    assert!(!raw.contains("source-secret-123"));

    let sync = client
        .connector_sync()
        .connector_id(&connector.id)
        .idempotency_key("sync-1")
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), StatusCode::ACCEPTED);
    let queued = sync.into_inner();
    // A retried sync with the same key is a replay, not a second job.
    let replay = client
        .connector_sync()
        .connector_id(&connector.id)
        .idempotency_key("sync-1")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.into_inner().id, queued.id);

    let job = wait_job(&client, &queued.id).await;
    assert_eq!(job.status, types::JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.progress.files_total, 8);
    assert_eq!(job.progress.files_done, 8);
    assert_eq!(job.progress.files_failed, 5);
    assert_eq!(job.progress.segments_ingested, 3 + 2 + 1);
    let by_media: HashMap<&str, &types::JobFile> =
        job.files.iter().map(|f| (f.media_id.as_str(), f)).collect();
    assert_eq!(by_media["bulletin"].segments, 3);
    let broken = by_media["broken"];
    assert_eq!(broken.status, types::JobFileStatus::Failed);
    assert!(
        broken
            .error
            .as_deref()
            .unwrap()
            .contains("line 6: malformed cue timing"),
        "{broken:?}"
    );
    let nul = by_media["nul"];
    assert_eq!(nul.status, types::JobFileStatus::Failed);
    assert!(nul.error.as_deref().unwrap().contains("U+0000"), "{nul:?}");
    let long = by_media["long"];
    assert_eq!(long.status, types::JobFileStatus::Failed);
    assert!(
        long.error.as_deref().unwrap().contains("24011 characters"),
        "{long:?}"
    );
    assert!(by_media["missing"]
        .error
        .as_deref()
        .unwrap()
        .contains("404"));
    let listed = client.job_list().send().await.unwrap().into_inner();
    assert_eq!(listed.items.len(), 1);

    // The connector's secret header went to the source.
    let fetched = files.recorded();
    assert!(fetched
        .iter()
        .all(|r| r.headers.get("authorization").map(String::as_str)
            == Some("Bearer source-secret-123")));

    // Cues became searchable segments with their timestamps.
    let mut found = None;
    for _ in 0..60 {
        let hits = client
            .index_search()
            .index_id("idx_captions")
            .body(types::SearchRequest::builder().query("cracks in the northern span"))
            .send()
            .await
            .unwrap()
            .into_inner()
            .hits;
        if let Some(hit) = hits.into_iter().next() {
            found = Some(hit);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let hit = found.expect("the cue is searchable");
    assert_eq!(hit.media_id, "bulletin");
    assert_eq!((hit.start_seconds, hit.end_seconds), (4.5, 8.25));
    server.stop().await;
}

#[tokio::test]
async fn private_targets_are_refused_by_default_and_jobs_cancel_and_retry() {
    let server = TestServer::start_with(|c| c.workers = false).await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    create_index(&client, "idx_captions", "Captions").await;
    let refused = client
        .connector_create()
        .body(
            types::ConnectorCreate::builder()
                .name("local")
                .kind(types::ConnectorKind::Http)
                .files(vec![file("http://127.0.0.1:9/captions.vtt".into(), "m")]),
        )
        .send()
        .await;
    match refused {
        Err(Error::ErrorResponse(problem)) => {
            assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(problem.code, types::ErrorCode::InvalidUrl);
        }
        other => panic!("expected 422, got {other:?}"),
    }
    let connector = create_connector(
        &client,
        "public",
        vec![file("https://captions.example.com/a.vtt".into(), "m")],
    )
    .await;
    // No worker on this instance: the job waits, so cancel and retry are deterministic.
    let job = client
        .connector_sync()
        .connector_id(&connector.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    let cancelled = client
        .job_cancel()
        .job_id(&job.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, types::JobStatus::Cancelled);
    match client.job_cancel().job_id(&job.id).send().await {
        Err(Error::ErrorResponse(problem)) => assert_eq!(problem.status(), StatusCode::CONFLICT),
        other => panic!("expected 409, got {other:?}"),
    }
    let retried = client
        .job_retry()
        .job_id(&job.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (retried.attempt, retried.retry_of.as_deref()),
        (2, Some(job.id.as_str()))
    );
    assert_eq!(retried.status, types::JobStatus::Queued);
    server.stop().await;
}

/// A proxy named in the environment would connect wherever it likes, so the checked and
/// pinned address would mean nothing: outbound fetches ignore `HTTP_PROXY`. The variables
/// are set in a process of this test's own, so they reach no other test.
#[tokio::test]
async fn outbound_fetches_ignore_proxy_settings() {
    if !videovector_tests::child::isolated("connectors::outbound_fetches_ignore_proxy_settings") {
        return;
    }
    let files = LocalHttp::start(vec![("/bulletin.vtt", fixture("captions/bulletin.vtt"))]).await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let org = server.org(true).await;
    // Built before the proxy is set: the test's own client talks to the server directly.
    let client = server.admin_client(&org);
    let proxy = LocalHttp::start(vec![]).await;
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
    ] {
        std::env::set_var(name, proxy.url(""));
    }
    for name in ["NO_PROXY", "no_proxy"] {
        std::env::remove_var(name);
    }
    create_index(&client, "idx_captions", "Captions").await;
    let (_connector, queued) = create_and_sync(
        &client,
        "direct",
        vec![file(files.url("/bulletin.vtt"), "bulletin")],
    )
    .await;
    let job = wait_job(&client, &queued.id).await;
    assert_eq!(job.progress.segments_ingested, 3, "{job:?}");
    assert!(proxy.recorded().is_empty(), "the proxy was used");
    assert_eq!(files.recorded().len(), 1);
    server.stop().await;
}

/// The review's finding 3: a `write` key moved an admin's connector to a host it controls
/// and synced, or retried an old job, and the admin's `Authorization` value went there.
/// Header values are bound to the origins they were set for.
#[tokio::test]
async fn header_values_reach_only_the_origin_they_were_set_for() {
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let org = server.org(true).await;
    let admin = server.admin_client(&org);
    let (_, write_secret) = server.api_key(&org, &[Scope::Write]).await;
    let writer = videovector_client::with_api_key(&server.url(), &write_secret).unwrap();
    let trusted = LocalHttp::start(vec![("/a.vtt", fixture("captions/bulletin.vtt"))]).await;
    // Another port is another origin.
    let attacker = LocalHttp::start(vec![("/a.vtt", fixture("captions/bulletin.vtt"))]).await;
    create_index(&admin, "idx_captions", "Captions").await;
    let secret_header = HashMap::from([(
        "Authorization".to_string(),
        "Bearer admin-only-secret".to_string(),
    )]);
    let connector = admin
        .connector_create()
        .body(
            types::ConnectorCreate::builder()
                .name("trusted source")
                .kind(types::ConnectorKind::Http)
                .files(vec![file(trusted.url("/a.vtt"), "a")])
                .headers(secret_header.clone()),
        )
        .send()
        .await
        .unwrap()
        .into_inner();

    // Another file on the same origin keeps the headers...
    let same_origin = writer
        .connector_update()
        .connector_id(&connector.id)
        .body(types::ConnectorUpdate::builder().files(vec![file(trusted.url("/a.vtt"), "a2")]))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same_origin.headers["Authorization"], "********");

    // A connector of the writer's own on the attacker's host, whose sync fails...
    let own = create_connector(
        &writer,
        "writer's source",
        vec![file(attacker.url("/missing.vtt"), "x")],
    )
    .await;
    let first = writer
        .connector_sync()
        .connector_id(&own.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        wait_job(&writer, &first.id).await.status,
        types::JobStatus::Failed
    );
    // ...then an admin points it at the trusted host and gives it the secret.
    admin
        .connector_update()
        .connector_id(&own.id)
        .body(
            types::ConnectorUpdate::builder()
                .files(vec![file(trusted.url("/a.vtt"), "x")])
                .headers(secret_header),
        )
        .send()
        .await
        .unwrap();
    // Retrying the old job syncs the connector as it is now, not the attacker's old URL.
    let retried = writer
        .job_retry()
        .job_id(&first.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.files[0].url, trusted.url("/a.vtt"));
    assert_eq!(
        wait_job(&writer, &retried.id).await.status,
        types::JobStatus::Succeeded
    );

    // ...while moving the admin's connector to another origin drops them: the answer
    // shows none, and the sync sends none.
    let moved = writer
        .connector_update()
        .connector_id(&connector.id)
        .body(types::ConnectorUpdate::builder().files(vec![file(attacker.url("/a.vtt"), "a")]))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(moved.headers.is_empty(), "{:?}", moved.headers);
    let moved_job = writer
        .connector_sync()
        .connector_id(&connector.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        wait_job(&writer, &moved_job.id).await.status,
        types::JobStatus::Succeeded
    );

    let to_attacker = attacker.recorded();
    assert_eq!(to_attacker.len(), 2, "{to_attacker:?}");
    assert!(
        to_attacker
            .iter()
            .all(|r| !r.headers.contains_key("authorization")),
        "the secret reached another origin: {to_attacker:?}"
    );
    let to_trusted = trusted.recorded();
    assert!(!to_trusted.is_empty());
    assert!(to_trusted
        .iter()
        .all(|r| r.headers.get("authorization").map(String::as_str)
            == Some("Bearer admin-only-secret")));
    server.stop().await;
}
