//! Retrieval across indexes: `POST /search` with page tokens, `GET /search/{page_token}`,
//! and the extractive chat that answers from what retrieval finds. Runs reuse
//! [`Retrieval::retrieve`].

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use videovector_api_spec::ErrorCode;
use videovector_api_spec::{
    dto::{chat::*, search::*},
    index_access,
    services::{RetrievalService, ServiceResult},
    ApiError, Principal,
};

use super::{embedder_switch, internal, page_token::PageTokens};
use crate::{
    db::{entities::index, point_reads::PointReads, vectors},
    embed::{self, Embedders},
    ids::new_id,
    search::{
        query::{Hit, SearchQuery, SegmentFilter, Total},
        Indexer,
    },
};

/// A hybrid search's weight of meaning against words when the request gives none. The
/// eval in `bench/` scored hybrid nDCG@10 at 0.826, 0.829, 0.831, 0.831 and 0.831 for 0.3,
/// 0.5, 0.7, 0.8 and 0.9 (semantic alone 0.828); before the words' share counted to the
/// fourth power, 0.8 was the best and higher ratios lost queries by names the model does
/// not know.
pub const DEFAULT_SEMANTIC_RATIO: f64 = 0.8;

const DEFAULT_PAGE_SIZE: u32 = 10;
const DEFAULT_CHAT_EVIDENCE: u32 = 5;
/// How many of the best pieces of evidence an extractive answer quotes.
const QUOTED_IN_ANSWER: usize = 3;

/// The API form of a search hit in index `index_id`.
pub fn to_search_hit(index_id: &str, hit: Hit) -> SearchHit {
    SearchHit {
        segment_id: hit.doc.segment_id,
        index_id: index_id.to_string(),
        media_id: hit.doc.media_id,
        start_seconds: hit.doc.start_seconds,
        end_seconds: hit.doc.end_seconds,
        text: hit.doc.text,
        labels: hit.doc.labels,
        metadata: hit.doc.metadata.and_then(|m| serde_json::from_str(&m).ok()),
        score: hit.score as f64,
        highlights: hit
            .highlights
            .into_iter()
            .map(|(start, end)| Highlight { start, end })
            .collect(),
        found_by: [
            (hit.lexical, SearchSide::Lexical),
            (hit.semantic, SearchSide::Semantic),
        ]
        .into_iter()
        .filter_map(|(found, side)| found.then_some(side))
        .collect(),
        media_matches: hit.media_matches,
    }
}

/// The API form of a search's total.
pub fn to_total(total: Total) -> SearchTotal {
    SearchTotal {
        value: total.value,
        relation: if total.exact {
            TotalRelation::Eq
        } else {
            TotalRelation::Gte
        },
    }
}

/// What a retrieval looks for in each index it searches (and what a page token remembers
/// of it, so every page ranks alike).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Retrieve {
    pub query: String,
    pub filters: SegmentFilter,
    pub mode: SearchMode,
    pub semantic_ratio: f64,
    pub min_score: Option<f64>,
    /// The caller's own query vector, in the database's compact encoding
    /// (`db::vectors`): a page token carries it in a quarter of the room, and the first
    /// page searches with the same rounded values as the next ones.
    pub vector: Option<Vec<u8>>,
    pub group_by_media: bool,
}

impl Retrieve {
    /// A retrieval of `query` by `mode` (lexical when absent), with no filters.
    pub fn new(query: &str, mode: Option<SearchMode>, semantic_ratio: Option<f64>) -> Self {
        Retrieve {
            query: query.to_string(),
            filters: SegmentFilter::default(),
            mode: mode.unwrap_or_default(),
            semantic_ratio: semantic_ratio.unwrap_or(DEFAULT_SEMANTIC_RATIO),
            min_score: None,
            vector: None,
            group_by_media: false,
        }
    }

    /// The search of one index: its query vector comes from its own embedder (a 422 names
    /// the index when it has none, or when the caller's vector does not fit it).
    async fn for_index(
        &self,
        embedders: &Embedders,
        indexer: &Indexer,
        idx: &index::Model,
        top_k: usize,
    ) -> ServiceResult<SearchQuery> {
        let mut query = self.filters.query(&self.query, top_k);
        query.mode = self.mode;
        query.semantic_ratio = self.semantic_ratio as f32;
        query.min_score = self.min_score.map(|s| s as f32);
        query.group_by_media = self.group_by_media;
        if self.mode != SearchMode::Lexical || self.vector.is_some() {
            embedder_switch::vectors_current(indexer, idx).await?;
            let vector = match &self.vector {
                Some(bytes) => Some(
                    vectors::from_bytes(bytes)
                        .map_err(|e| internal("reading a search's query vector", e))?,
                ),
                None => None,
            };
            query.vector = Some(embedders.query(idx, &self.query, vector).await.map_err(
                |mut e| {
                    e.problem.detail = format!("index `{}`: {}", idx.id, e.problem.detail);
                    e
                },
            )?);
        }
        Ok(query)
    }
}

/// What a page token remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchState {
    pub retrieve: Retrieve,
    pub index_ids: Vec<String>,
    pub offset: usize,
    pub page_size: usize,
}

pub struct Retrieval {
    pub reads: Arc<PointReads>,
    pub indexer: Arc<Indexer>,
    pub tokens: PageTokens,
    pub embedders: Arc<Embedders>,
}

