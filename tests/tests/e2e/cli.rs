//! `vvctl` (the generated CLI) through the README walkthrough against a live server: login
//! with the password on the input, an API key, an index, segments, a search with the key,
//! a table of indexes; problems printed as problems; secrets refused as arguments; a
//! credentials file others can read refused.

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    sync::{Arc, Mutex},
};

use serde_json::Value;
use videovector_cli::{credentials::Environment, run};
use videovector_tests::TestServer;

/// A buffer the CLI writes into and the test reads.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

struct Vars(Vec<(String, String)>);

impl Environment for Vars {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

struct Shell {
    env: Vars,
    out: Captured,
    err: Captured,
}

impl Shell {
    /// A shell whose environment holds `vars` only.
    fn new(vars: Vec<(&str, String)>) -> Shell {
        Shell {
            env: Vars(vars.into_iter().map(|(n, v)| (n.to_string(), v)).collect()),
            out: Captured::default(),
            err: Captured::default(),
        }
    }

    /// Runs `vvctl <line>` (split at spaces) with `input`; the outcome, out and err.
    async fn vvctl(&self, line: &str, input: &str) -> (Result<(), String>, String, String) {
        let args = std::iter::once("vvctl".to_string())
            .chain(line.split(' ').map(str::to_string))
            .collect();
        let result = run(
            args,
            &self.env,
            &mut input.as_bytes(),
            Box::new(self.out.clone()),
            Box::new(self.err.clone()),
        )
        .await
        .map_err(|e| format!("{e:#}"));
        (result, self.out.take(), self.err.take())
    }

    async fn json(&self, line: &str) -> Value {
        let (result, out, err) = self.vvctl(line, "").await;
        assert!(result.is_ok(), "vvctl {line}: {result:?}\n{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("vvctl {line}: {e}: {out}"))
    }
}

#[tokio::test]
async fn vvctl_runs_the_readme_walkthrough() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("videovector/credentials.json");
    let shell = Shell::new(vec![
        ("VIDEOVECTOR_URL", server.url()),
        ("VIDEOVECTOR_CONFIG", config.display().to_string()),
    ]);

    // 1. Login: the password comes from the input, the token goes to a private file.
    let email = &org.operator.email;
    let (result, _, err) = shell
        .vvctl(
            &format!("login --email {email}"),
            &format!("{}\n", org.password),
        )
        .await;
    assert!(result.is_ok(), "{result:?} {err}");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!err.contains(&org.password));

    // 2. A search key (a list argument: a JSON body from a file).
    let body = home.path().join("key.json");
    std::fs::write(&body, r#"{"name": "search", "scopes": ["search"]}"#).unwrap();
    let created = shell
        .json(&format!("api-key create --json-body {}", body.display()))
        .await;
    let search_key = created["secret"]
        .as_str()
        .expect("the secret, once")
        .to_string();

    // 3. An index and segments.
    let index = shell
        .json("index create --id idx_archive --name Archive")
        .await;
    assert_eq!(index["id"], "idx_archive");
    let segments = home.path().join("segments.json");
    std::fs::write(
        &segments,
        r#"{"wait": true, "segments": [{"media_id": "news-1", "start_seconds": 12.0,
            "end_seconds": 16.5, "text": "The reporter is standing at the station entrance",
            "labels": ["news"]}]}"#,
    )
    .unwrap();
    let loaded = shell
        .json(&format!(
            "segment ingest --index-id idx_archive --json-body {}",
            segments.display()
        ))
        .await;
    assert_eq!(loaded["searchable"], true);

    // 4. Search with the search key from the environment.
    let searcher = Shell::new(vec![
        ("VIDEOVECTOR_URL", server.url()),
        ("VIDEOVECTOR_CONFIG", config.display().to_string()),
        ("VIDEOVECTOR_API_KEY", search_key),
    ]);
    let results = searcher
        .json("index search --index-id idx_archive --query reporter --top-k 10")
        .await;
    assert_eq!(
        results["hits"][0]["text"],
        "The reporter is standing at the station entrance"
    );
    // The search key may not create: a problem on the error stream, a failure.
    let (refused, out, err) = searcher.vvctl("index create --name Nope", "").await;
    assert!(refused.is_err() && out.is_empty());
    assert!(err.starts_with("403 insufficient_scope: "), "{err}");
    assert!(err.contains("(request req_"), "{err}");

    // A table of indexes.
    let (result, table, _) = shell.vvctl("--output table index list", "").await;
    assert!(result.is_ok());
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("CREATED_AT") || lines[0].contains("ID"),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("idx_archive") && l.contains("Archive")),
        "{table}"
    );

    // A missing index is a 404 problem.
    let (missing, _, err) = shell.vvctl("index view --index-id idx_missing", "").await;
    assert!(missing.is_err());
    assert!(err.starts_with("404 not_found: "), "{err}");
}

#[tokio::test]
async fn vvctl_keeps_secrets_off_the_command_line_and_out_of_readable_files() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("credentials.json");
    let shell = Shell::new(vec![
        ("VIDEOVECTOR_URL", server.url()),
        ("VIDEOVECTOR_CONFIG", config.display().to_string()),
    ]);
    let (refused, _, _) = shell
        .vvctl("token create --email a@example.com --password hunter22", "")
        .await;
    let refused = refused.unwrap_err();
    assert!(refused.contains("shell's history"), "{refused}");

    let (stored, _, _) = shell.vvctl("set-key", "sk_test_from_input\n").await;
    assert!(stored.is_ok());
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("sk_test_from_input"));
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (refused, _, _) = shell.vvctl("index list", "").await;
    assert!(refused.unwrap_err().contains("chmod 600"));
    let (removed, _, _) = shell.vvctl("logout", "").await;
    assert!(removed.is_ok() && !config.exists());
}
