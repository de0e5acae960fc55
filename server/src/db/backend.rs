//! Which database the configuration names, decided once from its URL when the database is
//! opened (a start with an unsupported URL fails there, with the reason), and passed down to what differs by backend: the connection pool's size, the
//! direct SQLite connections (`db::direct`), the notice follower (`crate::cluster`). A SQLite
//! database is a file (the direct connections and every instance's reads need one);
//! in-memory SQLite, or any other scheme, is refused with the reason.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: a SQLite file, for one instance.
    Sqlite { file: PathBuf },
    /// PostgreSQL: any number of instances share it.
    Postgres,
}

impl Backend {
    /// The backend `url` names.
    pub fn from_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres);
        }
        let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            anyhow::bail!(
                "database_url: use postgres://… (PostgreSQL) or sqlite://<file>?mode=rwc (SQLite)"
            );
        };
        let path = rest.split('?').next().unwrap_or_default();
        anyhow::ensure!(
            !path.is_empty() && !path.contains(":memory:") && !rest.contains("mode=memory"),
            "database_url: in-memory SQLite is not supported; name a file (sqlite://<file>?mode=rwc)"
        );
        // sqlx's own parser reads the URL (percent-decoding included), so both open one file.
        use std::str::FromStr;
        let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("database_url: {e}"))?;
        Ok(Backend::Sqlite {
            file: options.get_filename().to_path_buf(),
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(url: &str) -> Option<PathBuf> {
        match Backend::from_url(url) {
            Ok(Backend::Sqlite { file }) => Some(file),
            _ => None,
        }
    }

    #[test]
    fn urls_name_one_backend_and_sqlite_a_file() {
        assert_eq!(
            file("sqlite:///data/videovector.db?mode=rwc"),
            Some(PathBuf::from("/data/videovector.db"))
        );
        assert_eq!(
            file("sqlite:relative.db"),
            Some(PathBuf::from("relative.db"))
        );
        assert_eq!(
            file("sqlite:///data/my%20dir/v.db?mode=rwc"),
            Some(PathBuf::from("/data/my dir/v.db")),
            "percent-decoded as sqlx does"
        );
        for url in ["postgres://postgres@127.0.0.1/test", "postgresql://h/db"] {
            assert_eq!(Backend::from_url(url).unwrap(), Backend::Postgres);
        }
        for refused in [
            "sqlite::memory:",
            "sqlite://file?mode=memory",
            "mysql://root@localhost/db",
            "",
        ] {
            let error = Backend::from_url(refused).unwrap_err().to_string();
            assert!(error.starts_with("database_url:"), "{refused}: {error}");
        }
    }
}
