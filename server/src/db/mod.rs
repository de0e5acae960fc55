//! Storage: connection, versioned migrations and the sea-orm entities.

pub mod backend;
pub mod change_log;
pub mod columns;
pub mod direct;
pub mod entities;
pub mod migrations;
pub mod notifications;
pub mod point_reads;
pub mod queue;
pub mod reachability;
pub mod read_cache;
pub mod records;
#[cfg(test)]
pub mod scratch;
pub mod segment_store;
pub mod vectors;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

/// Opens the configured database (creating the data dir the default SQLite file lives in)
/// and applies pending migrations.
pub async fn open(config: &crate::config::Config) -> anyhow::Result<DatabaseConnection> {
    std::fs::create_dir_all(&config.data_dir)?;
    connect_and_migrate(&config.database_url()).await
}

/// Opens the database and applies pending migrations.
///
/// On PostgreSQL several instances may start at once on a new database: the migrations
/// run in one transaction that first takes an advisory lock, so one instance applies them
/// and the others wait, then find them applied (sea-orm's migrator alone would race).
pub async fn connect_and_migrate(url: &str) -> anyhow::Result<DatabaseConnection> {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
    let db = connect(url).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        let txn = db.begin().await?;
        txn.execute_unprepared(
            "SELECT pg_advisory_xact_lock(hashtextextended('videovector migrations', 0))",
        )
        .await?;
        migrations::Migrator::up(&txn, None).await?;
        txn.commit().await?;
    } else {
        migrations::Migrator::up(&db, None).await?;
    }
    Ok(db)
}

/// Opens the database without migrating.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    let backend = backend::Backend::from_url(url)?;
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(if backend.is_postgres() { 16 } else { 8 })
        .acquire_timeout(reachability::ACQUIRE_TIMEOUT)
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
