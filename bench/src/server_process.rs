//! The server under test, in a child process of this binary (`__serve`), so its memory is
//! its own: RSS and peak RSS come from `/proc/<pid>/status`.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const EMAIL: &str = "bench@example.com";
pub const PASSWORD: &str = "bench-password-123";

/// The rate limits a bench server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchLimits {
    /// None at all.
    Off,
    /// A limit in every family that no bench reaches: every request is checked and counted.
    Unreached,
}

/// How [`serve`] learns its [`BenchLimits`].
const LIMITS_ENV: &str = "VIDEOVECTOR_BENCH_LIMITS";
/// Set when [`serve`] installs the log subscriber the binary installs.
const LOGS_ENV: &str = "VIDEOVECTOR_BENCH_LOGS";

/// How the server process is launched.
#[derive(Debug, Default, Clone)]
pub struct Launch {
    /// A program (and its arguments) the server runs under, e.g. valgrind.
    pub under: Vec<String>,
    /// How long it may take to become ready (default 60 s).
    pub ready_within: Option<Duration>,
}

pub struct ServerProcess {
    child: Child,
    pub url: String,
    /// From spawn to `/readyz` answering 200.
    pub startup: Duration,
}

impl ServerProcess {
    /// Starts a server on a fresh data dir (and `database_url`, or SQLite there), with
    /// limits no bench reaches.
    pub async fn start(
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> anyhow::Result<ServerProcess> {
        Self::start_with(data_dir, database_url, BenchLimits::Unreached).await
    }

    /// [`Self::start`] with the given limits.
    pub async fn start_with(
        data_dir: &Path,
        database_url: Option<&str>,
        limits: BenchLimits,
    ) -> anyhow::Result<ServerProcess> {
        Self::start_configured(data_dir, database_url, limits, &[], Stdio::inherit()).await
    }

    /// [`Self::start_with`] with more settings in `env` (`VIDEOVECTOR_...`), and its log
    /// subscriber installed (as the binary installs it) writing to `stderr`.
    pub async fn start_configured(
        data_dir: &Path,
        database_url: Option<&str>,
        limits: BenchLimits,
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> anyhow::Result<ServerProcess> {
        Self::start_launched(
            data_dir,
            database_url,
            limits,
            env,
            stderr,
            &Launch::default(),
        )
        .await
    }

    /// [`Self::start_configured`], launched as `launch` says (under a tool such as valgrind).
    pub async fn start_launched(
        data_dir: &Path,
        database_url: Option<&str>,
        limits: BenchLimits,
        env: &[(&str, &str)],
        stderr: Stdio,
        launch: &Launch,
    ) -> anyhow::Result<ServerProcess> {
        let started = Instant::now();
        let mut command = match launch.under.split_first() {
            Some((tool, args)) => {
                let mut command = Command::new(tool);
                command.args(args).arg(std::env::current_exe()?);
                command
            }
            None => Command::new(std::env::current_exe()?),
        };
        command
            .arg("__serve")
            .arg(data_dir)
            .env("VIDEOVECTOR_BOOTSTRAP_EMAIL", EMAIL)
            .env("VIDEOVECTOR_BOOTSTRAP_PASSWORD", PASSWORD)
            .env("VIDEOVECTOR_LOG", "warn")
            .env(LIMITS_ENV, format!("{limits:?}"))
            .stdout(Stdio::piped())
            .stderr(stderr);
        if !env.is_empty() {
            command.env(LOGS_ENV, "1").envs(env.iter().copied());
        }
        if let Some(url) = database_url {
            command.env("VIDEOVECTOR_DATABASE_URL", url);
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .ok_or_else(|| anyhow::anyhow!("the server did not start: {line}"))?
            .to_string();
        let url = format!("http://{addr}");
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{url}/readyz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            anyhow::ensure!(
                started.elapsed() < launch.ready_within.unwrap_or(Duration::from_secs(60)),
                "the server never became ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(ServerProcess {
            child,
            url,
            startup: started.elapsed(),
        })
    }

    fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the server has used so far (user + system), seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let ticks = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|stat| {
                // Fields after the command name (which may hold spaces) in parentheses.
                let rest = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .collect::<Vec<_>>();
                Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0);
        ticks as f64 / 100.0
    }

    /// Waits until the server is idle (under 5% of a core in each of three seconds in a
    /// row), at most `limit`; returns how long that took, the idle seconds included. After
    /// a bulk load it still indexes, and merges once ingest has been quiet for 2 s.
    pub async fn settle(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        let mut before = self.cpu_seconds();
        let mut idle_seconds = 0;
        while idle_seconds < 3 && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = self.cpu_seconds();
            idle_seconds = if now - before < 0.05 {
                idle_seconds + 1
            } else {
                0
            };
            before = now;
        }
        started.elapsed()
    }

    /// Resident memory now, MiB.
    pub fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS:") as f64 / 1024.0
    }

    /// Peak resident memory so far, MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.status_kib("VmHWM:") as f64 / 1024.0
    }
}

/// Copies the server secrets (API-key pepper, JWT signing secret, secrets key) of the data
/// dir `from` into the data dir `to`: instances behind one load balancer share them.
pub fn share_secrets(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to.join("secrets"))?;
    for name in ["api_key_pepper", "jwt_signing_secret", "secrets_key"] {
        std::fs::copy(
            from.join("secrets").join(name),
            to.join("secrets").join(name),
        )?;
    }
    Ok(())
}

/// Bytes of the files under `dir`.
pub fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `__serve <data_dir>`: run the server on 127.0.0.1:0 and print `LISTENING <addr>`.
pub async fn serve(data_dir: &str) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = videovector_server::Config::load(
        None,
        videovector_server::config::Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.into()),
            database_url: None,
        },
    )?;
    config.rate_limits.defaults = match std::env::var(LIMITS_ENV).as_deref() {
        Ok("Off") => Vec::new(),
        _ => ["search", "read", "write"]
            .map(|family| {
                videovector_server::config::ConfiguredLimit::new(
                    &format!("{family}_per_second"),
                    family,
                    1_000_000_000,
                    1,
                )
            })
            .to_vec(),
    };
    let _flush_logs =
        std::env::var_os(LOGS_ENV).map(|_| videovector_server::logging::init(&config));
    let mut server = videovector_server::start(config).await?;
    println!("LISTENING {}", server.addr);
    server.wait().await?;
    Ok(())
}
