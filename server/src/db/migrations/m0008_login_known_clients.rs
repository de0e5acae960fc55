//! The email and client pairs that logged in, which skip the turns of a flood.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0008LoginKnownClients;

impl MigrationName for M0008LoginKnownClients {
    fn name(&self) -> &str {
        "m0008_login_known_clients"
    }
}

/// Email and client pairs that logged in successfully, and when last.
#[derive(DeriveIden)]
enum LoginKnownClients {
    Table,
    Key,
    LastSuccessMs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0008LoginKnownClients {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(LoginKnownClients::Table)
                .col(string(LoginKnownClients::Key).primary_key())
                .col(big_integer(LoginKnownClients::LastSuccessMs))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(LoginKnownClients::Table).to_owned())
            .await
    }
}
