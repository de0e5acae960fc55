//! The `scale` scenario: the cost curve. For 10,000, 100,000 and 1,000,000 segments, a
//! fresh server (and, on PostgreSQL, a fresh database) ingests the corpus in batches of
//! 1,000, waits until the server is idle (its search copy indexed and merged), then answers
//! searches on one connection. It reports the ingest rate (the built-in embedder included),
//! the time to idle, search p50 and p99, the figures of `meaning_at_scale` (the lexical
//! baseline, search by meaning against a brute-force scan, recall, the vectors' memory),
//! resident memory after the searches and at peak, and disk: the data dir (the SQLite file
//! and the search copy) plus, on PostgreSQL, the database's own size.

use std::{sync::Arc, time::Duration};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::{
    api::Api,
    load, meaning_at_scale,
    report::Report,
    scenarios::{ingest_corpus, queries, search_load, OwnServer},
    server_process::disk_bytes,
    Options,
};

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(report: &mut Report, o: &Options, admin_url: Option<&str>) -> anyhow::Result<()> {
    let sizes: Vec<usize> = match (&o.sizes, o.smoke) {
        (Some(sizes), _) => sizes.clone(),
        (None, true) => vec![2_000],
        (None, false) => vec![10_000, 100_000, 1_000_000],
    };
    for &segments in &sizes {
        let own = OwnServer::start(admin_url).await?;
        let (server, dir) = (&own.server, &own.dir);
        let api = Api::login(&server.url).await?;
        api.create_index().await?;
        let label = |what: &str| format!("{segments} segments: {what}");

        let (rate, searchable) = ingest_corpus(&api, segments).await?;
        anyhow::ensure!(searchable, "the corpus was not searchable when ingested");
        report.figure("scale", &label("ingest"), rate, "segments/s", "", None);
        // Search is measured on a settled copy: the indexer merges it once ingest is quiet.
        let settled = server.settle(Duration::from_secs(300)).await;
        report.figure(
            "scale",
            &label("idle again after the last batch (3 idle seconds included)"),
            settled.as_secs_f64(),
            "s",
            "",
            None,
        );

        let stats = search_one_connection(&api, o).await;
        report.series("scale", &label("search, 1 conn"), 1, stats.clone(), None);
        report.figure(
            "scale",
            &label("search p50"),
            stats.p50_us / 1000.0,
            "ms",
            "",
            None,
        );
        report.figure(
            "scale",
            &label("search p99"),
            stats.p99_us / 1000.0,
            "ms",
            "",
            None,
        );

        meaning_at_scale::measure(
            report,
            o,
            &api,
            &dir.path().join("search"),
            segments,
            &queries(),
        )
        .await?;

        report.figure(
            "scale",
            &label("RSS after search"),
            server.rss_mib(),
            "MiB",
            "",
            None,
        );
        report.figure(
            "scale",
            &label("peak RSS"),
            server.peak_rss_mib(),
            "MiB",
            "",
            None,
        );
        let search_dir = disk_bytes(&dir.path().join("search")) as f64 / MIB;
        let data_dir = disk_bytes(dir.path()) as f64 / MIB;
        report.figure(
            "scale",
            &label("disk: search copy"),
            search_dir,
            "MiB",
            "",
            None,
        );
        match &own.database_url {
            Some(url) => {
                let database = postgres_bytes(url).await? as f64 / MIB;
                report.figure(
                    "scale",
                    &label("disk: PostgreSQL database"),
                    database,
                    "MiB",
                    "",
                    None,
                );
                report.figure(
                    "scale",
                    &label("disk: in all"),
                    database + data_dir,
                    "MiB",
                    "",
                    None,
                );
            }
            None => {
                report.figure(
                    "scale",
                    &label("disk: data dir in all (SQLite + search copy)"),
                    data_dir,
                    "MiB",
                    "",
                    None,
                );
            }
        }
        own.finish().await?;
    }
    Ok(())
}

async fn search_one_connection(api: &Api, o: &Options) -> load::Stats {
    let bodies: Vec<String> = queries()
        .into_iter()
        .map(|q| json!({"query": q, "top_k": 10}).to_string())
        .collect();
    search_load(api, Arc::new(bodies), 1, o.duration).await
}

async fn postgres_bytes(url: &str) -> anyhow::Result<i64> {
    let db = sea_orm::Database::connect(url).await?;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT pg_database_size(current_database())",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no size"))?;
    Ok(row.try_get_by_index(0)?)
}
