//! `rate-limits`: what rate limits and usage counting cost on the API-key path, whether two
//! instances enforce one budget, and whether usage counts are exact.
//!
//! - **Cost**: one server without default limits, and two keys on it loaded in turn with
//!   `GET /indexes/{id}`: one with no limits (the baseline: its check finds none) and one
//!   with two limits of its own that no request reaches (every request checked against
//!   both and given its headers): throughput at the configured connections, and the p50
//!   added on one connection. In one process, because two server processes alike differ by
//!   more than what is measured here (up to a quarter, seen on this machine). Counting
//!   usage, which both keys do, is timed on its own in this process: its cost per request.
//! - **One budget** (PostgreSQL only): two instances on one database, a key limited to
//!   [`SHARED_QUOTA`] per 10-second window, flooded through both for one whole window:
//!   what they admitted between them against the quota.
//! - **Usage**: requests from 32 connections, then the key's usage after the flush
//!   interval against the answers the clients saw.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Value};

use crate::{
    api::{Api, INDEX},
    load::{self, Stats},
    report::Report,
    scenarios::{drop_postgres, fresh_postgres},
    server_process::{share_secrets, BenchLimits, ServerProcess},
    Options,
};

const SCENARIO: &str = "rate-limits";
const OFF: &str = "GET /indexes/{id} with a key without limits (baseline)";
const ON: &str = "GET /indexes/{id} with a key with two limits (none reached)";
/// The shared key's quota per 10-second window.
const SHARED_QUOTA: u32 = 5_000;
const ROUNDS: u32 = 6;
/// How long after the flush interval usage is read.
const FLUSH_MARGIN: Duration = Duration::from_millis(1_500);

pub async fn run(report: &mut Report, o: &Options, admin_url: Option<&str>) -> anyhow::Result<()> {
    let database = match admin_url {
        Some(admin) => Some(fresh_postgres(admin).await?),
        None => None,
    };
    let dir = tempfile::tempdir()?;
    let server =
        ServerProcess::start_with(dir.path(), database.as_deref(), BenchLimits::Off).await?;
    let api = Arc::new(Api::login(&server.url).await?);
    api.create_index().await?;
    cost(report, o, &api).await?;
    usage_record_cost(report).await?;
    usage(report, o, &api).await?;
    drop(server);
    if let (Some(admin), Some(url)) = (admin_url, &database) {
        drop_postgres(admin, url).await?;
        one_budget(report, o, admin).await?;
    }
    Ok(())
}

