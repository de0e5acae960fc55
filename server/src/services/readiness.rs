//! `readiness_view`: whether this instance can serve, check by check. The database must
//! answer, the secrets key must open what the database holds, and the search copy must be
//! within `readiness_max_lag_changes` of the database; a listener that is down, or a copy
//! behind within the limit, leaves the instance serving (correctly, if slower or staler)
//! and says `degraded`.

use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use videovector_api_spec::{
    dto::health::*,
    services::{HealthService, ServiceResult},
    ApiError, ErrorCode,
};

use crate::{
    db::backend::Backend,
    search::Indexer,
    secrets_at_rest::{key_checks, Keyring},
};

pub struct Health {
    pub db: DatabaseConnection,
    pub backend: Backend,
    pub indexer: Arc<Indexer>,
    pub keyring: Arc<Keyring>,
    /// How far behind the database the search copy may be and still serve.
    pub max_lag_changes: i64,
}

fn up() -> ReadinessCheck {
    ReadinessCheck {
        state: CheckState::Up,
        detail: None,
        lag_changes: None,
    }
}

fn check(state: CheckState, detail: String) -> ReadinessCheck {
    ReadinessCheck {
        state,
        detail: Some(detail),
        lag_changes: None,
    }
}

impl Health {
    async fn database(&self) -> ReadinessCheck {
        match self.db.execute_unprepared("SELECT 1").await {
            Ok(_) => up(),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: the database is unreachable");
                check(CheckState::Down, "the database does not answer".into())
            }
        }
    }

    fn listener(&self) -> ReadinessCheck {
        match (&self.backend, self.indexer.followed()) {
            (Backend::Sqlite { .. }, _) => check(
                CheckState::NotApplicable,
                "one instance on SQLite: there is no one to follow".into(),
            ),
            (Backend::Postgres, true) => up(),
            (Backend::Postgres, false) => check(
                CheckState::Down,
                "not listening for the other instances' notices: caches are off and the \
                 search copy polls until it listens again"
                    .into(),
            ),
        }
    }

    async fn search_copy(&self, database_up: bool) -> ReadinessCheck {
        if !database_up {
            return check(CheckState::Down, "the database does not answer".into());
        }
        let lag = match self.indexer.lag().await {
            Ok(lag) => lag,
            Err(e) => {
                tracing::warn!(error = %e, "readiness: reading the change log");
                return check(CheckState::Down, "the change log cannot be read".into());
            }
        };
        let (state, detail) = match lag {
            0 => (CheckState::Up, None),
            lag if lag <= self.max_lag_changes => (
                CheckState::Behind,
                Some(format!("{lag} changes behind the database")),
            ),
            lag => (
                CheckState::Down,
                Some(format!(
                    "{lag} changes behind the database, more than readiness_max_lag_changes \
                     ({})",
                    self.max_lag_changes
                )),
            ),
        };
        ReadinessCheck {
            state,
            detail,
            lag_changes: Some(lag),
        }
    }

    async fn secrets_key(&self, database_up: bool) -> ReadinessCheck {
        if !database_up {
            return check(CheckState::Down, "the database does not answer".into());
        }
        match key_checks::confirm(&self.db, &self.keyring).await {
            Ok(_) => up(),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: the secrets key");
                check(
                    CheckState::Down,
                    format!(
                        "the secrets keys do not open what the database holds ({})",
                        key_checks::SETTING
                    ),
                )
            }
        }
    }
}

#[async_trait]
impl HealthService for Health {
    async fn readiness(&self) -> ServiceResult<Readiness> {
        let database = self.database().await;
        let database_up = database.state == CheckState::Up;
        let checks = ReadinessChecks {
            notification_listener: self.listener(),
            search_copy: self.search_copy(database_up).await,
            secrets_key: self.secrets_key(database_up).await,
            database,
        };
        // Without these the instance cannot serve; the listener only makes it slower.
        let needed = [
            ("database", &checks.database),
            ("search_copy", &checks.search_copy),
            ("secrets_key", &checks.secrets_key),
        ];
        let failed: Vec<String> = needed
            .iter()
            .filter(|(_, c)| c.state == CheckState::Down)
            .map(|(name, c)| format!("{name}: {}", c.detail.as_deref().unwrap_or("down")))
            .collect();
        if !failed.is_empty() {
            return Err(ApiError::new(
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NotReady,
                format!("not ready: {}", failed.join("; ")),
            )
            .with_header("Retry-After", "5"));
        }
        let degraded = checks.notification_listener.state == CheckState::Down
            || checks.search_copy.state == CheckState::Behind;
        Ok(Readiness {
            status: if degraded {
                ReadinessStatus::Degraded
            } else {
                ReadinessStatus::Ready
            },
            checks,
        })
    }
}
