//! Saved prompts and their runs.

use sea_orm_migration::{prelude::*, schema::*};

use super::{ts, ts_null};

pub struct M0002PromptsAndRuns;

impl MigrationName for M0002PromptsAndRuns {
    fn name(&self) -> &str {
        "m0002_prompts_and_runs"
    }
}

#[derive(DeriveIden)]
enum Prompts {
    Table,
    Id,
    OrgId,
    Name,
    Description,
    QueryTemplate,
    Instructions,
    Variables,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    OrgId,
    PromptId,
    IndexId,
    Variables,
    Status,
    Attempt,
    RetryOf,
    Query,
    Instructions,
    TopK,
    Result,
    Error,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0002PromptsAndRuns {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Prompts::Table)
                .col(string(Prompts::Id).primary_key())
                .col(string(Prompts::OrgId))
                .col(string(Prompts::Name))
                .col(text_null(Prompts::Description))
                .col(text(Prompts::QueryTemplate))
                .col(text(Prompts::Instructions))
                .col(text(Prompts::Variables))
                .col(ts(Prompts::CreatedAt))
                .col(ts(Prompts::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("prompts_org_id_name")
                .table(Prompts::Table)
                .col(Prompts::OrgId)
                .col(Prompts::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Runs::Table)
                .col(string(Runs::Id).primary_key())
                .col(string(Runs::OrgId))
                .col(string(Runs::PromptId))
                .col(string(Runs::IndexId))
                .col(text(Runs::Variables))
                .col(string(Runs::Status))
                .col(integer(Runs::Attempt))
                .col(string_null(Runs::RetryOf))
                .col(text(Runs::Query))
                .col(text(Runs::Instructions))
                .col(integer(Runs::TopK))
                .col(text_null(Runs::Result))
                .col(text_null(Runs::Error))
                .col(ts(Runs::CreatedAt))
                .col(ts_null(Runs::StartedAt))
                .col(ts_null(Runs::FinishedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("runs_status_id")
                .table(Runs::Table)
                .col(Runs::Status)
                .col(Runs::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("runs_org_id_id")
                .table(Runs::Table)
                .col(Runs::OrgId)
                .col(Runs::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Runs::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Prompts::Table).to_owned())
            .await
    }
}
