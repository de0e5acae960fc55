//! Configuration: one layered, validated load. Defaults, then an optional `videovector.toml`
//! (or the file `--config` names), then `VIDEOVECTOR_*` environment variables (nested keys
//! with `__`, e.g. `VIDEOVECTOR_JWT__AUDIENCE`), then command-line flags.
//!
//! `Config` holds secrets (pepper, signing secret, shared secrets): it deliberately has no
//! `Debug` implementation so it cannot end up in a log line.

use std::path::{Path, PathBuf};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Where the SQLite database, the search indexes and the generated secrets live.
    pub data_dir: PathBuf,
    /// Database URL; defaults to a SQLite file in the data dir.
    pub database_url: Option<String>,
    /// The URL clients reach this server at (used in the MCP configuration).
    pub public_url: Option<String>,
    /// Email of the operator created on first start with an empty database.
    pub bootstrap_email: Option<String>,
    /// Password of that operator; generated and printed once when unset.
    pub bootstrap_password: Option<String>,
    /// `sk_live_` or `sk_test_`.
    pub api_key_prefix: String,
    /// Server pepper for API key digests; a file in the data dir when unset. Every instance
    /// sharing a database must use the same pepper.
    pub api_key_pepper: Option<String>,
    /// Master keys that seal secrets at rest (connector header values, webhook signing
    /// secrets, stored idempotent responses): comma-separated, the current one first, each
    /// at least 32 characters. A file in the data dir (one key per line) when unset. Every
    /// instance sharing a database must hold the same keys.
    pub secrets_key: Option<String>,
    pub jwt: JwtConfig,
    /// Failed logins allowed per email and client address together in
    /// `login_window_seconds`; past as many failures from anywhere, an email's attempts slow
    /// down (never refused).
    pub login_max_failures: u32,
    /// Failed logins allowed per client address over all emails in the window.
    pub login_max_failures_per_client: u32,
    pub login_window_seconds: u64,
    /// Networks of the reverse proxies whose `X-Forwarded-For` / `Forwarded` headers name
    /// the client (e.g. `["10.0.0.0/8"]`); from any other peer they are ignored.
    pub trusted_proxies: Vec<String>,
    /// Let connectors and webhooks reach private, loopback and link-local addresses
    /// (development and tests only).
    pub allow_private_targets: bool,
    /// Delay before the first webhook retry; each later one waits four times longer (capped
    /// at an hour).
    pub webhook_retry_base_ms: u64,
    /// Attempts per webhook delivery before it is marked failed.
    pub webhook_max_attempts: u32,
    /// Search copies give a tantivy segment holding at least this many vectors an
    /// approximate (HNSW) index for search by meaning, built in the background; smaller
    /// ones are scanned exactly. 0 scans everything exactly.
    pub approximate_search_from: u64,
    /// Run the background workers (runs, jobs, webhook deliveries) on this instance. Turn
    /// off for API-only instances; the queues live in the database.
    pub workers: bool,
    /// How long a worker's claim on a run, job or delivery lasts without a heartbeat (it
    /// renews it every third of this while it works). When an instance is killed or loses
    /// the database, another instance takes its work over this long after the last
    /// heartbeat.
    pub queue_lease_ms: u64,
    /// Secret scanners whose signed reports of leaked keys are accepted
    /// (`POST /leaked-keys`): each key they sign with, by the identifier they send.
    pub leak_reporters: Vec<LeakReporter>,
    /// How long before an API key expires `api_key.expiring` is sent (once per key).
    pub key_expiry_warning_seconds: u64,
    /// How often an instance with workers looks for keys to announce as expiring or
    /// expired, in milliseconds.
    pub key_expiry_check_ms: u64,
    /// Whether every request below `/api/v2` leaves one log line (target
    /// `videovector::access`: operation, status, duration, scheme, key or token subject,
    /// with the request's id, method and path). On by default.
    pub access_log: bool,
    /// `text` (the default) or `json`: one JSON object per line, for a log pipeline.
    pub log_format: LogFormat,
    /// How many segment changes this instance's search copy may be behind the database
    /// and still be ready (`readiness_view` answers 503 past it; default 10,000).
    pub readiness_max_lag_changes: i64,
    /// Where `GET /metrics` (Prometheus) listens, e.g. `127.0.0.1:9464`: its own address,
    /// never the API's. Unset (the default), metrics are neither collected nor served.
    pub metrics_listen: Option<String>,
    /// OpenTelemetry traces, exported over OTLP/HTTP; off unless `traces.otlp_endpoint` is
    /// set.
    pub traces: TracesConfig,
    /// How many days audit events are kept (default 365); 0 keeps them for ever.
    pub audit_retention_days: u32,
    /// How often an instance with workers prunes audit events past retention, in
    /// milliseconds.
    pub audit_prune_ms: u64,
    /// Changes the segment change log keeps (instances with workers compact it each
    /// minute); a search copy further behind rebuilds from the segments.
    pub segment_changes_retained: u64,
    /// Rate limits: the server's defaults, the ceiling on keys' and organisations' own, and
    /// how often usage is written.
    pub rate_limits: RateLimitsConfig,
    /// `tracing` filter, e.g. `info` or `videovector_server=debug`.
    pub log: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RateLimitsConfig {
    /// The limits of an organisation that has set none in a family; an organisation's and a
    /// key's own replace them family by family. A family none names is not limited.
    pub defaults: Vec<ConfiguredLimit>,
    /// The most a key's or an organisation's limit may allow, averaged over its window, in
    /// requests per second.
    pub max_requests_per_second: u32,
    /// How often each instance writes the usage it counted, in milliseconds.
    pub usage_flush_ms: u64,
}

