//! Embedding a batch and storing it as one step: the vectors must be those of the
//! embedder the index has when the batch is stored. A re-embedding may switch it between
//! the two; the store then refuses the batch (`db::segment_store`), and it is embedded
//! again by the new embedder.

use sea_orm::{DatabaseConnection, EntityTrait};
use videovector_api_spec::{dto::indexes::SegmentInput, ApiError};

use super::internal;
use crate::{
    db::{
        entities::index,
        records::StoredEmbedder,
        segment_store::{SegmentStore, StoredBatch},
    },
    embed::Embedders,
};

/// How many times a batch is embedded again after a switch (each switch takes a whole
/// re-embedding, so a second one within one batch is already unlikely).
const AFTER_SWITCHES: usize = 3;

/// Embeds `inputs` by `idx`'s embedder and stores them (`flush`: a caller waits for them to
/// be searchable). 404 when the index is gone.
pub async fn embed_and_store(
    embedders: &Embedders,
    db: &DatabaseConnection,
    store: &SegmentStore,
    mut idx: index::Model,
    mut inputs: Vec<SegmentInput>,
    flush: bool,
) -> Result<(index::Model, StoredBatch), ApiError> {
    for _ in 0..=AFTER_SWITCHES {
        let segments = embedders.segments(&idx, inputs).await?;
        let handed_back = match store.store(&idx, segments, flush).await {
            Ok(Ok(batch)) => return Ok((idx, batch)),
            Ok(Err(handed_back)) => handed_back,
            Err(e) => return Err(internal("storing segments", e)),
        };
        let user_vectors = matches!(
            idx.embedder.as_ref().map(|e| &e.0),
            Some(StoredEmbedder::UserProvided { .. })
        );
        inputs = handed_back
            .into_iter()
            .map(|segment| {
                let mut input = segment.input;
                if user_vectors {
                    input.vector = segment.vector;
                }
                input
            })
            .collect();
        idx = index::Entity::find_by_id(idx.uid.clone())
            .one(db)
            .await
            .map_err(|e| internal("reloading an index", e))?
            .ok_or_else(|| ApiError::not_found("index", &idx.id))?;
    }
    Err(internal(
        "storing segments",
        "the index's embedder kept switching",
    ))
}
