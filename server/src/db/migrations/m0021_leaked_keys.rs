//! Leaked keys: where a secret scanner reported a key found (kept on the key, shown in its
//! view), and each organisation's policy on such keys (revoke at once, the default).

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0021LeakedKeys;

impl MigrationName for M0021LeakedKeys {
    fn name(&self) -> &str {
        "m0021_leaked_keys"
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    LeakReportedAt,
    LeakReporter,
    LeakUrl,
    LeakSource,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    RevokeLeakedKeys,
}

#[async_trait::async_trait]
impl MigrationTrait for M0021LeakedKeys {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            timestamp_with_time_zone_null(ApiKeys::LeakReportedAt),
            string_null(ApiKeys::LeakReporter),
            text_null(ApiKeys::LeakUrl),
            string_null(ApiKeys::LeakSource),
        ] {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(boolean(Organizations::RevokeLeakedKeys).default(true))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .drop_column(Organizations::RevokeLeakedKeys)
                .to_owned(),
        )
        .await?;
        for column in [
            ApiKeys::LeakReportedAt,
            ApiKeys::LeakReporter,
            ApiKeys::LeakUrl,
            ApiKeys::LeakSource,
        ] {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
