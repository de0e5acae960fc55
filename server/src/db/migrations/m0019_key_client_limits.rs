//! Rate limits counted per client address on an API key (`client_rate_limits`, JSON like
//! `rate_limits`; `[]`: none).

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0019KeyClientLimits;

impl MigrationName for M0019KeyClientLimits {
    fn name(&self) -> &str {
        "m0019_key_client_limits"
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    ClientRateLimits,
}

#[async_trait::async_trait]
impl MigrationTrait for M0019KeyClientLimits {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(text(ApiKeys::ClientRateLimits).default("[]"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .drop_column(ApiKeys::ClientRateLimits)
                .to_owned(),
        )
        .await
    }
}
