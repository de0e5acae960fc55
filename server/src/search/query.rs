//! Natural-language queries, by words, by meaning or both.
//!
//! - **Lexical**: the query text goes through the index's analyzer and every resulting term
//!   is OR-ed (BM25 ranks documents matching more and rarer terms higher). No query syntax
//!   is parsed, so nothing a user types can make a query fail.
//! - **Semantic**: the query's vector against every segment's, by cosine similarity
//!   (`search::vectors`).
//! - **Hybrid**: the best of each side, each scored on both sides `ratio · cosine + (1 −
//!   ratio) · share⁴`, the share being how much of the query the words matched (see
//!   [`whole_match_score`] and [`SHARE_POWER`]).
//!
//! Filters are required clauses on every side.

use std::{
    collections::{BTreeSet, HashMap},
    ops::Bound,
    sync::Arc,
};

use tantivy::{
    collector::TopDocs,
    query::{
        BooleanQuery, ConstScoreQuery, EnableScoring, Occur, Query, RangeQuery, Scorer, TermQuery,
    },
    schema::{IndexRecordOption, Value},
    DocAddress, DocSet, Searcher, TantivyDocument, Term, TERMINATED,
};

use serde::{Deserialize, Serialize};
use videovector_api_spec::{
    dto::search::{SearchFilters, SearchMode},
    problem::FieldError,
    security::ForcedFilters,
    ApiError,
};

use super::{
    engine::{SearchEngine, SegmentDoc},
    schema::Fields,
    vectors,
};

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub top_k: usize,
    pub filter: SegmentFilter,
    pub mode: SearchMode,
    /// The query's vector (semantic and hybrid searches).
    pub vector: Option<Vec<f32>>,
    /// The weight of meaning in a hybrid score, 0 to 1.
    pub semantic_ratio: f32,
    /// Hits scoring below this are left out.
    pub min_score: Option<f32>,
    /// One hit per media: the best of its segments among the best [`GROUP_POOL`].
    pub group_by_media: bool,
    /// Score every vector, even where an approximate index could propose candidates (the
    /// benchmark's brute-force baseline).
    pub exact_vectors: bool,
}

/// Candidates each side contributes to a hybrid search, at least.
const HYBRID_CANDIDATES: usize = 50;
/// Candidates a grouped search ranks and groups: a media's count of matching segments is
/// counted among these.
pub const GROUP_POOL: usize = 1000;
/// Matches are counted exactly up to this many; past it the total is a lower bound (a
/// count of every match of a common word would cost more than the search).
const COUNT_EXACTLY_UP_TO: u64 = 10_000;
/// Documents from which a hybrid search runs its sides on two threads (at 1,000,000 each
/// side takes a few milliseconds; at 10,000, tens of microseconds, about what a thread
/// costs to start).
const PARALLEL_SIDES_FROM: u64 = 50_000;

/// How many segments a search matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Total {
    pub value: u64,
    /// Exactly `value`; otherwise at least.
    pub exact: bool,
}

impl Total {
    /// The total of two searches of different segments.
    pub fn plus(self, other: Total) -> Total {
        Total {
            value: self.value + other.value,
            exact: self.exact && other.exact,
        }
    }
}

/// A search's hits, best first, and how many segments it matched.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub hits: Vec<Hit>,
    pub total: Total,
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

    /// This filter within `forced` (a tenant token's): media among both lists (a request
    /// naming only media outside the forced ones matches nothing), and the labels of both,
    /// each required.
    pub fn held_to(mut self, forced: Option<&ForcedFilters>) -> SegmentFilter {
        let Some(forced) = forced else {
            return self;
        };
        if !forced.media_ids.is_empty() {
            self.media_ids = if self.media_ids.is_empty() {
                forced.media_ids.clone()
            } else {
                let both: Vec<String> = self
                    .media_ids
                    .into_iter()
                    .filter(|m| forced.media_ids.contains(m))
                    .collect();
                match both.is_empty() {
                    // A media id is never empty, so this one matches no segment.
                    true => vec![String::new()],
                    false => both,
                }
            };
        }
        for label in &forced.labels {
            if !self.labels.contains(label) {
                self.labels.push(label.clone());
            }
        }
        self
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
    /// In a search grouped by media: its media's segments among the matches.
    pub media_matches: Option<u32>,
}

