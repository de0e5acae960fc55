//! A test server in a child process, so a test can read the server's own memory (its RSS)
//! apart from the test's. The child is this test binary run again on its one ignored test,
//! [`CHILD_TEST`], which calls [`serve_in_child`]: it starts a [`TestServer`] (SQLite, or a
//! fresh PostgreSQL database, as every test server), prints its URL and an admin token, and
//! serves until its stdin closes. Its answers are held to the committed spec as in any other
//! test: a violation fails the child, and [`ChildServer::stop`] fails the test. A child can
//! also join another server's database ([`ChildServer::join`]), as a second instance a test
//! can kill with SIGKILL ([`ChildServer::kill`]).

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use videovector_api_spec::{spec::BASE_PATH, Scope};

use crate::TestServer;

/// Set in the child's environment; without it the ignored test returns at once.
pub const CHILD_ENV: &str = "VIDEOVECTOR_TEST_CHILD_SERVER";
/// Set by [`ChildServer::join`]: the database the child joins, the directory of the secrets
/// it shares, and its queue lease in ms, separated by newlines.
const JOIN_ENV: &str = "VIDEOVECTOR_TEST_CHILD_JOIN";
/// The e2e binary's ignored test that runs [`serve_in_child`].
pub const CHILD_TEST: &str = "child_server::serve";
const READY: &str = "videovector-child-server ";

/// A server in a child process.
pub struct ChildServer {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The server's base URL.
    pub url: String,
    /// An admin JWT of an organisation created for the test.
    pub admin_token: String,
}

/// Memory of a process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss_kib: u64,
    /// The highest resident size so far (`VmHWM`).
    pub peak_kib: u64,
}

impl ChildServer {
    pub fn start() -> ChildServer {
        Self::spawn(Command::new(
            std::env::current_exe().expect("the test binary"),
        ))
    }

    /// A child instance on `primary`'s database with its secrets, its workers on, and
    /// `queue_lease_ms` as its lease.
    pub fn join(primary: &TestServer, queue_lease_ms: u64) -> ChildServer {
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        command.env(
            JOIN_ENV,
            format!(
                "{}\n{}\n{queue_lease_ms}",
                primary.database_url,
                primary.secrets_dir().display()
            ),
        );
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> ChildServer {
        // The test's own HTTP clients need a TLS provider, as in [`TestServer::start`].
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut child = command
            .args([CHILD_TEST, "--exact", "--ignored", "--nocapture"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the child server starts");
        let stdout = child.stdout.take().expect("stdout");
        let (ready, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix(READY) {
                    let _ = ready.send(rest.to_string());
                }
            }
        });
        let announced = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the child server announces itself");
        let (url, admin_token) = announced.split_once(' ').expect("url and token");
        ChildServer {
            stdin: child.stdin.take(),
            child,
            url: url.to_string(),
            admin_token: admin_token.to_string(),
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}{BASE_PATH}{path}", self.url)
    }

    /// The child's memory now.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the child's /proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in /proc status"))
        };
        Memory {
            rss_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
        }
    }

    /// Whether the child is still running (a crash ends it).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the child at once (SIGKILL): no shutdown, no flush, connections cut.
    pub fn kill(mut self) {
        self.child.kill().expect("the child is killed");
        self.child.wait().expect("the killed child is reaped");
    }

    /// Stops the child and fails if it did not end cleanly (a crash, or answers that broke
    /// the contract).
    pub fn stop(mut self) {
        drop(self.stdin.take());
        for _ in 0..600 {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "the child server ended with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("the child server did not stop within a minute");
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The child's side: serves until stdin closes. Does nothing outside a child.
pub async fn serve_in_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    videovector_server::memory::limit_malloc_arenas();
    let adjust = |c: &mut videovector_server::config::Config| {
        c.allow_private_targets = true;
        c.log = "error".into();
    };
    let server = match std::env::var(JOIN_ENV) {
        Ok(join) => {
            let mut parts = join.split('\n');
            let (Some(database_url), Some(secrets), Some(lease)) =
                (parts.next(), parts.next(), parts.next())
            else {
                panic!("{JOIN_ENV} holds a database URL, a secrets dir and a lease");
            };
            let lease = lease.parse().expect("a lease in ms");
            TestServer::join(database_url, std::path::Path::new(secrets), |c| {
                adjust(c);
                c.queue_lease_ms = lease;
            })
            .await
        }
        Err(_) => TestServer::start_with(adjust).await,
    };
    let org = server.org(true).await;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{READY}{} {}",
            server.url(),
            server.token(&org, &[Scope::Admin])
        );
        let _ = out.flush();
    }
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    })
    .await;
    server.stop().await;
}

/// Set in the environment of a test run again in its own process by [`isolated`].
pub const ISOLATED_ENV: &str = "VIDEOVECTOR_TEST_ISOLATED";

/// For a test that changes process-wide state (environment variables): true when the
/// caller runs alone in its process, so it goes on; false when it ran the test `name`
/// (module path within the binary) again in a child process, which passed. nextest runs
/// each test in its own process already; `cargo test` runs them as threads of one.
pub fn isolated(name: &str) -> bool {
    if std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test")
        || std::env::var_os(ISOLATED_ENV).is_some()
    {
        return true;
    }
    let status = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture"])
        .env(ISOLATED_ENV, "1")
        .status()
        .expect("the test runs again in its own process");
    assert!(status.success(), "{name}, run in its own process, failed");
    false
}
