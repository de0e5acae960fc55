//! The first schema: organisations, operators, API keys, indexes, segments with their
//! change log and sequence counters, and idempotency records.

use sea_orm_migration::{prelude::*, schema::*};

use super::{ts, ts_null};

pub struct M0001Initial;

impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Operators {
    Table,
    Id,
    OrgId,
    Email,
    PasswordHash,
    Role,
    Verified,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrgId,
    Name,
    Scopes,
    Digest,
    Hint,
    PreviousDigest,
    PreviousValidUntil,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
    RotatedAt,
}

#[derive(DeriveIden)]
enum Indexes {
    Table,
    Uid,
    OrgId,
    Id,
    Name,
    Description,
    SegmentCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Segments {
    Table,
    Id,
    IndexUid,
    OrgId,
    MediaId,
    StartSeconds,
    EndSeconds,
    Text,
    Labels,
    Metadata,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SegmentChanges {
    Table,
    Seq,
    IndexUid,
    SegmentId,
    Op,
}

#[derive(DeriveIden)]
enum SequenceCounters {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    ScopeKey,
    Fingerprint,
    State,
    Status,
    Headers,
    Body,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Organizations::Table)
                .col(string(Organizations::Id).primary_key())
                .col(string(Organizations::Name))
                .col(ts(Organizations::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Operators::Table)
                .col(string(Operators::Id).primary_key())
                .col(string(Operators::OrgId))
                .col(string(Operators::Email).unique_key())
                .col(string(Operators::PasswordHash))
                .col(string(Operators::Role))
                .col(boolean(Operators::Verified))
                .col(ts(Operators::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(string(ApiKeys::Id).primary_key())
                .col(string(ApiKeys::OrgId))
                .col(string(ApiKeys::Name))
                .col(string(ApiKeys::Scopes))
                .col(string(ApiKeys::Digest).unique_key())
                .col(string(ApiKeys::Hint))
                .col(string_null(ApiKeys::PreviousDigest))
                .col(ts_null(ApiKeys::PreviousValidUntil))
                .col(string(ApiKeys::CreatedBy))
                .col(ts(ApiKeys::CreatedAt))
                .col(ts_null(ApiKeys::ExpiresAt))
                .col(ts_null(ApiKeys::LastUsedAt))
                .col(ts_null(ApiKeys::RevokedAt))
                .col(ts_null(ApiKeys::RotatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("api_keys_previous_digest")
                .table(ApiKeys::Table)
                .col(ApiKeys::PreviousDigest)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("api_keys_org_id")
                .table(ApiKeys::Table)
                .col(ApiKeys::OrgId)
                .col(ApiKeys::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Indexes::Table)
                .col(string(Indexes::Uid).primary_key())
                .col(string(Indexes::OrgId))
                .col(string(Indexes::Id))
                .col(string(Indexes::Name))
                .col(text_null(Indexes::Description))
                .col(big_integer(Indexes::SegmentCount).default(0))
                .col(ts(Indexes::CreatedAt))
                .col(ts(Indexes::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("indexes_org_id_id")
                .table(Indexes::Table)
                .col(Indexes::OrgId)
                .col(Indexes::Id)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Segments::Table)
                .col(string(Segments::Id).primary_key())
                .col(string(Segments::IndexUid))
                .col(string(Segments::OrgId))
                .col(string(Segments::MediaId))
                .col(double(Segments::StartSeconds))
                .col(double(Segments::EndSeconds))
                .col(text(Segments::Text))
                .col(text(Segments::Labels))
                .col(text_null(Segments::Metadata))
                .col(ts(Segments::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("segments_index_uid")
                .table(Segments::Table)
                .col(Segments::IndexUid)
                .col(Segments::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SegmentChanges::Table)
                .col(big_integer(SegmentChanges::Seq).primary_key())
                .col(string(SegmentChanges::IndexUid))
                .col(string_null(SegmentChanges::SegmentId))
                .col(string(SegmentChanges::Op))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SequenceCounters::Table)
                .col(string(SequenceCounters::Name).primary_key())
                .col(big_integer(SequenceCounters::Value))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(SequenceCounters::Table)
                .columns([SequenceCounters::Name, SequenceCounters::Value])
                .values_panic(["segment_changes".into(), 0i64.into()])
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(IdempotencyRecords::Table)
                .col(string(IdempotencyRecords::ScopeKey).primary_key())
                .col(string(IdempotencyRecords::Fingerprint))
                .col(string(IdempotencyRecords::State))
                .col(integer_null(IdempotencyRecords::Status))
                .col(text_null(IdempotencyRecords::Headers))
                .col(blob_null(IdempotencyRecords::Body))
                .col(ts(IdempotencyRecords::CreatedAt))
                .col(ts(IdempotencyRecords::ExpiresAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idempotency_records_expires_at")
                .table(IdempotencyRecords::Table)
                .col(IdempotencyRecords::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyRecords::Table.into_iden(),
            SequenceCounters::Table.into_iden(),
            SegmentChanges::Table.into_iden(),
            Segments::Table.into_iden(),
            Indexes::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Operators::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
