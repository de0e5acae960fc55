//! The trace context (`traceparent`) of the request that queued a run, a job or a webhook
//! delivery, so the worker's span continues that request's trace.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0023TraceContext;

impl MigrationName for M0023TraceContext {
    fn name(&self) -> &str {
        "m0023_trace_context"
    }
}

#[derive(DeriveIden)]
enum Runs {
    Table,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
}

#[derive(DeriveIden)]
enum Queued {
    TraceParent,
}

fn tables() -> [DynIden; 3] {
    [
        Runs::Table.into_iden(),
        Jobs::Table.into_iden(),
        WebhookDeliveries::Table.into_iden(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for M0023TraceContext {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            m.alter_table(
                Table::alter()
                    .table(table)
                    .add_column(string_null(Queued::TraceParent))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            m.alter_table(
                Table::alter()
                    .table(table)
                    .drop_column(Queued::TraceParent)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
