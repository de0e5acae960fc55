//! Embedders: what turns a segment's text (or a query) into a vector for search by
//! meaning, by the index's embedder (`db::records::StoredEmbedder`). The built-in one ships
//! with the binary (a static token table, no ML runtime); a user-provided one is the
//! client's own vectors, checked here against the index's dimensions.

pub mod builtin;
pub mod rest;
mod stopwords;
pub mod wordpiece;

use std::{sync::Arc, time::Duration};

use videovector_api_spec::{
    dto::indexes::{Embedder, EmbedderSettings, EmbedderSource, SegmentInput},
    ApiError, ErrorCode,
};

use crate::{
    db::{entities::index, records::StoredEmbedder, segment_store::NewSegment},
    net_guard,
    secrets_at_rest::{places, Keyring},
};
use builtin::BuiltIn;

const DEFAULT_BATCH_SIZE: u32 = 64;
const DEFAULT_TIMEOUT_SECONDS: u32 = 30;
const DEFAULT_MAX_RETRIES: u32 = 3;

/// An index's embedder as settled: what to store, and the API key to seal with it.
pub struct Settled {
    pub embedder: Option<StoredEmbedder>,
    pub api_key: Option<String>,
}

/// What embedding needs besides the index: the keyring that opens a `rest` embedder's API
/// key, and whether its endpoint may be on a private network.
pub struct Embedders {
    pub keyring: Arc<Keyring>,
    pub allow_private_targets: bool,
    /// How many texts were handed to an embedder, by purpose (the metrics' rates).
    pub counts: EmbedCounts,
}

/// Texts handed to an embedder (built-in or `rest`), by purpose.
#[derive(Default)]
pub struct EmbedCounts {
    /// Segments being ingested.
    pub segments: std::sync::atomic::AtomicU64,
    /// Queries searched by meaning.
    pub queries: std::sync::atomic::AtomicU64,
    /// Segments re-embedded after an embedder change.
    pub reembedded: std::sync::atomic::AtomicU64,
}

/// Whether `embedder` computes vectors here (so its texts are counted).
fn computes(embedder: Option<&StoredEmbedder>) -> bool {
    matches!(
        embedder,
        Some(StoredEmbedder::BuiltIn { .. } | StoredEmbedder::Rest { .. })
    )
}

fn count(counter: &std::sync::atomic::AtomicU64, n: usize) {
    counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
}

impl Embedders {
    /// The embedder `settings` ask for (the built-in one when absent; `None` for `none`).
    /// A 422 names what does not fit; a `rest` endpoint is
    /// asked for one vector first, so a wrong URL, key or dimensions fails here and not at
    /// the first ingest.
    pub async fn settle(
        &self,
        settings: Option<&EmbedderSettings>,
        pointer: &str,
    ) -> Result<Settled, ApiError> {
        let refused = |field: &str, why: &str| {
            ApiError::unprocessable(
                ErrorCode::InvalidEmbedder,
                format!("`{pointer}/{field}` {why}"),
            )
        };
        let Some(settings) = settings else {
            return Ok(Settled {
                embedder: Some(built_in()?),
                api_key: None,
            });
        };
        let rest_only = [
            ("url", settings.url.is_some()),
            ("model", settings.model.is_some()),
            ("api_key", settings.api_key.is_some()),
            ("batch_size", settings.batch_size.is_some()),
            ("timeout_seconds", settings.timeout_seconds.is_some()),
            ("max_retries", settings.max_retries.is_some()),
        ];
        if settings.source != EmbedderSource::Rest {
            if let Some((field, _)) = rest_only.iter().find(|(_, given)| *given) {
                return Err(refused(field, "is taken only by a rest embedder"));
            }
        }
        let embedder = match (settings.source, settings.dimensions) {
            (EmbedderSource::BuiltIn, None) => Some(built_in()?),
            (EmbedderSource::None, None) => None,
            (EmbedderSource::UserProvided, Some(dimensions)) => {
                Some(StoredEmbedder::UserProvided { dimensions })
            }
            (EmbedderSource::Rest, Some(dimensions)) => {
                let url = settings
                    .url
                    .clone()
                    .ok_or_else(|| refused("url", "is required for a rest embedder"))?;
                net_guard::check_url(&url, self.allow_private_targets)
                    .map_err(|why| refused("url", &format!("is refused: {why}")))?;
                let model = settings
                    .model
                    .clone()
                    .ok_or_else(|| refused("model", "is required for a rest embedder"))?;
                Some(StoredEmbedder::Rest {
                    url,
                    model,
                    dimensions,
                    batch_size: settings.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
                    timeout_seconds: settings.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
                    max_retries: settings.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
                })
            }
            (EmbedderSource::UserProvided | EmbedderSource::Rest, None) => {
                return Err(refused(
                    "dimensions",
                    "is required for a user_provided or rest embedder",
                ))
            }
            (_, Some(_)) => {
                return Err(refused(
                    "dimensions",
                    "is taken only by a user_provided or rest embedder",
                ))
            }
        };
        if let Some(StoredEmbedder::Rest { .. }) = &embedder {
            let stored = embedder.as_ref().expect("matched");
            let endpoint = self.endpoint(stored, settings.api_key.as_deref())?;
            endpoint
                .embed(&["VideoVector checks this embedder"])
                .await
                .map_err(|why| {
                    ApiError::unprocessable(
                        ErrorCode::InvalidEmbedder,
                        format!("`{pointer}` was tried and failed: {why}"),
                    )
                })?;
        }
        Ok(Settled {
            embedder,
            api_key: settings.api_key.clone(),
        })
    }

