//! A sealed check value per secrets key, so a start with the wrong key fails loudly.

use sea_orm_migration::{prelude::*, schema::*};

use super::ts;

pub struct M0007SecretsKeyChecks;

impl MigrationName for M0007SecretsKeyChecks {
    fn name(&self) -> &str {
        "m0007_secrets_key_checks"
    }
}

/// One sealed check value per secrets key that sealed anything here.
#[derive(DeriveIden)]
enum SecretsKeyChecks {
    Table,
    KeyId,
    Sealed,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0007SecretsKeyChecks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SecretsKeyChecks::Table)
                .col(string(SecretsKeyChecks::KeyId).primary_key())
                .col(text(SecretsKeyChecks::Sealed))
                .col(ts(SecretsKeyChecks::CreatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SecretsKeyChecks::Table).to_owned())
            .await
    }
}
