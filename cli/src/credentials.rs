//! Where `vvctl` finds the server and the credential, never on the command line: the
//! environment (`VIDEOVECTOR_URL`, `VIDEOVECTOR_API_KEY`, `VIDEOVECTOR_TOKEN`) first, then
//! the credentials file that `vvctl login` and `vvctl set-key` write
//! (`$VIDEOVECTOR_CONFIG`, else `$XDG_CONFIG_HOME/videovector/credentials.json`, else
//! `~/.config/videovector/credentials.json`). The file is created `0600` and refused when
//! anyone but its owner may read it, as ssh refuses a readable private key.

use std::{
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The server used when nothing names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// How a credential is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `X-API-Key`: an API key or a tenant token.
    ApiKey,
    /// `Authorization: Bearer`: a JWT from `vvctl login`.
    Bearer,
}

/// A credential and the server it is for.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub kind: Kind,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("kind", &self.kind)
            .field("secret", &"********")
            .finish()
    }
}

/// What the environment holds (a test gives its own).
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process's environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// The credentials file's path.
pub fn file_path(env: &dyn Environment) -> Result<PathBuf> {
    if let Some(path) = env.var("VIDEOVECTOR_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    let base = env
        .var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|home| Path::new(&home).join(".config")))
        .context("no HOME to keep credentials under; set VIDEOVECTOR_CONFIG")?;
    Ok(base.join("videovector").join("credentials.json"))
}

/// The stored credentials, if any; refused when others may read the file.
pub fn read_file(path: &Path) -> Result<Option<Credentials>> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} may be read by others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)?;
    let credentials = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a credentials file", path.display()))?;
    Ok(Some(credentials))
}

/// Writes `credentials` to `path`, readable by its owner only.
pub fn write_file(path: &Path, credentials: &Credentials) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).ok();
    }
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("writing {}", temporary.display()))?;
    file.write_all(serde_json::to_string_pretty(credentials)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

/// The server a `--server` flag or `VIDEOVECTOR_URL` names, if either does.
pub fn named_server(env: &dyn Environment, flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| env.var("VIDEOVECTOR_URL"))
}

/// The server and credential to use: `server` (a `--server` flag) or the environment's or
/// the file's server; the environment's credential, else the file's.
pub fn resolve(
    env: &dyn Environment,
    server: Option<&str>,
) -> Result<(String, Option<Credentials>)> {
    let stored = read_file(&file_path(env)?)?;
    let server = named_server(env, server)
        .or_else(|| stored.as_ref().map(|c| c.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let from_env = |name: &str, kind: Kind| {
        env.var(name).map(|secret| Credentials {
            server: server.clone(),
            kind,
            secret,
        })
    };
    let credentials = from_env("VIDEOVECTOR_API_KEY", Kind::ApiKey)
        .or_else(|| from_env("VIDEOVECTOR_TOKEN", Kind::Bearer))
        .or(stored);
    Ok((server, credentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars(Vec<(&'static str, String)>);

    impl Environment for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_file_is_private_and_a_readable_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("videovector/credentials.json");
        let credentials = Credentials {
            server: "http://127.0.0.1:1".into(),
            kind: Kind::Bearer,
            secret: "jwt-secret".into(),
        };
        write_file(&path, &credentials).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_file(&path).unwrap().unwrap().secret, "jwt-secret");
        assert!(!format!("{credentials:?}").contains("jwt-secret"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = read_file(&path).unwrap_err().to_string();
        assert!(refused.contains("chmod 600"), "{refused}");
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.json");
        let env = Vars(vec![
            ("VIDEOVECTOR_CONFIG", file.display().to_string()),
            ("VIDEOVECTOR_API_KEY", "sk_env".into()),
        ]);
        write_file(
            &file,
            &Credentials {
                server: "http://file:1".into(),
                kind: Kind::Bearer,
                secret: "from-file".into(),
            },
        )
        .unwrap();
        let (server, credentials) = resolve(&env, None).unwrap();
        assert_eq!(server, "http://file:1");
        let credentials = credentials.unwrap();
        assert_eq!(
            (credentials.kind, credentials.secret.as_str()),
            (Kind::ApiKey, "sk_env")
        );
        let (server, _) = resolve(&env, Some("http://flag:2")).unwrap();
        assert_eq!(server, "http://flag:2");
    }
}
