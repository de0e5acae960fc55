//! The `rest` embedder: an OpenAI-compatible embeddings endpoint the operator runs (its
//! own model server, a hosted API). `POST {url}` with `{"model": …, "input": [texts]}`,
//! answered by `{"data": [{"index": i, "embedding": [numbers]}, …]}`.
//!
//! Calls go through the outbound guard (`net_guard`: the URL checked, its host resolved
//! once and pinned, no private addresses unless the server allows them), in batches, each
//! with a timeout, retried with exponential backoff and jitter when the failure may pass
//! (no answer, 429, 5xx; `Retry-After` honoured up to [`MAX_WAIT`]). An answer that does
//! not fit (another count of vectors, other dimensions, values that are not finite) is not
//! retried: the endpoint is misconfigured, and the caller learns why. With traces on, each
//! attempt is a span of the caller's trace and sends its `traceparent`.

use std::time::Duration;

use opentelemetry::{trace::SpanKind, KeyValue};
use rand::Rng;
use serde::Deserialize;

use crate::net_guard;

/// The longest wait between two attempts.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// The first wait; it doubles with each retry.
const FIRST_WAIT: Duration = Duration::from_millis(200);
/// The most an answer may hold: a batch of 2,048 vectors of 4,096 numbers as JSON text
/// is about 200 MB; answers past this are refused rather than buffered.
const MAX_ANSWER_BYTES: usize = 256 << 20;

/// One endpoint, as an index's embedder names it.
pub struct Endpoint<'a> {
    pub url: &'a str,
    pub model: &'a str,
    pub dimensions: usize,
    /// Sent as `Authorization: Bearer …`.
    pub api_key: Option<&'a str>,
    pub batch_size: usize,
    pub timeout: Duration,
    pub max_retries: u32,
    pub allow_private: bool,
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f64>,
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    why: String,
    retry: bool,
    /// The endpoint's `Retry-After`.
    after: Option<Duration>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl Endpoint<'_> {
    /// The vectors of `texts`, in order, a batch at a time. `Err` says why in words fit for
    /// the caller (never the API key).
    pub async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let url = net_guard::check_url(self.url, self.allow_private)?;
        let client = net_guard::client_for(&url, self.allow_private, self.timeout).await?;
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size.max(1)) {
            vectors.extend(self.embed_batch(&client, &url, batch).await?);
        }
        Ok(vectors)
    }

    async fn embed_batch(
        &self,
        client: &reqwest::Client,
        url: &reqwest::Url,
        batch: &[&str],
    ) -> Result<Vec<Vec<f32>>, String> {
        let body = serde_json::json!({
            "model": self.model,
            "input": batch,
            "encoding_format": "float",
        });
        let mut attempt = 0u32;
        loop {
            let attempt_call = crate::traces::in_span(
                "embedding",
                SpanKind::Client,
                || {
                    vec![
                        KeyValue::new("http.request.method", "POST"),
                        KeyValue::new("gen_ai.request.model", self.model.to_string()),
                        KeyValue::new("videovector.inputs", batch.len() as i64),
                    ]
                },
                self.attempt(client, url, &body, batch.len()),
            );
            let failure = match attempt_call.await {
                Ok(vectors) => return Ok(vectors),
                Err(failure) => failure,
            };
            if !failure.retry || attempt >= self.max_retries {
                let tries = if attempt == 0 {
                    String::new()
                } else {
                    format!(" (after {} attempts)", attempt + 1)
                };
                return Err(format!("the embedder at {url}: {}{tries}", failure.why));
            }
            let backoff = FIRST_WAIT
                .saturating_mul(1 << attempt.min(10))
                .min(MAX_WAIT);
            // Full jitter: instances retrying together do not come back together.
            let jittered = rand::thread_rng().gen_range(backoff / 2..=backoff);
            tokio::time::sleep(failure.after.unwrap_or(jittered).min(MAX_WAIT)).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        client: &reqwest::Client,
        url: &reqwest::Url,
        body: &serde_json::Value,
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, Failure> {
        // The attempt's span, when traced: the model server's spans continue our trace.
        let mut request = client
            .post(url.clone())
            .json(body)
            .headers(crate::traces::propagation::outbound_headers());
        if let Some(key) = self.api_key {
            request = request.bearer_auth(key);
        }
        let mut answer = request.send().await.map_err(|e| Failure {
            why: if e.is_timeout() {
                format!("no answer within {} s", self.timeout.as_secs_f32())
            } else {
                net_guard::describe(&e)
            },
            retry: true,
            after: None,
        })?;
        let status = answer.status();
        if !status.is_success() {
            let after = answer
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Failure {
                why: format!("HTTP {status}"),
                retry: status.as_u16() == 429 || status.is_server_error(),
                after,
            });
        }
        let mut bytes = Vec::new();
        loop {
            let chunk = answer.chunk().await.map_err(|e| Failure {
                why: format!("reading the answer: {}", net_guard::describe(&e)),
                retry: true,
                after: None,
            })?;
            let Some(chunk) = chunk else { break };
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_ANSWER_BYTES {
                return Err(misfit(format!(
                    "the answer is larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
            misfit(format!(
                "the answer is not an embeddings list (`data[].embedding`): {e}"
            ))
        })?;
        self.vectors_of(answer, expected).map_err(misfit)
    }

    /// The answer's vectors in input order, each checked.
    fn vectors_of(&self, answer: Answer, expected: usize) -> Result<Vec<Vec<f32>>, String> {
        if answer.data.len() != expected {
            return Err(format!(
                "asked for {expected} vectors, it answered {}",
                answer.data.len()
            ));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (position, datum) in answer.data.into_iter().enumerate() {
            let at = datum.index.unwrap_or(position);
            let slot = slots.get_mut(at).ok_or_else(|| {
                format!("it answered a vector for input {at}, which it was not sent")
            })?;
            if slot.is_some() {
                return Err(format!("it answered two vectors for input {at}"));
            }
            if datum.embedding.len() != self.dimensions {
                return Err(format!(
                    "it answered vectors of {} dimensions; the index's embedder has {}",
                    datum.embedding.len(),
                    self.dimensions
                ));
            }
            let vector: Vec<f32> = datum.embedding.iter().map(|&x| x as f32).collect();
            if vector.iter().any(|x| !x.is_finite()) {
                return Err(format!(
                    "the vector for input {at} holds a value that is not a finite number"
                ));
            }
            if vector.iter().all(|x| *x == 0.0) {
                return Err(format!("the vector for input {at} is all zeros"));
            }
            *slot = Some(vector);
        }
        Ok(slots.into_iter().flatten().collect())
    }
}

fn misfit(why: String) -> Failure {
    Failure {
        why,
        retry: false,
        after: None,
    }
}
