//! A crate written the way a downstream user writes one against `videovector-client`: it
//! walks lists as streams, leaves dropped connections, 429s and 503s to the client's
//! retries, and matches on typed problems. Its tests (`tests/mocked.rs`) run on the
//! generated mocks (`videovector-client-mock`), with no server; CI builds and runs them
//! with the workspace, so the guide's promises about the client are compiled, not just
//! written.

use futures_util::TryStreamExt;
use videovector_client::{
    types::{self, ErrorCode},
    ApiError, Client, ClientSetupError,
};

/// The part of an archive application that talks to VideoVector.
pub struct Archive {
    client: Client,
}

impl Archive {
    /// An archive on the server at `server_url` (its root, `https://videovector.example`),
    /// read with `api_key`; retries are the client's defaults.
    pub fn connect(server_url: &str, api_key: &str) -> Result<Archive, ClientSetupError> {
        Ok(Archive {
            client: videovector_client::with_api_key(server_url, api_key)?,
        })
    }

    /// An archive over a client built elsewhere (another retry policy, say).
    pub fn with_client(client: Client) -> Archive {
        Archive { client }
    }

    /// The ids of every index whose name holds `word`, over as many pages as there are.
    pub async fn indexes_named(&self, word: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .client
            .index_list()
            .limit(100)
            .stream()
            .try_filter(|index| futures_util::future::ready(index.name.contains(word)))
            .map_ok(|index| index.id)
            .try_collect()
            .await?)
    }

    /// The name of the index `index_id` (a read: the client retries it through dropped
    /// connections, 429s and 503s).
    pub async fn index_name(&self, index_id: &str) -> Result<String, ApiError> {
        let index = self.client.index_view().index_id(index_id).send().await?;
        Ok(index.into_inner().name)
    }

    /// The text of the best hit for `query` in `index_id`; `None` when nothing matched or
    /// the index does not exist (any other failure is the caller's to see).
    pub async fn best_line(&self, index_id: &str, query: &str) -> Result<Option<String>, ApiError> {
        let request = types::SearchRequest::builder().query(query);
        let answer = self
            .client
            .index_search()
            .index_id(index_id)
            .body(request)
            .send()
            .await
            .map_err(ApiError::from);
        match answer {
            Ok(results) => Ok(results.into_inner().hits.into_iter().next().map(|h| h.text)),
            Err(error) if error.code() == Some(ErrorCode::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }
}
