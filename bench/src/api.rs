//! The API as the bench's client sees it: one logged-in operator per server, its JWT, an
//! admin API key, and the few calls the scenarios make to set up.

use serde_json::{json, Value};

use crate::server_process::{EMAIL, PASSWORD};

/// The index every scenario loads and queries (with the built-in embedder, the default).
pub const INDEX: &str = "idx_bench";
/// An index searched by words only (no embedder): the ingest scenario's baseline.
pub const WORDS_ONLY_INDEX: &str = "idx_bench_words";

pub struct Api {
    pub http: reqwest::Client,
    /// `<server>/api/v2`.
    pub base: String,
    /// The bootstrap operator's JWT.
    pub token: String,
    pub admin_key: String,
}

impl Api {
    /// Logs in to the server at `url` and creates an admin key (the index is not created:
    /// see [`Api::create_index`]).
    pub async fn login(url: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let base = format!("{url}/api/v2");
        let token: Value = http
            .post(format!("{base}/auth/token"))
            .json(&json!({"email": EMAIL, "password": PASSWORD}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = token["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut api = Api {
            http,
            base,
            token,
            admin_key: String::new(),
        };
        api.admin_key = api.key(&["admin"]).await?.1;
        Ok(api)
    }

    /// Creates [`INDEX`].
    pub async fn create_index(&self) -> anyhow::Result<()> {
        self.create_index_with(json!({"id": INDEX, "name": "Bench"}))
            .await
    }

    /// Creates an index from its `IndexCreate` body.
    pub async fn create_index_with(&self, body: Value) -> anyhow::Result<()> {
        let created = self
            .http
            .post(format!("{}/indexes", self.base))
            .header("X-API-Key", &self.admin_key)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            created.status().is_success(),
            "creating the index: {}",
            created.status()
        );
        Ok(())
    }

    /// Creates an API key with `scopes`; returns (id, secret).
    /// The API-key path the request-path scenarios measure, on a fresh server: the bench
    /// index created and a `read` key made; returns the client, the index's URL and the key.
    pub async fn read_key_target(
        server_url: &str,
    ) -> anyhow::Result<(reqwest::Client, String, String)> {
        let api = Api::login(server_url).await?;
        api.create_index().await?;
        let (_, key) = api.key(&["read"]).await?;
        Ok((
            api.http.clone(),
            format!("{}/indexes/{INDEX}", api.base),
            key,
        ))
    }

    pub async fn key(&self, scopes: &[&str]) -> anyhow::Result<(String, String)> {
        let created: Value = self
            .http
            .post(format!("{}/api-keys", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"name": "bench", "scopes": scopes}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
        Ok((field(&created["key"]["id"]), field(&created["secret"])))
    }

    /// Revokes the key `id`.
    pub async fn revoke(&self, id: &str) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/api-keys/{id}/revoke", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The status of `GET url` with `header`, its body read; `None` if it was not answered.
    pub async fn get_status(&self, url: &str, header: (&str, &str)) -> Option<u16> {
        let answer = self
            .http
            .get(url)
            .header(header.0, header.1)
            .send()
            .await
            .ok()?;
        let status = answer.status().as_u16();
        answer.bytes().await.ok()?;
        Some(status)
    }

    /// `POST` a JSON body to `url` with the admin key; the answer's JSON if it succeeded.
    pub async fn post_json(&self, url: &str, body: String) -> anyhow::Result<Value> {
        let answer = self
            .http
            .post(url)
            .header("X-API-Key", &self.admin_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = answer.status();
        anyhow::ensure!(status.is_success(), "{url}: {status}");
        Ok(answer.json().await?)
    }
}
