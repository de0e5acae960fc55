//! Index restrictions on API keys: the indexes a key may touch (`index_ids`, JSON; `[]`:
//! every index) and the most hits one of its requests may ask for (`max_top_k`).

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0016KeyIndexRestrictions;

impl MigrationName for M0016KeyIndexRestrictions {
    fn name(&self) -> &str {
        "m0016_key_index_restrictions"
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    IndexIds,
    MaxTopK,
}

#[async_trait::async_trait]
impl MigrationTrait for M0016KeyIndexRestrictions {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            text(ApiKeys::IndexIds).default("[]").to_owned(),
            integer_null(ApiKeys::MaxTopK),
        ] {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [ApiKeys::IndexIds, ApiKeys::MaxTopK] {
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
