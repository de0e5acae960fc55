//! The API key of an index's `rest` embedder, sealed like every other secret.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0012EmbedderSecrets;

impl MigrationName for M0012EmbedderSecrets {
    fn name(&self) -> &str {
        "m0012_embedder_secrets"
    }
}

#[derive(DeriveIden)]
enum Indexes {
    Table,
    /// Sealed (`secrets_at_rest`); none when the embedder needs no key.
    EmbedderSecret,
}

#[async_trait::async_trait]
impl MigrationTrait for M0012EmbedderSecrets {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Indexes::Table)
                .add_column(text_null(Indexes::EmbedderSecret))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Indexes::Table)
                .drop_column(Indexes::EmbedderSecret)
                .to_owned(),
        )
        .await
    }
}
