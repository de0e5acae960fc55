//! Retrieval across indexes through the generated client: paginated cross-index search with
//! page tokens, and chat answers whose citations point at real segments.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use videovector_api_spec::Scope;
use videovector_client::{types, Client, Error};
use videovector_tests::{common_calls::create_index, TestServer};

async fn index_with(client: &Client, id: &str, texts: &[&str]) -> Vec<String> {
    create_index(client, id, id).await;
    let segments = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            types::SegmentInput::builder()
                .media_id(format!("{id}-media"))
                .start_seconds(i as f64 * 10.0)
                .end_seconds(i as f64 * 10.0 + 5.0)
                .text(*text)
                .try_into()
                .unwrap()
        })
        .collect::<Vec<types::SegmentInput>>();
    client
        .segment_ingest()
        .index_id(id)
        .body(types::SegmentBatch::builder().segments(segments).wait(true))
        .send()
        .await
        .unwrap()
        .into_inner()
        .segment_ids
}

#[tokio::test]
async fn search_across_indexes_pages_through_every_hit_once() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    let mut expected = BTreeSet::new();
    for (id, n) in [("idx_north", 7), ("idx_south", 6)] {
        let texts: Vec<String> = (0..n)
            .map(|i| format!("harbour crane number {i} lifts containers"))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        expected.extend(index_with(&client, id, &refs).await);
    }
    index_with(&client, "idx_other", &["harbour pilots at dawn"]).await;

    let searcher = videovector_client::with_api_key(
        &server.url(),
        &server.api_key(&org, &[Scope::Search]).await.1,
    )
    .unwrap();
    let mut page = searcher
        .search_query()
        .body(
            types::CrossSearchRequest::builder()
                .query("crane containers")
                .index_ids(vec![
                    "idx_north".parse().unwrap(),
                    "idx_south".parse().unwrap(),
                ])
                .page_size(5),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    let mut pages = 1;
    loop {
        assert!(page.hits.len() <= 5);
        seen.extend(page.hits.iter().map(|h| h.segment_id.clone()));
        let Some(token) = page.next_page_token.clone() else {
            break;
        };
        page = searcher
            .search_page_view()
            .page_token(token)
            .send()
            .await
            .unwrap()
            .into_inner();
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 13, "every hit exactly once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);

    // A token from another organisation, a tampered token and garbage are 400s, not 500s.
    let first = searcher
        .search_query()
        .body(
            types::CrossSearchRequest::builder()
                .query("crane")
                .index_ids(vec!["idx_north".parse().unwrap()])
                .page_size(2),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    let token = first.next_page_token.unwrap();
    let other = server.org(true).await;
    let outsider = server.admin_client(&other);
    for (client, token) in [
        (&outsider, token.clone()),
        (&searcher, format!("{}x", token)),
        (&searcher, "garbage".to_string()),
    ] {
        match client.search_page_view().page_token(token).send().await {
            Err(Error::ErrorResponse(problem)) => {
                assert_eq!(problem.status(), StatusCode::BAD_REQUEST);
                assert_eq!(problem.code, types::ErrorCode::InvalidPageToken);
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    }
    // Another organisation's index is a 404.
    match outsider
        .search_query()
        .body(
            types::CrossSearchRequest::builder()
                .query("crane")
                .index_ids(vec!["idx_north".parse().unwrap()]),
        )
        .send()
        .await
    {
        Err(Error::ErrorResponse(problem)) => assert_eq!(problem.status(), StatusCode::NOT_FOUND),
        other => panic!("expected a 404, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn chat_answers_extractively_with_citations_of_real_segments() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    let ids = index_with(
        &client,
        "idx_news",
        &[
            "The mayor opened the new bridge on Monday morning",
            "Traffic on the bridge was light during the first hour",
            "A local bakery won a regional award",
        ],
    )
    .await;
    let answer = client
        .chat_completion_create()
        .body(
            types::ChatRequest::builder()
                .messages(vec![types::ChatMessage {
                    role: types::ChatRole::User,
                    content: "When did the mayor open the bridge?".parse().unwrap(),
                }])
                .index_ids(vec!["idx_news".parse().unwrap()])
                .top_k(2),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.mode, types::AnswerMode::Extractive);
    assert!(answer.notice.contains("no language model is configured"));
    assert_eq!(answer.citations[0].segment_id, ids[0]);
    assert_eq!(answer.citations[0].start_seconds, 0.0);
    assert!(answer
        .answer
        .contains("The mayor opened the new bridge on Monday morning [1]"));
    for citation in &answer.citations {
        assert!(ids.contains(&citation.segment_id));
        assert_eq!(citation.media_id, "idx_news-media");
    }
    assert!(!answer.citations.iter().any(|c| c.segment_id == ids[2]));
    server.stop().await;
}
