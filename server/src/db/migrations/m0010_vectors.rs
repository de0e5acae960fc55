//! Search by meaning: an index's embedder, and each segment's vector.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0010Vectors;

impl MigrationName for M0010Vectors {
    fn name(&self) -> &str {
        "m0010_vectors"
    }
}

#[derive(DeriveIden)]
enum Indexes {
    Table,
    /// JSON (`db::records::StoredEmbedder`); none: the index is searched by words only.
    Embedder,
}

#[derive(DeriveIden)]
enum Segments {
    Table,
    /// Little-endian f32s (`db::vectors`); none while the index has no embedder.
    Vector,
}

#[async_trait::async_trait]
impl MigrationTrait for M0010Vectors {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Indexes::Table)
                .add_column(text_null(Indexes::Embedder))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Segments::Table)
                .add_column(blob_null(Segments::Vector))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Segments::Table)
                .drop_column(Segments::Vector)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Indexes::Table)
                .drop_column(Indexes::Embedder)
                .to_owned(),
        )
        .await
    }
}
