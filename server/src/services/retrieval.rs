//! Retrieval across indexes: `POST /search` with page tokens, `GET /search/{page_token}`,
//! and the extractive chat that answers from what retrieval finds. Runs reuse
//! [`Retrieval::retrieve`].

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use videovector_api_spec::ErrorCode;
use videovector_api_spec::{
    dto::{chat::*, search::*},
    services::{RetrievalService, ServiceResult},
    ApiError, Principal,
};

use super::{internal, page_token::PageTokens};
use crate::{
    db::point_reads::PointReads,
    ids::new_id,
    search::{
        query::{Hit, SegmentFilter},
        Indexer,
    },
};

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
    }
}

/// What a page token remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchState {
    pub query: String,
    pub index_ids: Vec<String>,
    pub filters: SegmentFilter,
    pub offset: usize,
    pub page_size: usize,
}

pub struct Retrieval {
    pub reads: Arc<PointReads>,
    pub indexer: Arc<Indexer>,
    pub tokens: PageTokens,
}

impl Retrieval {
    /// Hits `offset..offset + limit` of `query` across `index_ids` (all of the caller's
    /// organisation, else 404), best first; and whether more follow.
    pub async fn retrieve(
        &self,
        org_id: &str,
        index_ids: &[String],
        query: &str,
        filters: &SegmentFilter,
        offset: usize,
        limit: usize,
    ) -> ServiceResult<(Vec<SearchHit>, bool)> {
        let mut wanted: Vec<String> = index_ids.to_vec();
        wanted.sort();
        wanted.dedup();
        let mut found = Vec::with_capacity(wanted.len());
        for id in &wanted {
            let idx = self
                .reads
                .index_in_org(org_id, id)
                .await
                .map_err(|e| internal("loading indexes", e))?
                .ok_or_else(|| ApiError::not_found("index", id))?;
            found.push(idx);
        }
        let search = filters.query(query, offset + limit + 1);
        let per_index = self
            .indexer
            .engine()
            .search_off_thread(found.iter().map(|idx| idx.uid.clone()).collect(), search)
            .await
            .map_err(|e| internal("searching", e))?;
        let mut hits = Vec::new();
        for (idx, found_hits) in found.iter().zip(per_index) {
            hits.extend(found_hits.into_iter().map(|h| to_search_hit(&idx.id, h)));
        }
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.segment_id.cmp(&b.segment_id))
        });
        let more = hits.len() > offset + limit;
        Ok((hits.into_iter().skip(offset).take(limit).collect(), more))
    }

    async fn page(&self, who: &Principal, state: SearchState) -> ServiceResult<SearchPage> {
        let (hits, more) = self
            .retrieve(
                &who.org_id,
                &state.index_ids,
                &state.query,
                &state.filters,
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
        let state = SearchState {
            query: request.query,
            index_ids: request.index_ids,
            filters: SegmentFilter::from_request(request.filters)?,
            offset: 0,
            page_size: request.page_size.unwrap_or(DEFAULT_PAGE_SIZE) as usize,
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
        let top_k = request.top_k.unwrap_or(DEFAULT_CHAT_EVIDENCE) as usize;
        let (hits, _) = self
            .retrieve(
                &who.org_id,
                &request.index_ids,
                &question,
                &SegmentFilter::default(),
                0,
                top_k,
            )
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
