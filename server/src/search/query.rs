//! Natural-language queries, by words, by meaning or both.
//!
//! - **Lexical**: the query text goes through the index's analyzer and every resulting term
//!   is OR-ed (BM25 ranks documents matching more and rarer terms higher). No query syntax
//!   is parsed, so nothing a user types can make a query fail.
//! - **Semantic**: the query's vector against every segment's, by cosine similarity
//!   (`search::vectors`).
//! - **Hybrid**: the best of each side, scored `ratio · cosine + (1 − ratio) · share`, the
//!   share being how much of the query the words matched (see [`whole_match_score`]).
//!
//! Filters are required clauses on every side.

use std::{
    collections::{BTreeSet, HashMap},
    ops::Bound,
    sync::Arc,
};

use tantivy::{
    collector::TopDocs,
    query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery},
    schema::{IndexRecordOption, Value},
    DocAddress, Searcher, TantivyDocument, Term,
};

use serde::{Deserialize, Serialize};
use videovector_api_spec::{dto::search::SearchFilters, problem::FieldError, ApiError};

use super::{
    engine::{Fields, SearchEngine, SegmentDoc},
    vectors,
};

/// How a search ranks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    #[default]
    Lexical,
    Semantic,
    Hybrid,
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub top_k: usize,
    pub filter: SegmentFilter,
    pub mode: Mode,
    /// The query's vector (semantic and hybrid searches).
    pub vector: Option<Vec<f32>>,
    /// The weight of meaning in a hybrid score, 0 to 1.
    pub semantic_ratio: f32,
    /// Hits scoring below this are left out.
    pub min_score: Option<f32>,
}

/// Candidates each side contributes to a hybrid search, at least.
const HYBRID_CANDIDATES: usize = 50;

/// Which segments a search may return: the one shape of a search's filters, from the
/// request's `filters` to the tantivy clauses (and what a page token remembers of them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SegmentFilter {
    /// Only these media (any of them); all when empty.
    pub media_ids: Vec<String>,
    /// Only segments carrying every one of these labels.
    pub labels: Vec<String>,
    pub start_gte: Option<f64>,
    pub end_lte: Option<f64>,
}

impl SegmentFilter {
    /// The filter a request's `filters` ask for (none: everything); a bound that is not a
    /// finite number is a 422 naming it.
    pub fn from_request(filters: Option<SearchFilters>) -> Result<SegmentFilter, ApiError> {
        let filters = filters.unwrap_or_default();
        for (name, value) in [
            ("start_seconds_gte", filters.start_seconds_gte),
            ("end_seconds_lte", filters.end_seconds_lte),
        ] {
            if value.is_some_and(|v| !v.is_finite()) {
                return Err(ApiError::validation(vec![FieldError::body(
                    format!("/filters/{name}"),
                    "must be a finite number",
                )]));
            }
        }
        Ok(SegmentFilter {
            media_ids: filters.media_ids.unwrap_or_default(),
            labels: filters.labels.unwrap_or_default(),
            start_gte: filters.start_seconds_gte,
            end_lte: filters.end_seconds_lte,
        })
    }

    /// A query for `text` under this filter.
    pub fn query(&self, text: &str, top_k: usize) -> SearchQuery {
        SearchQuery {
            text: text.to_string(),
            top_k,
            filter: self.clone(),
            ..SearchQuery::default()
        }
    }
}

/// One ranked hit with its highlights (character offsets into `doc.text`).
#[derive(Debug, Clone)]
pub struct Hit {
    pub doc: SegmentDoc,
    pub score: f32,
    pub highlights: Vec<(u32, u32)>,
    /// Whether the words found it (among the lexical side's best).
    pub lexical: bool,
    /// Whether its meaning found it (among the semantic side's best).
    pub semantic: bool,
}

impl SearchEngine {
    /// [`Self::search`] of each of `uids`, on the blocking pool: scoring and reading stored
    /// documents is CPU and disk work that would otherwise hold an async worker thread, and
    /// with it every request waiting on that thread. At most two searches per core run at
    /// once; the others wait their turn without holding a thread.
    pub async fn search_off_thread(
        self: &Arc<Self>,
        uids: Vec<String>,
        q: SearchQuery,
    ) -> tantivy::Result<Vec<Vec<Hit>>> {
        let _slot = self.search_slots.acquire().await.map_err(|e| {
            tantivy::TantivyError::InternalError(format!("the search slots closed: {e}"))
        })?;
        let engine = self.clone();
        tokio::task::spawn_blocking(move || uids.iter().map(|uid| engine.search(uid, &q)).collect())
            .await
            .map_err(|e| {
                tantivy::TantivyError::InternalError(format!("a search task ended: {e}"))
            })?
    }

