//! Segments carry the change number of the batch that stored them, so a search copy
//! reads a batch back by it.

use sea_orm_migration::{prelude::*, schema::*};

pub struct M0005BatchChanges;

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
