//! Embedders: what turns a segment's text (or a query) into a vector for search by
//! meaning, by the index's embedder (`db::records::StoredEmbedder`). The built-in one ships
//! with the binary (a static token table, no ML runtime); a user-provided one is the
//! client's own vectors, checked here against the index's dimensions.

pub mod builtin;
mod stopwords;
pub mod wordpiece;

use videovector_api_spec::{
    dto::indexes::{Embedder, EmbedderSettings, EmbedderSource, SegmentInput},
    ApiError, ErrorCode,
};

use crate::db::{records::StoredEmbedder, segment_store::NewSegment};
use builtin::BuiltIn;

/// The stored embedder `settings` ask for (the built-in one when absent); `None` for
/// `none`. A 422 names what does not fit.
pub fn from_settings(
    settings: Option<&EmbedderSettings>,
    pointer: &str,
) -> Result<Option<StoredEmbedder>, ApiError> {
    let Some(settings) = settings else {
        return Ok(Some(built_in()?));
    };
    let dimensions_refused = |why: &str| {
        ApiError::unprocessable(
            ErrorCode::InvalidEmbedder,
            format!("`{pointer}/dimensions` {why}"),
        )
    };
    match (settings.source, settings.dimensions) {
        (EmbedderSource::BuiltIn, None) => Ok(Some(built_in()?)),
        (EmbedderSource::None, None) => Ok(None),
        (EmbedderSource::UserProvided, Some(dimensions)) => {
            Ok(Some(StoredEmbedder::UserProvided { dimensions }))
        }
        (EmbedderSource::UserProvided, None) => Err(dimensions_refused(
            "is required for a user_provided embedder",
        )),
        (_, Some(_)) => Err(dimensions_refused(
            "is taken only by a user_provided embedder",
        )),
    }
}

fn built_in() -> Result<StoredEmbedder, ApiError> {
    let model = BuiltIn::shared().map_err(|e| failed("the built-in embedder", e))?;
    Ok(StoredEmbedder::BuiltIn {
        model: builtin::MODEL.into(),
        dimensions: model.dims() as u32,
    })
}

/// The embedder as answered.
pub fn to_dto(embedder: &StoredEmbedder) -> Embedder {
    match embedder {
        StoredEmbedder::BuiltIn { model, dimensions } => Embedder {
            source: EmbedderSource::BuiltIn,
            model: Some(model.clone()),
            dimensions: *dimensions,
        },
        StoredEmbedder::UserProvided { dimensions } => Embedder {
            source: EmbedderSource::UserProvided,
            model: None,
            dimensions: *dimensions,
        },
    }
}

/// The segments with their vectors, by the index's embedder: the built-in model embeds
/// them (on the blocking pool: a batch is milliseconds of CPU), a user-provided one checks
/// theirs. A vector where none belongs, or one that does not fit, is a 422 naming it.
pub async fn embed_segments(
    embedder: Option<&StoredEmbedder>,
    segments: Vec<SegmentInput>,
) -> Result<Vec<NewSegment>, ApiError> {
    let refuse = |i: usize, why: String| {
        ApiError::unprocessable(
            ErrorCode::InvalidSegments,
            format!("segments[{i}].vector {why}"),
        )
    };
    match embedder {
        Some(StoredEmbedder::UserProvided { dimensions }) => segments
            .into_iter()
            .enumerate()
            .map(|(i, mut input)| {
                let vector = input.vector.take().ok_or_else(|| {
                    refuse(
                        i,
                        "is required: the index's embedder is user_provided".into(),
                    )
                })?;
                check_vector(&vector, *dimensions as usize).map_err(|why| refuse(i, why))?;
                Ok(NewSegment {
                    input,
                    vector: Some(vector),
                })
            })
            .collect(),
        other => {
            if let Some(i) = segments.iter().position(|s| s.vector.is_some()) {
                return Err(refuse(
                    i,
                    "is taken only by an index whose embedder is user_provided".into(),
                ));
            }
            let Some(StoredEmbedder::BuiltIn { .. }) = other else {
                return Ok(segments
                    .into_iter()
                    .map(|input| NewSegment {
                        input,
                        vector: None,
                    })
                    .collect());
            };
            let model = BuiltIn::shared().map_err(|e| failed("the built-in embedder", e))?;
            tokio::task::spawn_blocking(move || embed_on_every_core(&model, segments))
                .await
                .map_err(|e| failed("embedding segments", e))?
                .map_err(|e| failed("embedding segments", e))
        }
    }
}

