//! Test harness: a real server on 127.0.0.1:0 with its own data dir and database (SQLite in
//! a temp dir, or a fresh PostgreSQL database when `VIDEOVECTOR_TEST_DATABASE_URL` is set),
//! and helpers that create organisations, operators, tokens and keys. Every answer any of
//! its servers gives is held to the committed spec ([`contract`]).

pub mod balancer;
pub mod child;
pub mod common_calls;
pub mod contract;
pub mod embeddings_server;
pub mod faults;
pub mod private_postgres;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use contract::{ContractGuard, ContractLog};

use sea_orm::ConnectionTrait;
use videovector_api_spec::{spec::BASE_PATH, Scope};
use videovector_server::{
    config::Config,
    db::{columns::Role, entities::operator},
    services::auth::{create_operator, create_organization},
    RunningServer,
};

pub const PG_ENV: &str = "VIDEOVECTOR_TEST_DATABASE_URL";

pub struct TestServer {
    pub server: RunningServer,
    /// Every answer this server gave, checked against the committed spec.
    pub contract: Arc<ContractLog>,
    contract_guard: ContractGuard,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    config: Config,
    pg_admin: Option<(String, String)>,
}

/// An organisation with an admin operator, ready to mint tokens for.
pub struct TestOrg {
    pub org_id: String,
    pub operator: operator::Model,
    pub password: String,
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        nanos.as_secs(),
        std::process::id(),
        nanos.subsec_nanos()
    )
}

