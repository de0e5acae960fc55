//! Retries that are safe by construction. Every request the client sends goes through
//! [`RetryPolicy::execute`] (the generated client's `exec` hook): a dropped connection, a
//! timeout, a 429, 502, 503 or 504, or a 409 that says the same idempotent request is still
//! in flight is tried again, after a capped exponential backoff with jitter, or after the
//! server's own `Retry-After` (or `RateLimit` reset) when it gives one.
//!
//! A `POST` or `PATCH` is retried only when it carries an `Idempotency-Key`: the server then
//! answers a repeat with the first attempt's stored answer instead of acting twice. The
//! client adds a fresh key to every operation the spec marks idempotent (those that take
//! the header) when the caller gave none, so a create that lost its answer on the wire is
//! retried without creating twice. `GET`, `PUT` and `DELETE` are retried as they are.

use std::time::Duration;

use rand::Rng;
use reqwest::{header::HeaderValue, Method, Request, Response, StatusCode};

use crate::generated_idempotent::IDEMPOTENT_OPERATIONS;

/// The header that makes a write safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// How a client retries. [`RetryPolicy::default`] makes up to 4 attempts; [`RetryPolicy::none`]
/// makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: never retry).
    pub max_attempts: u32,
    /// The backoff before the first retry; it doubles for each retry after.
    pub initial_backoff: Duration,
    /// The longest backoff between two attempts.
    pub max_backoff: Duration,
    /// The longest wait the client accepts from a `Retry-After` or `RateLimit` reset; an
    /// answer that asks for more is returned to the caller instead.
    pub max_server_wait: Duration,
    /// Whether to add an `Idempotency-Key` to operations that take one when the caller gave
    /// none (only while retries are on; a caller's own key is always kept).
    pub add_idempotency_keys: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_server_wait: Duration::from_secs(60),
            add_idempotency_keys: true,
        }
    }
}

impl RetryPolicy {
    /// One attempt per request: errors reach the caller as they happen.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    fn retries(&self) -> bool {
        self.max_attempts > 1
    }

    /// Sends `request` for `operation_id`, retrying as the policy says.
    pub(crate) async fn execute(
        &self,
        http: &reqwest::Client,
        mut request: Request,
        operation_id: &str,
    ) -> reqwest::Result<Response> {
        if self.retries() && self.add_idempotency_keys {
            add_idempotency_key(&mut request, operation_id);
        }
        let repeatable = may_repeat(&request);
        let mut attempt = 1;
        loop {
            // A body that cannot be copied (a stream) is sent once.
            let spare = (repeatable && attempt < self.max_attempts)
                .then(|| request.try_clone())
                .flatten();
            let outcome = http.execute(request).await;
            let Some(next) = spare else {
                return outcome;
            };
            let Some(wait) = self.wait_before_retry(&outcome, attempt) else {
                return outcome;
            };
            // The answer we retry past is dropped; its connection goes back to the pool.
            drop(outcome);
            tokio_sleep(wait).await;
            request = next;
            attempt += 1;
        }
    }

    /// How long to wait before another attempt after `outcome`, or `None` to stop.
    fn wait_before_retry(
        &self,
        outcome: &reqwest::Result<Response>,
        attempt: u32,
    ) -> Option<Duration> {
        let backoff = self.backoff(attempt);
        match outcome {
            Err(error) if is_transient(error) => Some(backoff),
            Err(_) => None,
            Ok(response) if is_retryable_status(response.status(), response.headers()) => {
                match server_wait(response.headers()) {
                    Some(wait) if wait > self.max_server_wait => None,
                    Some(wait) => Some(wait.max(backoff / 4)),
                    None => Some(backoff),
                }
            }
            Ok(_) => None,
        }
    }

    /// Full-jitter exponential backoff: a random wait between half and all of
    /// `initial × 2^(attempt-1)`, capped at `max_backoff`.
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .initial_backoff
            .saturating_mul(1u32 << (attempt - 1).min(20));
        let ceiling = doubled.min(self.max_backoff);
        let half = ceiling / 2;
        half + ceiling
            .saturating_sub(half)
            .mul_f64(rand::thread_rng().gen())
    }
}

async fn tokio_sleep(wait: Duration) {
    // reqwest's runtime is Tokio; its timer is the one the caller's runtime has.
    tokio::time::sleep(wait).await
}

