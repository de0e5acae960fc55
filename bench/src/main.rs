//! `videovector-bench`: the cost of security and search, measured against baselines in the
//! same run. Starts the real server in a child process (SQLite in a temp dir, or
//! PostgreSQL from `VIDEOVECTOR_BENCH_DATABASE_URL`), loads data through the API, drives
//! load over loopback, and prints a table of throughput, latency, memory and ratios to the
//! baselines (also as JSON with `--json FILE`). Only 127.0.0.1 is ever targeted.
//!
//! ```text
//! cargo run --release -p videovector-bench -- [all|auth|ingest|search|memory|startup|observability|instructions]
//!     [--smoke] [--json FILE] [--concurrency 32] [--duration 5]
//! cargo run --release -p videovector-bench -- cluster   # two instances, PostgreSQL only
//! cargo run --release -p videovector-bench -- scale     # 10k, 100k and 1M segments
//! cargo run --release -p videovector-bench -- request-path  # connection layers, blocking searches
//! cargo run --release -p videovector-bench -- rate-limits  # limits' cost, one budget, usage
//! cargo run --release -p videovector-bench -- eval      # search quality: recall@10, nDCG@10
//! ```

mod api;
mod cluster;
mod corpus;
mod eval;
mod instructions;
mod load;
mod meaning_at_scale;
mod observability;
mod rate_limits;
mod report;
mod request_path;
mod scale;
mod scenarios;
mod server_process;

use std::time::Duration;

use crate::report::Report;

/// Command-line options.
pub struct Options {
    pub scenario: String,
    pub smoke: bool,
    pub json: Option<String>,
    pub concurrency: usize,
    pub duration: Duration,
    /// Segments in the search corpus.
    pub segments: usize,
    /// The corpus sizes `scale` runs (`--sizes 100000,1000000`); its own list when unset.
    pub sizes: Option<Vec<usize>>,
}

fn parse_args(args: Vec<String>) -> anyhow::Result<Options> {
    let mut options = Options {
        scenario: "all".into(),
        smoke: false,
        json: None,
        concurrency: 32,
        duration: Duration::from_secs(5),
        segments: 100_000,
        sizes: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => options.smoke = true,
            "--json" => {
                options.json = Some(
                    args.next()
                        .ok_or_else(|| anyhow::anyhow!("--json needs a file"))?,
                )
            }
            "--concurrency" => options.concurrency = args.next().unwrap_or_default().parse()?,
            "--duration" => {
                options.duration = Duration::from_secs_f64(args.next().unwrap_or_default().parse()?)
            }
            "--segments" => options.segments = args.next().unwrap_or_default().parse()?,
            "--sizes" => {
                options.sizes = Some(
                    args.next()
                        .unwrap_or_default()
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?,
                )
            }
            name if !name.starts_with('-') => options.scenario = name.to_string(),
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    if options.smoke {
        options.duration = Duration::from_millis(500);
        options.segments = options.segments.min(3_000);
        options.concurrency = options.concurrency.min(8);
    }
    anyhow::ensure!(
        [
            "all",
            "auth",
            "ingest",
            "search",
            "memory",
            "startup",
            "cluster",
            "scale",
            "request-path",
            "rate-limits",
            "observability",
            "instructions",
            "eval",
        ]
        .contains(&options.scenario.as_str()),
        "unknown scenario {}",
        options.scenario
    );
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    videovector_server::memory::limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__serve") {
        return server_process::serve(args.get(1).map(String::as_str).unwrap_or(".")).await;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = parse_args(args)?;
    let report = measure(&options).await?;
    report.print();
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("wrote {path}");
    }
    Ok(())
}

/// Runs the chosen scenario: `cluster` and `scale` have modules of their own, the rest
/// share one server.
async fn measure(options: &Options) -> anyhow::Result<Report> {
    let admin_url = std::env::var("VIDEOVECTOR_BENCH_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let mut report = Report {
        machine: scenarios::machine(),
        database: if admin_url.is_some() {
            "PostgreSQL".into()
        } else {
            "SQLite (embedded)".into()
        },
        ..Report::default()
    };
    match options.scenario.as_str() {
        "cluster" => {
            let admin_url = admin_url.ok_or_else(|| {
                anyhow::anyhow!("cluster runs on PostgreSQL: set VIDEOVECTOR_BENCH_DATABASE_URL")
            })?;
            let url = scenarios::fresh_postgres(&admin_url).await?;
            cluster::run(&mut report, options, &url).await?;
            scenarios::drop_postgres(&admin_url, &url).await?;
        }
        "scale" => scale::run(&mut report, options, admin_url.as_deref()).await?,
        "request-path" => request_path::run(&mut report, options).await?,
        "rate-limits" => rate_limits::run(&mut report, options, admin_url.as_deref()).await?,
        "observability" => observability::run(&mut report, options, admin_url.as_deref()).await?,
        "instructions" => instructions::run(&mut report, options, admin_url.as_deref()).await?,
        "eval" => eval::run(&mut report, admin_url.as_deref()).await?,
        _ => {
            scenarios::one_server(&mut report, options, admin_url.as_deref()).await?;
            if options.scenario == "all" {
                request_path::run(&mut report, options).await?;
                rate_limits::run(&mut report, options, admin_url.as_deref()).await?;
                observability::run(&mut report, options, admin_url.as_deref()).await?;
                eval::run(&mut report, admin_url.as_deref()).await?;
            }
        }
    }
    Ok(report)
}
