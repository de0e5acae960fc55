//! Chaos on more than one instance: an instance killed with SIGKILL in the middle of a
//! connector job, of a webhook delivery and of a re-embedding, the database restarted under
//! load, and a search copy's disk filled. Each test says what a client sees, and checks that no acknowledged
//! write is lost and no work stays stuck. The instance that is killed is a child process
//! ([`ChildServer::join`]) on the test server's database; the one that takes its work over
//! runs in the test.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use videovector_client::{types, Client};
use videovector_tests::{
    child::ChildServer,
    common_calls::{
        connector_file, create_and_sync, create_connector, create_index, wait_job_within,
    },
    embeddings_server::{Behaviour, EmbeddingsServer, API_KEY},
    LocalHttp, TestServer,
};

use super::meaning::{ids, segment, Caller};

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

async fn hits(client: &Client, index_id: &str, query: &str) -> usize {
    client
        .index_search()
        .index_id(index_id)
        .body(types::SearchRequest::builder().query(query).top_k(50))
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
    create_index(&client, "idx_chaos", "Chaos").await;
    let file = |path: &str, media: &str| connector_file(files.url(path), media, "idx_chaos");
    let (_connector, job) = create_and_sync(
        &client,
        "Three files",
        vec![
            file("/alpha.vtt", "alpha"),
            file("/bravo.vtt", "bravo"),
            file("/charlie.vtt", "charlie"),
        ],
    )
    .await;

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

/// A re-embedding's worker is killed while its endpoint holds the second chunk's first
/// call. The client sees the re-embedding `running` with the first chunk done, then
/// `succeeded` with every segment: another instance went on from the second chunk (the
/// first is not embedded again), and searches by meaning use the new vectors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_reembedding_leaves_it_to_another_that_finishes_it() {
    const SEGMENTS: usize = 600;
    const BATCH: usize = 64;
    // A chunk is 256 segments (`workers::reembeddings`): four calls of 64.
    const CHUNK: u64 = 256;
    let model = EmbeddingsServer::start().await;
    let api = api_only().await;
    let caller = Caller::new(&api).await;
    let (status, created) = caller
        .post(
            &api,
            "/indexes",
            json!({"id": "idx_chaos", "name": "Chaos", "embedder": {"source": "none"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let mut segments: Vec<Value> = (0..SEGMENTS - 1)
        .map(|i| {
            segment(
                "filler",
                i as f64,
                &format!("filler line {i} on the markets"),
            )
        })
        .collect();
    segments.push(segment(
        "space",
        0.0,
        "the astronaut floated inside the station",
    ));
    let (status, ingested) = caller
        .post(
            &api,
            "/indexes/idx_chaos/segments",
            json!({"wait": true, "segments": segments}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ingested}");

    let embedder = json!({"source": "rest", "url": model.url, "model": "minilm-static",
                          "dimensions": 128, "api_key": API_KEY, "batch_size": BATCH});
    let answer = caller
        .http
        .patch(api.api("/indexes/idx_chaos"))
        .header("X-API-Key", &caller.key)
        .json(&json!({ "embedder": embedder }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    // The creation's probe is behind us: the child's fifth call (the second chunk's
    // first) hangs.
    let probed = model.calls();
    model.behave(Behaviour::StallAfter(4));
    let worker = ChildServer::join(&api, LEASE_MS);
    wait_for(
        Duration::from_secs(60),
        "the child's fifth call",
        || async { (model.calls() == probed + 5).then_some(()) },
    )
    .await;
    let (_, before) = caller.get(&api, "/indexes/idx_chaos").await;
    assert_eq!(before["reembedding"]["status"], "running", "{before}");
    assert_eq!(before["reembedding"]["done"], CHUNK, "{before}");

    model.behave(Behaviour::Fine);
    let texts_before = model.texts();
    let taker = taker(&api).await;
    worker.kill();
    let done = tokio::time::timeout(
        TAKEOVER_WITHIN * 3,
        super::meaning_rest::settled_reembedding(&caller, &api, "idx_chaos"),
    )
    .await
    .expect("the re-embedding finished");
    assert_eq!(done["reembedding"]["status"], "succeeded", "{done}");
    assert_eq!(done["reembedding"]["done"], SEGMENTS, "{done}");
    assert_eq!(done["embedder"]["source"], "rest", "{done}");
    // The taker embedded what was left (the held call's texts again), not the first chunk.
    let embedded_after = model.texts() - texts_before;
    assert!(
        embedded_after >= (SEGMENTS as u64 - CHUNK) && embedded_after < SEGMENTS as u64,
        "the taker embedded {embedded_after} texts"
    );
    let meaning = json!({"query": "weightless cosmonaut drifting aboard", "mode": "semantic",
                         "top_k": 1});
    let found = wait_for(Duration::from_secs(10), "a search by meaning", || async {
        let (status, found) = caller
            .post(&api, "/indexes/idx_chaos/search", meaning.clone())
            .await;
        (status == StatusCode::OK).then_some(found)
    })
    .await;
    assert_eq!(ids(&found), ["the astronaut floated inside the station"]);
    assert_eq!(
        found["total"]["value"], SEGMENTS,
        "every segment has its vector"
    );
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

/// What a load of clients saw, by what happened to each request.
#[derive(Default)]
struct Tally {
    /// Texts of segments whose ingest was answered 201.
    acknowledged: std::sync::Mutex<Vec<String>>,
    /// Outcome ("201", "503 unavailable", "transport error", ...) and how many.
    outcomes: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
    /// When the last non-2xx answer or transport error happened, from the start.
    last_failure: std::sync::Mutex<Option<Duration>>,
}

impl Tally {
    fn count(&self, outcome: String, started: Instant, ok: bool) {
        *self.outcomes.lock().unwrap().entry(outcome).or_default() += 1;
        if !ok {
            *self.last_failure.lock().unwrap() = Some(started.elapsed());
        }
    }
}

/// One client of the load: ingests one segment at a time into `idx_load`, and searches
/// every fourth request, alternating between the instances.
async fn load_client(
    n: usize,
    urls: [String; 2],
    token: String,
    tally: std::sync::Arc<Tally>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    started: Instant,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut i = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        i += 1;
        let base = &urls[i % 2];
        let word = format!("zq{n}x{i}");
        let request = if i.is_multiple_of(4) {
            http.post(format!("{base}/api/v2/indexes/idx_load/search"))
                .json(&serde_json::json!({"query": "load"}))
        } else {
            http.post(format!("{base}/api/v2/indexes/idx_load/segments"))
                .json(&serde_json::json!({"segments": [{
                    "media_id": "load", "start_seconds": i, "end_seconds": i + 1,
                    "text": format!("{word} load"),
                }]}))
        };
        match request.bearer_auth(&token).send().await {
            Ok(answer) => {
                let status = answer.status();
                let retry_after = answer.headers().contains_key("retry-after");
                let body: serde_json::Value = answer.json().await.unwrap_or_default();
                if status == reqwest::StatusCode::CREATED {
                    tally.acknowledged.lock().unwrap().push(word);
                }
                let mut code = body["code"].as_str().unwrap_or_default().to_string();
                if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && !retry_after {
                    code.push_str(" without Retry-After");
                }
                tally.count(
                    format!("{} {code}", status.as_u16()).trim().to_string(),
                    started,
                    status.is_success(),
                );
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else {
                    "transport error"
                };
                tally.count(kind.to_string(), started, false);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The segment texts stored in `idx_load`.
async fn stored_texts(server: &TestServer) -> std::collections::HashSet<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = server.db();
    db.query_all(Statement::from_string(
        db.get_database_backend(),
        "SELECT text FROM segments WHERE media_id = 'load'",
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|row| {
        let text: String = row.try_get_by_index(0).unwrap();
        text.split(' ').next().unwrap_or_default().to_string()
    })
    .collect()
}

/// PostgreSQL crashes (every backend killed) and is back two seconds later, then stops
/// cleanly for seven seconds (longer than a request waits for a connection), while eight
/// clients ingest and search through two instances and a connector job runs. What a client
/// sees: requests in flight at the crash, and requests that waited 5 s for a connection
/// during the long outage, get 503 `unavailable` with `Retry-After` (never a 500, never a
/// request hanging to its own timeout); a short outage is only a pause; once the database
/// is back, requests succeed at once, with no restart of either instance. Every ingest
/// answered 201 is stored and searchable on both instances; the job finishes with every
/// file ingested (none failed for the outage); notices flow again (a key revoked on one
/// instance is refused by the other within a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crashing_under_load_loses_no_acknowledged_write() {
    if std::env::var(videovector_tests::PG_ENV).is_err() {
        eprintln!("chaos: PostgreSQL restarts run in the PostgreSQL-backed run");
        return;
    }
    let postgres = videovector_tests::private_postgres::PrivatePostgres::start();
    let paths: Vec<String> = (0..20).map(|i| format!("/f{i}.vtt")).collect();
    let files = LocalHttp::start(
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), captions(&format!("file{i}"), 50)))
            .collect(),
    )
    .await;
    // A slow source, so the job spans both outages.
    files
        .answer_delay_ms
        .store(800, std::sync::atomic::Ordering::SeqCst);
    let a = TestServer::start_on_postgres(&postgres.admin_url(), |c| {
        c.allow_private_targets = true;
        c.queue_lease_ms = 3_000;
    })
    .await;
    let b = a.second_instance().await;
    let org = a.org(true).await;
    let client = a.admin_client(&org);
    create_index(&client, "idx_load", "Load").await;
    let token = a.token(&org, &[videovector_api_spec::Scope::Write]);
    let twenty = (0..20)
        .map(|i| {
            connector_file(
                files.url(&format!("/f{i}.vtt")),
                &format!("file{i}"),
                "idx_load",
            )
        })
        .collect();
    let connector = create_connector(&client, "Twenty files", twenty).await;

    let tally = std::sync::Arc::new(Tally::default());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|n| {
            tokio::spawn(load_client(
                n,
                [a.url(), b.url()],
                token.clone(),
                tally.clone(),
                stop.clone(),
                started,
            ))
        })
        .collect();
    let job = client
        .connector_sync()
        .connector_id(&connector.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outages = tokio::task::spawn_blocking(move || {
        let mut times = Vec::new();
        for (mode, down) in [("immediate", 2), ("fast", 7)] {
            let from = started.elapsed();
            postgres.stop(mode);
            std::thread::sleep(Duration::from_secs(down));
            postgres.start_again();
            times.push((mode, from, started.elapsed()));
            std::thread::sleep(Duration::from_secs(3));
        }
        (postgres, times)
    });
    let (postgres, times) = outages.await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let outcomes = tally.outcomes.lock().unwrap().clone();
    let last_failure = tally.last_failure.lock().unwrap().unwrap_or_default();
    eprintln!("chaos: PostgreSQL outages {times:?}; outcomes {outcomes:?}; last failure at {last_failure:?}");
    for outcome in outcomes.keys() {
        assert!(
            ["200", "201", "503 unavailable"].contains(&outcome.as_str()),
            "a client saw {outcome}: {outcomes:?}"
        );
    }
    assert!(
        outcomes.get("503 unavailable").is_some_and(|n| *n > 0),
        "the long outage was told as 503s"
    );
    let back_at = times.last().unwrap().2;
    assert!(
        last_failure < back_at + Duration::from_secs(2),
        "requests succeed again once the database is back ({last_failure:?}, back at {back_at:?})"
    );

    let acknowledged = tally.acknowledged.lock().unwrap().clone();
    let stored = stored_texts(&a).await;
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|w| !stored.contains(*w))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    // Searchable on both instances: a sample across the run, the last ones included.
    let sample: Vec<&String> = acknowledged
        .iter()
        .step_by(acknowledged.len() / 40 + 1)
        .chain(acknowledged.iter().rev().take(5))
        .collect();
    for server in [&a, &b] {
        let reader = server.admin_client(&org);
        for word in &sample {
            wait_for(Duration::from_secs(20), word, || async {
                (hits(&reader, "idx_load", word).await == 1).then_some(())
            })
            .await;
        }
    }

    let done = wait_job_within(&client, &job.id, Duration::from_secs(60)).await;
    assert_eq!(done.status, types::JobStatus::Succeeded, "{:?}", done.error);
    assert_eq!(
        (done.progress.files_done, done.progress.files_failed),
        (20, 0),
        "{:?}",
        done.files
    );

    let (key_id, secret) = a.api_key(&org, &[videovector_api_spec::Scope::Read]).await;
    let http = reqwest::Client::new();
    let read_on_b = || async {
        http.get(b.api("/indexes"))
            .header("X-API-Key", &secret)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(read_on_b().await, reqwest::StatusCode::OK);
    client
        .api_key_revoke()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(1),
        "the revocation reaches b",
        || async { (read_on_b().await == reqwest::StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;

    b.stop().await;
    a.stop().await;
    drop(postgres);
}

/// A tmpfs of `size` mounted at a path (needs root), lazily unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs at {}", path.display());
        Tmpfs(path.to_path_buf())
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        // What is left is smaller than a chunk: take it too.
        while file.write_all(&[0u8; 512]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn runs_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// The disk of one instance's search copy fills up. What a client sees: that instance
/// still answers every request; an ingest through it is stored and answered 201 (with
/// `searchable: false` when it asked to wait), because the database holds the data; its
/// searches answer from what its copy held before; the other instance is unaffected.
/// Once space is freed, the copy catches up by itself (no restart) and finds every
/// segment exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_search_disk_delays_searches_and_loses_nothing() {
    if !runs_as_root() {
        eprintln!("chaos: filling a disk needs root (a tmpfs mount); skipped");
        return;
    }
    let a = TestServer::start().await;
    let org = a.org(true).await;
    let client = a.admin_client(&org);
    create_index(&client, "idx_disk", "Disk").await;
    let mut mounted = None;
    let b = a
        .second_instance_with(|c| mounted = Some(Tmpfs::mount(&c.search_dir(), "4m")))
        .await;
    let disk = mounted.unwrap();
    let on_b = b.admin_client(&org);
    let ingest = |client: Client, word: &'static str, count: usize, wait: bool| async move {
        let segments: Vec<types::SegmentInput> = (0..count)
            .map(|i| {
                types::SegmentInput::builder()
                    .media_id("disk")
                    .start_seconds(i as f64)
                    .end_seconds(i as f64 + 1.0)
                    .text(format!("{word} {word}{i}x {}", "padding ".repeat(40)))
                    .try_into()
                    .unwrap()
            })
            .collect();
        client
            .segment_ingest()
            .index_id("idx_disk")
            .body(types::SegmentBatch::builder().segments(segments).wait(wait))
            .send()
            .await
            .unwrap()
            .into_inner()
    };
    assert!(ingest(on_b.clone(), "before", 10, true).await.searchable);
    let filler = disk.fill();

    // One wait through b (it times out: the copy keeps failing to commit, retrying each
    // second), more through a.
    let through_b = ingest(on_b.clone(), "during", 500, true).await;
    assert_eq!(through_b.segment_ids.len(), 500, "acknowledged and stored");
    assert!(!through_b.searchable, "b's copy cannot take it");
    for word in ["during", "meanwhile", "meanwhile"] {
        let through_a = ingest(client.clone(), word, 500, true).await;
        assert!(through_a.searchable, "a's copy is unaffected");
    }
    let stored = 10 + 2_000;
    assert_eq!(
        hits(&on_b, "idx_disk", "before").await,
        10,
        "b still answers"
    );
    assert_eq!(
        hits(&on_b, "idx_disk", "during").await,
        0,
        "from its old copy"
    );
    let index = on_b
        .index_view()
        .index_id("idx_disk")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(index.segment_count, stored, "every write was stored");

    std::fs::remove_file(filler).unwrap();
    let freed = Instant::now();
    // Each segment has a word of its own: found once, so neither lost nor doubled.
    for (word, count) in [("before", 10), ("during", 1000), ("meanwhile", 1000)] {
        for i in (0..count).step_by(97).chain([count - 1]) {
            let own = format!("{word}{}x", i % 500);
            wait_for(Duration::from_secs(30), &own, || async {
                let found = hits(&on_b, "idx_disk", &own).await;
                let expected = if word == "before" { 1 } else { 2 }; // ingested twice
                assert!(found <= expected, "{own} found {found} times");
                (found == expected).then_some(())
            })
            .await;
        }
    }
    let caught_up = freed.elapsed();
    eprintln!(
        "chaos: a search copy whose disk was full caught up {caught_up:?} after space was freed"
    );
    b.stop().await;
    drop(disk);
    a.stop().await;
}
