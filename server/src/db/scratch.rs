//! For the storage layer's unit tests: a migrated SQLite database in a temporary folder, and
//! the rows the tests start from.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection};

use super::{columns::JsonText, entities::run, queue::QueueStatus};

/// A new, migrated database; it lives as long as the folder.
pub async fn scratch_db() -> (tempfile::TempDir, DatabaseConnection) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", scratch_path(&dir).display());
    let db = crate::db::connect_and_migrate(&url).await.unwrap();
    (dir, db)
}

/// The database file of a [`scratch_db`] folder (for direct SQLite reads).
pub fn scratch_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("scratch.db")
}

/// A run in `org_q` with these variables, status and start.
pub async fn insert_run(
    db: &DatabaseConnection,
    id: &str,
    status: QueueStatus,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    variables: JsonText<std::collections::BTreeMap<String, String>>,
) {
    run::ActiveModel {
        id: Set(id.into()),
        org_id: Set("org_q".into()),
        prompt_id: Set("prm_1".into()),
        index_id: Set("idx_1".into()),
        variables: Set(variables),
        status: Set(status),
        attempt: Set(1),
        retry_of: Set(None),
        query: Set("q".into()),
        instructions: Set(String::new()),
        top_k: Set(5),
        retrieval: Set(None),
        result: Set(None),
        error: Set(None),
        created_at: Set(chrono::Utc::now()),
        started_at: Set(started_at),
        finished_at: Set(None),
        request_id: Set(None),
        trace_parent: Set(None),
    }
    .insert(db)
    .await
    .unwrap();
}