    pub fn search(&self, uid: &str, q: &SearchQuery) -> tantivy::Result<Vec<Hit>> {
        let handle = self.handle(uid)?;
        let fields = handle.fields;
        let mut analyzer = handle.index.tokenizer_for_field(fields.text)?;
        let mut terms = BTreeSet::new();
        {
            let mut stream = analyzer.token_stream(&q.text);
            while stream.advance() {
                terms.insert(stream.token().text.clone());
            }
        }
        if q.top_k == 0 {
            return Ok(Vec::new());
        }
        let searcher = handle.reader.searcher();
        let filter = filter_query(&fields, q);
        let candidates = match q.mode {
            Mode::Lexical => q.top_k,
            _ => q.top_k.max(HYBRID_CANDIDATES),
        };
        let lexical = match q.mode {
            Mode::Semantic => Vec::new(),
            _ => lexical_top(&searcher, &fields, &terms, filter.as_deref(), candidates)?,
        };
        let semantic = match (&q.vector, q.mode) {
            (Some(vector), Mode::Semantic | Mode::Hybrid) => vectors::nearest(
                &searcher,
                &handle.vectors,
                &fields,
                vector,
                filter.as_deref(),
                candidates,
            )?,
            _ => Vec::new(),
        };
        let ranked = match q.mode {
            Mode::Lexical => mark(lexical, true, false),
            Mode::Semantic => mark(semantic, false, true),
            Mode::Hybrid => {
                let whole = whole_match_score(&searcher, &fields, &terms)?;
                fuse(lexical, semantic, whole, q.semantic_ratio)
            }
        };
        let mut hits = Vec::with_capacity(q.top_k);
        let good_enough = |score: &f32| q.min_score.is_none_or(|min| *score >= min);
        let ranked = ranked.into_iter().filter(|r| good_enough(&r.0));
        for (score, address, lexical, semantic) in ranked.take(q.top_k) {
            let stored: TantivyDocument = searcher.doc(address)?;
            let doc = from_document(&fields, &stored);
            let highlights = highlight(&mut analyzer, &doc.text, &terms);
            hits.push(Hit {
                doc,
                score,
                highlights,
                lexical,
                semantic,
            });
        }
        Ok(hits)
    }
}

/// A ranked address, and which sides found it.
type Ranked = (f32, DocAddress, bool, bool);

fn mark(side: Vec<(f32, DocAddress)>, lexical: bool, semantic: bool) -> Vec<Ranked> {
    side.into_iter()
        .map(|(score, address)| (score, address, lexical, semantic))
        .collect()
}

/// The BM25 score of a document of average length holding each of `terms` once: what a
/// match of the whole query scores. A lexical hit's share of it says how much of the query
/// it matched, weighted by rarity, so a match on common words alone counts for little
/// (scaled to the best hit instead, such a match counted fully, and the eval's hybrid
/// nDCG@10 fell 0.2 below semantic search alone).
fn whole_match_score(
    searcher: &Searcher,
    fields: &Fields,
    terms: &BTreeSet<String>,
) -> tantivy::Result<f32> {
    let documents = searcher.num_docs() as f32;
    let mut whole = 0f32;
    for t in terms {
        let found = searcher.doc_freq(&Term::from_field_text(fields.text, t))? as f32;
        whole += (1.0 + (documents - found + 0.5) / (found + 0.5)).ln();
    }
    Ok(whole)
}

/// The hybrid ranking of both sides' candidates: `ratio · cosine + (1 − ratio) · share`,
/// the share being a lexical score's part of `whole` (capped at 1), and a side that did
/// not find a candidate counting 0 for it.
fn fuse(
    lexical: Vec<(f32, DocAddress)>,
    semantic: Vec<(f32, DocAddress)>,
    whole: f32,
    ratio: f32,
) -> Vec<Ranked> {
    let ratio = ratio.clamp(0.0, 1.0);
    let mut fused: HashMap<DocAddress, (f32, bool, bool)> = HashMap::new();
    for (score, address) in lexical {
        let share = if whole > 0.0 {
            (score / whole).min(1.0)
        } else {
            0.0
        };
        let entry = fused.entry(address).or_default();
        entry.0 += (1.0 - ratio) * share;
        entry.1 = true;
    }
    for (score, address) in semantic {
        let entry = fused.entry(address).or_default();
        entry.0 += ratio * score.max(0.0);
        entry.2 = true;
    }
    let mut ranked: Vec<Ranked> = fused
        .into_iter()
        .map(|(address, (score, lexical, semantic))| (score, address, lexical, semantic))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked
}

