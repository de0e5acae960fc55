//! Storage: connection, versioned migrations and the sea-orm entities.

pub mod change_log;
pub mod direct;
pub mod entities;
pub mod migrations;
pub mod notifications;
pub mod point_reads;
pub mod queue;
pub mod read_cache;
pub mod segment_store;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

/// Opens the configured database (creating the data dir the default SQLite file lives in)
/// and applies pending migrations.
pub async fn open(config: &crate::config::Config) -> anyhow::Result<DatabaseConnection> {
    std::fs::create_dir_all(&config.data_dir)?;
    connect_and_migrate(&config.database_url()).await
}

/// Opens the database and applies pending migrations.
pub async fn connect_and_migrate(url: &str) -> anyhow::Result<DatabaseConnection> {
    let db = connect(url).await?;
    migrations::Migrator::up(&db, None).await?;
    Ok(db)
}

/// Opens the database without migrating.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(if url.starts_with("sqlite:") { 8 } else { 16 })
        .sqlx_logging(false)
        // Per connection: WAL lets readers proceed during writes; busy_timeout makes
        // concurrent writers wait instead of failing with SQLITE_BUSY.
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(std::time::Duration::from_secs(10))
                .foreign_keys(true)
        });
    Ok(Database::connect(options).await?)
}