/// The mode as the spec spells it, for a span.
fn search_mode_name(mode: SearchMode) -> &'static str {
    match mode {
        SearchMode::Lexical => "lexical",
        SearchMode::Semantic => "semantic",
        SearchMode::Hybrid => "hybrid",
    }
}

impl SearchEngine {
    /// [`Self::search`] of each index uid with its query, on the blocking pool: scoring and
    /// reading stored documents is CPU and disk work that would otherwise hold an async
    /// worker thread, and with it every request waiting on that thread. At most two
    /// searches per core run at once; the others wait their turn without holding a thread.
    /// A span of the request's trace, when traced: the wait for a slot and the search.
    pub async fn search_off_thread(
        self: &Arc<Self>,
        searches: Vec<(String, SearchQuery)>,
    ) -> tantivy::Result<Vec<Found>> {
        let mode = searches
            .first()
            .map_or("none", |(_, q)| search_mode_name(q.mode));
        let indexes = searches.len() as i64;
        crate::traces::in_span(
            "search",
            opentelemetry::trace::SpanKind::Internal,
            || {
                vec![
                    opentelemetry::KeyValue::new("videovector.search.mode", mode),
                    opentelemetry::KeyValue::new("videovector.search.indexes", indexes),
                ]
            },
            self.search_in_slot(searches),
        )
        .await
    }