/// The best `limit` documents by BM25 for `terms` (OR-ed) that `filter` admits.
fn lexical_top(
    searcher: &Searcher,
    fields: &Fields,
    terms: &BTreeSet<String>,
    filter: Option<&dyn Query>,
    limit: usize,
) -> tantivy::Result<Vec<(f32, DocAddress)>> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let text_query: Box<dyn Query> = Box::new(BooleanQuery::new(
        terms
            .iter()
            .map(|t| {
                let term = Term::from_field_text(fields.text, t);
                (
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)) as Box<dyn Query>,
                )
            })
            .collect(),
    ));
    let query: Box<dyn Query> = match filter {
        None => text_query,
        Some(filter) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, text_query),
            (Occur::Must, filter.box_clone()),
        ])),
    };
    searcher.search(&query, &TopDocs::with_limit(limit))
}

/// The filters as one query (all required); `None` when there are none.
fn filter_query(fields: &Fields, q: &SearchQuery) -> Option<Box<dyn Query>> {
    let clauses = filter_clauses(fields, q);
    if clauses.is_empty() {
        None
    } else {
        Some(Box::new(BooleanQuery::new(
            clauses.into_iter().map(|c| (Occur::Must, c)).collect(),
        )))
    }
}

fn filter_clauses(fields: &Fields, q: &SearchQuery) -> Vec<Box<dyn Query>> {
    let q = &q.filter;
    let mut filters: Vec<Box<dyn Query>> = Vec::new();
    if !q.media_ids.is_empty() {
        filters.push(Box::new(BooleanQuery::new(
            q.media_ids
                .iter()
                .map(|m| {
                    let term = Term::from_field_text(fields.media_id, m);
                    (
                        Occur::Should,
                        Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>,
                    )
                })
                .collect(),
        )));
    }
    for label in &q.labels {
        let term = Term::from_field_text(fields.labels, label);
        filters.push(Box::new(TermQuery::new(term, IndexRecordOption::Basic)));
    }
    if let Some(start) = q.start_gte {
        filters.push(Box::new(RangeQuery::new(
            Bound::Included(Term::from_field_f64(fields.start, start)),
            Bound::Unbounded,
        )));
    }
    if let Some(end) = q.end_lte {
        filters.push(Box::new(RangeQuery::new(
            Bound::Unbounded,
            Bound::Included(Term::from_field_f64(fields.end, end)),
        )));
    }
    filters
}

fn from_document(fields: &Fields, doc: &TantivyDocument) -> SegmentDoc {
    let text = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let number = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_f64())
            .unwrap_or_default()
    };
    SegmentDoc {
        segment_id: text(fields.segment_id),
        media_id: text(fields.media_id),
        start_seconds: number(fields.start),
        end_seconds: number(fields.end),
        text: text(fields.text),
        labels: doc
            .get_all(fields.labels)
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        metadata: doc
            .get_first(fields.metadata)
            .and_then(|v| v.as_str())
            .map(str::to_string),
        vector: None,
    }
}

