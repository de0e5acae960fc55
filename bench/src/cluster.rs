//! The `cluster` scenario: two instances on one PostgreSQL database, as behind a load
//! balancer (shared secrets, a search copy each). It measures what crossing from one
//! instance to the other costs:
//! - revocation propagation: from the revoke answered on A to the first 401 on B, for a key
//!   B had just accepted (and cached);
//! - search visibility: from a `wait: true` batch answered on A to B's first hit on it;
//! - the throughput of two instances against one, on the same machine.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::{
    api::{Api, INDEX},
    load::{self, Stats},
    report::Report,
    scenarios::ingest_corpus,
    server_process::{share_secrets, ServerProcess},
    Options,
};

/// How long one change may take to cross before the scenario gives up.
const GIVE_UP: Duration = Duration::from_secs(10);
/// Segments loaded before the throughput series (their searches must find something).
const SEEDED: usize = 20_000;

pub async fn run(report: &mut Report, o: &Options, database_url: &str) -> anyhow::Result<()> {
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = ServerProcess::start(dir_a.path(), Some(database_url)).await?;
    share_secrets(dir_a.path(), dir_b.path())?;
    let b = ServerProcess::start(dir_b.path(), Some(database_url)).await?;
    let (on_a, on_b) = (
        Arc::new(Api::login(&a.url).await?),
        Arc::new(Api::login(&b.url).await?),
    );
    on_a.create_index().await?;
    let rounds = if o.smoke { 10 } else { 200 };

    let revocation = revocation(&on_a, &on_b, rounds).await?;
    report.series(
        "cluster",
        "revoke answered on A → first 401 on B",
        1,
        revocation.clone(),
        None,
    );
    report.figure(
        "cluster",
        "revocation propagation p50",
        revocation.p50_us / 1000.0,
        "ms",
        "(the notice delay; the 5 s cache TTL bounds it)",
        None,
    );
    report.figure(
        "cluster",
        "revocation propagation p99",
        revocation.p99_us / 1000.0,
        "ms",
        "(the notice delay; the 5 s cache TTL bounds it)",
        None,
    );

    let visibility = visibility(&on_a, &on_b, rounds).await?;
    report.series(
        "cluster",
        "wait: true batch answered on A → first hit on B",
        1,
        visibility.clone(),
        None,
    );
    report.figure(
        "cluster",
        "cross-instance search visibility p50",
        visibility.p50_us / 1000.0,
        "ms",
        "",
        None,
    );
    report.figure(
        "cluster",
        "cross-instance search visibility p99",
        visibility.p99_us / 1000.0,
        "ms",
        "<= 250 ms",
        Some(visibility.p99_us <= 250_000.0),
    );

    let seeded = if o.smoke { 2_000 } else { SEEDED };
    ingest_corpus(&on_a, seeded).await?;
    throughput(report, o, &on_a, &on_b).await;
    Ok(())
}

/// Spins on `check` until it holds; how long that took from `since`.
async fn until<F, Fut>(since: Instant, mut check: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while !check().await {
        anyhow::ensure!(since.elapsed() < GIVE_UP, "the change never crossed");
    }
    Ok(since.elapsed())
}

async fn revocation(on_a: &Api, on_b: &Api, rounds: usize) -> anyhow::Result<Stats> {
    let view_on_b = format!("{}/indexes/{INDEX}", on_b.base);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (id, secret) = on_a.key(&["read"]).await?;
        let header = ("x-api-key", secret.as_str());
        for _ in 0..2 {
            anyhow::ensure!(
                on_b.get_status(&view_on_b, header).await == Some(200),
                "B refused a new key"
            );
        }
        on_a.revoke(&id).await?;
        let revoked = Instant::now();
        latencies.push(
            until(revoked, || async {
                on_b.get_status(&view_on_b, header).await == Some(401)
            })
            .await?,
        );
    }
    Ok(Stats::from_latencies(latencies, 0, started.elapsed()))
}

async fn visibility(on_a: &Api, on_b: &Api, rounds: usize) -> anyhow::Result<Stats> {
    let ingest = format!("{}/indexes/{INDEX}/segments", on_a.base);
    let search = format!("{}/indexes/{INDEX}/search", on_b.base);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let word = format!("crossing{round:06}");
        let batch = json!({"wait": true, "segments": [{"media_id": "cluster",
            "start_seconds": 0.0, "end_seconds": 1.0, "text": format!("the {word} probe")}]});
        let answered = on_a.post_json(&ingest, batch.to_string()).await?;
        anyhow::ensure!(answered["searchable"] == json!(true), "not searchable on A");
        let stored = Instant::now();
        let query = json!({"query": word}).to_string();
        latencies.push(
            until(stored, || async {
                on_b.post_json(&search, query.clone())
                    .await
                    .is_ok_and(|found: Value| {
                        found["hits"]
                            .as_array()
                            .is_some_and(|hits| !hits.is_empty())
                    })
            })
            .await?,
        );
    }
    Ok(Stats::from_latencies(latencies, 0, started.elapsed()))
}

/// The same load against A alone, then split between A and B (each worker keeps to one).
async fn throughput(report: &mut Report, o: &Options, on_a: &Arc<Api>, on_b: &Arc<Api>) {
    let query = json!({"query": "the", "top_k": 10}).to_string();
    for (what, path, body) in [
        (
            "GET /indexes/{id}, API key",
            format!("/indexes/{INDEX}"),
            None,
        ),
        (
            "POST /indexes/{id}/search, API key",
            format!("/indexes/{INDEX}/search"),
            Some(query),
        ),
    ] {
        let one = format!("{what}, one instance");
        for (name, instances) in [
            (one.clone(), vec![on_a.clone()]),
            (
                format!("{what}, two instances"),
                vec![on_a.clone(), on_b.clone()],
            ),
        ] {
            let (path, body) = (path.clone(), body.clone());
            let stats = load::run(o.concurrency, o.duration, move |i| {
                let api = instances[i % instances.len()].clone();
                let (path, body) = (path.clone(), body.clone());
                async move {
                    let url = format!("{}{path}", api.base);
                    match body {
                        Some(body) => api.post_json(&url, body).await.is_ok(),
                        None => {
                            api.get_status(&url, ("x-api-key", &api.admin_key)).await == Some(200)
                        }
                    }
                }
            })
            .await;
            let baseline = (name != one).then_some(one.as_str());
            report.series("cluster", &name, o.concurrency, stats, baseline);
        }
        let two = report.series.last().expect("just measured");
        let ratio = two.rps_ratio.unwrap_or(0.0);
        report.figure(
            "cluster",
            &format!("{what}: two instances vs one (rps)"),
            ratio,
            "×",
            "(one machine: both share its 2 cores with the load)",
            None,
        );
    }
}