    async fn search_in_slot(
        self: &Arc<Self>,
        searches: Vec<(String, SearchQuery)>,
    ) -> tantivy::Result<Vec<Found>> {
        let _slot = self.search_slots.acquire().await.map_err(|e| {
            tantivy::TantivyError::InternalError(format!("the search slots closed: {e}"))
        })?;
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            searches
                .iter()
                .map(|(uid, q)| engine.search(uid, q))
                .collect()
        })
        .await
        .map_err(|e| tantivy::TantivyError::InternalError(format!("a search task ended: {e}")))?
    }

    pub fn search(&self, uid: &str, q: &SearchQuery) -> tantivy::Result<Found> {
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
            return Ok(Found::default());
        }
        let searcher = handle.reader.searcher();
        let filter = filter_query(&fields, q);
        let candidates = match (q.mode, q.group_by_media) {
            (_, true) => q.top_k.max(GROUP_POOL),
            (SearchMode::Lexical, false) => q.top_k,
            _ => q.top_k.max(HYBRID_CANDIDATES),
        };
        let words = match q.mode {
            SearchMode::Semantic => None,
            _ => lexical_query(&fields, &terms, filter.as_deref()),
        };
        // The words' best, and how many they match where the total needs it.
        let count_words = q.min_score.is_none() && q.mode != SearchMode::Semantic;
        let words_side = || -> tantivy::Result<(Vec<(f32, DocAddress)>, Total)> {
            let Some(words) = &words else {
                return Ok((
                    Vec::new(),
                    Total {
                        value: 0,
                        exact: true,
                    },
                ));
            };
            let best = searcher.search(words, &TopDocs::with_limit(candidates))?;
            let total = match count_words {
                true => count(&searcher, words.as_ref())?,
                false => Total::default(),
            };
            Ok((best, total))
        };
        // Scores are cosines: the query is compared at unit length (a caller's own vector,
        // or an endpoint's, may have any length).
        let unit = q.vector.as_deref().map(vectors::unit);
        let meaning_side = || match (&unit, q.mode) {
            (Some(vector), SearchMode::Semantic | SearchMode::Hybrid) => vectors::nearest(
                &searcher,
                &handle.vectors,
                &fields,
                filter.as_deref(),
                vectors::Wanted {
                    query: vector,
                    limit: candidates,
                    threshold: q.min_score.filter(|_| q.mode == SearchMode::Semantic),
                    exact: q.exact_vectors,
                },
            ),
            _ => Ok(vectors::Nearest::default()),
        };
        // A large hybrid search runs its two sides on two threads: each takes
        // milliseconds, and the answer waits for both.
        let ((lexical, words_total), semantic) =
            if q.mode == SearchMode::Hybrid && searcher.num_docs() >= PARALLEL_SIDES_FROM {
                std::thread::scope(|scope| {
                    let words = scope.spawn(words_side);
                    let meaning = meaning_side();
                    let words = words.join().map_err(|_| {
                        tantivy::TantivyError::InternalError("the lexical side panicked".into())
                    })?;
                    Ok::<_, tantivy::TantivyError>((words?, meaning?))
                })?
            } else {
                (words_side()?, meaning_side()?)
            };
        let lexical_full = lexical.len() == candidates;
        let semantic_full = semantic.best.len() == candidates;
        let ranked = match q.mode {
            SearchMode::Lexical => mark(lexical, true, false),
            SearchMode::Semantic => mark(semantic.best.clone(), false, true),
            SearchMode::Hybrid => {
                let whole = whole_match_score(&searcher, &fields, &terms)?;
                // Each side's candidates get the other side's score too, so a candidate
                // is ranked by both whichever side proposed it.
                let unit = unit.as_deref().unwrap_or_default();
                let lexical_addresses: Vec<DocAddress> = lexical.iter().map(|c| c.1).collect();
                let cosines = vectors::cosines(
                    &searcher,
                    &handle.vectors,
                    &fields,
                    unit,
                    &lexical_addresses,
                )?;
                let semantic_addresses: Vec<DocAddress> =
                    semantic.best.iter().map(|c| c.1).collect();
                let words_scores = match &words {
                    Some(words) => word_scores(&searcher, words.as_ref(), &semantic_addresses)?,
                    None => vec![0.0; semantic_addresses.len()],
                };
                fuse(
                    Side {
                        found: &lexical,
                        other: &cosines,
                    },
                    Side {
                        found: &semantic.best,
                        other: &words_scores,
                    },
                    whole,
                    q.semantic_ratio,
                )
            }
        };
        let good_enough = |score: &f32| q.min_score.is_none_or(|min| *score >= min);
        let ranked: Vec<Ranked> = ranked.into_iter().filter(|r| good_enough(&r.0)).collect();
        let total = match (q.mode, q.min_score) {
            (SearchMode::Lexical, None) => words_total,
            // Ranked in order: the list ends below the threshold, or was cut short of it.
            (SearchMode::Lexical, Some(_)) => Total {
                value: ranked.len() as u64,
                exact: !lexical_full || ranked.len() < candidates,
            },
            (SearchMode::Semantic, _) => Total {
                value: semantic.matched,
                exact: semantic.exact_count,
            },
            (SearchMode::Hybrid, None) => {
                let words = words_total;
                Total {
                    value: words.value.max(semantic.matched),
                    // Every segment the filters admit has a vector, so every match of the
                    // words is one of them; or one side matched nothing.
                    exact: semantic.matched == semantic.admitted
                        || words.value == 0
                        || (semantic.matched == 0 && words.exact),
                }
            }
            (SearchMode::Hybrid, Some(_)) => Total {
                value: ranked.len() as u64,
                exact: !lexical_full && !semantic_full,
            },
        };
        let chosen: Vec<(Ranked, Option<u32>)> = if q.group_by_media {
            group_by_media(&searcher, ranked, q.top_k)?
        } else {
            ranked
                .into_iter()
                .take(q.top_k)
                .map(|r| (r, None))
                .collect()
        };
        let mut hits = Vec::with_capacity(chosen.len());
        for ((score, address, lexical, semantic), media_matches) in chosen {
            let stored: TantivyDocument = searcher.doc(address)?;
            let doc = from_document(&fields, &stored);
            let highlights = highlight(&mut analyzer, &doc.text, &terms);
            hits.push(Hit {
                doc,
                score,
                highlights,
                lexical,
                semantic,
                media_matches,
            });
        }
        Ok(Found { hits, total })
    }
}

