//! Assembles the service from a [`Config`]: database, secrets, search, services, routes;
//! and runs it on a listener (the binary's `serve`, and the tests on 127.0.0.1:0).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    endpoint::BoxEndpoint,
    get, handler,
    http::StatusCode,
    listener::TcpAcceptor,
    middleware::{CatchPanic, Tracing},
    web::Data,
    EndpointExt, IntoResponse, Response, Route,
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::oneshot;
use videovector_api_spec::{services::Services, COMMITTED_SPEC};

use super::{
    docs,
    idempotency::{BodyFingerprints, Idempotency},
    keep_alive::keep_connections_usable,
    lingering::LingeringAcceptor,
    problems::ProblemMapping,
    request_checks::{large_body_budget, RequestChecks, RequestContract},
    response_tap, site,
};
use crate::{
    auth::{
        authenticator::Authenticator,
        guard::Guard,
        jwt::{TokenIssuer, TokenVerifier},
        rate_limit::LoginLimiter,
        route_table::RouteTable,
        server_secrets,
    },
    client_address::{self, TrustedProxies},
    config::Config,
    db::{self, direct::DirectSqlite, point_reads::PointReads, segment_store::SegmentStore},
    events::Events,
    mcp::{catalog::Catalog, dispatch::Dispatch, handler::VideoVectorMcp, transport::McpEndpoint},
    search::{Indexer, SearchEngine},
    secrets_at_rest::Keyring,
    services::{
        api_keys::ApiKeys,
        auth::{Auth, LoginLimits},
        connectors::Connectors,
        indexes::Indexes,
        jobs::Jobs,
        key_checks,
        mcp::Mcp,
        page_token::PageTokens,
        prompts::Prompts,
        resealing::{reseal_all, Reseal},
        retrieval::Retrieval,
        runs::Runs,
        webhooks::Webhooks,
    },
    workers::{deliveries::DeliveryWorker, jobs::JobWorker, runs::RunWorker},
};

/// Request bodies above this are refused with 413 (a full batch of 1,000 long segments fits).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Everything the service holds.
pub struct AppState {
    pub config: Config,
    pub db: DatabaseConnection,
    pub auth: Arc<Auth>,
    pub authenticator: Arc<Authenticator>,
    pub indexer: Arc<Indexer>,
    pub table: Arc<RouteTable>,
    /// Every operation's declared parameters and body, checked before handlers run.
    pub request_contract: Arc<RequestContract>,
    /// The MCP tools: every operation an API key may call.
    pub catalog: Arc<Catalog>,
    /// Cancelled at shutdown: ends the MCP requests in flight (which would otherwise hold
    /// the graceful shutdown for its whole timeout) and the notice follower.
    pub shutdown: tokio_util::sync::CancellationToken,
    pub pepper: Vec<u8>,
    /// Seals secrets at rest.
    pub keyring: Arc<Keyring>,
    pub retrieval: Arc<Retrieval>,
    /// The API-key and index reads every authenticated request makes.
    pub reads: Arc<PointReads>,
    /// Segment batches, written and read back.
    pub segments: SegmentStore,
    /// Wakes the run worker when a run is queued.
    pub run_wake: Arc<tokio::sync::Notify>,
    /// Wakes the job worker when a job is queued.
    pub job_wake: Arc<tokio::sync::Notify>,
    /// Queues webhook deliveries (and wakes their worker).
    pub events: Events,
}

/// The keyring sealing secrets at rest, from config or the data dir.
pub fn load_keyring(config: &Config) -> anyhow::Result<Keyring> {
    Keyring::load(
        config.secrets_key.as_deref(),
        &config.data_dir.join("secrets").join("secrets_key"),
    )
}

/// Secrets from config or the data dir.
pub fn load_secrets(config: &Config) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let pepper = server_secrets::load_or_create(
        config.api_key_pepper.as_deref(),
        &config.data_dir.join("secrets").join("api_key_pepper"),
    )?;
    let signing = server_secrets::load_or_create(
        config.jwt.signing_secret.as_deref(),
        &config.data_dir.join("secrets").join("jwt_signing_secret"),
    )?;
    Ok((pepper, signing))
}

