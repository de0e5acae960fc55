//! Restrictions and labels on API keys: the networks a key may be used from, its metadata,
//! and the owner it is for in the customer's system (keys are listed by it).

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0015KeyRestrictions;

impl MigrationName for M0015KeyRestrictions {
    fn name(&self) -> &str {
        "m0015_key_restrictions"
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    OrgId,
    /// JSON: CIDR strings, as given.
    AllowedCidrs,
    /// JSON: a map of strings.
    Metadata,
    OwnerId,
}

#[async_trait::async_trait]
impl MigrationTrait for M0015KeyRestrictions {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            text(ApiKeys::AllowedCidrs).default("[]").to_owned(),
            text(ApiKeys::Metadata).default("{}").to_owned(),
            string_null(ApiKeys::OwnerId),
        ] {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("api_keys_org_owner")
                .table(ApiKeys::Table)
                .col(ApiKeys::OrgId)
                .col(ApiKeys::OwnerId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("api_keys_org_owner").to_owned())
            .await?;
        for column in [ApiKeys::AllowedCidrs, ApiKeys::Metadata, ApiKeys::OwnerId] {
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
