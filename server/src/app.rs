//! The composition root: builds the service from a [`Config`] (storage, secrets, search,
//! authentication, services, workers and the HTTP surface) for `serve` and the tests, the
//! storage alone for `reindex`, and the secrets for `reseal-secrets` and `token`; and runs
//! it on a listener.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::listener::TcpAcceptor;
use sea_orm::DatabaseConnection;
use tokio::sync::oneshot;
use videovector_api_spec::{contract::Contract, services::Services};

use crate::{
    audit::AuditLog,
    auth::{
        authenticator::Authenticator,
        jwt::{TokenIssuer, TokenVerifier},
        leak_reporters::LeakReporters,
        rate_limit::LoginLimiter,
        route_table::RouteTable,
        server_secrets,
    },
    client_address::TrustedProxies,
    config::Config,
    db::{
        backend::Backend, direct::DirectSqlite, point_reads::PointReads,
        segment_store::SegmentStore,
    },
    embed::Embedders,
    events::Events,
    http::{
        lingering::LingeringAcceptor, request_checks::RequestContract, response_tap::ResponseTap,
        routes::Surface,
    },
    mcp::catalog::Catalog,
    metrics::{requests::RequestMetrics, sampled::Sources, Metrics},
    rate_limits::{limiter::RateLimiter, policy::Policy, usage::UsageCounter},
    search::{Indexer, SearchEngine},
    secrets_at_rest::{
        key_checks,
        resealing::{reseal_all, Reseal},
        Keyring,
    },
    services::{
        api_keys::ApiKeys,
        audit_events::AuditEvents,
        auth::{Auth, LoginLimits},
        connectors::Connectors,
        indexes::Indexes,
        jobs::Jobs,
        mcp::Mcp,
        organization::Organizations,
        page_token::PageTokens,
        prompts::Prompts,
        rate_limits::RateLimits,
        readiness::Health,
        retrieval::Retrieval,
        runs::Runs,
        webhooks::Webhooks,
    },
    traces::{database::record_statement, Exporter as TraceExporter, Tracing},
    workers::{
        audit_retention::AuditRetention, deliveries::DeliveryWorker, jobs::JobWorker,
        key_expiry::KeyExpiryNotices, reembeddings::ReembedWorker, runs::RunWorker,
    },
};

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
    /// Turns segments and queries into vectors, by each index's embedder.
    pub embedders: Arc<Embedders>,
    pub retrieval: Arc<Retrieval>,
    /// The API-key and index reads every authenticated request makes.
    pub reads: Arc<PointReads>,
    /// Segment batches, written and read back.
    pub segments: SegmentStore,
    /// Wakes the run worker when a run is queued.
    pub run_wake: Arc<tokio::sync::Notify>,
    /// Wakes the job worker when a job is queued.
    pub job_wake: Arc<tokio::sync::Notify>,
    /// Wakes the re-embedding worker when a change of embedder is queued.
    pub reembed_wake: Arc<tokio::sync::Notify>,
    /// Queues webhook deliveries (and wakes their worker).
    pub events: Events,
    /// Counts every authenticated request against its rate limits.
    pub limiter: Arc<RateLimiter>,
    /// Counts every answer to an API key, written in batches.
    pub usage: Arc<UsageCounter>,
    /// The secret scanners whose signed reports of leaked keys are believed.
    pub leak_reporters: Arc<LeakReporters>,
    /// Appends to the organisations' audit chains.
    pub audit: AuditLog,
    /// The Prometheus metrics, when `metrics_listen` is set.
    pub metrics: Option<Arc<Metrics>>,
    /// Which database this instance runs on.
    pub backend: Backend,
    /// The tracer, when traces are on.
    pub tracing: Option<Tracing>,
    /// Sends the spans; flushed when the server stops.
    pub trace_exporter: Option<Arc<TraceExporter>>,
}

/// The database with the reads and writes built over it: what `serve` and `reindex` share.
pub struct Storage {
    pub db: DatabaseConnection,
    pub backend: Backend,
    /// The API-key and index reads every authenticated request makes.
    pub reads: Arc<PointReads>,
    /// Segment batches, written and read back.
    pub segments: SegmentStore,
}

impl Storage {
    /// Opens the configured database (migrating it) with its reads and writes.
    pub async fn open(config: &Config) -> anyhow::Result<Storage> {
        let db = crate::db::open(config).await?;
        Storage::over(config, db)
    }