impl AppState {
    /// Opens the database (migrating it), recovers the search indexes, and bootstraps an
    /// operator on first start.
    pub async fn init(config: Config) -> anyhow::Result<Arc<AppState>> {
        let db = db::open(&config).await?;
        if let Some((email, generated)) = crate::services::auth::bootstrap(
            &db,
            config.bootstrap_email.as_deref(),
            config.bootstrap_password.as_deref(),
        )
        .await?
        {
            tracing::info!(%email, "created the bootstrap organisation and admin operator");
            if let Some(password) = generated {
                // Printed once, to the console only, never to the log.
                eprintln!(
                    "\nBootstrap operator created.\n  email:    {email}\n  password: {password}\n\
                     Store it now: it is not shown again. Set VIDEOVECTOR_BOOTSTRAP_PASSWORD to choose it.\n"
                );
            }
        }
        let (pepper, signing) = load_secrets(&config)?;
        let keyring = Arc::new(load_keyring(&config)?);
        key_checks::verify(&db, &keyring).await?;
        // What an older version stored in clear is sealed before anything reads it.
        let report = reseal_all(&db, &keyring, Reseal::Plaintext).await?;
        if report.resealed > 0 {
            tracing::info!(count = report.resealed, "sealed secrets stored in clear");
        }
        let issuer = Arc::new(TokenIssuer::new(&config.jwt, &signing));
        let verifier = TokenVerifier::new(&config.jwt, &signing).await?;
        let direct = DirectSqlite::for_url(&config.database_url()).map(Arc::new);
        let reads = Arc::new(PointReads::new(direct.clone(), db.clone()));
        let segments = SegmentStore::new(db.clone(), direct, reads.clone());
        let authenticator = Arc::new(Authenticator::new(
            db.clone(),
            reads.clone(),
            pepper.clone(),
            verifier,
        ));
        let engine = Arc::new(SearchEngine::new(config.search_dir())?);
        let indexer = Indexer::start(db.clone(), segments.clone(), engine).await?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        crate::cluster::follow(
            &config.database_url(),
            reads.clone(),
            indexer.clone(),
            shutdown.child_token(),
        )
        .await?;
        let table = Arc::new(RouteTable::from_spec(COMMITTED_SPEC)?);
        let request_contract = Arc::new(RequestContract::from_spec(COMMITTED_SPEC)?);
        let catalog = Arc::new(Catalog::from_spec(COMMITTED_SPEC)?);
        let auth = Arc::new(Auth::new(
            db.clone(),
            issuer,
            LoginLimiter::new(db.clone(), Duration::from_secs(config.login_window_seconds)),
            LoginLimits {
                per_pair: config.login_max_failures,
                per_client: config.login_max_failures_per_client,
            },
        ));
        spawn_idempotency_sweeper(db.clone());
        let retrieval = Arc::new(Retrieval {
            reads: reads.clone(),
            indexer: indexer.clone(),
            tokens: PageTokens::new(&pepper),
        });
        let run_wake = Arc::new(tokio::sync::Notify::new());
        let job_wake = Arc::new(tokio::sync::Notify::new());
        let events = Events {
            db: db.clone(),
            wake: Arc::new(tokio::sync::Notify::new()),
        };
        if config.workers {
            let lease = std::time::Duration::from_millis(config.queue_lease_ms);
            spawn_change_log_compactor(db.clone(), config.segment_changes_retained);
            Arc::new(RunWorker {
                db: db.clone(),
                retrieval: retrieval.clone(),
                wake: run_wake.clone(),
                events: events.clone(),
                lease,
            })
            .spawn();
            Arc::new(JobWorker {
                db: db.clone(),
                segments: segments.clone(),
                indexer: indexer.clone(),
                wake: job_wake.clone(),
                allow_private_targets: config.allow_private_targets,
                events: events.clone(),
                keyring: keyring.clone(),
                lease,
            })
            .spawn();
            Arc::new(DeliveryWorker {
                db: db.clone(),
                wake: events.wake.clone(),
                allow_private_targets: config.allow_private_targets,
                retry_base_ms: config.webhook_retry_base_ms,
                max_attempts: config.webhook_max_attempts.max(1),
                keyring: keyring.clone(),
                lease,
            })
            .spawn();
        }
        Ok(Arc::new(AppState {
            config,
            db,
            auth,
            authenticator,
            indexer,
            table,
            request_contract,
            catalog,
            shutdown,
            pepper,
            keyring,
            retrieval,
            reads,
            segments,
            run_wake,
            job_wake,
            events,
        }))
    }

