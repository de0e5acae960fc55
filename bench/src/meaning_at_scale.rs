//! Search by meaning, and the lexical baseline, at each size of the `scale` scenario, on
//! the very search copy its server built (opened read-only in this process, beside the
//! server): tantivy directly for lexical queries (what the API's search figure is compared
//! with); semantic and hybrid queries scanning every vector (the brute-force baseline)
//! against the approximate index the copy builds for a large segment, with recall@10 of the
//! approximate answers against the scan's; the memory the vectors take (matrix and graph)
//! per million vectors; and the same semantic and hybrid searches through the API.

use std::{path::Path, sync::Arc, time::Duration, time::Instant};

use serde_json::json;
use videovector_api_spec::dto::search::SearchMode;
use videovector_server::{
    embed::builtin::BuiltIn,
    search::{
        engine::APPROXIMATE_FROM,
        query::{SearchQuery, SegmentFilter},
        SearchEngine,
    },
};

use crate::{api::Api, load, report::Report, scenarios::search_load, Options};

/// How long the approximate index of the largest copy may take to build.
const BUILD_WITHIN: Duration = Duration::from_secs(900);

pub async fn measure(
    report: &mut Report,
    o: &Options,
    api: &Api,
    search_dir: &Path,
    segments: usize,
    queries: &[String],
) -> anyhow::Result<()> {
    let label = |what: &str| format!("{segments} segments: {what}");
    // The server builds its own approximate index from its first search by meaning.
    api_search(api, queries, "semantic", Duration::from_millis(200)).await;

    let engine = Arc::new(SearchEngine::new(search_dir.to_path_buf())?);
    let uid = engine
        .uids_on_disk()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the server's search copy has no index"))?;
    let model = BuiltIn::shared().map_err(anyhow::Error::msg)?;
    let vectors: Vec<Vec<f32>> = queries.iter().map(|q| model.embed(q)).collect();
    let samples = if o.smoke { 100 } else { 1_000 };
    let query = |i: usize, mode: SearchMode, exact: bool| SearchQuery {
        text: queries[i % queries.len()].clone(),
        top_k: 10,
        mode,
        vector: (mode != SearchMode::Lexical).then(|| vectors[i % vectors.len()].clone()),
        semantic_ratio: 0.8,
        exact_vectors: exact,
        filter: SegmentFilter::default(),
        ..SearchQuery::default()
    };

    let lexical = load::time_each(samples, |i| {
        let _ = engine.search(&uid, &query(i, SearchMode::Lexical, false));
    });
    report.series(
        "scale",
        &label("lexical, tantivy directly (the API search's baseline)"),
        1,
        lexical,
        None,
    );

    // The vectors: read into the matrix by the first search, then (for a large segment)
    // the approximate index built in the background.
    let before = own_rss_mib();
    let _ = engine.search(&uid, &query(0, SearchMode::Semantic, true));
    let started = Instant::now();
    while !engine.approximate_ready(&uid, model.dims())? {
        anyhow::ensure!(
            started.elapsed() < BUILD_WITHIN,
            "the approximate index was not built within {BUILD_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let approximate = segments as u64 >= APPROXIMATE_FROM;
    if approximate {
        report.figure(
            "scale",
            &label("approximate index build (one thread)"),
            started.elapsed().as_secs_f64(),
            "s",
            "",
            None,
        );
    }
    let per_million = (own_rss_mib() - before) * 1_000_000.0 / segments as f64;
    report.figure(
        "scale",
        &label(if approximate {
            "RSS of the vectors (int8 matrix + HNSW) per million"
        } else {
            "RSS of the vectors (int8 matrix) per million"
        }),
        per_million,
        "MiB",
        "",
        None,
    );

    for mode in [SearchMode::Semantic, SearchMode::Hybrid] {
        let name = format!("{mode:?}").to_lowercase();
        let scan = format!("{name}, every vector scanned (brute force)");
        let stats = load::time_each(samples, |i| {
            let _ = engine.search(&uid, &query(i, mode, true));
        });
        report.series("scale", &label(&scan), 1, stats, None);
        if approximate {
            let stats = load::time_each(samples, |i| {
                let _ = engine.search(&uid, &query(i, mode, false));
            });
            report.series(
                "scale",
                &label(&format!("{name}, approximate index")),
                1,
                stats,
                Some(&label(&scan)),
            );
        }
    }
    if approximate {
        let (mut agreed, mut asked) = (0usize, 0usize);
        for i in 0..queries.len().min(200) {
            let ids = |exact: bool| -> anyhow::Result<Vec<String>> {
                Ok(engine
                    .search(&uid, &query(i, SearchMode::Semantic, exact))?
                    .hits
                    .into_iter()
                    .map(|h| h.doc.segment_id)
                    .collect())
            };
            let truth = ids(true)?;
            agreed += ids(false)?.iter().filter(|id| truth.contains(id)).count();
            asked += truth.len();
        }
        let recall = agreed as f64 / asked.max(1) as f64;
        report.figure(
            "scale",
            &label("approximate recall@10 against the scan"),
            recall,
            "",
            ">= 0.95",
            Some(recall >= 0.95),
        );
    }
    drop(engine);

    for mode in ["semantic", "hybrid"] {
        let stats = api_search(api, queries, mode, o.duration).await;
        report.series(
            "scale",
            &label(&format!("{mode}, through the API, 1 conn")),
            1,
            stats,
            None,
        );
    }
    Ok(())
}

async fn api_search(api: &Api, queries: &[String], mode: &str, duration: Duration) -> load::Stats {
    let bodies: Vec<String> = queries
        .iter()
        .map(|q| json!({"query": q, "top_k": 10, "mode": mode}).to_string())
        .collect();
    search_load(api, Arc::new(bodies), 1, duration).await
}

/// This process's resident memory, MiB.
fn own_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .map_or(0.0, |kib: f64| kib / 1024.0)
}
