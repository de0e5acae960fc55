//! How a run retrieves its evidence: by words, by meaning, or both.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0011RunRetrieval;

impl MigrationName for M0011RunRetrieval {
    fn name(&self) -> &str {
        "m0011_run_retrieval"
    }
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    /// JSON (`db::records::RunRetrieval`); none: by words (a run from before this).
    Retrieval,
}

#[async_trait::async_trait]
impl MigrationTrait for M0011RunRetrieval {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::Retrieval))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Runs::Table)
                .drop_column(Runs::Retrieval)
                .to_owned(),
        )
        .await
    }
}
