//! Connectors and their sync jobs.

use sea_orm_migration::{prelude::*, schema::*};

use super::{ts, ts_null};

pub struct M0003ConnectorsAndJobs;

impl MigrationName for M0003ConnectorsAndJobs {
    fn name(&self) -> &str {
        "m0003_connectors_and_jobs"
    }
}

#[derive(DeriveIden)]
enum Connectors {
    Table,
    Id,
    OrgId,
    Name,
    Kind,
    Files,
    Headers,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
    Id,
    OrgId,
    ConnectorId,
    Status,
    Attempt,
    RetryOf,
    Files,
    Error,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0003ConnectorsAndJobs {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Connectors::Table)
                .col(string(Connectors::Id).primary_key())
                .col(string(Connectors::OrgId))
                .col(string(Connectors::Name))
                .col(string(Connectors::Kind))
                .col(text(Connectors::Files))
                .col(text(Connectors::Headers))
                .col(ts(Connectors::CreatedAt))
                .col(ts(Connectors::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("connectors_org_id_id")
                .table(Connectors::Table)
                .col(Connectors::OrgId)
                .col(Connectors::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(string(Jobs::Id).primary_key())
                .col(string(Jobs::OrgId))
                .col(string(Jobs::ConnectorId))
                .col(string(Jobs::Status))
                .col(integer(Jobs::Attempt))
                .col(string_null(Jobs::RetryOf))
                .col(text(Jobs::Files))
                .col(text_null(Jobs::Error))
                .col(ts(Jobs::CreatedAt))
                .col(ts_null(Jobs::StartedAt))
                .col(ts_null(Jobs::FinishedAt))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            ("jobs_status_id", [Jobs::Status, Jobs::Id]),
            ("jobs_org_id_id", [Jobs::OrgId, Jobs::Id]),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Jobs::Table)
                    .col(cols[0])
                    .col(cols[1])
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Jobs::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Connectors::Table).to_owned())
            .await
    }
}
