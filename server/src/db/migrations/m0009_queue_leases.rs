//! Leases on running runs, jobs and deliveries, so another instance takes over the work of
//! one that stopped.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0009QueueLeases;

impl MigrationName for M0009QueueLeases {
    fn name(&self) -> &str {
        "m0009_queue_leases"
    }
}

/// The lease of a running row (see `db::queue`): who holds it, and until when (Unix ms).
#[derive(DeriveIden)]
enum Lease {
    LeaseToken,
    LeaseExpiresMs,
}

/// The queue tables and how long a row an older version left running keeps its lease, so
/// that an instance still running that version during an upgrade finishes it alone: the
/// horizons after which that version gave such rows up.
const LEASED_TABLES: [(&str, i64); 3] = [
    ("runs", 60_000),
    ("jobs", 30 * 60_000),
    ("webhook_deliveries", 5 * 60_000),
];

#[async_trait::async_trait]
impl MigrationTrait for M0009QueueLeases {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (table, horizon_ms) in LEASED_TABLES {
            for column in [
                string_null(Lease::LeaseToken),
                big_integer_null(Lease::LeaseExpiresMs),
            ] {
                m.alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
            }
            m.get_connection()
                .execute_unprepared(&format!(
                    "UPDATE {table} SET lease_expires_ms = {} WHERE status = 'running'",
                    now_ms + horizon_ms
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, _) in LEASED_TABLES {
            for column in [Lease::LeaseToken, Lease::LeaseExpiresMs] {
                m.alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
            }
        }
        Ok(())
    }
}
