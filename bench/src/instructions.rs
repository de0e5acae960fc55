//! Instructions per request (issue 24): what being accounted for costs the API-key path,
//! counted instead of timed. Timed runs on a small shared machine spread by as much as they
//! measure (±8% and ±15 µs between runs of one build); valgrind's callgrind counts the
//! instructions the server executes, the same for the same work whatever else the machine
//! does.
//!
//! On SQLite, or on PostgreSQL with `VIDEOVECTOR_BENCH_DATABASE_URL` (a fresh database
//! per server). Three servers in turn, each under callgrind with its workers off (no queue polling in
//! the count): none of the accounting that can be switched off; metrics and the JSON access
//! log (to a file); and those with traces exported to a local OTLP sink. Request ids, the
//! request context and the audit log are in all three. Each answers [`WARMUP`] requests,
//! has its counters zeroed, answers [`MEASURED`] requests one at a time, and dumps its
//! counts: instructions per request = counted / measured (its timers meanwhile included,
//! alike for all three).
//!
//! Instructions become time through the same server's native CPU time per request,
//! measured here without valgrind for the server without accounting: added µs = added
//! instructions × (its CPU µs per request / its instructions per request). A server bound
//! by CPU keeps throughput in the inverse ratio of its instructions per request.
//!
//! Targets (the issue's, with tracing off): at least 90% of the throughput, under 15 µs
//! added at p50.

use std::{path::Path, process::Stdio, time::Duration};

use crate::{
    api::Api,
    load,
    report::Report,
    scenarios::{drop_postgres, fresh_postgres},
    server_process::{BenchLimits, Launch, ServerProcess},
    Options,
};

const SCENARIO: &str = "instructions";
/// Set, the callgrind dumps are kept (their folder is printed).
const KEEP_ENV: &str = "VIDEOVECTOR_BENCH_KEEP_DUMPS";
/// Requests before the counters are zeroed (connections, caches and lazily built state).
const WARMUP: usize = 200;
/// Requests counted.
const MEASURED: usize = 2_000;
/// Requests timed natively for the CPU time per request.
const NATIVE: usize = 10_000;

struct Variant {
    name: &'static str,
    env: Vec<(&'static str, String)>,
    /// Held to the targets (tracing off); traces on are measured for the record.
    judged: bool,
}

pub async fn run(report: &mut Report, o: &Options, admin_url: Option<&str>) -> anyhow::Result<()> {
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        anyhow::bail!("the instructions scenario needs valgrind (Debian's `valgrind` package)");
    }
    let (warmup, measured, native) = if o.smoke {
        (20, 50, 200)
    } else {
        (WARMUP, MEASURED, NATIVE)
    };
    let sink = otlp_sink().await?;
    let work = tempfile::tempdir()?;
    // The dumps stay for `callgrind_annotate` (where the instructions go) when asked.
    let work_dir = if std::env::var_os(KEEP_ENV).is_some() {
        let kept = work.keep();
        println!("instructions: callgrind dumps kept in {}", kept.display());
        kept
    } else {
        work.path().to_path_buf()
    };
    let quiet = [
        ("VIDEOVECTOR_WORKERS", "false".to_string()),
        ("VIDEOVECTOR_ACCESS_LOG", "false".to_string()),
        ("VIDEOVECTOR_LOG", "warn".to_string()),
    ];
    let accounted = [
        ("VIDEOVECTOR_WORKERS", "false".to_string()),
        ("VIDEOVECTOR_ACCESS_LOG", "true".to_string()),
        ("VIDEOVECTOR_METRICS_LISTEN", "127.0.0.1:0".to_string()),
        ("VIDEOVECTOR_LOG_FORMAT", "json".to_string()),
        (
            "VIDEOVECTOR_LOG",
            "warn,videovector::access=info".to_string(),
        ),
    ];
    let mut traced = accounted.to_vec();
    traced.push(("VIDEOVECTOR_TRACES__OTLP_ENDPOINT", sink.clone()));
    let variants = [
        Variant {
            name: "GET /indexes/{id}, API key: no metrics, no access log",
            env: quiet.to_vec(),
            judged: false,
        },
        Variant {
            name: "GET /indexes/{id}, API key: metrics, JSON access log",
            env: accounted.to_vec(),
            judged: true,
        },
        Variant {
            name: "GET /indexes/{id}, API key: metrics, JSON access log, traces exported",
            env: traced,
            judged: false,
        },
    ];

    // The CPU time a request costs natively, for the server without accounting.
    let native_dir = work_dir.join("native");
    let env: Vec<(&str, &str)> = quiet.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let database = Database::fresh(admin_url).await?;
    let server = ServerProcess::start_configured(
        &native_dir,
        database.url.as_deref(),
        BenchLimits::Unreached,
        &env,
        Stdio::null(),
    )
    .await?;
    let (http, url, key) = Api::read_key_target(&server.url).await?;
    one_at_a_time(&http, &url, &key, warmup).await?;
    let before = server.cpu_seconds();
    one_at_a_time(&http, &url, &key, native).await?;
    let cpu_us_per_request = (server.cpu_seconds() - before) * 1e6 / native as f64;
    drop(server);
    database.drop().await?;
    report.figure(
        SCENARIO,
        "server CPU per request, natively, without accounting",
        cpu_us_per_request,
        "µs",
        "(scale)",
        None,
    );

