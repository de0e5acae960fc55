//! Natural-language queries: the query text goes through the index's analyzer and every
//! resulting term is OR-ed (BM25 ranks documents matching more and rarer terms higher);
//! filters are required clauses. No query syntax is parsed, so nothing a user types can
//! make a query fail.

use std::{collections::BTreeSet, ops::Bound, sync::Arc};

use tantivy::{
    collector::TopDocs,
    query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery},
    schema::{IndexRecordOption, Value},
    TantivyDocument, Term,
};

use serde::{Deserialize, Serialize};
use videovector_api_spec::{dto::search::SearchFilters, problem::FieldError, ApiError};

use super::engine::{Fields, SearchEngine, SegmentDoc};

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub top_k: usize,
    pub filter: SegmentFilter,
}

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
        }
    }
}

/// One ranked hit with its highlights (character offsets into `doc.text`).
#[derive(Debug, Clone)]
pub struct Hit {
    pub doc: SegmentDoc,
    pub score: f32,
    pub highlights: Vec<(u32, u32)>,
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
        if terms.is_empty() || q.top_k == 0 {
            return Ok(Vec::new());
        }
        let text_query: Box<dyn Query> = Box::new(BooleanQuery::new(
            terms
                .iter()
                .map(|t| {
                    let term = Term::from_field_text(fields.text, t);
                    (
                        Occur::Should,
                        Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))
                            as Box<dyn Query>,
                    )
                })
                .collect(),
        ));
        let filters = filter_clauses(&fields, q);
        let query: Box<dyn Query> = if filters.is_empty() {
            text_query
        } else {
            let mut clauses = vec![(Occur::Must, text_query)];
            clauses.extend(filters.into_iter().map(|f| (Occur::Must, f)));
            Box::new(BooleanQuery::new(clauses))
        };
        let searcher = handle.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(q.top_k))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let stored: TantivyDocument = searcher.doc(address)?;
            let doc = from_document(&fields, &stored);
            let highlights = highlight(&mut analyzer, &doc.text, &terms);
            hits.push(Hit {
                doc,
                score,
                highlights,
            });
        }
        Ok(hits)
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
        }
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