async fn cost(report: &mut Report, o: &Options, api: &Arc<Api>) -> anyhow::Result<()> {
    let (_, plain) = api.key(&["read"]).await?;
    // The most the default ceiling (10,000 a second) allows per hour and per day: far more
    // than a bench sends, so every request is admitted after both are checked.
    let limited: Value = api
        .http
        .post(format!("{}/api-keys", api.base))
        .bearer_auth(&api.token)
        .json(&json!({"name": "limited", "scopes": ["read"], "rate_limits": [
            {"name": "hourly", "family": "read", "quota": 36_000_000u32, "window_seconds": 3600},
            {"name": "daily", "family": "read", "quota": 864_000_000u32, "window_seconds": 86400},
        ]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let limited = limited["secret"].as_str().unwrap_or_default().to_string();
    let url = format!("{}/indexes/{INDEX}", api.base);
    let series = [(OFF, plain), (ON, limited)];
    for connections in [o.concurrency, 1] {
        // Rounds in turn, each series keeping its median, as in `auth`.
        let mut rounds: Vec<Vec<Stats>> = vec![Vec::new(); series.len()];
        for round in 0..ROUNDS {
            // Each round in the other order: what follows a series (a usage write, a
            // checkpoint) falls on both alike.
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let (key, measured) = (&series[i].1, &mut rounds[i]);
                let (http, url, key) = (api.http.clone(), url.clone(), key.clone());
                let stats = load::run(connections, o.duration / ROUNDS, move |_| {
                    let (http, url, key) = (http.clone(), url.clone(), key.clone());
                    async move { load::get_ok(&http, &url, ("x-api-key", &key)).await }
                })
                .await;
                measured.push(stats);
            }
        }
        for ((name, _), measured) in series.iter().zip(rounds) {
            let stats = load::median_by_throughput(measured);
            let baseline = (*name != OFF).then_some(OFF);
            report.series(SCENARIO, name, connections, stats, baseline);
            if baseline.is_none() {
                continue;
            }
            let s = report.series.last().expect("just pushed").clone();
            if connections == 1 {
                let added = s.p50_added_us.unwrap_or(f64::MAX);
                report.figure(
                    SCENARIO,
                    "limits: p50 added (1 connection)",
                    added,
                    "µs",
                    "< 20 µs",
                    Some(added < 20.0),
                );
            } else {
                let ratio = s.rps_ratio.unwrap_or(0.0);
                report.figure(
                    SCENARIO,
                    &format!("limits: rps vs none ({connections} connections)"),
                    ratio * 100.0,
                    "%",
                    ">= 90%",
                    Some(ratio >= 0.9),
                );
            }
        }
    }
    Ok(())
}

/// What counting one answer in the usage costs, timed in this process over many keys.
async fn usage_record_cost(report: &mut Report) -> anyhow::Result<()> {
    use videovector_api_spec::{dto::rate_limits::RateLimitFamily, Credential, Principal};
    use videovector_server::rate_limits::usage::UsageCounter;
    let db = sea_orm::Database::connect("sqlite::memory:").await?;
    let counter = UsageCounter::new(db);
    let principals: Vec<Principal> = (0..1_000)
        .map(|i| Principal {
            org_id: "org_01JBENCHBENCHBENCHBENCHBEN".into(),
            credential: Credential::ApiKey {
                key_id: format!("key_01JBENCHBENCHBENCHBENC{i:04}"),
            },
            scopes: Vec::new(),
            verified: false,
            rate_limits: std::sync::Arc::from(Vec::new()),
            client_rate_limits: std::sync::Arc::from(Vec::new()),
            index_ids: std::sync::Arc::from(Vec::new()),
            max_top_k: None,
            forced_filters: None,
        })
        .collect();
    let rounds = 1_000_000;
    let started = std::time::Instant::now();
    for i in 0..rounds {
        if let Some(counted) = counter.counts(&principals[i % principals.len()]) {
            let status = poem::http::StatusCode::OK;
            counter.record(counted, RateLimitFamily::Read, status, chrono::Utc::now());
        }
    }
    let each = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    report.figure(
        SCENARIO,
        "usage: counting one answer (in process, 1,000 keys)",
        each,
        "µs",
        "(part of both series above)",
        None,
    );
    Ok(())
}

/// The allowed requests a key's usage shows, summed over its minute buckets.
async fn allowed_in_usage(api: &Api, key_id: &str) -> anyhow::Result<u64> {
    let usage: Value = api
        .http
        .get(format!(
            "{}/api-keys/{key_id}/usage?granularity=minute",
            api.base
        ))
        .bearer_auth(&api.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(usage["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|k| k["buckets"].as_array().into_iter().flatten())
        .map(|b| b["allowed"].as_u64().unwrap_or(0))
        .sum())
}

async fn usage(report: &mut Report, o: &Options, api: &Arc<Api>) -> anyhow::Result<()> {
    let (key_id, key) = api.key(&["read"]).await?;
    let url = format!("{}/indexes/{INDEX}", api.base);
    let answered = Arc::new(AtomicUsize::new(0));
    let counted = answered.clone();
    let http = api.http.clone();
    let stats = load::run(32, o.duration, move |_| {
        let (http, url, key, counted) = (http.clone(), url.clone(), key.clone(), counted.clone());
        async move {
            let ok = load::get_ok(&http, &url, ("x-api-key", &key)).await;
            if ok {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            ok
        }
    })
    .await;
    // The server's default interval, plus a margin for the write itself.
    tokio::time::sleep(Duration::from_secs(5) + FLUSH_MARGIN).await;
    let sent = answered.load(Ordering::Relaxed) as u64;
    let shown = allowed_in_usage(api, &key_id).await?;
    report.figure(
        SCENARIO,
        &format!(
            "usage after the flush interval: {shown} allowed counted of {sent} answered 200 \
             (32 connections, {} errors)",
            stats.errors
        ),
        if shown == sent { 1.0 } else { 0.0 },
        "(1 = exact)",
        "1",
        Some(shown == sent),
    );
    Ok(())
}

/// Two instances on one PostgreSQL database flooded for one whole 10-second window with a
/// key limited to [`SHARED_QUOTA`] in it.
async fn one_budget(report: &mut Report, o: &Options, admin_url: &str) -> anyhow::Result<()> {
    let url = fresh_postgres(admin_url).await?;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = ServerProcess::start_with(dir_a.path(), Some(&url), BenchLimits::Unreached).await?;
    share_secrets(dir_a.path(), dir_b.path())?;
    let b = ServerProcess::start_with(dir_b.path(), Some(&url), BenchLimits::Unreached).await?;
    let on_a = Api::login(&a.url).await?;
    on_a.create_index().await?;
    let created: Value = on_a
        .http
        .post(format!("{}/api-keys", on_a.base))
        .bearer_auth(&on_a.token)
        .json(
            &json!({"name": "flooded", "scopes": ["read"], "rate_limits": [
                {"name": "shared", "family": "read", "quota": SHARED_QUOTA, "window_seconds": 10}
            ]}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let key = created["secret"].as_str().unwrap_or_default().to_string();
    let urls = Arc::new([
        format!("{}/api/v2/indexes/{INDEX}", a.url),
        format!("{}/api/v2/indexes/{INDEX}", b.url),
    ]);
    // From just after a window starts to just before it ends.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(10_000 - now % 10_000 + 50)).await;
    let admitted = Arc::new(AtomicUsize::new(0));
    let counted = admitted.clone();
    let http = on_a.http.clone();
    let flood = if o.smoke {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(9_850)
    };
    let stats = load::run(o.concurrency, flood, move |i| {
        let (http, urls, key, counted) = (http.clone(), urls.clone(), key.clone(), counted.clone());
        async move {
            match http
                .get(&urls[i % 2])
                .header("x-api-key", &key)
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    if status == 200 {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    status == 200 || status == 429
                }
                Err(_) => false,
            }
        }
    })
    .await;
    let admitted = admitted.load(Ordering::Relaxed) as f64;
    let quota = f64::from(SHARED_QUOTA);
    let off = (admitted - quota).abs() / quota;
    report.figure(
        SCENARIO,
        &format!(
            "two instances, one budget: admitted {admitted} of a {SHARED_QUOTA} quota in a \
             10 s flood ({} requests, {:.0}/s)",
            stats.requests, stats.requests_per_second
        ),
        admitted / quota * 100.0,
        "% of the quota",
        "within 10%",
        (!o.smoke).then_some(off <= 0.10),
    );
    drop((a, b));
    drop_postgres(admin_url, &url).await
}
