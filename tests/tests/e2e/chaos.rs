//! Chaos on more than one instance: an instance killed with SIGKILL in the middle of a
//! connector job and of a webhook delivery, the database restarted under load, and a search
//! copy's disk filled. Each test says what a client sees, and checks that no acknowledged
//! write is lost and no work stays stuck. The instance that is killed is a child process
//! ([`ChildServer::join`]) on the test server's database; the one that takes its work over
//! runs in the test.

use std::time::{Duration, Instant};

use videovector_client::{types, Client};
use videovector_tests::{child::ChildServer, LocalHttp, TestServer};

/// The queue lease of every instance here: short, so a takeover is quick to see.
const LEASE_MS: u64 = 1_500;
/// How long after a kill the work must be finished by another instance: its lease, the
/// poll interval, and room for a loaded machine.
const TAKEOVER_WITHIN: Duration = Duration::from_millis(LEASE_MS + 8_000);

/// Polls `check` every 50 ms until it returns a value or `within` has passed.
async fn wait_for<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebVTT file of `cues` cues, each naming `word`.
fn captions(word: &str, cues: usize) -> Vec<u8> {
    let mut text = String::from("WEBVTT\n\n");
    for i in 0..cues {
        text.push_str(&format!(
            "00:00:{i:02}.000 --> 00:00:{i:02}.500\n{word} cue number {i}\n\n"
        ));
    }
    text.into_bytes()
}

async fn create_index(client: &Client, id: &str) {
    client
        .index_create()
        .body(
            types::IndexCreate::builder()
                .id(Some(id.parse().unwrap()))
                .name("Chaos"),
        )
        .send()
        .await
        .unwrap();
}

async fn hits(client: &Client, index_id: &str, query: &str) -> usize {
    client
        .index_search()
        .index_id(index_id)
        .body(
            types::SearchRequest::builder()
                .query(query)
                .top_k(std::num::NonZeroU32::new(50)),
        )
        .send()
        .await
        .unwrap()
        .into_inner()
        .hits
        .len()
}

/// An API-only instance (no workers) in the test: the one clients talk to throughout.
async fn api_only() -> TestServer {
    TestServer::start_with(|c| {
        c.workers = false;
        c.allow_private_targets = true;
        c.queue_lease_ms = LEASE_MS;
    })
    .await
}

/// An instance with workers, in the test, on `api`'s database: it takes work over.
async fn taker(api: &TestServer) -> TestServer {
    api.second_instance_with(|c| c.workers = true).await
}

/// A job's worker is killed while it fetches the second of three files. The client sees
/// the job stay `running` (one attempt), then `succeeded` about a lease after the kill:
/// another instance went on from the second file. The first file's cues, stored before
/// the kill, are there once; nothing is stored twice; every cue is searchable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_job_leaves_it_to_another_that_finishes_it() {
    let files = LocalHttp::start(vec![
        ("/alpha.vtt", captions("alpha", 3)),
        ("/bravo.vtt", captions("bravo", 4)),
        ("/charlie.vtt", captions("charlie", 5)),
    ])
    .await;
    files.stall_next("/bravo.vtt");
    let api = api_only().await;
    let org = api.org(true).await;
    let client = api.admin_client(&org);
    create_index(&client, "idx_chaos").await;
    let file = |path: &str, media: &str| -> types::ConnectorFile {
        types::ConnectorFile::builder()
            .url(files.url(path))
            .media_id(media)
            .index_id("idx_chaos")
            .try_into()
            .unwrap()
    };
    let connector = client
        .connector_create()
        .body(
            types::ConnectorCreate::builder()
                .name("Three files")
                .kind(types::ConnectorKind::Http)
                .files(vec![
                    file("/alpha.vtt", "alpha"),
                    file("/bravo.vtt", "bravo"),
                    file("/charlie.vtt", "charlie"),
                ]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let job = client
        .connector_sync()
        .connector_id(&connector.id)
        .send()
        .await
        .unwrap()
        .into_inner();

    // Only the child has workers: it claims the job and hangs on the second file.
    let worker = ChildServer::join(&api, LEASE_MS);
    let fetched = |path: &str| files.recorded().iter().filter(|r| r.path == path).count();
    wait_for(
        Duration::from_secs(60),
        "the child fetches bravo",
        || async { (fetched("/bravo.vtt") == 1).then_some(()) },
    )
    .await;
    let before = client
        .job_view()
        .job_id(&job.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.status, types::JobStatus::Running);
    assert_eq!(
        before.progress.files_done, 1,
        "alpha was finished before the kill"
    );

    let taker = taker(&api).await;
    worker.kill();
    let killed = Instant::now();
    let done = wait_for(TAKEOVER_WITHIN, "the job is finished", || async {
        let job = client
            .job_view()
            .job_id(&job.id)
            .send()
            .await
            .unwrap()
            .into_inner();
        (job.status != types::JobStatus::Running).then_some(job)
    })
    .await;
    let took = killed.elapsed();
    assert_eq!(done.status, types::JobStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.attempt, 1, "the same job went on: no new attempt");
    assert!(
        took >= Duration::from_millis(LEASE_MS / 2),
        "taken over only once the lease ran out, not at once ({took:?})"
    );
    assert_eq!(
        (done.progress.files_done, done.progress.files_failed),
        (3, 0)
    );
    assert_eq!(done.progress.segments_ingested, 3 + 4 + 5);
    assert_eq!(
        fetched("/alpha.vtt"),
        1,
        "a finished file is not fetched again"
    );
    assert_eq!(
        fetched("/bravo.vtt"),
        2,
        "the file in flight is fetched again"
    );
    let index = client
        .index_view()
        .index_id("idx_chaos")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        index.segment_count, 12,
        "nothing stored twice, nothing lost"
    );
    // The API instance's own search copy follows the database's change log.
    for (word, cues) in [("alpha", 3), ("bravo", 4), ("charlie", 5)] {
        wait_for(Duration::from_secs(10), word, || async {
            (hits(&client, "idx_chaos", word).await == cues).then_some(())
        })
        .await;
    }
    eprintln!("chaos: a job killed mid-file was finished by another instance {took:?} after the kill (lease {LEASE_MS} ms)");
    taker.stop().await;
    api.stop().await;
}