/// The query's vector for a search by meaning: the built-in model's, or the caller's own
/// `vector` checked against a user-provided embedder. 422 `no_embedder` when the index has
/// none.
pub async fn embed_query(
    embedder: Option<&StoredEmbedder>,
    text: &str,
    vector: Option<Vec<f32>>,
) -> Result<Vec<f32>, ApiError> {
    match (embedder, vector) {
        (None, _) => Err(ApiError::unprocessable(
            ErrorCode::NoEmbedder,
            "this index has no embedder, so it is searched by words only: use mode `lexical`, \
             or give the index an embedder",
        )),
        (Some(StoredEmbedder::UserProvided { dimensions }), Some(vector)) => {
            check_vector(&vector, *dimensions as usize)
                .map_err(|why| invalid_vector(&format!("`vector` {why}")))?;
            Ok(vector)
        }
        (Some(StoredEmbedder::UserProvided { .. }), None) => Err(invalid_vector(
            "`vector` is required to search by meaning an index whose embedder is user_provided",
        )),
        (Some(StoredEmbedder::BuiltIn { .. }), Some(_)) => Err(invalid_vector(
            "`vector` is taken only by an index whose embedder is user_provided",
        )),
        (Some(StoredEmbedder::BuiltIn { .. }), None) => {
            let model = BuiltIn::shared().map_err(|e| failed("the built-in embedder", e))?;
            Ok(model.embed(text))
        }
    }
}

/// Segments below this many are embedded on one thread (starting threads costs more).
const PARALLEL_FROM: usize = 256;

/// Embeds `segments` in order, a share on each core: a bulk load's batch waits for its
/// vectors, and the other cores were idle meanwhile. A share that fails fails the batch
/// (nothing is stored without its vector).
fn embed_on_every_core(
    model: &BuiltIn,
    segments: Vec<SegmentInput>,
) -> Result<Vec<NewSegment>, String> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let embed = |input: SegmentInput| NewSegment {
        vector: Some(model.embed(&input.text)),
        input,
    };
    if cores < 2 || segments.len() < PARALLEL_FROM {
        return Ok(segments.into_iter().map(embed).collect());
    }
    let share = segments.len().div_ceil(cores);
    let mut parts: Vec<Vec<SegmentInput>> = Vec::with_capacity(cores);
    let mut rest = segments;
    while rest.len() > share {
        let tail = rest.split_off(share);
        parts.push(std::mem::replace(&mut rest, tail));
    }
    parts.push(rest);
    std::thread::scope(|scope| {
        let running: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(embed).collect::<Vec<_>>()))
            .collect();
        let mut embedded = Vec::new();
        for thread in running {
            embedded.extend(
                thread
                    .join()
                    .map_err(|_| "an embedding thread panicked".to_string())?,
            );
        }
        Ok(embedded)
    })
}

fn invalid_vector(detail: &str) -> ApiError {
    ApiError::unprocessable(ErrorCode::InvalidVector, detail)
}

/// Logs a failure of the embedder itself and answers a 500 that says nothing about it.
fn failed(context: &str, error: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %error, "{context}");
    ApiError::internal()
}

/// `Err(why)` unless `vector` has `dimensions` finite values, not all zero.
fn check_vector(vector: &[f32], dimensions: usize) -> Result<(), String> {
    if vector.len() != dimensions {
        return Err(format!(
            "has {} values; the index's embedder has {dimensions} dimensions",
            vector.len()
        ));
    }
    if let Some(at) = vector.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "holds a value that is not a finite number (at {at})"
        ));
    }
    if vector.iter().all(|x| *x == 0.0) {
        return Err("is all zeros, which has no direction to compare".into());
    }
    Ok(())
}