/// Adds a fresh `Idempotency-Key` to an operation that takes one and was sent without.
fn add_idempotency_key(request: &mut Request, operation_id: &str) {
    if !IDEMPOTENT_OPERATIONS.contains(&operation_id)
        || request.headers().contains_key(IDEMPOTENCY_KEY)
    {
        return;
    }
    let key: u128 = rand::thread_rng().gen();
    let value = HeaderValue::from_str(&format!("vvc_{key:032x}")).expect("hex is a header value");
    request.headers_mut().insert(IDEMPOTENCY_KEY, value);
}

/// Whether sending `request` twice cannot act twice.
fn may_repeat(request: &Request) -> bool {
    match *request.method() {
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE => true,
        _ => request.headers().contains_key(IDEMPOTENCY_KEY),
    }
}

/// A failure of the connection or of the wait, not an answer.
fn is_transient(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// Statuses a later attempt may not get: too many requests, a gateway or instance that is
/// down or overloaded, the same idempotent request still in flight (a 409 with
/// `Retry-After`; other conflicts are final).
pub(crate) fn is_retryable_status(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> bool {
    match status {
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => true,
        StatusCode::CONFLICT => headers.contains_key(reqwest::header::RETRY_AFTER),
        _ => false,
    }
}

/// The wait the server asked for: `Retry-After` in seconds, else the `t` (seconds to reset)
/// of a `RateLimit` with no requests left (`"search";r=0;t=12`).
fn server_wait(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    let rate_limit = header("ratelimit")?;
    let param = |name: &str| {
        rate_limit
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| value.parse::<u64>().ok())
    };
    (param("r") == Some(0)).then(|| param("t").map(Duration::from_secs))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn backoff_doubles_within_its_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        for _ in 0..200 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(125) && first <= Duration::from_millis(250));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(500) && third <= Duration::from_millis(1000));
            assert!(policy.backoff(30) <= policy.max_backoff);
        }
    }

    #[test]
    fn the_server_wait_comes_from_retry_after_then_an_exhausted_rate_limit() {
        assert_eq!(
            server_wait(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            server_wait(&headers(&[("ratelimit", "\"search\";r=0;t=12")])),
            Some(Duration::from_secs(12))
        );
        // Requests left: the limit is not why the answer failed.
        assert_eq!(
            server_wait(&headers(&[("ratelimit", "\"search\";r=3;t=12")])),
            None
        );
        assert_eq!(server_wait(&headers(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        let none = HeaderMap::new();
        for status in [429, 502, 503, 504] {
            assert!(is_retryable_status(
                StatusCode::from_u16(status).unwrap(),
                &none
            ));
        }
        for status in [400, 401, 403, 404, 409, 422, 500] {
            assert!(!is_retryable_status(
                StatusCode::from_u16(status).unwrap(),
                &none
            ));
        }
        assert!(is_retryable_status(
            StatusCode::CONFLICT,
            &headers(&[("retry-after", "1")])
        ));
    }

    #[test]
    fn a_write_is_repeatable_only_with_an_idempotency_key() {
        let url = "http://127.0.0.1/api/v2/indexes"
            .parse::<reqwest::Url>()
            .unwrap();
        let mut post = Request::new(Method::POST, url.clone());
        assert!(!may_repeat(&post));
        add_idempotency_key(&mut post, "search_query");
        assert!(!may_repeat(&post), "search_query takes no key");
        add_idempotency_key(&mut post, "index_create");
        assert!(may_repeat(&post));
        let added = post.headers()[IDEMPOTENCY_KEY].clone();
        add_idempotency_key(&mut post, "index_create");
        assert_eq!(post.headers()[IDEMPOTENCY_KEY], added, "a key is kept");
        assert!(may_repeat(&Request::new(Method::DELETE, url)));
    }

    #[test]
    fn a_server_wait_past_the_limit_is_not_waited_for() {
        let policy = RetryPolicy {
            max_server_wait: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        let response = |retry_after: &str| {
            let answer = http::Response::builder()
                .status(429)
                .header("retry-after", retry_after)
                .body("")
                .unwrap();
            Ok(Response::from(answer))
        };
        assert_eq!(policy.wait_before_retry(&response("60"), 1), None);
        assert_eq!(
            policy.wait_before_retry(&response("2"), 1),
            Some(Duration::from_secs(2))
        );
    }
}