/// A delivery's worker is killed while the receiver holds its POST. The client sees the
/// delivery `running`, then `succeeded`: another instance sent it again, with the same
/// `webhook-id` and a valid signature; the deliveries queued behind it were not held up by
/// the dead instance. Every event queued is delivered; the interrupted attempt left no
/// record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_delivery_leaves_it_to_another_that_sends_it_again() {
    let receiver = LocalHttp::start(vec![]).await;
    receiver.stall_next("/hooks");
    let api = api_only().await;
    let org = api.org(true).await;
    let client = api.admin_client(&org);
    let hook = client
        .webhook_create()
        .body(
            types::WebhookCreate::builder()
                .url(receiver.url("/hooks"))
                .event_types(vec![types::WebhookEventType::RunSucceeded]),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let send_test = || async {
        client
            .webhook_test()
            .webhook_id(&hook.webhook.id)
            .send()
            .await
            .unwrap()
            .into_inner()
    };
    let first = send_test().await;
    let worker = ChildServer::join(&api, LEASE_MS);
    let posts = || {
        receiver
            .recorded()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect::<Vec<_>>()
    };
    wait_for(Duration::from_secs(60), "the child sends", || async {
        (posts().len() == 1).then_some(())
    })
    .await;
    let mut queued = Vec::new();
    for _ in 0..4 {
        queued.push(send_test().await.id);
    }
    let log = super::webhooks::deliveries(&client, &hook.webhook.id).await;
    let held = log.iter().find(|d| d.id == first.id).unwrap();
    assert_eq!(held.status, types::DeliveryStatus::Running);

    let taker = taker(&api).await;
    worker.kill();
    let killed = Instant::now();
    let log = wait_for(TAKEOVER_WITHIN, "every delivery succeeds", || async {
        let log = super::webhooks::deliveries(&client, &hook.webhook.id).await;
        log.iter()
            .all(|d| d.status == types::DeliveryStatus::Succeeded)
            .then_some(log)
    })
    .await;
    let took = killed.elapsed();
    assert_eq!(log.len(), 5);
    let again = log.iter().find(|d| d.id == first.id).unwrap();
    assert_eq!(
        again.attempts.len(),
        1,
        "the interrupted attempt left no record"
    );
    let received = posts();
    let mut ids: Vec<String> = received
        .iter()
        .map(|r| {
            super::webhooks::verify(&hook.secret, r);
            r.headers["webhook-id"].clone()
        })
        .collect();
    assert_eq!(received.len(), 6, "five events, the held one sent twice");
    assert_eq!(
        ids.iter().filter(|id| **id == first.id).count(),
        2,
        "sent again under the same webhook-id"
    );
    ids.sort();
    ids.dedup();
    let mut expected: Vec<String> = queued.into_iter().chain([first.id.clone()]).collect();
    expected.sort();
    assert_eq!(ids, expected, "every event delivered");
    eprintln!("chaos: a delivery killed mid-send was sent by another instance {took:?} after the kill (lease {LEASE_MS} ms)");
    taker.stop().await;
    api.stop().await;
}
