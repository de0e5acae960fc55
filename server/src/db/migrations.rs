//! Versioned schema migrations, applied in order at start-up (`videovector migrate` applies
//! them alone). sea-orm-migration runs each migration in a transaction on PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Initial),
            Box::new(M0002PromptsAndRuns),
            Box::new(M0003ConnectorsAndJobs),
            Box::new(M0004Webhooks),
            Box::new(M0005BatchChanges),
            Box::new(M0006LoginAttempts),
            Box::new(M0007SecretsKeyChecks),
            Box::new(M0008LoginKnownClients),
            Box::new(M0009QueueLeases),
        ]
    }
}

struct M0001Initial;

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

fn ts(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone(col)
}

fn ts_null(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone_null(col)
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

struct M0002PromptsAndRuns;

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

struct M0003ConnectorsAndJobs;

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

struct M0004Webhooks;

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

struct M0005BatchChanges;

impl MigrationName for M0005BatchChanges {
    fn name(&self) -> &str {
        "m0005_batch_changes"
    }
}

#[derive(DeriveIden)]
enum SegmentsBatch {
    #[sea_orm(iden = "segments")]
    Table,
    ChangeSeq,
}

#[async_trait::async_trait]
impl MigrationTrait for M0005BatchChanges {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SegmentsBatch::Table)
                .add_column(big_integer_null(SegmentsBatch::ChangeSeq))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("segments_change_seq")
                .table(SegmentsBatch::Table)
                .col(SegmentsBatch::ChangeSeq)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("segments_change_seq").to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(SegmentsBatch::Table)
                .drop_column(SegmentsBatch::ChangeSeq)
                .to_owned(),
        )
        .await
    }
}

struct M0006LoginAttempts;

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

struct M0007SecretsKeyChecks;

impl MigrationName for M0007SecretsKeyChecks {
    fn name(&self) -> &str {
        "m0007_secrets_key_checks"
    }
}

/// One sealed check value per secrets key that sealed anything here.
#[derive(DeriveIden)]
enum SecretsKeyChecks {
    Table,
    KeyId,
    Sealed,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0007SecretsKeyChecks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SecretsKeyChecks::Table)
                .col(string(SecretsKeyChecks::KeyId).primary_key())
                .col(text(SecretsKeyChecks::Sealed))
                .col(ts(SecretsKeyChecks::CreatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SecretsKeyChecks::Table).to_owned())
            .await
    }
}

struct M0008LoginKnownClients;

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

struct M0009QueueLeases;

impl MigrationName for M0009QueueLeases {
    fn name(&self) -> &str {
        "m0009_queue_leases"
    }
}

/// The lease of a running row (see `db::queue`): who holds it, and until when (Unix ms).
#[derive(DeriveIden)]
enum Lease {
    LeaseToken,
    LeaseExpiresMs,
}

/// The queue tables and how long a row an older version left running keeps its lease, so
/// that an instance still running that version during an upgrade finishes it alone: the
/// horizons after which that version gave such rows up.
const LEASED_TABLES: [(&str, i64); 3] = [
    ("runs", 60_000),
    ("jobs", 30 * 60_000),
    ("webhook_deliveries", 5 * 60_000),
];

#[async_trait::async_trait]
impl MigrationTrait for M0009QueueLeases {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (table, horizon_ms) in LEASED_TABLES {
            for column in [
                string_null(Lease::LeaseToken),
                big_integer_null(Lease::LeaseExpiresMs),
            ] {
                m.alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
            }
            m.get_connection()
                .execute_unprepared(&format!(
                    "UPDATE {table} SET lease_expires_ms = {} WHERE status = 'running'",
                    now_ms + horizon_ms
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, _) in LEASED_TABLES {
            for column in [Lease::LeaseToken, Lease::LeaseExpiresMs] {
                m.alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
            }
        }
        Ok(())
    }
}