    /// `api_key` sealed for the place `place` names.
    pub fn seal(&self, place: &str, api_key: &str) -> String {
        self.keyring.seal_str(place, api_key)
    }

    /// A sealed API key, opened.
    pub fn open(&self, place: &str, sealed: &str) -> Result<String, ApiError> {
        self.keyring
            .open_str(place, sealed)
            .map_err(|e| failed("opening an embedder's API key", e))
    }

    /// The vectors of `texts` by `embedder` (built-in or `rest`): what a re-embedding
    /// computes. `Err` says why, for the re-embedding's `error`.
    pub async fn texts(
        &self,
        embedder: &StoredEmbedder,
        api_key: Option<&str>,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, String> {
        if computes(Some(embedder)) {
            count(&self.counts.reembedded, texts.len());
        }
        match embedder {
            StoredEmbedder::BuiltIn { .. } => {
                let model = BuiltIn::shared()?;
                tokio::task::spawn_blocking(move || {
                    texts.iter().map(|t| model.embed(t)).collect::<Vec<_>>()
                })
                .await
                .map_err(|e| format!("embedding: {e}"))
            }
            StoredEmbedder::Rest { .. } => {
                let endpoint = self
                    .endpoint(embedder, api_key)
                    .map_err(|e| e.problem.detail.clone())?;
                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                endpoint.embed(&texts).await
            }
            StoredEmbedder::UserProvided { .. } => {
                Err("a user_provided embedder's vectors come only from the client".into())
            }
        }
    }

    /// The segments with their vectors, by the index's embedder: the built-in model embeds
    /// them (on the blocking pool: a batch is milliseconds of CPU), a `rest` endpoint is
    /// called, a user-provided one checks theirs. A vector where none belongs, or one that
    /// does not fit, is a 422 naming it; an endpoint that fails, a 502.
    pub async fn segments(
        &self,
        idx: &index::Model,
        segments: Vec<SegmentInput>,
    ) -> Result<Vec<NewSegment>, ApiError> {
        let refuse = |i: usize, why: String| {
            ApiError::unprocessable(
                ErrorCode::InvalidSegments,
                format!("segments[{i}].vector {why}"),
            )
        };
        let embedder = idx.embedder.as_ref().map(|e| &e.0);
        if let Some(StoredEmbedder::UserProvided { dimensions }) = embedder {
            return segments
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
                .collect();
        }
        if let Some(i) = segments.iter().position(|s| s.vector.is_some()) {
            return Err(refuse(
                i,
                "is taken only by an index whose embedder is user_provided".into(),
            ));
        }
        if computes(embedder) {
            count(&self.counts.segments, segments.len());
        }
        match embedder {
            None | Some(StoredEmbedder::UserProvided { .. }) => Ok(segments
                .into_iter()
                .map(|input| NewSegment {
                    input,
                    vector: None,
                })
                .collect()),
            Some(StoredEmbedder::BuiltIn { .. }) => {
                let model = BuiltIn::shared().map_err(|e| failed("the built-in embedder", e))?;
                tokio::task::spawn_blocking(move || embed_on_every_core(&model, segments))
                    .await
                    .map_err(|e| failed("embedding segments", e))?
                    .map_err(|e| failed("embedding segments", e))
            }
            Some(stored @ StoredEmbedder::Rest { .. }) => {
                let api_key = self.api_key(idx)?;
                let endpoint = self.endpoint(stored, api_key.as_deref())?;
                let texts: Vec<&str> = segments.iter().map(|s| &*s.text).collect();
                let vectors = endpoint.embed(&texts).await.map_err(unavailable)?;
                Ok(segments
                    .into_iter()
                    .zip(vectors)
                    .map(|(input, vector)| NewSegment {
                        input,
                        vector: Some(vector),
                    })
                    .collect())
            }
        }
    }

    /// The query's vector for a search by meaning of `idx`: its embedder's, or the
    /// caller's own `vector` checked against a user-provided embedder. 422 `no_embedder`
    /// when the index has none.
    pub async fn query(
        &self,
        idx: &index::Model,
        text: &str,
        vector: Option<Vec<f32>>,
    ) -> Result<Vec<f32>, ApiError> {
        if vector.is_none() && computes(idx.embedder.as_ref().map(|e| &e.0)) {
            count(&self.counts.queries, 1);
        }
        match (idx.embedder.as_ref().map(|e| &e.0), vector) {
            (None, _) => Err(no_embedder()),
            (Some(StoredEmbedder::UserProvided { dimensions }), Some(vector)) => {
                check_vector(&vector, *dimensions as usize)
                    .map_err(|why| invalid_vector(&format!("`vector` {why}")))?;
                Ok(vector)
            }
            (Some(StoredEmbedder::UserProvided { .. }), None) => Err(invalid_vector(
                "`vector` is required to search by meaning an index whose embedder is \
                 user_provided",
            )),
            (Some(_), Some(_)) => Err(invalid_vector(
                "`vector` is taken only by an index whose embedder is user_provided",
            )),
            (Some(StoredEmbedder::BuiltIn { .. }), None) => {
                let model = BuiltIn::shared().map_err(|e| failed("the built-in embedder", e))?;
                Ok(model.embed(text))
            }
            (Some(stored @ StoredEmbedder::Rest { .. }), None) => {
                let api_key = self.api_key(idx)?;
                let endpoint = self.endpoint(stored, api_key.as_deref())?;
                let mut vectors = endpoint.embed(&[text]).await.map_err(unavailable)?;
                vectors.pop().ok_or_else(ApiError::internal)
            }
        }
    }

    /// Whether the index can embed a query's text itself (a run's retrieval has no
    /// caller's vector): a 422 like [`Self::query`]'s otherwise, with no call made.
    pub fn check_embeds_text(&self, idx: &index::Model) -> Result<(), ApiError> {
        match idx.embedder.as_ref().map(|e| &e.0) {
            None => Err(no_embedder()),
            Some(StoredEmbedder::UserProvided { .. }) => Err(invalid_vector(
                "this index's embedder is user_provided: only a search that carries its own \
                 `vector` can search it by meaning",
            )),
            Some(_) => Ok(()),
        }
    }

    /// The `rest` embedder's API key, opened.
    fn api_key(&self, idx: &index::Model) -> Result<Option<String>, ApiError> {
        idx.embedder_secret
            .as_deref()
            .map(|sealed| self.open(&places::embedder_api_key(&idx.uid), sealed))
            .transpose()
    }

    fn endpoint<'a>(
        &self,
        stored: &'a StoredEmbedder,
        api_key: Option<&'a str>,
    ) -> Result<rest::Endpoint<'a>, ApiError> {
        let StoredEmbedder::Rest {
            url,
            model,
            dimensions,
            batch_size,
            timeout_seconds,
            max_retries,
        } = stored
        else {
            return Err(failed("calling an embedder", "not a rest embedder"));
        };
        Ok(rest::Endpoint {
            url,
            model,
            dimensions: *dimensions as usize,
            api_key,
            batch_size: *batch_size as usize,
            timeout: Duration::from_secs((*timeout_seconds).into()),
            max_retries: *max_retries,
            allow_private: self.allow_private_targets,
        })
    }
}

