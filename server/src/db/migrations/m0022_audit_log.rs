//! The audit log: one chained event per security-relevant action, the head of each
//! organisation's chain (its last sequence and hash, what retention has pruned, and a MAC
//! over both), and the id of the request that caused a run, a job or a webhook delivery.

use sea_orm_migration::{prelude::*, schema::*};

use super::ts;

pub struct M0022AuditLog;

impl MigrationName for M0022AuditLog {
    fn name(&self) -> &str {
        "m0022_audit_log"
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    OrgId,
    Sequence,
    OccurredAt,
    Action,
    Outcome,
    ActorType,
    ActorId,
    TargetType,
    TargetId,
    ClientAddress,
    RequestId,
    Changes,
    PreviousHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditHeads {
    Table,
    OrgId,
    Sequence,
    Hash,
    PrunedSequence,
    PrunedHash,
    Mac,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    RequestId,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    RequestId,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    RequestId,
}

#[async_trait::async_trait]
impl MigrationTrait for M0022AuditLog {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(string(AuditEvents::Id).primary_key())
                .col(string(AuditEvents::OrgId))
                .col(big_integer(AuditEvents::Sequence))
                .col(ts(AuditEvents::OccurredAt))
                .col(string(AuditEvents::Action))
                .col(string(AuditEvents::Outcome))
                .col(string(AuditEvents::ActorType))
                .col(text(AuditEvents::ActorId))
                .col(string(AuditEvents::TargetType))
                .col(text(AuditEvents::TargetId))
                .col(string_null(AuditEvents::ClientAddress))
                .col(string_null(AuditEvents::RequestId))
                .col(text(AuditEvents::Changes))
                .col(string(AuditEvents::PreviousHash))
                .col(string(AuditEvents::Hash))
                .to_owned(),
        )
        .await?;
        // One event per place in a chain: two writers can never both append sequence n.
        m.create_index(
            Index::create()
                .name("audit_events_org_id_sequence")
                .table(AuditEvents::Table)
                .col(AuditEvents::OrgId)
                .col(AuditEvents::Sequence)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_events_occurred_at")
                .table(AuditEvents::Table)
                .col(AuditEvents::OccurredAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AuditHeads::Table)
                .col(string(AuditHeads::OrgId).primary_key())
                .col(big_integer(AuditHeads::Sequence))
                .col(string(AuditHeads::Hash))
                .col(big_integer(AuditHeads::PrunedSequence))
                .col(string(AuditHeads::PrunedHash))
                .col(string(AuditHeads::Mac))
                .to_owned(),
        )
        .await?;
        for (table, column) in [
            (Runs::Table.into_iden(), Runs::RequestId.into_iden()),
            (Jobs::Table.into_iden(), Jobs::RequestId.into_iden()),
            (
                WebhookDeliveries::Table.into_iden(),
                WebhookDeliveries::RequestId.into_iden(),
            ),
        ] {
            m.alter_table(
                Table::alter()
                    .table(table)
                    .add_column(string_null(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            (Runs::Table.into_iden(), Runs::RequestId.into_iden()),
            (Jobs::Table.into_iden(), Jobs::RequestId.into_iden()),
            (
                WebhookDeliveries::Table.into_iden(),
                WebhookDeliveries::RequestId.into_iden(),
            ),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        m.drop_table(Table::drop().table(AuditHeads::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
