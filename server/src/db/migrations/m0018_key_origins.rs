//! The web pages an API key may be used from (`allowed_origins`, JSON; `[]`: none but the
//! server's own).

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0018KeyOrigins;

impl MigrationName for M0018KeyOrigins {
    fn name(&self) -> &str {
        "m0018_key_origins"
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    AllowedOrigins,
}

#[async_trait::async_trait]
impl MigrationTrait for M0018KeyOrigins {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(text(ApiKeys::AllowedOrigins).default("[]"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .drop_column(ApiKeys::AllowedOrigins)
                .to_owned(),
        )
        .await
    }
}
