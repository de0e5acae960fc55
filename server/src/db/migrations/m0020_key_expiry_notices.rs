//! When each API key's expiry was announced (`api_key.expiring`, `api_key.expired`): each is
//! sent once, by whichever instance sets the time first.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0020KeyExpiryNotices;

impl MigrationName for M0020KeyExpiryNotices {
    fn name(&self) -> &str {
        "m0020_key_expiry_notices"
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    ExpiresAt,
    ExpiringNoticeAt,
    ExpiredNoticeAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0020KeyExpiryNotices {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [ApiKeys::ExpiringNoticeAt, ApiKeys::ExpiredNoticeAt] {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(timestamp_with_time_zone_null(column))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("api_keys_expires_at")
                .table(ApiKeys::Table)
                .col(ApiKeys::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("api_keys_expires_at").to_owned())
            .await?;
        for column in [ApiKeys::ExpiringNoticeAt, ApiKeys::ExpiredNoticeAt] {
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