impl Retrieval {
    /// Hits `offset..offset + limit` of `retrieve` across `index_ids` (all of the caller's
    /// organisation, else 404), best first; whether more follow; and how many segments
    /// matched in all.
    pub async fn retrieve(
        &self,
        org_id: &str,
        index_ids: &[String],
        retrieve: &Retrieve,
        offset: usize,
        limit: usize,
    ) -> ServiceResult<(Vec<SearchHit>, bool, Total)> {
        let mut wanted: Vec<String> = index_ids.to_vec();
        wanted.sort();
        wanted.dedup();
        let mut found = Vec::with_capacity(wanted.len());
        let mut searches = Vec::with_capacity(wanted.len());
        for id in &wanted {
            let idx = self
                .reads
                .index_in_org(org_id, id)
                .await
                .map_err(|e| internal("loading indexes", e))?
                .ok_or_else(|| ApiError::not_found("index", id))?;
            searches.push((
                idx.uid.clone(),
                retrieve
                    .for_index(&self.embedders, &self.indexer, &idx, offset + limit + 1)
                    .await?,
            ));
            found.push(idx);
        }
        let per_index = self
            .indexer
            .engine()
            .search_off_thread(searches)
            .await
            .map_err(|e| internal("searching", e))?;
        let mut hits = Vec::new();
        let mut total = Total {
            value: 0,
            exact: true,
        };
        for (idx, found) in found.iter().zip(per_index) {
            total = total.plus(found.total);
            hits.extend(found.hits.into_iter().map(|h| to_search_hit(&idx.id, h)));
        }
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.index_id.cmp(&b.index_id))
                .then_with(|| a.segment_id.cmp(&b.segment_id))
        });
        let more = hits.len() > offset + limit;
        Ok((
            hits.into_iter().skip(offset).take(limit).collect(),
            more,
            total,
        ))
    }

    async fn page(&self, who: &Principal, mut state: SearchState) -> ServiceResult<SearchPage> {
        // Held on every page: a token made before the key was narrowed does not outlive it,
        // and a page token made by another credential cannot lift a tenant token's filters.
        index_access::check_named(who, &state.index_ids)?;
        state.retrieve.filters =
            std::mem::take(&mut state.retrieve.filters).held_to(who.forced_filters.as_deref());
        let (hits, more, total) = self
            .retrieve(
                &who.org_id,
                &state.index_ids,
                &state.retrieve,
                state.offset,
                state.page_size,
            )
            .await?;
        let next_page_token = more.then(|| {
            self.tokens.issue(
                &who.org_id,
                &SearchState {
                    offset: state.offset + state.page_size,
                    ..state
                },
            )
        });
        Ok(SearchPage {
            hits,
            next_page_token,
            total: to_total(total),
        })
    }
}

#[async_trait]
impl RetrievalService for Retrieval {
    async fn search(
        &self,
        who: &Principal,
        request: CrossSearchRequest,
    ) -> ServiceResult<SearchPage> {
        let vector = match request.vector {
            Some(vector) => {
                embed::check_query_vector(&vector)?;
                Some(vectors::compact_bytes(&vector))
            }
            None => None,
        };
        let state = SearchState {
            retrieve: Retrieve {
                filters: SegmentFilter::from_request(request.filters)?,
                min_score: request.min_score,
                vector,
                group_by_media: request.group_by == Some(GroupBy::Media),
                ..Retrieve::new(&request.query, request.mode, request.semantic_ratio)
            },
            index_ids: request.index_ids,
            offset: 0,
            page_size: who.hits_wanted(request.page_size, DEFAULT_PAGE_SIZE, "/page_size")?
                as usize,
        };
        self.page(who, state).await
    }

    async fn search_page(&self, who: &Principal, page_token: &str) -> ServiceResult<SearchPage> {
        let state: SearchState = self.tokens.open(&who.org_id, page_token)?;
        self.page(who, state).await
    }

    async fn chat(&self, who: &Principal, request: ChatRequest) -> ServiceResult<ChatCompletion> {
        let question = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == ChatRole::User)
            .map(|m| m.content.clone())
            .ok_or_else(|| {
                ApiError::unprocessable(
                    ErrorCode::NoUserMessage,
                    "the conversation has no user message to answer",
                )
            })?;
        index_access::check_named(who, &request.index_ids)?;
        let top_k = who.hits_wanted(request.top_k, DEFAULT_CHAT_EVIDENCE, "/top_k")? as usize;
        let mut retrieve = Retrieve::new(&question, request.mode, request.semantic_ratio);
        retrieve.filters = retrieve.filters.held_to(who.forced_filters.as_deref());
        let (hits, _, _) = self
            .retrieve(&who.org_id, &request.index_ids, &retrieve, 0, top_k)
            .await?;
        Ok(extractive_answer(hits))
    }
}

/// Citations for `hits`, numbered from 1.
pub fn citations(hits: Vec<SearchHit>) -> Vec<Citation> {
    hits.into_iter()
        .enumerate()
        .map(|(i, h)| Citation {
            marker: i as u32 + 1,
            segment_id: h.segment_id,
            index_id: h.index_id,
            media_id: h.media_id,
            start_seconds: h.start_seconds,
            end_seconds: h.end_seconds,
            text: h.text,
            score: h.score,
        })
        .collect()
}

/// An answer that quotes the best evidence, each quote marked with its citation.
pub fn extractive_answer(hits: Vec<SearchHit>) -> ChatCompletion {
    let citations = citations(hits);
    let answer = if citations.is_empty() {
        "No evidence in the given indexes answers this.".to_string()
    } else {
        citations
            .iter()
            .take(QUOTED_IN_ANSWER)
            .map(|c| format!("{} [{}]", c.text.trim(), c.marker))
            .collect::<Vec<_>>()
            .join(" ")
    };
    ChatCompletion {
        id: new_id("chat"),
        answer,
        mode: AnswerMode::Extractive,
        notice: "Extractive answer: no language model is configured, so the answer quotes the \
                 most relevant evidence verbatim."
            .into(),
        citations,
    }
}
