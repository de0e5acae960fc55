//! What the API-key path pays for being accounted for (issue 24): two servers in this run,
//! one with metrics (`metrics_listen`), the access log and JSON logs written to a file, one
//! with none of them; both carry request ids and the audit log (always on, and an API-key
//! read writes no audit event). The series take turns, at the configured connections
//! (throughput) and at one (the p50 a request pays).
//!
//! Targets: at least 90% of the throughput, under 15 µs added at p50.

use std::{process::Stdio, time::Duration};

use crate::{
    api::Api,
    load,
    report::Report,
    scenarios::{drop_postgres, fresh_postgres},
    server_process::{BenchLimits, ServerProcess},
    Options,
};

const SCENARIO: &str = "observability";
const OFF: &str = "GET /indexes/{id}, API key: no metrics, no access log";
const ON: &str = "GET /indexes/{id}, API key: metrics, JSON access log to a file";
const ROUNDS: u32 = 3;

pub async fn run(report: &mut Report, o: &Options, admin_url: Option<&str>) -> anyhow::Result<()> {
    let off_dir = tempfile::tempdir()?;
    let on_dir = tempfile::tempdir()?;
    let (off_db, on_db) = match admin_url {
        Some(admin) => (
            Some(fresh_postgres(admin).await?),
            Some(fresh_postgres(admin).await?),
        ),
        None => (None, None),
    };
    let off = ServerProcess::start_configured(
        off_dir.path(),
        off_db.as_deref(),
        BenchLimits::Unreached,
        &[
            ("VIDEOVECTOR_ACCESS_LOG", "false"),
            ("VIDEOVECTOR_LOG", "warn"),
        ],
        Stdio::inherit(),
    )
    .await?;
    let log_file = on_dir.path().join("server.log");
    let on = ServerProcess::start_configured(
        on_dir.path(),
        on_db.as_deref(),
        BenchLimits::Unreached,
        &[
            ("VIDEOVECTOR_ACCESS_LOG", "true"),
            ("VIDEOVECTOR_METRICS_LISTEN", "127.0.0.1:0"),
            ("VIDEOVECTOR_LOG_FORMAT", "json"),
            ("VIDEOVECTOR_LOG", "warn,videovector::access=info"),
        ],
        Stdio::from(std::fs::File::create(&log_file)?),
    )
    .await?;
    let mut targets = Vec::new();
    for server in [&off, &on] {
        targets.push(Api::read_key_target(&server.url).await?);
    }
    let names = [OFF, ON];
    for connections in [o.concurrency, 1] {
        let mut rounds: Vec<Vec<load::Stats>> = vec![Vec::new(); 2];
        for _ in 0..ROUNDS {
            for ((http, url, key), measured) in targets.iter().zip(&mut rounds) {
                let (http, url, key) = (http.clone(), url.clone(), key.clone());
                let stats = load::run(connections, o.duration / ROUNDS, move |_| {
                    let (http, url, key) = (http.clone(), url.clone(), key.clone());
                    async move { load::get_ok(&http, &url, ("x-api-key", &key)).await }
                })
                .await;
                measured.push(stats);
            }
        }
        for (name, measured) in names.iter().zip(rounds) {
            let baseline = (*name == ON).then_some(OFF);
            report.series(
                SCENARIO,
                name,
                connections,
                load::median_by_throughput(measured),
                baseline,
            );
        }
        let on_series = report.series.last().expect("just pushed").clone();
        if connections == 1 {
            let added = on_series.p50_added_us.unwrap_or(f64::MAX);
            report.figure(
                SCENARIO,
                "p50 added (1 connection)",
                added,
                "µs",
                "< 15 µs",
                Some(added < 15.0),
            );
        } else {
            let ratio = on_series.rps_ratio.unwrap_or(0.0) * 100.0;
            report.figure(
                SCENARIO,
                &format!("throughput vs without ({connections} connections)"),
                ratio,
                "%",
                ">= 90%",
                Some(ratio >= 90.0),
            );
        }
    }
    // The log was really written: one line per request, each naming its request (the
    // filter keeps the access lines only, so without their request's span).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = std::fs::read_to_string(&log_file)?
        .lines()
        .filter(|l| l.contains("videovector::access") && l.contains("\"request_id\":\"req_"))
        .count();
    report.figure(
        SCENARIO,
        "access log lines written, each with its request id",
        lines as f64,
        "lines",
        "> 0",
        Some(lines > 0),
    );
    drop((off, on));
    if let Some(admin) = admin_url {
        for url in [off_db, on_db].into_iter().flatten() {
            drop_postgres(admin, &url).await?;
        }
    }
    Ok(())
}
