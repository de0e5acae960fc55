//! Tenant tokens: each API key keeps the key its tenant tokens are signed with (derived from
//! its secret, sealed at rest), so the server can check a token minted offline.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0017TenantTokenKeys;

impl MigrationName for M0017TenantTokenKeys {
    fn name(&self) -> &str {
        "m0017_tenant_token_keys"
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    /// Sealed (`secrets_at_rest`); NULL for a key made before tenant tokens until rotated.
    TenantKey,
}

#[async_trait::async_trait]
impl MigrationTrait for M0017TenantTokenKeys {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(text_null(ApiKeys::TenantKey))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .drop_column(ApiKeys::TenantKey)
                .to_owned(),
        )
        .await
    }
}