fn built_in() -> Result<StoredEmbedder, ApiError> {
    let model = BuiltIn::shared().map_err(|e| failed("the built-in embedder", e))?;
    Ok(StoredEmbedder::BuiltIn {
        model: builtin::MODEL.into(),
        dimensions: model.dims() as u32,
    })
}

/// The embedder as answered (never its API key).
pub fn to_dto(embedder: &StoredEmbedder, has_api_key: bool) -> Embedder {
    let plain = |source, model: Option<&String>, dimensions: &u32| Embedder {
        source,
        model: model.cloned(),
        dimensions: *dimensions,
        url: None,
        batch_size: None,
        timeout_seconds: None,
        max_retries: None,
        has_api_key: None,
    };
    match embedder {
        StoredEmbedder::BuiltIn { model, dimensions } => {
            plain(EmbedderSource::BuiltIn, Some(model), dimensions)
        }
        StoredEmbedder::UserProvided { dimensions } => {
            plain(EmbedderSource::UserProvided, None, dimensions)
        }
        StoredEmbedder::Rest {
            url,
            model,
            dimensions,
            batch_size,
            timeout_seconds,
            max_retries,
        } => Embedder {
            url: Some(url.clone()),
            batch_size: Some(*batch_size),
            timeout_seconds: Some(*timeout_seconds),
            max_retries: Some(*max_retries),
            has_api_key: Some(has_api_key),
            ..plain(EmbedderSource::Rest, Some(model), dimensions)
        },
    }
}

/// An embedding endpoint that failed: a 502 saying why (the caller may retry later).
fn unavailable(why: String) -> ApiError {
    tracing::warn!(error = %why, "an embedder failed");
    ApiError::new(
        poem::http::StatusCode::BAD_GATEWAY,
        ErrorCode::EmbedderFailed,
        format!("the index's embedder failed, so nothing was stored or searched: {why}"),
    )
}

/// A caller's query vector before it meets an index: finite values, not all zero (its
/// dimensions are checked against each index it searches).
pub fn check_query_vector(vector: &[f32]) -> Result<(), ApiError> {
    check_vector(vector, vector.len()).map_err(|why| invalid_vector(&format!("`vector` {why}")))
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

/// 422 `no_embedder`: meaning asked of an index searched by words only.
fn no_embedder() -> ApiError {
    ApiError::unprocessable(
        ErrorCode::NoEmbedder,
        "this index has no embedder, so it is searched by words only: use mode `lexical`, or \
         give the index an embedder",
    )
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