    fn services(&self, public_url: &str) -> anyhow::Result<Services> {
        Ok(Services {
            auth: self.auth.clone(),
            api_keys: Arc::new(ApiKeys {
                db: self.db.clone(),
                reads: self.reads.clone(),
                pepper: self.pepper.clone(),
                prefix: self.config.api_key_prefix.clone(),
            }),
            indexes: Arc::new(Indexes {
                db: self.db.clone(),
                reads: self.reads.clone(),
                segments: self.segments.clone(),
                indexer: self.indexer.clone(),
            }),
            retrieval: self.retrieval.clone(),
            prompts: Arc::new(Prompts {
                db: self.db.clone(),
            }),
            runs: Arc::new(Runs {
                db: self.db.clone(),
                wake: self.run_wake.clone(),
                events: self.events.clone(),
            }),
            connectors: Arc::new(Connectors {
                db: self.db.clone(),
                allow_private_targets: self.config.allow_private_targets,
                job_wake: self.job_wake.clone(),
                keyring: self.keyring.clone(),
            }),
            jobs: Arc::new(Jobs {
                db: self.db.clone(),
                wake: self.job_wake.clone(),
                events: self.events.clone(),
            }),
            webhooks: Arc::new(Webhooks {
                db: self.db.clone(),
                allow_private_targets: self.config.allow_private_targets,
                events: self.events.clone(),
                keyring: self.keyring.clone(),
            }),
            mcp: Arc::new(Mcp::new(public_url.to_string(), &self.catalog)),
        })
    }

    /// The MCP server: its tool calls run through `api` (below the base path), observed by
    /// the response tap as REST requests are.
    fn mcp_endpoint(
        self: &Arc<Self>,
        api: Arc<BoxEndpoint<'static, Response>>,
        public_url: &str,
    ) -> anyhow::Result<McpEndpoint> {
        let tap = self.config.response_tap.clone();
        let calls: Arc<BoxEndpoint<'static, Response>> = Arc::new(
            Route::new()
                .nest("/api/v2", api)
                .data(self.clone())
                .around(move |next, req| response_tap::observe(next, req, tap.clone()))
                .map_to_response()
                .boxed(),
        );
        let mut allowed_hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        if let Some(host) = reqwest::Url::parse(public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            allowed_hosts.push(host);
        }
        Ok(McpEndpoint::new(
            VideoVectorMcp {
                catalog: self.catalog.clone(),
                dispatch: Dispatch::new(calls),
            },
            self.authenticator.clone(),
            allowed_hosts,
            self.shutdown.child_token(),
        ))
    }

    /// The whole HTTP application.
    pub fn routes(
        self: &Arc<Self>,
        public_url: &str,
    ) -> anyhow::Result<impl poem::Endpoint<Output = Response>> {
        let api: Arc<BoxEndpoint<'static, Response>> = Arc::new(
            videovector_api_spec::spec::service()
                .with(Idempotency {
                    db: self.db.clone(),
                    keyring: self.keyring.clone(),
                    fingerprints: BodyFingerprints::new(&self.pepper),
                })
                .with(RequestChecks {
                    contract: self.request_contract.clone(),
                    large_bodies: large_body_budget(),
                })
                .with(Guard {
                    table: self.table.clone(),
                    authenticator: self.authenticator.clone(),
                })
                .data(self.services(public_url)?)
                .with(ProblemMapping)
                .boxed(),
        );
        let tap = self.config.response_tap.clone();
        let trusted = Arc::new(TrustedProxies::from_config(&self.config.trusted_proxies)?);
        let mcp = self.mcp_endpoint(api.clone(), public_url)?;
        Ok(site::mount(Route::new())?
            .at(docs::SPEC_PATH, get(docs::openapi_json))
            .nest("/api/v2", api)
            .at("/mcp", mcp)
            .at("/docs", get(docs::docs_root))
            .at("/docs/", get(docs::docs_index))
            .at("/docs/*path", get(docs::docs_file))
            .at("/healthz", get(healthz))
            .at("/readyz", get(readyz))
            .data(docs::swagger_config())
            .data(self.clone())
            .around(limit_body)
            .around(move |next, req| client_address::find_client(next, req, trusted.clone()))
            // A panic in a handler is a logged 500 problem, not a dropped connection.
            .with(CatchPanic::new())
            .with(ProblemMapping)
            .with(Tracing)
            .around(move |next, req| response_tap::observe(next, req, tap.clone()))
            .around(keep_connections_usable)
            .map_to_response())
    }
}