/// Where and how traces are exported (`crate::traces`).
#[derive(Clone, Serialize, Deserialize)]
pub struct TracesConfig {
    /// The collector's OTLP/HTTP root, e.g. `http://127.0.0.1:4318`: spans are posted to
    /// `/v1/traces` below it as protobuf. Unset (the default), no span is made.
    pub otlp_endpoint: Option<String>,
    /// Headers sent with every export, e.g. a tracing vendor's API key. Treated as
    /// secrets: never logged.
    pub otlp_headers: std::collections::BTreeMap<String, String>,
    /// The share of traces kept (0.0–1.0, default 1.0) for requests that arrive without a
    /// trace of their own; a caller's `traceparent` decides for its requests.
    pub sample_ratio: f64,
    /// The `service.name` the spans carry (default `videovector`).
    pub service_name: String,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig {
            otlp_endpoint: None,
            otlp_headers: Default::default(),
            sample_ratio: 1.0,
            service_name: "videovector".into(),
        }
    }
}

impl TracesConfig {
    /// Where spans are posted: `/v1/traces` below the configured root (as the
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` convention has it); none when tracing is off.
    pub fn traces_url(&self) -> anyhow::Result<Option<String>> {
        let Some(root) = &self.otlp_endpoint else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(root)
            .map_err(|e| anyhow::anyhow!("traces.otlp_endpoint {root:?}: {e}"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https") && url.host().is_some(),
            "traces.otlp_endpoint must be an http or https URL, e.g. http://127.0.0.1:4318"
        );
        Ok(Some(format!(
            "{}/v1/traces",
            url.as_str().trim_end_matches('/')
        )))
    }
}

/// One key a secret scanner signs its reports with (GitHub publishes its keys at
/// `https://api.github.com/meta/public_keys/secret_scanning`; copy them here: nothing is
/// fetched at run time).
#[derive(Clone, Serialize, Deserialize)]
pub struct LeakReporter {
    /// Who reports (recorded on the key, e.g. `github`).
    pub name: String,
    /// The identifier the reporter sends in `Github-Public-Key-Identifier`.
    pub key_identifier: String,
    /// The ECDSA P-256 public key, PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
}

/// A limit in the configuration (`family` is `search`, `read` or `write`).
#[derive(Clone, Serialize, Deserialize)]
pub struct ConfiguredLimit {
    pub name: String,
    pub family: String,
    pub quota: u32,
    pub window_seconds: u32,
}

impl ConfiguredLimit {
    pub fn new(name: &str, family: &str, quota: u32, window_seconds: u32) -> Self {
        ConfiguredLimit {
            name: name.into(),
            family: family.into(),
            quota,
            window_seconds,
        }
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        RateLimitsConfig {
            defaults: vec![
                ConfiguredLimit::new("search_per_second", "search", 100, 1),
                ConfiguredLimit::new("read_per_second", "read", 100, 1),
                ConfiguredLimit::new("write_per_second", "write", 50, 1),
            ],
            max_requests_per_second: 10_000,
            usage_flush_ms: 5_000,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct JwtConfig {
    /// `iss` of tokens this server issues.
    pub issuer: String,
    /// `aud` of tokens this server issues and accepts.
    pub audience: String,
    /// Lifetime of issued tokens.
    pub token_ttl_seconds: u64,
    /// HS256 secret of the built-in issuer; a file in the data dir when unset. Every
    /// instance sharing a database must use the same secret.
    pub signing_secret: Option<String>,
    /// The claim that marks a verified session.
    pub verified_claim: String,
    /// The claim that names the token's organisation.
    pub organization_claim: String,
    /// External identity providers whose tokens are accepted too.
    pub external_issuers: Vec<ExternalIssuer>,
}

/// An external identity provider. Exactly one key source must be set.
#[derive(Clone, Serialize, Deserialize)]
pub struct ExternalIssuer {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`; defaults to `jwt.audience`.
    pub audience: Option<String>,
    /// Accepted algorithms (pinned), e.g. `["RS256"]`.
    pub algorithms: Vec<String>,
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    pub pem_file: Option<PathBuf>,
    pub shared_secret: Option<String>,
    /// Organisation for tokens without the organisation claim.
    pub default_organization: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("videovector-data"),
            database_url: None,
            public_url: None,
            bootstrap_email: None,
            bootstrap_password: None,
            api_key_prefix: "sk_live_".into(),
            api_key_pepper: None,
            secrets_key: None,
            jwt: JwtConfig {
                issuer: "videovector".into(),
                audience: "videovector-api".into(),
                token_ttl_seconds: 3600,
                signing_secret: None,
                verified_claim: "email_verified".into(),
                organization_claim: "org_id".into(),
                external_issuers: Vec::new(),
            },
            login_max_failures: 10,
            login_max_failures_per_client: 100,
            login_window_seconds: 900,
            trusted_proxies: Vec::new(),
            allow_private_targets: false,
            webhook_retry_base_ms: 5_000,
            webhook_max_attempts: 8,
            approximate_search_from: crate::search::engine::APPROXIMATE_FROM,
            workers: true,
            queue_lease_ms: 30_000,
            leak_reporters: Vec::new(),
            key_expiry_warning_seconds: 7 * 86_400,
            key_expiry_check_ms: 60_000,
            readiness_max_lag_changes: 10_000,
            access_log: true,
            log_format: LogFormat::Text,
            metrics_listen: None,
            traces: TracesConfig::default(),
            audit_retention_days: 365,
            audit_prune_ms: 3_600_000,
            segment_changes_retained: 100_000,
            rate_limits: RateLimitsConfig::default(),
            log: "info".into(),
        }
    }
}

/// Command-line overrides, applied last.
#[derive(Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Loads defaults, file, environment and overrides, then validates.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Config> {
        let file = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| "videovector.toml".into());
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("VIDEOVECTOR_").split("__").ignore(&[
                "test_database_url",
                "bench_database_url",
                "api_key",
            ]))
            .merge(Serialized::defaults(overrides))
            .extract()?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.api_key_prefix == "sk_live_" || self.api_key_prefix == "sk_test_",
            "api_key_prefix must be sk_live_ or sk_test_"
        );
        anyhow::ensure!(
            self.jwt.token_ttl_seconds > 0,
            "jwt.token_ttl_seconds must be positive"
        );
        crate::client_address::TrustedProxies::from_config(&self.trusted_proxies)?;
        anyhow::ensure!(
            self.login_max_failures > 0 && self.login_max_failures_per_client > 0,
            "login_max_failures and login_max_failures_per_client must be positive"
        );
        anyhow::ensure!(
            self.queue_lease_ms >= 500,
            "queue_lease_ms must be at least 500 (a heartbeat renews it every third)"
        );
        anyhow::ensure!(
            self.key_expiry_check_ms >= 10,
            "key_expiry_check_ms must be at least 10"
        );
        anyhow::ensure!(
            self.audit_prune_ms >= 10,
            "audit_prune_ms must be at least 10"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.traces.sample_ratio),
            "traces.sample_ratio must be between 0.0 and 1.0"
        );
        self.traces.traces_url()?;
        // The limits themselves are checked when the server builds its policy from them
        // (`rate_limits::policy::Policy::from_config`), before it listens.
        anyhow::ensure!(
            self.rate_limits.usage_flush_ms >= 10,
            "rate_limits.usage_flush_ms must be at least 10"
        );
        for issuer in &self.jwt.external_issuers {
            let sources = [
                issuer.jwks_file.is_some(),
                issuer.jwks_url.is_some(),
                issuer.pem_file.is_some(),
                issuer.shared_secret.is_some(),
            ];
            anyhow::ensure!(
                sources.iter().filter(|s| **s).count() == 1,
                "external issuer {}: set exactly one of jwks_file, jwks_url, pem_file, shared_secret",
                issuer.issuer
            );
            anyhow::ensure!(
                !issuer.algorithms.is_empty(),
                "external issuer {}: pin at least one algorithm",
                issuer.issuer
            );
        }
        Ok(())
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("videovector.db").display()
            )
        })
    }

    /// Where the search indexes live.
    pub fn search_dir(&self) -> PathBuf {
        self.data_dir.join("search")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colourless when stderr is not a terminal).
    #[default]
    Text,
    /// One JSON object per line: time, level, target, message, fields and the spans'
    /// fields (`request_id`).
    Json,
}