/// The first `groups` media of `ranked` (best first), each with its best entry and its
/// number of entries. Media are told apart by the `media_id` fast field.
fn group_by_media(
    searcher: &Searcher,
    ranked: Vec<Ranked>,
    groups: usize,
) -> tantivy::Result<Vec<(Ranked, Option<u32>)>> {
    let readers = searcher.segment_readers();
    let mut columns = Vec::with_capacity(readers.len());
    for reader in readers {
        columns.push(reader.fast_fields().str("media_id")?);
    }
    let mut media = String::new();
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    let mut chosen: Vec<(Ranked, Option<u32>)> = Vec::new();
    for entry in ranked {
        let address = entry.1;
        media.clear();
        if let Some(column) = &columns[address.segment_ord as usize] {
            if let Some(ord) = column.term_ords(address.doc_id).next() {
                column.ord_to_str(ord, &mut media)?;
            }
        }
        match slot_of.get(&media) {
            Some(&slot) => {
                let count = chosen[slot].1.get_or_insert(0);
                *count += 1;
            }
            None => {
                slot_of.insert(media.clone(), chosen.len());
                chosen.push((entry, Some(1)));
            }
        }
    }
    chosen.truncate(groups);
    Ok(chosen)
}

/// How many documents `query` matches, exactly up to [`COUNT_EXACTLY_UP_TO`].
fn count(searcher: &Searcher, query: &dyn Query) -> tantivy::Result<Total> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut value = 0u64;
    for reader in searcher.segment_readers() {
        let mut docs = weight.scorer(reader, 1.0)?;
        let mut doc = docs.doc();
        while doc != TERMINATED {
            if !reader.is_deleted(doc) {
                value += 1;
                if value >= COUNT_EXACTLY_UP_TO {
                    return Ok(Total {
                        value,
                        exact: false,
                    });
                }
            }
            doc = docs.advance();
        }
    }
    Ok(Total { value, exact: true })
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

/// The words' share of a hybrid score is raised to this power: a match of (nearly) the
/// whole query counts fully, a match of some of its words little. On the eval (nDCG@10 of
/// all queries, ratio 0.8): power 1 0.827, 2 0.826, 3 and above 0.831, against 0.828 for
/// meaning alone; from 4 the same at ratios 0.7 to 0.9. With power 1, words shared by
/// accident lifted look-alikes above paraphrased targets.
const SHARE_POWER: i32 = 4;

/// One side's candidates, (score, address), with the other side's score of each.
struct Side<'a, T> {
    found: &'a [(f32, DocAddress)],
    other: &'a [T],
}

/// The hybrid ranking of both sides' candidates: `ratio · cosine + (1 − ratio) · share^p`,
/// the share being a lexical score's part of `whole` (capped at 1) and p
/// [`SHARE_POWER`]; a candidate without a
/// vector, or that the words do not match, counts 0 on that side.
fn fuse(
    lexical: Side<'_, Option<f32>>,
    semantic: Side<'_, f32>,
    whole: f32,
    ratio: f32,
) -> Vec<Ranked> {
    let ratio = ratio.clamp(0.0, 1.0);
    let score = |words: f32, cosine: f32| {
        let share = if whole > 0.0 {
            (words / whole).min(1.0).powi(SHARE_POWER)
        } else {
            0.0
        };
        ratio * cosine.max(0.0) + (1.0 - ratio) * share
    };
    let mut fused: HashMap<DocAddress, (f32, bool, bool)> = HashMap::new();
    for (&(words, address), cosine) in lexical.found.iter().zip(lexical.other) {
        let entry = fused.entry(address).or_default();
        entry.0 = score(words, cosine.unwrap_or(0.0));
        entry.1 = true;
    }
    for (&(cosine, address), &words) in semantic.found.iter().zip(semantic.other) {
        let entry = fused.entry(address).or_default();
        if !entry.1 {
            entry.0 = score(words, cosine);
        }
        entry.2 = true;
    }
    let mut ranked: Vec<Ranked> = fused
        .into_iter()
        .map(|(address, (score, lexical, semantic))| (score, address, lexical, semantic))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked
}