/// Refuses a body above [`MAX_BODY_BYTES`] with 413: a declared length before reading, any
/// other body (chunked, or HTTP/2 with no length at all) as soon as it grows past the limit.
/// No framing gets past it: an h2c body carries neither `Content-Length` nor
/// `Transfer-Encoding`, and was read in full before this.
async fn limit_body<E: poem::Endpoint>(next: E, mut req: poem::Request) -> poem::Result<Response> {
    use tokio::io::AsyncReadExt;
    let too_large = || {
        poem::Error::from_string(
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    };
    match req.headers().get(poem::http::header::CONTENT_LENGTH) {
        Some(length) => {
            let declared = length.to_str().ok().and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
                return Err(too_large());
            }
        }
        None => {
            let mut body = Vec::new();
            req.take_body()
                .into_async_read()
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut body)
                .await
                .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::BAD_REQUEST))?;
            if body.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            req.set_body(body);
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

#[handler]
fn healthz() -> &'static str {
    "ok"
}

#[handler]
async fn readyz(state: Data<&Arc<AppState>>) -> Response {
    match state.db.execute_unprepared("SELECT 1").await {
        Ok(_) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

fn spawn_idempotency_sweeper(db: DatabaseConnection) {
    use crate::db::entities::idempotency_record as record;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    tokio::spawn(async move {
        loop {
            let result = record::Entity::delete_many()
                .filter(record::Column::ExpiresAt.lt(chrono::Utc::now()))
                .exec(&db)
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "sweeping expired idempotency records");
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

/// Compacts the segment change log every minute (see [`crate::db::change_log`]).
fn spawn_change_log_compactor(db: DatabaseConnection, retained: u64) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let retained = i64::try_from(retained).unwrap_or(i64::MAX);
            if let Err(e) = crate::db::change_log::compact(&db, retained).await {
                tracing::error!(error = %e, "compacting the segment change log");
            }
        }
    });
}

/// A server running in the background (tests, `serve`).
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The server's root URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish (up to 10 s).
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = (&mut self.task).await.unwrap_or(Ok(()));
        if let Err(e) = self.state.indexer.stop().await {
            tracing::error!(error = %e, "committing staged search changes at shutdown");
        }
        served
    }

    /// Runs until the server stops by itself.
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

/// Binds `config.listen` and serves in the background.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let state = AppState::init(config).await?;
    let app = state.routes(&public_url)?;
    let shutdown = state.shutdown.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        poem::Server::new_with_acceptor(LingeringAcceptor(TcpAcceptor::from_tokio(listener)?))
            .run_with_graceful_shutdown(
                app,
                async move {
                    let _ = rx.await;
                    shutdown.cancel();
                },
                Some(Duration::from_secs(10)),
            )
            .await
    });
    Ok(RunningServer {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[handler]
    fn echo_length(body: Vec<u8>) -> String {
        body.len().to_string()
    }

    /// A body with no declared length and no chunked framing (what an h2c client sends) is
    /// held to the limit like any other.
    #[tokio::test]
    async fn a_body_without_any_framing_header_is_held_to_the_limit() {
        let over = poem::Request::builder()
            .method(poem::http::Method::POST)
            .body(vec![0u8; MAX_BODY_BYTES + 1]);
        assert!(over
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .is_none());
        let refused = limit_body(echo_length, over).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);

        let within = poem::Request::builder()
            .method(poem::http::Method::POST)
            .body(vec![0u8; 1024]);
        let answer = limit_body(echo_length, within).await.unwrap();
        assert_eq!(answer.into_body().into_string().await.unwrap(), "1024");
    }
}