    let mut counts = Vec::new();
    for (i, variant) in variants.iter().enumerate() {
        let dir = work_dir.join(format!("v{i}"));
        std::fs::create_dir_all(&dir)?;
        let database = Database::fresh(admin_url).await?;
        let per_request = counted(
            &dir,
            database.url.as_deref(),
            &variant.env,
            warmup,
            measured,
        )
        .await?
            / measured as f64;
        database.drop().await?;
        counts.push(per_request);
        report.figure(
            SCENARIO,
            &format!("{}: instructions per request", variant.name),
            per_request,
            "instructions",
            "(counted)",
            None,
        );
    }
    let us_per_instruction = cpu_us_per_request / counts[0];
    for (variant, count) in variants.iter().zip(&counts).skip(1) {
        let added = count - counts[0];
        let added_us = added * us_per_instruction;
        let kept = counts[0] / count * 100.0;
        let judged = variant.judged;
        report.figure(
            SCENARIO,
            &format!("{}: added per request", variant.name),
            added_us,
            "µs",
            if judged { "< 15 µs" } else { "(traces on)" },
            judged.then_some(added_us < 15.0),
        );
        report.figure(
            SCENARIO,
            &format!("{}: throughput kept (CPU-bound)", variant.name),
            kept,
            "%",
            if judged { ">= 90%" } else { "(traces on)" },
            judged.then_some(kept >= 90.0),
        );
    }
    Ok(())
}

/// Instructions the server executed while answering `measured` requests after `warmup`.
async fn counted(
    dir: &Path,
    database_url: Option<&str>,
    env: &[(&'static str, String)],
    warmup: usize,
    measured: usize,
) -> anyhow::Result<f64> {
    let out = dir.join("callgrind.out");
    let launch = Launch {
        under: vec![
            "valgrind".into(),
            "--tool=callgrind".into(),
            format!("--callgrind-out-file={}", out.display()),
            "--dump-line=no".into(),
            "--compress-strings=no".into(),
        ],
        ready_within: Some(Duration::from_secs(600)),
    };
    let log = std::fs::File::create(dir.join("server.log"))?;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = ServerProcess::start_launched(
        &dir.join("data"),
        database_url,
        BenchLimits::Unreached,
        &env,
        Stdio::from(log),
        &launch,
    )
    .await?;
    let (http, url, key) = Api::read_key_target(&server.url).await?;
    one_at_a_time(&http, &url, &key, warmup).await?;
    callgrind_control(&["--zero"], server.pid()).await?;
    one_at_a_time(&http, &url, &key, measured).await?;
    callgrind_control(&["--dump=measured"], server.pid()).await?;
    let total = dumped_instructions(dir)?;
    drop(server);
    Ok(total)
}

/// A fresh PostgreSQL database per server when the bench runs on PostgreSQL (only the
/// server's own instructions are counted, not the database server's).
struct Database<'a> {
    admin_url: Option<&'a str>,
    url: Option<String>,
}

impl<'a> Database<'a> {
    async fn fresh(admin_url: Option<&'a str>) -> anyhow::Result<Database<'a>> {
        let url = match admin_url {
            Some(admin) => Some(fresh_postgres(admin).await?),
            None => None,
        };
        Ok(Database { admin_url, url })
    }

    async fn drop(self) -> anyhow::Result<()> {
        if let (Some(admin), Some(url)) = (self.admin_url, &self.url) {
            drop_postgres(admin, url).await?;
        }
        Ok(())
    }
}

/// Sends a callgrind command to the server's process and waits for it to be done.
async fn callgrind_control(args: &[&str], pid: u32) -> anyhow::Result<()> {
    let status = tokio::process::Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "callgrind_control {args:?} failed");
    Ok(())
}

/// The instructions in the dump of the measured requests (`callgrind.out.<n>`, the only
/// numbered dump: the profile of the whole run is written only when the process exits).
fn dumped_instructions(dir: &Path) -> anyhow::Result<f64> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("callgrind.out.") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())?;
        if !text.contains("measured") {
            continue;
        }
        if let Some(total) = text.lines().find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        }) {
            return Ok(total.split_whitespace().next().unwrap_or("0").parse()?);
        }
    }
    anyhow::bail!(
        "no callgrind dump of the measured requests in {}",
        dir.display()
    )
}

async fn one_at_a_time(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    requests: usize,
) -> anyhow::Result<()> {
    for _ in 0..requests {
        anyhow::ensure!(
            load::get_ok(http, url, ("x-api-key", key)).await,
            "a request failed"
        );
    }
    Ok(())
}

/// A local OTLP/HTTP endpoint that takes whatever spans are posted (the traced server's
/// collector); returns its root URL.
async fn otlp_sink() -> anyhow::Result<String> {
    use poem::{handler, listener::TcpAcceptor, post, Route};
    #[handler]
    fn accept(_body: Vec<u8>) -> &'static str {
        ""
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(
        poem::Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?)
            .run(Route::new().at("/v1/traces", post(accept))),
    );
    Ok(url)
}