/// The score `words` gives each document at `addresses` (0 where they do not match it),
/// seeking each segment's scorer in document order.
fn word_scores(
    searcher: &Searcher,
    words: &dyn Query,
    addresses: &[DocAddress],
) -> tantivy::Result<Vec<f32>> {
    let weight = words.weight(EnableScoring::enabled_from_searcher(searcher))?;
    let mut order: Vec<usize> = (0..addresses.len()).collect();
    order.sort_by_key(|&i| addresses[i]);
    let mut scores = vec![0.0; addresses.len()];
    let mut current: Option<(u32, Box<dyn Scorer>)> = None;
    for i in order {
        let address = addresses[i];
        if current.as_ref().map(|(ordinal, _)| *ordinal) != Some(address.segment_ord) {
            let reader = searcher.segment_reader(address.segment_ord);
            current = Some((address.segment_ord, weight.scorer(reader, 1.0)?));
        }
        let Some((_, scorer)) = current.as_mut() else {
            continue;
        };
        // A scorer only moves forward: one already past the document does not match it.
        if scorer.doc() <= address.doc_id && scorer.seek(address.doc_id) == address.doc_id {
            scores[i] = scorer.score();
        }
    }
    Ok(scores)
}

/// `terms` OR-ed (ranked by BM25) under `filter`; `None` without terms.
fn lexical_query(
    fields: &Fields,
    terms: &BTreeSet<String>,
    filter: Option<&dyn Query>,
) -> Option<Box<dyn Query>> {
    if terms.is_empty() {
        return None;
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
    Some(match filter {
        None => text_query,
        // The filter scores nothing: a required term query would add its own BM25 to
        // every hit (more for a rarer media id), and a range its constant.
        Some(filter) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, text_query),
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(filter.box_clone(), 0.0)),
            ),
        ])),
    })
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

    #[test]
    fn a_forced_filter_only_narrows() {
        let forced = ForcedFilters {
            media_ids: vec!["a".into(), "b".into()],
            labels: vec!["tenant:1".into()],
        };
        let asked = |media: &[&str], labels: &[&str]| SegmentFilter {
            media_ids: media.iter().map(|m| m.to_string()).collect(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ..SegmentFilter::default()
        };
        let held = asked(&[], &[]).held_to(Some(&forced));
        assert_eq!(
            (held.media_ids, held.labels),
            (
                vec!["a".to_string(), "b".into()],
                vec!["tenant:1".to_string()]
            )
        );
        let held = asked(&["b", "c"], &["news"]).held_to(Some(&forced));
        assert_eq!(held.media_ids, ["b"]);
        assert_eq!(held.labels, ["news", "tenant:1"]);
        // Only media outside the forced ones: nothing, not everything.
        assert_eq!(asked(&["c"], &[]).held_to(Some(&forced)).media_ids, [""]);
        assert_eq!(asked(&["c"], &[]).held_to(None).media_ids, ["c"]);
    }

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
            mode: SearchMode::Semantic,
            vector: Some(vec![1.0, 0.0, 0.0]),
            ..Default::default()
        };
        let ids = |hits: Vec<Hit>| -> Vec<String> {
            hits.into_iter().map(|h| h.doc.segment_id).collect()
        };
        // A segment without a vector is never a semantic hit.
        assert_eq!(
            ids(engine.search("u1", &semantic).unwrap().hits),
            ["space", "orbit", "rain"]
        );
        let hits = engine.search("u1", &semantic).unwrap().hits;
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
        assert_eq!(ids(engine.search("u1", &only_m2).unwrap().hits), ["orbit"]);

        engine.merge_settled().unwrap();
        assert_eq!(
            ids(engine.search("u1", &semantic).unwrap().hits),
            ["space", "orbit", "rain"]
        );

        let hybrid = SearchQuery {
            text: "orbit".into(),
            mode: SearchMode::Hybrid,
            semantic_ratio: 0.5,
            ..semantic.clone()
        };
        let hits = engine.search("u1", &hybrid).unwrap().hits;
        let words = hits.iter().find(|h| h.doc.segment_id == "words").unwrap();
        assert!(words.lexical && !words.semantic);
        let space = hits.iter().find(|h| h.doc.segment_id == "space").unwrap();
        assert!(space.semantic && !space.lexical);
        // Lexical mode ignores the vector.
        let lexical = SearchQuery {
            mode: SearchMode::Lexical,
            ..hybrid.clone()
        };
        assert_eq!(ids(engine.search("u1", &lexical).unwrap().hits), ["words"]);
    }

    /// A large segment gets an approximate index: once built it answers (nearly) what the
    /// exact scan answers, under filters too, and counts what it matched.
    #[test]
    fn approximate_search_agrees_with_the_exact_scan() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SearchEngine::new(dir.path().to_path_buf())
            .unwrap()
            .approximate_from(1_000);
        let mut seed = 7u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let docs: Vec<SegmentDoc> = (0..3_000)
            .map(|i| SegmentDoc {
                vector: Some((0..16).map(|_| next()).collect()),
                ..doc(&format!("s{i}"), &format!("m{}", i % 3), 0.0, "words", &[])
            })
            .collect();
        engine.apply("u1", &docs, &[]).unwrap();
        let mut waited = 0;
        while !engine.approximate_ready("u1", 16).unwrap() {
            std::thread::sleep(std::time::Duration::from_millis(20));
            waited += 1;
            assert!(waited < 1_000, "the approximate index was not built");
        }
        let (mut agreed, mut asked) = (0, 0);
        for q in 0..20 {
            let vector: Vec<f32> = (0..16).map(|_| next()).collect();
            let filter = SegmentFilter {
                media_ids: if q % 2 == 0 {
                    vec!["m1".into()]
                } else {
                    vec![]
                },
                ..SegmentFilter::default()
            };
            let approximate = SearchQuery {
                text: "anything".into(),
                top_k: 10,
                mode: SearchMode::Semantic,
                vector: Some(vector),
                filter,
                ..Default::default()
            };
            let exact = SearchQuery {
                exact_vectors: true,
                ..approximate.clone()
            };
            let found = engine.search("u1", &approximate).unwrap();
            let truth = engine.search("u1", &exact).unwrap();
            let expected = if q % 2 == 0 { 1_000 } else { 3_000 };
            assert_eq!(found.total, truth.total);
            assert_eq!(found.total.value, expected);
            let truth: Vec<String> = truth.hits.into_iter().map(|h| h.doc.segment_id).collect();
            for hit in found.hits {
                if q % 2 == 0 {
                    assert_eq!(hit.doc.media_id, "m1");
                }
                agreed += usize::from(truth.contains(&hit.doc.segment_id));
            }
            asked += truth.len();
        }
        let recall = agreed as f64 / asked as f64;
        assert!(recall >= 0.95, "recall@10 {recall}");

        // Saved beside the copy: another engine on it loads the index, and answers alike.
        let saved = || -> Vec<String> {
            std::fs::read_dir(dir.path().join("indexes/u1/vectors"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".usearch"))
                .collect()
        };
        // One per search-copy segment (the writer's two threads made two).
        let old = saved();
        assert!(!old.is_empty());
        let probe = SearchQuery {
            text: "anything".into(),
            top_k: 10,
            mode: SearchMode::Semantic,
            vector: Some((0..16).map(|_| next()).collect()),
            ..Default::default()
        };
        let ids = |engine: &SearchEngine| -> Vec<String> {
            let found = engine.search("u1", &probe).unwrap();
            found.hits.into_iter().map(|h| h.doc.segment_id).collect()
        };
        let before = ids(&engine);
        drop(engine);
        let engine = SearchEngine::new(dir.path().to_path_buf())
            .unwrap()
            .approximate_from(1_000);
        let started = std::time::Instant::now();
        while !engine.approximate_ready("u1", 16).unwrap() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(ids(&engine), before);

        // A merge leaves the old segments' indexes behind: they go with their segments.
        let more: Vec<SegmentDoc> = (0..200)
            .map(|i| SegmentDoc {
                vector: Some((0..16).map(|_| next()).collect()),
                ..doc(&format!("t{i}"), "m9", 0.0, "words", &[])
            })
            .collect();
        engine.apply("u1", &more, &[]).unwrap();
        engine.merge_settled().unwrap();
        let _ = engine.search("u1", &probe).unwrap();
        while !engine.approximate_ready("u1", 16).unwrap() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let now = saved();
        assert_eq!(now.len(), 1, "{now:?}");
        assert!(!old.contains(&now[0]), "{old:?} {now:?}");
    }

    /// A hybrid candidate is scored on both sides, whichever side proposed it.
    #[test]
    fn hybrid_scores_each_candidate_on_both_sides() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SearchEngine::new(dir.path().to_path_buf()).unwrap();
        let with = |id: String, text: &str, vector: [f32; 2]| SegmentDoc {
            vector: Some(vector.to_vec()),
            ..doc(&id, "m1", 0.0, text, &[])
        };
        // Sixty segments nearer the query's meaning than "target" fill the semantic side's
        // fifty candidates; sixty matching "comet" better than "quiet" fill the words'.
        let mut docs: Vec<SegmentDoc> = (0..60)
            .map(|i| {
                with(
                    format!("near{i}"),
                    "nothing in common",
                    [1.0, 0.01 * i as f32],
                )
            })
            .collect();
        docs.extend((0..60).map(|i| with(format!("comet{i}"), "comet comet", [0.0, 1.0])));
        docs.push(with("target".into(), "comet comet comet", [1.0, 1.0]));
        docs.push(with(
            "quiet".into(),
            "comet among very many other words said here at length",
            [1.0, 0.0],
        ));
        engine.apply("u1", &docs, &[]).unwrap();
        let hybrid = SearchQuery {
            text: "comet".into(),
            top_k: 50,
            mode: SearchMode::Hybrid,
            vector: Some(vec![1.0, 0.0]),
            semantic_ratio: 0.5,
            ..Default::default()
        };
        let hits = engine.search("u1", &hybrid).unwrap().hits;
        let find = |id: &str| hits.iter().find(|h| h.doc.segment_id == id);
        // Proposed by the words only (first), scored by meaning too: 0.5 × cos 45° (0.35)
        // plus its whole match's 0.5.
        let target = find("target").expect("the words propose it");
        assert!(target.lexical && !target.semantic);
        assert!(target.score > 0.8, "{}", target.score);
        // Proposed by meaning only (its one "comet" among many words ranks below the
        // words' fifty), scored by its words too: above meaning alone.
        let quiet = find("quiet").expect("meaning proposes it");
        assert!(quiet.semantic && !quiet.lexical);
        assert!(quiet.score > 0.505, "{}", quiet.score);
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
        let hits = engine.search("u1", &q).unwrap().hits;
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
            .unwrap()
            .hits;
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
            .unwrap()
            .hits;
        assert_eq!(ranged.len(), 1);

        engine.apply("u1", &[], &["a".to_string()]).unwrap();
        assert_eq!(engine.search("u1", &q).unwrap().hits.len(), 1);
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
            .hits
            .is_empty());
    }
}