/// A fresh PostgreSQL database for this test; databases of earlier runs older than an hour
/// are dropped first.
pub async fn fresh_pg_database(admin_url: &str) -> anyhow::Result<(String, String)> {
    let admin = videovector_server::db::connect(admin_url).await?;
    let rows = admin
        .query_all(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            "SELECT datname FROM pg_database WHERE datname LIKE 'vvt\\_%'",
        ))
        .await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    for row in rows {
        let name: String = row.try_get_by_index(0)?;
        let created: u64 = name
            .split('_')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if now.saturating_sub(created) > 3600 {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
    let name = format!("vvt_{}", unique_suffix());
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    admin.close().await?;
    let (base, _) = admin_url
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("bad database URL"))?;
    Ok((format!("{base}/{name}"), name))
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let admin_url = std::env::var(PG_ENV).ok().filter(|url| !url.is_empty());
        Self::start_on(admin_url, adjust).await
    }

    /// A server on a fresh database of the PostgreSQL server at `admin_url` (whatever
    /// `VIDEOVECTOR_TEST_DATABASE_URL` says).
    pub async fn start_on_postgres(
        admin_url: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_on(Some(admin_url.to_string()), adjust).await
    }

    /// A server on a fresh database of the PostgreSQL server at `admin_url`, or on SQLite.
    async fn start_on(admin_url: Option<String>, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg_admin) = match admin_url {
            Some(admin_url) => {
                let (url, name) = fresh_pg_database(&admin_url)
                    .await
                    .expect("creating a test database");
                (url, Some((admin_url, name)))
            }
            _ => (
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.path().join("test.db").display()
                ),
                None,
            ),
        };
        let mut config = base_config(data_dir.path(), &database_url);
        adjust(&mut config);
        // Installed after `adjust`, so no test can leave it out.
        let contract = Arc::new(ContractLog::default());
        let server = videovector_server::start_observed(config.clone(), Some(contract.tap()))
            .await
            .expect("server starts");
        TestServer {
            server,
            contract_guard: ContractGuard(contract.clone()),
            contract,
            data_dir,
            database_url,
            config,
            pg_admin,
        }
    }

    /// Stops the server, lets `between` change the data dir (as a crash or an operator
    /// might), and starts a new server on the same data dir and database.
    pub async fn restart(self, between: impl FnOnce(&std::path::Path)) -> TestServer {
        let TestServer {
            server,
            contract,
            contract_guard,
            data_dir,
            database_url,
            config,
            pg_admin,
        } = self;
        server.stop().await.expect("server stops");
        between(data_dir.path());
        let server = videovector_server::start_observed(config.clone(), Some(contract.tap()))
            .await
            .expect("server restarts");
        TestServer {
            server,
            contract,
            contract_guard,
            data_dir,
            database_url,
            config,
            pg_admin,
        }
    }

    /// Another instance on the same database with its own data dir (so its own search
    /// index copy) and the same server secrets, as behind a load balancer.
    pub async fn second_instance(&self) -> TestServer {
        self.second_instance_with(|_| {}).await
    }

    /// [`Self::second_instance`] with its configuration adjusted.
    pub async fn second_instance_with(&self, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let config = self.config.clone();
        Self::join_with(config, &self.secrets_dir(), adjust).await
    }

    /// The directory of this server's secrets (pepper, signing and secrets keys), which
    /// every instance on its database shares.
    pub fn secrets_dir(&self) -> std::path::PathBuf {
        self.data_dir.path().join("secrets")
    }

    /// An instance on `database_url` with the secrets of `secrets_from` (another
    /// instance's [`Self::secrets_dir`]), its own data dir, and the test configuration.
    pub async fn join(
        database_url: &str,
        secrets_from: &std::path::Path,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = base_config(std::path::Path::new("."), database_url);
        Self::join_with(base, secrets_from, adjust).await
    }

    async fn join_with(
        mut config: Config,
        secrets_from: &std::path::Path,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let secrets = data_dir.path().join("secrets");
        std::fs::create_dir_all(&secrets).expect("secrets dir");
        for name in ["api_key_pepper", "jwt_signing_secret", "secrets_key"] {
            std::fs::copy(secrets_from.join(name), secrets.join(name))
                .expect("copying a server secret");
        }
        config.data_dir = data_dir.path().to_path_buf();
        adjust(&mut config);
        let contract = Arc::new(ContractLog::default());
        let server = videovector_server::start_observed(config.clone(), Some(contract.tap()))
            .await
            .expect("another instance starts");
        let database_url = config.database_url();
        TestServer {
            server,
            contract_guard: ContractGuard(contract.clone()),
            contract,
            data_dir,
            database_url,
            config,
            pg_admin: None,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The configuration this server runs with.
    /// Where `GET /metrics` listens, when the test set `metrics_listen`.
    pub fn metrics_url(&self) -> Option<String> {
        self.server
            .metrics_addr
            .map(|addr| format!("http://{addr}/metrics"))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}{BASE_PATH}{path}", self.url())
    }

    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.server.state.db
    }

    /// A new organisation with an admin operator (verified or not).
    pub async fn org(&self, verified: bool) -> TestOrg {
        let org = create_organization(self.db(), "Test organisation")
            .await
            .expect("org");
        let email = format!("op-{}@example.com", unique_suffix());
        let password = "a-long-test-password".to_string();
        let operator =
            create_operator(self.db(), &org.id, &email, &password, Role::Admin, verified)
                .await
                .expect("operator");
        TestOrg {
            org_id: org.id,
            operator,
            password,
        }
    }

    /// A JWT from the built-in issuer for the org's operator, holding `scopes`.
    pub fn token(&self, org: &TestOrg, scopes: &[Scope]) -> String {
        self.server
            .state
            .auth
            .mint_for(&org.operator, Some(scopes.to_vec()))
            .expect("mint")
            .access_token
    }

    /// A JWT whose session is not verified.
    pub fn unverified_token(&self, org: &TestOrg, scopes: &[Scope]) -> String {
        let mut operator = org.operator.clone();
        operator.verified = false;
        self.server
            .state
            .auth
            .mint_for(&operator, Some(scopes.to_vec()))
            .expect("mint")
            .access_token
    }

    /// A generated client holding an admin JWT of `org`.
    pub fn admin_client(&self, org: &TestOrg) -> videovector_client::Client {
        videovector_client::with_bearer_token(&self.url(), &self.token(org, &[Scope::Admin]))
            .expect("client")
    }

    /// Creates an API key with `scopes` through the API; returns (key id, secret).
    pub async fn api_key(&self, org: &TestOrg, scopes: &[Scope]) -> (String, String) {
        use videovector_client::types;
        let scopes = scopes
            .iter()
            .map(|s| match s {
                Scope::Search => types::Scope::Search,
                Scope::Read => types::Scope::Read,
                Scope::Write => types::Scope::Write,
                Scope::Admin => types::Scope::Admin,
            })
            .collect::<Vec<_>>();
        let created = self
            .admin_client(org)
            .api_key_create()
            .body(types::ApiKeyCreate {
                name: "test key".parse().expect("valid name"),
                scopes,
                expires_in_days: None,
                rate_limits: Vec::new(),
                client_rate_limits: Vec::new(),
                allowed_cidrs: Vec::new(),
                allowed_origins: Vec::new(),
                metadata: Default::default(),
                owner_id: None,
                index_ids: Vec::new(),
                max_top_k: None,
            })
            .send()
            .await
            .expect("key created")
            .into_inner();
        (created.key.id, created.secret)
    }

    pub async fn stop(self) {
        let TestServer {
            server,
            pg_admin,
            data_dir,
            contract_guard,
            ..
        } = self;
        let _ = server.stop().await;
        server_dropped(pg_admin).await;
        drop(data_dir);
        drop(contract_guard);
    }
}

