//! Search quality, measured like speed: the committed retrieval set (`bench/eval/
//! retrieval.json`: caption segments in sixteen topics, and queries with the segments they
//! should find) scored by recall@10 and nDCG@10 for each kind of query.
//!
//! - `paraphrase` queries share no content word with their targets (checked here, so the
//!   set cannot drift into queries words alone can answer);
//! - `keyword` queries use their targets' own words; `exact` ones rare names and codes.
//!
//! Every mode runs through the API on an index with the built-in embedder: lexical (BM25),
//! semantic (cosine), and hybrid at several `semantic_ratio`s (how the default was chosen).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    api::{Api, INDEX},
    report::Report,
    scenarios::OwnServer,
};

const SET: &str = include_str!("../eval/retrieval.json");
/// Hits scored per query.
const K: usize = 10;

#[derive(Deserialize)]
pub struct EvalSet {
    pub segments: Vec<EvalSegment>,
    pub queries: Vec<EvalQuery>,
}

#[derive(Deserialize)]
pub struct EvalSegment {
    pub id: String,
    pub media_id: String,
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub text: String,
}

#[derive(Deserialize)]
pub struct EvalQuery {
    pub query: String,
    pub kind: String,
    pub relevant: Vec<String>,
}

impl EvalSet {
    /// The committed set, checked: every relevant id exists, and no paraphrase shares a
    /// content word with its targets.
    pub fn committed() -> anyhow::Result<EvalSet> {
        let set: EvalSet = serde_json::from_str(SET)?;
        let texts: HashMap<&str, &str> = set
            .segments
            .iter()
            .map(|s| (s.id.as_str(), s.text.as_str()))
            .collect();
        for q in &set.queries {
            for id in &q.relevant {
                let text = texts
                    .get(id.as_str())
                    .ok_or_else(|| anyhow::anyhow!("{:?}: no segment {id}", q.query))?;
                if q.kind == "paraphrase" {
                    let shared: Vec<String> = content_stems(&q.query)
                        .intersection(&content_stems(text))
                        .cloned()
                        .collect();
                    anyhow::ensure!(
                        shared.is_empty(),
                        "the paraphrase {:?} shares {shared:?} with {id}",
                        q.query
                    );
                }
            }
        }
        Ok(set)
    }
}

/// Content words cut to five letters (a crude stem: `floods` and `flooded` meet).
fn content_stems(text: &str) -> BTreeSet<String> {
    const FUNCTION_WORDS: &[&str] = &[
        "the", "and", "for", "with", "from", "into", "over", "after", "before", "during", "about",
        "than", "then", "very", "not", "can", "will", "would", "should", "his", "her", "their",
        "our", "your", "who", "what", "when", "where", "which", "how", "all", "any", "each",
        "every", "some", "such", "more", "most", "other", "only", "own", "same", "too", "just",
        "also", "again", "there", "here", "has", "have", "had", "was", "were", "are", "been",
        "its", "this", "that", "these", "those", "off", "out", "down",
    ];
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.len() > 2 && !FUNCTION_WORDS.contains(&w.as_str()))
        .map(|w| w.chars().take(5).collect())
        .collect()
}

/// recall@K and nDCG@K of one ranking.
fn score(ranked: &[String], relevant: &[String]) -> (f64, f64) {
    let top = &ranked[..ranked.len().min(K)];
    let found = relevant.iter().filter(|r| top.contains(r)).count();
    let dcg: f64 = top
        .iter()
        .enumerate()
        .filter(|(_, id)| relevant.contains(id))
        .map(|(rank, _)| 1.0 / (rank as f64 + 2.0).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(K))
        .map(|rank| 1.0 / (rank as f64 + 2.0).log2())
        .sum();
    (found as f64 / relevant.len() as f64, dcg / ideal)
}

/// Mean recall@K and nDCG@K by query kind (and `all`).
fn means(set: &EvalSet, rankings: &[Vec<String>]) -> BTreeMap<String, (f64, f64)> {
    let mut sums: BTreeMap<String, (f64, f64, usize)> = BTreeMap::new();
    for (q, ranked) in set.queries.iter().zip(rankings) {
        let (recall, ndcg) = score(ranked, &q.relevant);
        for kind in [q.kind.as_str(), "all"] {
            let entry = sums.entry(kind.to_string()).or_default();
            *entry = (entry.0 + recall, entry.1 + ndcg, entry.2 + 1);
        }
    }
    sums.into_iter()
        .map(|(kind, (r, n, count))| (kind, (r / count as f64, n / count as f64)))
        .collect()
}

