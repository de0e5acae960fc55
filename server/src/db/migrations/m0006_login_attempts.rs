//! Failed login attempts, counted for the login limits.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0006LoginAttempts;

impl MigrationName for M0006LoginAttempts {
    fn name(&self) -> &str {
        "m0006_login_attempts"
    }
}

/// Reserved login attempts, shared by every instance on the database.
#[derive(DeriveIden)]
enum LoginAttempts {
    Table,
    Id,
    Key,
    AtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0006LoginAttempts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(LoginAttempts::Table)
                .col(string(LoginAttempts::Id).primary_key())
                .col(string(LoginAttempts::Key))
                .col(big_integer(LoginAttempts::AtMs))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("login_attempts_key_at")
                .table(LoginAttempts::Table)
                .col(LoginAttempts::Key)
                .col(LoginAttempts::AtMs)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(LoginAttempts::Table).to_owned())
            .await
    }
}