/// The configuration every test server starts from.
fn base_config(data_dir: &std::path::Path, database_url: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        database_url: Some(database_url.to_string()),
        bootstrap_email: Some("bootstrap@example.com".into()),
        bootstrap_password: Some("bootstrap-password".into()),
        log: "warn".into(),
        rate_limits: test_rate_limits(),
        ..Config::default()
    }
}

/// The server's default limits in tests: one per family, named as in production, too high
/// for any test to reach (tests of limits set their own); usage written every 100 ms.
fn test_rate_limits() -> videovector_server::config::RateLimitsConfig {
    use videovector_server::config::{ConfiguredLimit, RateLimitsConfig};
    RateLimitsConfig {
        defaults: ["search", "read", "write"]
            .map(|family| {
                ConfiguredLimit::new(&format!("{family}_per_second"), family, 1_000_000, 1)
            })
            .to_vec(),
        max_requests_per_second: 10_000,
        usage_flush_ms: 100,
    }
}

async fn server_dropped(pg_admin: Option<(String, String)>) {
    if let Some((admin_url, name)) = pg_admin {
        if let Ok(admin) = videovector_server::db::connect(&admin_url).await {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// A tiny HTTP server on 127.0.0.1 for connector and webhook tests: answers `GET path` with
/// the body registered for it (404 otherwise), answers any `POST` with `post_status`, and
/// records every request (head and body) it receives. A request for a path given to
/// [`LocalHttp::stall_next`] is recorded and never answered (as a hung peer).
pub struct LocalHttp {
    pub base_url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<RecordedRequest>>>,
    /// Status code answered to POSTs; change it while the test runs.
    pub post_status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    stalls: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    /// Milliseconds every answer waits before it is sent (a slow peer); 0 at first.
    pub answer_delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// One request the [`LocalHttp`] server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl LocalHttp {
    pub async fn start(files: Vec<(&str, Vec<u8>)>) -> LocalHttp {
        use std::sync::{atomic::AtomicU16, Arc, Mutex};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let files: Arc<std::collections::BTreeMap<String, Vec<u8>>> =
            Arc::new(files.into_iter().map(|(p, b)| (p.to_string(), b)).collect());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let post_status = Arc::new(AtomicU16::new(200));
        let stalls = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let answer_delay_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (recorded, status, stalling, delay) = (
            requests.clone(),
            post_status.clone(),
            stalls.clone(),
            answer_delay_ms.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (files, recorded, status, stalling, delay) = (
                    files.clone(),
                    recorded.clone(),
                    status.clone(),
                    stalling.clone(),
                    delay.clone(),
                );
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut buf = [0u8; 65536];
                    let (head_end, content_length) = loop {
                        let n = match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        data.extend_from_slice(&buf[..n]);
                        if let Some(pos) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&data[..pos]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (pos + 4, length);
                        }
                    };
                    while data.len() < head_end + content_length {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => data.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
                    let mut lines = head.lines();
                    let mut first = lines.next().unwrap_or_default().split_whitespace();
                    let method = first.next().unwrap_or_default().to_string();
                    let path = first.next().unwrap_or_default().to_string();
                    let headers = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                        .collect();
                    let body = data[head_end..].to_vec();
                    recorded.lock().unwrap().push(RecordedRequest {
                        method: method.clone(),
                        path: path.clone(),
                        headers,
                        body,
                    });
                    if stalling.lock().unwrap().remove(&path) {
                        // Held open, unanswered, until the peer goes away or the test ends.
                        let _ = socket.read(&mut buf).await;
                        return;
                    }
                    let wait = delay.load(std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    let (code, payload) = if method == "POST" {
                        (
                            status.load(std::sync::atomic::Ordering::SeqCst),
                            b"ok".to_vec(),
                        )
                    } else {
                        match files.get(&path) {
                            Some(body) => (200, body.clone()),
                            None => (404, b"not found".to_vec()),
                        }
                    };
                    let response = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        payload.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.write_all(&payload).await;
                });
            }
        });
        LocalHttp {
            base_url,
            requests,
            post_status,
            stalls,
            answer_delay_ms,
        }
    }

    /// The next request for `path` is recorded and never answered.
    pub fn stall_next(&self, path: &str) {
        self.stalls.lock().unwrap().insert(path.to_string());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// A test fixture's bytes (`tests/fixtures/...`).
/// Sends `request` and reads its answer: the status and the JSON body (`Null` when the body
/// is not JSON). For tests that must send what the typed client cannot.
pub async fn answer(request: reqwest::RequestBuilder) -> (reqwest::StatusCode, serde_json::Value) {
    let answer = request.send().await.expect("the server answers");
    let status = answer.status();
    let bytes = answer.bytes().await.expect("a body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(path),
    )
    .expect("fixture exists")
}
