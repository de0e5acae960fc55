//! Changing an index's embedder: the embedder it is moving to, the generation of its
//! vectors, each segment's vector under the new embedder while the old one still serves,
//! and the queue of re-embeddings with their progress.

use sea_orm_migration::{prelude::*, schema::*};

use super::{ts, ts_null};

pub struct M0013Reembeddings;

impl MigrationName for M0013Reembeddings {
    fn name(&self) -> &str {
        "m0013_reembeddings"
    }
}

#[derive(DeriveIden)]
enum Indexes {
    Table,
    /// JSON (`db::records::StoredEmbedder`): the embedder a re-embedding moves to.
    PendingEmbedder,
    /// Its API key, sealed.
    PendingEmbedderSecret,
    /// The change after which every vector is the current embedder's (0: from the start).
    EmbedderSeq,
    /// The latest re-embedding of the index.
    ReembeddingId,
}

#[derive(DeriveIden)]
enum Segments {
    Table,
    /// The vector under the pending embedder (`db::vectors`), until the switch.
    VectorNext,
}

#[derive(DeriveIden)]
enum Reembeddings {
    Table,
    Id,
    OrgId,
    IndexUid,
    Status,
    LeaseToken,
    LeaseExpiresMs,
    Done,
    Total,
    Error,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0013Reembeddings {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            text_null(Indexes::PendingEmbedder),
            text_null(Indexes::PendingEmbedderSecret),
            big_integer(Indexes::EmbedderSeq).default(0).to_owned(),
            string_null(Indexes::ReembeddingId),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Indexes::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Segments::Table)
                .add_column(blob_null(Segments::VectorNext))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Reembeddings::Table)
                .col(string(Reembeddings::Id).primary_key())
                .col(string(Reembeddings::OrgId))
                .col(string(Reembeddings::IndexUid))
                .col(string(Reembeddings::Status))
                .col(string_null(Reembeddings::LeaseToken))
                .col(big_integer_null(Reembeddings::LeaseExpiresMs))
                .col(big_integer(Reembeddings::Done).default(0))
                .col(big_integer(Reembeddings::Total).default(0))
                .col(text_null(Reembeddings::Error))
                .col(ts(Reembeddings::CreatedAt))
                .col(ts_null(Reembeddings::StartedAt))
                .col(ts_null(Reembeddings::FinishedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("reembeddings_status")
                .table(Reembeddings::Table)
                .col(Reembeddings::Status)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Reembeddings::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Segments::Table)
                .drop_column(Segments::VectorNext)
                .to_owned(),
        )
        .await?;
        for column in [
            Indexes::PendingEmbedder,
            Indexes::PendingEmbedderSecret,
            Indexes::EmbedderSeq,
            Indexes::ReembeddingId,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Indexes::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
