//! Runs the authentication page's search example with the generated client:
//! `VIDEOVECTOR_URL=http://127.0.0.1:8080 VIDEOVECTOR_API_KEY=sk_live_... cargo run -p videovector-client --example search`

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("VIDEOVECTOR_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("VIDEOVECTOR_API_KEY")?;
    let client = videovector_client::with_api_key(&url, &key)?;
    let results = client
        .index_search()
        .index_id("idx_archive")
        .body(
            videovector_client::types::SearchRequest::builder()
                .query("reporter at station entrance")
                .top_k(10),
        )
        .send()
        .await?
        .into_inner();
    for hit in results.hits {
        println!(
            "{:>7.3}  {}  {:>8.2}s–{:<8.2}s  {}",
            hit.score, hit.media_id, hit.start_seconds, hit.end_seconds, hit.text
        );
    }
    Ok(())
}