/// Ingests the set into [`INDEX`] (the built-in embedder, the default), each segment
/// carrying its eval id in its metadata.
async fn ingest(api: &Api, set: &EvalSet) -> anyhow::Result<()> {
    let url = format!("{}/indexes/{INDEX}/segments", api.base);
    let segments: Vec<Value> = set
        .segments
        .iter()
        .map(|s| {
            json!({"media_id": s.media_id, "start_seconds": s.start_seconds,
                   "end_seconds": s.end_seconds, "text": s.text, "metadata": {"eval_id": s.id}})
        })
        .collect();
    let body = json!({"segments": segments, "wait": true});
    api.post_json(&url, body.to_string()).await?;
    Ok(())
}

/// Each query's ranking through the API, searched with `options` (mode and ratio).
async fn rankings(api: &Api, set: &EvalSet, options: &Value) -> anyhow::Result<Vec<Vec<String>>> {
    let url = format!("{}/indexes/{INDEX}/search", api.base);
    let mut rankings = Vec::new();
    for q in &set.queries {
        let mut body = json!({"query": q.query, "top_k": K});
        for (key, value) in options.as_object().into_iter().flatten() {
            body[key] = value.clone();
        }
        let answer = api.post_json(&url, body.to_string()).await?;
        let ids = answer["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|hit| hit["metadata"]["eval_id"].as_str().map(str::to_string))
            .collect();
        rankings.push(ids);
    }
    Ok(rankings)
}

/// Scores the set on a fresh server: SQLite in a temporary folder, or a fresh PostgreSQL
/// database beside `admin_url`'s (dropped after).
pub async fn run(report: &mut Report, admin_url: Option<&str>) -> anyhow::Result<()> {
    let set = EvalSet::committed()?;
    let own = OwnServer::start(admin_url).await?;
    let api = Api::login(&own.server.url).await?;
    api.create_index().await?;
    ingest(&api, &set).await?;
    let mut scored = Vec::new();
    let hybrid = |ratio: f64| json!({"mode": "hybrid", "semantic_ratio": ratio});
    for (label, options) in [
        ("lexical", json!({"mode": "lexical"})),
        ("semantic", json!({"mode": "semantic"})),
        ("hybrid 0.3", hybrid(0.3)),
        ("hybrid 0.5", hybrid(0.5)),
        ("hybrid 0.7", hybrid(0.7)),
        ("hybrid (default 0.8)", json!({"mode": "hybrid"})),
        ("hybrid 0.9", hybrid(0.9)),
    ] {
        scored.push((label, means(&set, &rankings(&api, &set, &options).await?)));
    }
    own.finish().await?;
    for (side, scores) in &scored {
        for (kind, (recall, ndcg)) in scores {
            let queries = set
                .queries
                .iter()
                .filter(|q| kind == "all" || &q.kind == kind)
                .count();
            let name = format!("{side}: {kind} ({queries} queries)");
            report.figure("eval", &format!("{name} recall@10"), *recall, "", "", None);
            report.figure("eval", &format!("{name} nDCG@10"), *ndcg, "", "", None);
        }
    }
    let of = |label: &str| &scored.iter().find(|(l, _)| *l == label).expect("scored").1;
    let (lexical, semantic) = (of("lexical"), of("semantic"));
    let hybrid = of("hybrid (default 0.8)");
    let ratio = semantic["paraphrase"].0 / lexical["paraphrase"].0.max(1e-9);
    report.figure(
        "eval",
        "semantic vs lexical recall@10 on paraphrases",
        ratio,
        "×",
        ">= 2×",
        Some(ratio >= 2.0),
    );
    // Hybrid against the better of the two on the whole set, by nDCG@10 (recall alone
    // would not see a worse order).
    let better = lexical["all"].1.max(semantic["all"].1);
    report.figure(
        "eval",
        "hybrid (default ratio) nDCG@10 on all queries, minus the better side's",
        hybrid["all"].1 - better,
        "",
        ">= 0",
        Some(hybrid["all"].1 >= better),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_set_holds_and_scores_are_what_they_say() {
        let set = EvalSet::committed().unwrap();
        assert!(set.segments.len() >= 300 && set.queries.len() >= 100);
        let paraphrases = set.queries.iter().filter(|q| q.kind == "paraphrase");
        assert!(paraphrases.count() >= 50);
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(score(&ids(&["a", "b"]), &ids(&["a"])), (1.0, 1.0));
        let (recall, ndcg) = score(&ids(&["x", "a"]), &ids(&["a", "b"]));
        assert_eq!(recall, 0.5);
        assert!((ndcg - (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2())).abs() < 1e-12);
        assert!(content_stems("the floods flooded").len() == 1);
    }
}