    /// The reads and writes over an open database: a SQLite file also gets its direct
    /// connections (see `db::direct`).
    fn over(config: &Config, db: DatabaseConnection) -> anyhow::Result<Storage> {
        let backend = Backend::from_url(&config.database_url())?;
        let direct = match &backend {
            Backend::Sqlite { file } => Some(Arc::new(DirectSqlite::open(file.clone()))),
            Backend::Postgres => None,
        };
        let reads = Arc::new(PointReads::new(direct.clone(), db.clone()));
        let segments = SegmentStore::new(db.clone(), direct, reads.clone());
        Ok(Storage {
            db,
            backend,
            reads,
            segments,
        })
    }
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
        let mut db = crate::db::open(&config).await?;
        let (tracing, trace_exporter) = match Tracing::from_config(&config.traces)? {
            Some((tracing, exporter)) => {
                let system = match sea_orm::ConnectionTrait::get_database_backend(&db) {
                    sea_orm::DbBackend::Postgres => "postgresql",
                    _ => "sqlite",
                };
                // Before the connection is cloned: every clone keeps the callback.
                db.set_metric_callback(move |info| record_statement(system, info));
                (Some(tracing), Some(Arc::new(exporter)))
            }
            None => (None, None),
        };
        let bootstrapped = crate::services::auth::bootstrap(
            &db,
            config.bootstrap_email.as_deref(),
            config.bootstrap_password.as_deref(),
        )
        .await?;
        if bootstrapped.is_none()
            && (config.bootstrap_email.is_some() || config.bootstrap_password.is_some())
        {
            // A changed password here would otherwise fail every login without a word.
            tracing::warn!(
                "bootstrap_email and bootstrap_password (VIDEOVECTOR_BOOTSTRAP_*) are ignored: \
                 the database already has an organisation, so no operator is created and no \
                 password changed; add operators with `videovector operator create`"
            );
        }
        if let Some((email, generated)) = bootstrapped {
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
        let audit = AuditLog::new(&pepper, &config.jwt.issuer);
        let verifier = TokenVerifier::new(&config.jwt, &signing).await?;
        let Storage {
            backend,
            reads,
            segments,
            ..
        } = Storage::over(&config, db.clone())?;
        let authenticator = Arc::new(Authenticator::new(
            db.clone(),
            reads.clone(),
            pepper.clone(),
            verifier,
            keyring.clone(),
        ));
        let limiter = Arc::new(RateLimiter::new(
            Policy::from_config(&config.rate_limits)?,
            reads.clone(),
            backend.is_postgres().then(|| db.clone()),
        ));
        let usage = Arc::new(UsageCounter::new(db.clone()));
        let leak_reporters = Arc::new(LeakReporters::from_config(&config.leak_reporters)?);
        let engine = Arc::new(
            SearchEngine::new(config.search_dir())?
                .approximate_from(config.approximate_search_from),
        );
        let indexer = Indexer::start(db.clone(), segments.clone(), engine).await?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        limiter.spawn_maintenance(shutdown.child_token());
        usage.clone().spawn(
            Duration::from_millis(config.rate_limits.usage_flush_ms),
            shutdown.child_token(),
        );
        crate::cluster::follow(
            &backend,
            &config.database_url(),
            reads.clone(),
            indexer.clone(),
            shutdown.child_token(),
        )
        .await?;
        let contract = Contract::committed();
        let table = Arc::new(RouteTable::from_contract(contract));
        let request_contract = Arc::new(RequestContract::from_contract(contract)?);
        let catalog = Arc::new(Catalog::from_contract(contract));
        let auth = Arc::new(Auth::new(
            db.clone(),
            issuer,
            LoginLimiter::new(db.clone(), Duration::from_secs(config.login_window_seconds)),
            LoginLimits {
                per_pair: config.login_max_failures,
                per_client: config.login_max_failures_per_client,
            },
            audit.clone(),
        ));
        spawn_idempotency_sweeper(db.clone());
        let embedders = Arc::new(Embedders {
            keyring: keyring.clone(),
            allow_private_targets: config.allow_private_targets,
            counts: Default::default(),
        });
        let retrieval = Arc::new(Retrieval {
            reads: reads.clone(),
            indexer: indexer.clone(),
            tokens: PageTokens::new(&pepper),
            embedders: embedders.clone(),
        });
        let metrics = config.metrics_listen.as_ref().map(|_| {
            Arc::new(Metrics::new(
                RequestMetrics::new(
                    contract
                        .operations()
                        .iter()
                        .map(|o| o.rule.operation_id.as_str()),
                ),
                Sources {
                    db: db.clone(),
                    backend: backend.clone(),
                    reads: reads.clone(),
                    indexer: indexer.clone(),
                    embedders: embedders.clone(),
                },
            ))
        });
        let run_wake = Arc::new(tokio::sync::Notify::new());
        let job_wake = Arc::new(tokio::sync::Notify::new());
        let reembed_wake = Arc::new(tokio::sync::Notify::new());
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
                tracing: tracing.clone(),
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
                embedders: embedders.clone(),
                lease,
                tracing: tracing.clone(),
            })
            .spawn();
            Arc::new(ReembedWorker {
                db: db.clone(),
                embedders: embedders.clone(),
                reads: reads.clone(),
                indexer: indexer.clone(),
                wake: reembed_wake.clone(),
                lease,
            })
            .spawn();
            KeyExpiryNotices {
                db: db.clone(),
                events: events.clone(),
                warning: Duration::from_secs(config.key_expiry_warning_seconds),
                every: Duration::from_millis(config.key_expiry_check_ms),
            }
            .spawn(shutdown.child_token());
            if config.audit_retention_days > 0 {
                AuditRetention {
                    db: db.clone(),
                    key: audit.key().clone(),
                    keep: chrono::Duration::days(i64::from(config.audit_retention_days)),
                    every: Duration::from_millis(config.audit_prune_ms),
                }
                .spawn(shutdown.child_token());
            }
            Arc::new(DeliveryWorker {
                db: db.clone(),
                wake: events.wake.clone(),
                allow_private_targets: config.allow_private_targets,
                retry_base_ms: config.webhook_retry_base_ms,
                max_attempts: config.webhook_max_attempts.max(1),
                keyring: keyring.clone(),
                lease,
                tracing: tracing.clone(),
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
            embedders,
            retrieval,
            reads,
            segments,
            run_wake,
            job_wake,
            reembed_wake,
            events,
            limiter,
            leak_reporters,
            usage,
            audit,
            metrics,
            backend,
            tracing,
            trace_exporter,
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
                policy: self.limiter.policy().clone(),
                events: self.events.clone(),
                keyring: self.keyring.clone(),
                reporters: self.leak_reporters.clone(),
                audit: self.audit.clone(),
            }),
            indexes: Arc::new(Indexes {
                db: self.db.clone(),
                reads: self.reads.clone(),
                segments: self.segments.clone(),
                indexer: self.indexer.clone(),
                embedders: self.embedders.clone(),
                reembed_wake: self.reembed_wake.clone(),
            }),
            retrieval: self.retrieval.clone(),
            prompts: Arc::new(Prompts {
                db: self.db.clone(),
            }),
            runs: Arc::new(Runs {
                db: self.db.clone(),
                embedders: self.embedders.clone(),
                wake: self.run_wake.clone(),
                events: self.events.clone(),
            }),
            connectors: Arc::new(Connectors {
                db: self.db.clone(),
                allow_private_targets: self.config.allow_private_targets,
                job_wake: self.job_wake.clone(),
                keyring: self.keyring.clone(),
                audit: self.audit.clone(),
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
                audit: self.audit.clone(),
            }),
            mcp: Arc::new(Mcp::new(public_url.to_string(), self.catalog.tools())),
            rate_limits: Arc::new(RateLimits {
                db: self.db.clone(),
                reads: self.reads.clone(),
                policy: self.limiter.policy().clone(),
                audit: self.audit.clone(),
            }),
            organization: Arc::new(Organizations {
                db: self.db.clone(),
                audit: self.audit.clone(),
            }),
            audit: Arc::new(AuditEvents {
                db: self.db.clone(),
            }),
            health: Arc::new(Health {
                db: self.db.clone(),
                backend: self.backend.clone(),
                indexer: self.indexer.clone(),
                keyring: self.keyring.clone(),
                max_lag_changes: self.config.readiness_max_lag_changes,
            }),
        })
    }

    /// What the HTTP surface is built from.
    fn surface(&self, public_url: &str, tap: Option<ResponseTap>) -> anyhow::Result<Surface> {
        Ok(Surface {
            db: self.db.clone(),
            keyring: self.keyring.clone(),
            pepper: self.pepper.clone(),
            table: self.table.clone(),
            request_contract: self.request_contract.clone(),
            authenticator: self.authenticator.clone(),
            limiter: self.limiter.clone(),
            usage: self.usage.clone(),
            metrics: self.metrics.clone(),
            access_log: self.config.access_log,
            tracing: self.tracing.clone(),
            catalog: self.catalog.clone(),
            services: self.services(public_url)?,
            trusted_proxies: Arc::new(TrustedProxies::from_config(&self.config.trusted_proxies)?),
            response_tap: tap,
            shutdown: self.shutdown.clone(),
            public_url: public_url.to_string(),
        })
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
    /// Where `GET /metrics` listens, when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
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
        if let Some(exporter) = self.state.trace_exporter.clone() {
            let _ = tokio::task::spawn_blocking(move || exporter.shutdown()).await;
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
    start_observed(config, None).await
}

/// [`start`], with `tap` observing every exchange (the test harness holds each answer to
/// the committed spec).
pub async fn start_observed(
    config: Config,
    tap: Option<ResponseTap>,
) -> anyhow::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let metrics_listener = match &config.metrics_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| anyhow::anyhow!("metrics_listen: cannot listen on {address}: {e}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let state = AppState::init(config).await?;
    if let (Some(metrics), Some(listener)) = (&state.metrics, metrics_listener) {
        metrics
            .clone()
            .serve(listener, state.shutdown.child_token())?;
    }
    let app = state.surface(&public_url, tap)?.routes()?;
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
        metrics_addr,
        state,
        shutdown: Some(tx),
        task,
    })
}
