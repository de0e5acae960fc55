//! Webhooks and their deliveries.

use sea_orm_migration::{prelude::*, schema::*};

use super::{ts, ts_null};

pub struct M0004Webhooks;

impl MigrationName for M0004Webhooks {
    fn name(&self) -> &str {
        "m0004_webhooks"
    }
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    OrgId,
    Url,
    EventTypes,
    Description,
    Secret,
    Enabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    OrgId,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptMs,
    CreatedAt,
    DeliveredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0004Webhooks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Webhooks::Table)
                .col(string(Webhooks::Id).primary_key())
                .col(string(Webhooks::OrgId))
                .col(text(Webhooks::Url))
                .col(text(Webhooks::EventTypes))
                .col(text_null(Webhooks::Description))
                .col(string(Webhooks::Secret))
                .col(boolean(Webhooks::Enabled))
                .col(ts(Webhooks::CreatedAt))
                .col(ts(Webhooks::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhooks_org_id_id")
                .table(Webhooks::Table)
                .col(Webhooks::OrgId)
                .col(Webhooks::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WebhookDeliveries::Table)
                .col(string(WebhookDeliveries::Id).primary_key())
                .col(string(WebhookDeliveries::WebhookId))
                .col(string(WebhookDeliveries::OrgId))
                .col(string(WebhookDeliveries::EventType))
                .col(text(WebhookDeliveries::Payload))
                .col(string(WebhookDeliveries::Status))
                .col(text(WebhookDeliveries::Attempts))
                .col(big_integer(WebhookDeliveries::NextAttemptMs))
                .col(ts(WebhookDeliveries::CreatedAt))
                .col(ts_null(WebhookDeliveries::DeliveredAt))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            (
                "webhook_deliveries_status_next",
                [WebhookDeliveries::Status, WebhookDeliveries::NextAttemptMs],
            ),
            (
                "webhook_deliveries_webhook_id",
                [WebhookDeliveries::WebhookId, WebhookDeliveries::Id],
            ),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(WebhookDeliveries::Table)
                    .col(cols[0])
                    .col(cols[1])
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Webhooks::Table).to_owned())
            .await
    }
}
