//! Rate limits and usage: a key's own limits, an organisation's defaults, the windows
//! instances on one PostgreSQL database share their counts through, and usage counts per
//! key, family and time bucket.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0014RateLimits;

impl MigrationName for M0014RateLimits {
    fn name(&self) -> &str {
        "m0014_rate_limits"
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    /// JSON: the key's own limits (`RateLimit`s in their API form).
    RateLimits,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    /// JSON: the organisation's default limits; NULL for the server's.
    RateLimits,
}

/// Requests granted per subject, limit and window, summed over every instance.
#[derive(DeriveIden)]
enum RateLimitWindows {
    Table,
    /// The counted credential and family (`key_...:search`).
    Subject,
    /// The limit's name.
    Name,
    /// The window's start, epoch seconds.
    WindowStart,
    /// When the window ends, epoch seconds (rows past it are deleted).
    EndsAt,
    /// Requests granted to instances so far.
    Granted,
    /// What the last grant gave (read back by the instance that asked).
    LastGrant,
}

/// Requests per key, family and time bucket, by outcome.
#[derive(DeriveIden)]
enum ApiKeyUsage {
    Table,
    OrgId,
    KeyId,
    /// `minute`, `hour` or `day`.
    Granularity,
    /// Epoch seconds.
    BucketStart,
    /// `search`, `read` or `write`.
    Family,
    Allowed,
    RateLimited,
    RefusedByScope,
    NotFound,
    ClientError,
    ServerError,
}

#[async_trait::async_trait]
impl MigrationTrait for M0014RateLimits {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(text(ApiKeys::RateLimits).default("[]"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(text_null(Organizations::RateLimits))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RateLimitWindows::Table)
                .col(string(RateLimitWindows::Subject))
                .col(string(RateLimitWindows::Name))
                .col(big_integer(RateLimitWindows::WindowStart))
                .col(big_integer(RateLimitWindows::EndsAt))
                .col(big_integer(RateLimitWindows::Granted))
                .col(big_integer(RateLimitWindows::LastGrant))
                .primary_key(
                    Index::create()
                        .col(RateLimitWindows::Subject)
                        .col(RateLimitWindows::Name)
                        .col(RateLimitWindows::WindowStart),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("rate_limit_windows_ends_at")
                .table(RateLimitWindows::Table)
                .col(RateLimitWindows::EndsAt)
                .to_owned(),
        )
        .await?;
        let count = |col: ApiKeyUsage| big_integer(col).default(0).to_owned();
        m.create_table(
            Table::create()
                .table(ApiKeyUsage::Table)
                .col(string(ApiKeyUsage::OrgId))
                .col(string(ApiKeyUsage::KeyId))
                .col(string(ApiKeyUsage::Granularity))
                .col(big_integer(ApiKeyUsage::BucketStart))
                .col(string(ApiKeyUsage::Family))
                .col(count(ApiKeyUsage::Allowed))
                .col(count(ApiKeyUsage::RateLimited))
                .col(count(ApiKeyUsage::RefusedByScope))
                .col(count(ApiKeyUsage::NotFound))
                .col(count(ApiKeyUsage::ClientError))
                .col(count(ApiKeyUsage::ServerError))
                .primary_key(
                    Index::create()
                        .col(ApiKeyUsage::OrgId)
                        .col(ApiKeyUsage::Granularity)
                        .col(ApiKeyUsage::BucketStart)
                        .col(ApiKeyUsage::KeyId)
                        .col(ApiKeyUsage::Family),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("api_key_usage_key")
                .table(ApiKeyUsage::Table)
                .col(ApiKeyUsage::KeyId)
                .col(ApiKeyUsage::Granularity)
                .col(ApiKeyUsage::BucketStart)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ApiKeyUsage::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(RateLimitWindows::Table).to_owned())
            .await?;
        for (table, column) in [
            (ApiKeys::Table.into_iden(), ApiKeys::RateLimits.into_iden()),
            (
                Organizations::Table.into_iden(),
                Organizations::RateLimits.into_iden(),
            ),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
