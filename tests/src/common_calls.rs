//! The setups many tests share, through the generated client (as Svix's
//! `tests/it/utils/common_calls.rs` does): each panics with the reason when the server
//! refuses, since a test that cannot set up has nothing to assert.

use videovector_client::{types, Client};

/// Creates the index `id` named `name`.
pub async fn create_index(client: &Client, id: &str, name: &str) -> types::Index {
    client
        .index_create()
        .body(types::IndexCreate::builder().id(id).name(name))
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating index {id}: {e}"))
        .into_inner()
}

/// Polls job `id` every 50 ms until it is neither queued nor running (at most 10 s).
pub async fn wait_job(client: &Client, id: &str) -> types::Job {
    wait_job_within(client, id, std::time::Duration::from_secs(10)).await
}

/// [`wait_job`], waiting at most `within`.
pub async fn wait_job_within(client: &Client, id: &str, within: std::time::Duration) -> types::Job {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        let job = client
            .job_view()
            .job_id(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("viewing job {id}: {e}"))
            .into_inner();
        if !matches!(
            job.status,
            types::JobStatus::Queued | types::JobStatus::Running
        ) {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish within {within:?}");
}

/// A connector file: `url` into `index_id` as `media_id`.
pub fn connector_file(url: String, media_id: &str, index_id: &str) -> types::ConnectorFile {
    types::ConnectorFile::builder()
        .url(url)
        .media_id(media_id)
        .index_id(index_id)
        .try_into()
        .unwrap_or_else(|e| panic!("a connector file for {media_id}: {e}"))
}

/// Creates an HTTP connector `name` of `files`, without headers.
pub async fn create_connector(
    client: &Client,
    name: &str,
    files: Vec<types::ConnectorFile>,
) -> types::Connector {
    client
        .connector_create()
        .body(
            types::ConnectorCreate::builder()
                .name(name)
                .kind(types::ConnectorKind::Http)
                .files(files),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating connector {name}: {e}"))
        .into_inner()
}

/// Creates an HTTP connector `name` of `files` (no headers) and syncs it: the connector
/// and the job the sync queued.
pub async fn create_and_sync(
    client: &Client,
    name: &str,
    files: Vec<types::ConnectorFile>,
) -> (types::Connector, types::Job) {
    let connector = create_connector(client, name, files).await;
    let job = client
        .connector_sync()
        .connector_id(&connector.id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("syncing connector {name}: {e}"))
        .into_inner();
    (connector, job)
}