/// Spans of `text` whose analysed token is one of the query's terms, as character offsets,
/// adjacent spans merged.
fn highlight(
    analyzer: &mut tantivy::tokenizer::TextAnalyzer,
    text: &str,
    terms: &BTreeSet<String>,
) -> Vec<(u32, u32)> {
    let mut byte_spans = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let token = stream.token();
        if terms.contains(&token.text) {
            byte_spans.push((token.offset_from, token.offset_to));
        }
    }
    let to_char = |byte: usize| text[..byte.min(text.len())].chars().count() as u32;
    let mut spans: Vec<(u32, u32)> = Vec::new();
    for (from, to) in byte_spans {
        let (from, to) = (to_char(from), to_char(to));
        match spans.last_mut() {
            Some(last) if last.1 >= from => last.1 = last.1.max(to),
            _ => spans.push((from, to)),
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, media: &str, start: f64, text: &str, labels: &[&str]) -> SegmentDoc {
        SegmentDoc {
            segment_id: id.into(),
            media_id: media.into(),
            start_seconds: start,
            end_seconds: start + 5.0,
            text: text.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            metadata: None,
            vector: None,
        }
    }

    /// Meaning finds what words cannot, filters hold on that side too, a merge keeps the
    /// vectors, and a hybrid search says which side found each hit.
    #[test]
    fn semantic_and_hybrid_searches_rank_by_vectors_under_the_filters() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SearchEngine::new(dir.path().to_path_buf()).unwrap();
        let with = |id: &str, media: &str, text: &str, vector: [f32; 3]| SegmentDoc {
            vector: Some(vector.to_vec()),
            ..doc(id, media, 0.0, text, &[])
        };
        engine
            .apply(
                "u1",
                &[
                    with(
                        "space",
                        "m1",
                        "the astronaut floated inside",
                        [1.0, 0.1, 0.0],
                    ),
                    with(
                        "rain",
                        "m1",
                        "heavy rain floods the streets",
                        [0.0, 1.0, 0.1],
                    ),
                    with(
                        "orbit",
                        "m2",
                        "satellites circle the planet",
                        [0.9, 0.0, 0.3],
                    ),
                ],
                &[],
            )
            .unwrap();
        engine
            .apply(
                "u1",
                &[doc("words", "m2", 0.0, "orbit words only", &[])],
                &[],
            )
            .unwrap();
        let semantic = SearchQuery {
            text: "outer space".into(),
            top_k: 10,
            mode: Mode::Semantic,
            vector: Some(vec![1.0, 0.0, 0.0]),
            ..Default::default()
        };
        let ids = |hits: Vec<Hit>| -> Vec<String> {
            hits.into_iter().map(|h| h.doc.segment_id).collect()
        };
        // A segment without a vector is never a semantic hit.
        assert_eq!(
            ids(engine.search("u1", &semantic).unwrap()),
            ["space", "orbit", "rain"]
        );
        let hits = engine.search("u1", &semantic).unwrap();
        assert!(hits[0].semantic && !hits[0].lexical);
        assert!(
            (hits[0].score - 1.0 / 1.01f32.sqrt()).abs() < 0.02,
            "{}",
            hits[0].score
        );
        let only_m2 = SearchQuery {
            filter: SegmentFilter {
                media_ids: vec!["m2".into()],
                ..SegmentFilter::default()
            },
            ..semantic.clone()
        };
        assert_eq!(ids(engine.search("u1", &only_m2).unwrap()), ["orbit"]);

        engine.merge_settled().unwrap();
        assert_eq!(
            ids(engine.search("u1", &semantic).unwrap()),
            ["space", "orbit", "rain"]
        );

        let hybrid = SearchQuery {
            text: "orbit".into(),
            mode: Mode::Hybrid,
            semantic_ratio: 0.5,
            ..semantic.clone()
        };
        let hits = engine.search("u1", &hybrid).unwrap();
        let words = hits.iter().find(|h| h.doc.segment_id == "words").unwrap();
        assert!(words.lexical && !words.semantic);
        let space = hits.iter().find(|h| h.doc.segment_id == "space").unwrap();
        assert!(space.semantic && !space.lexical);
        // Lexical mode ignores the vector.
        let lexical = SearchQuery {
            mode: Mode::Lexical,
            ..hybrid.clone()
        };
        assert_eq!(ids(engine.search("u1", &lexical).unwrap()), ["words"]);
    }

    #[test]
    fn ranks_or_queries_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SearchEngine::new(dir.path().to_path_buf()).unwrap();
        engine
            .apply(
                "u1",
                &[
                    doc(
                        "a",
                        "m1",
                        0.0,
                        "The reporter stands at the station entrance",
                        &["news"],
                    ),
                    doc("b", "m1", 10.0, "Weather forecast for tomorrow", &[]),
                    doc(
                        "c",
                        "m2",
                        20.0,
                        "A reporter interviews commuters",
                        &["news"],
                    ),
                ],
                &[],
            )
            .unwrap();
        let q = SearchQuery {
            text: "reporter at station entrance".into(),
            top_k: 10,
            ..Default::default()
        };
        let hits = engine.search("u1", &q).unwrap();
        let ids: Vec<&str> = hits.iter().map(|h| h.doc.segment_id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert!(hits[0].score > hits[1].score);
        // "reporter", "at", "station", "entrance" in "The reporter stands at the station entrance"
        assert_eq!(
            hits[0].highlights,
            vec![(4, 12), (20, 22), (27, 34), (35, 43)]
        );

        let filtered = engine
            .search(
                "u1",
                &SearchQuery {
                    filter: SegmentFilter {
                        media_ids: vec!["m2".into()],
                        ..SegmentFilter::default()
                    },
                    ..q.clone()
                },
            )
            .unwrap();
        assert_eq!(filtered.len(), 1);
        assert_eq!(filtered[0].doc.segment_id, "c");
        let ranged = engine
            .search(
                "u1",
                &SearchQuery {
                    filter: SegmentFilter {
                        start_gte: Some(5.0),
                        ..SegmentFilter::default()
                    },
                    ..q.clone()
                },
            )
            .unwrap();
        assert_eq!(ranged.len(), 1);

        engine.apply("u1", &[], &["a".to_string()]).unwrap();
        assert_eq!(engine.search("u1", &q).unwrap().len(), 1);
        assert!(engine
            .search(
                "u1",
                &SearchQuery {
                    text: "?!".into(),
                    top_k: 5,
                    ..Default::default()
                }
            )
            .unwrap()
            .is_empty());
    }
}
