//! `Idempotency-Key`, implemented once for every operation whose spec declares the header.
//!
//! Records are scoped by organisation, credential owner, method, path and key, and hold a
//! keyed fingerprint of the body ([`BodyFingerprints`]). A retry with the same body replays
//! the stored response with `Idempotent-Replayed: true`; another body gets 422; a retry
//! while the first is in flight gets 409 with `Retry-After`; 5xx and 429 are not stored. Records last 24 hours; an
//! in-flight record older than a minute is taken to be abandoned (its server died). Stored
//! responses are sealed at rest: an API key's or a webhook's creation answer holds its
//! secret.

use std::sync::Arc;

use chrono::{Duration, Utc};
use poem::{
    http::{HeaderName, HeaderValue, StatusCode},
    Body, Endpoint, IntoResponse, Middleware, Request, Response,
};
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use videovector_api_spec::{
    dto::text::IdempotencyKey, problem::FieldError, problem::FieldLocation, ErrorCode,
};
use videovector_api_spec::{ApiError, Principal};

use crate::{
    auth::guard::MatchedRule,
    db::entities::idempotency_record as record,
    purpose_key::PurposeKey,
    secrets_at_rest::{places, Keyring},
};

const RETENTION_HOURS: i64 = 24;
const ABANDONED_AFTER_SECONDS: i64 = 60;
/// Response headers worth replaying.
const REPLAYED_HEADERS: [&str; 2] = ["content-type", "location"];

pub struct Idempotency {
    pub db: DatabaseConnection,
    /// Seals stored responses: a create or rotate answer carries a secret.
    pub keyring: Arc<Keyring>,
    pub fingerprints: BodyFingerprints,
}

impl<E: Endpoint> Middleware<E> for Idempotency {
    type Output = IdempotencyEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        IdempotencyEndpoint {
            inner,
            db: self.db.clone(),
            keyring: self.keyring.clone(),
            fingerprints: self.fingerprints.clone(),
        }
    }
}

pub struct IdempotencyEndpoint<E> {
    inner: E,
    db: DatabaseConnection,
    keyring: Arc<Keyring>,
    fingerprints: BodyFingerprints,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    crate::auth::api_key_secret::hex(&hasher.finalize())
}

/// The record key of a request: organisation, credential owner, method, path and key.
pub fn scope_key(org_id: &str, owner: &str, method: &str, path: &str, key: &str) -> String {
    sha256_hex(&[
        org_id.as_bytes(),
        owner.as_bytes(),
        method.as_bytes(),
        path.as_bytes(),
        key.as_bytes(),
    ])
}

/// Fingerprints of request bodies: HMAC-SHA-256 under a key derived from the API-key pepper
/// (which every instance shares). Keyed because a body can carry secrets (a connector's
/// header values): an unkeyed hash in a database dump let a guessed secret be checked
/// offline, by rebuilding the body around the guess.
#[derive(Clone)]
pub struct BodyFingerprints {
    key: PurposeKey,
}

/// What keyed fingerprints start with; earlier versions stored a bare SHA-256.
const KEYED: &str = "h1:";

impl BodyFingerprints {
    pub fn new(pepper: &[u8]) -> BodyFingerprints {
        BodyFingerprints {
            key: PurposeKey::derive(pepper, b"videovector idempotency fingerprint v1"),
        }
    }

    /// The fingerprint of `body`.
    pub fn of(&self, body: &[u8]) -> String {
        format!(
            "{KEYED}{}",
            crate::auth::api_key_secret::hex(&self.key.tag(body))
        )
    }

    /// Whether `stored` is the fingerprint of `body`, whose keyed fingerprint is
    /// `fingerprint`. A record an earlier version wrote (within the last 24 hours, across an
    /// upgrade) holds the unkeyed form.
    fn matches(stored: &str, fingerprint: &str, body: &[u8]) -> bool {
        if stored.starts_with(KEYED) {
            stored.as_bytes().ct_eq(fingerprint.as_bytes()).into()
        } else {
            stored == sha256_hex(&[body])
        }
    }
}

fn db_failure(e: impl std::fmt::Display + 'static) -> ApiError {
    crate::services::internal("idempotency record", e)
}

enum Claim {
    /// We own the record; run the request.
    Owned,
    /// A finished response to replay.
    Replay(record::Model),
}

impl<E: Endpoint> IdempotencyEndpoint<E> {
    async fn claim(&self, scope_key: &str, body: &[u8]) -> Result<Claim, ApiError> {
        let fingerprint = self.fingerprints.of(body);
        for _ in 0..3 {
            let now = Utc::now();
            let inserted = record::Entity::insert(record::ActiveModel {
                scope_key: Set(scope_key.to_string()),
                fingerprint: Set(fingerprint.clone()),
                state: Set(record::RecordState::InFlight),
                status: Set(None),
                headers: Set(None),
                body: Set(None),
                created_at: Set(now),
                expires_at: Set(now + Duration::hours(RETENTION_HOURS)),
            })
            .on_conflict(
                OnConflict::column(record::Column::ScopeKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(db_failure)?;
            if inserted == 1 {
                return Ok(Claim::Owned);
            }
            let Some(existing) = record::Entity::find_by_id(scope_key.to_string())
                .one(&self.db)
                .await
                .map_err(db_failure)?
            else {
                continue;
            };
            let abandoned = existing.state == record::RecordState::InFlight
                && (now - existing.created_at).num_seconds() > ABANDONED_AFTER_SECONDS;
            if existing.expires_at <= now || abandoned {
                // Delete only the row we looked at, then race for a fresh claim.
                record::Entity::delete_many()
                    .filter(record::Column::ScopeKey.eq(scope_key))
                    .filter(record::Column::CreatedAt.eq(existing.created_at))
                    .exec(&self.db)
                    .await
                    .map_err(db_failure)?;
                continue;
            }
            if !BodyFingerprints::matches(&existing.fingerprint, &fingerprint, body) {
                return Err(ApiError::unprocessable(
                    ErrorCode::IdempotencyKeyReused,
                    "this Idempotency-Key was used with a different request body",
                ));
            }
            if existing.state == record::RecordState::InFlight {
                return Err(ApiError::conflict(
                    ErrorCode::IdempotencyRequestInFlight,
                    "a request with this Idempotency-Key is still being processed",
                )
                .with_header("Retry-After", "1"));
            }
            return Ok(Claim::Replay(existing));
        }
        Err(ApiError::conflict(
            ErrorCode::IdempotencyRequestInFlight,
            "a request with this Idempotency-Key is being claimed concurrently",
        )
        .with_header("Retry-After", "1"))
    }

    async fn finish(
        &self,
        scope_key: &str,
        status: StatusCode,
        headers: &[(String, String)],
        body: &[u8],
    ) {
        let result = if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            record::Entity::delete_by_id(scope_key.to_string())
                .exec(&self.db)
                .await
                .map(|_| ())
        } else {
            record::Entity::update_many()
                .col_expr(
                    record::Column::State,
                    Expr::value(record::RecordState::Done),
                )
                .col_expr(record::Column::Status, (status.as_u16() as i32).into())
                .col_expr(
                    record::Column::Headers,
                    serde_json::to_string(headers).unwrap_or_default().into(),
                )
                .col_expr(
                    record::Column::Body,
                    self.keyring
                        .seal(&places::idempotent_response(scope_key), body)
                        .into_bytes()
                        .into(),
                )
                .filter(record::Column::ScopeKey.eq(scope_key))
                .exec(&self.db)
                .await
                .map(|_| ())
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "saving an idempotency record");
        }
    }
}

/// The stored response, opened; `None` (logged) when the keyring cannot open it.
fn replay(keyring: &Keyring, model: record::Model) -> Option<Response> {
    let sealed = String::from_utf8(model.body.unwrap_or_default()).unwrap_or_default();
    let body = match keyring.open(&places::idempotent_response(&model.scope_key), &sealed) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "opening a stored idempotent response");
            return None;
        }
    };
    let status = model
        .status
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let headers: Vec<(String, String)> = model
        .headers
        .as_deref()
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default();
    let mut response = Response::builder().status(status).body(body);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Some(response)
}

impl<E: Endpoint> Endpoint for IdempotencyEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let applies = req.data::<MatchedRule>().is_some_and(|r| r.0.idempotent);
        let key = req
            .headers()
            .get("idempotency-key")
            .map(|v| v.to_str().map(str::to_string));
        let (Some(key), Some(principal), true) = (key, req.data::<Principal>().cloned(), applies)
        else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        let key = match key {
            Ok(k) if IdempotencyKey::allows(&k) => k,
            _ => {
                return Ok(ApiError::validation(vec![FieldError::at(
                    FieldLocation::Header,
                    "/Idempotency-Key",
                    format!(
                        "must be 1 to {} visible ASCII characters",
                        IdempotencyKey::MAX_LENGTH
                    ),
                )])
                .into_problem_response())
            }
        };
        let body = req.take_body().into_bytes().await?;
        let scope_key = scope_key(
            &principal.org_id,
            &principal.owner(),
            req.method().as_str(),
            req.uri().path(),
            &key,
        );
        match self.claim(&scope_key, &body).await {
            Err(e) => return Ok(e.into_problem_response()),
            Ok(Claim::Replay(model)) => {
                return Ok(replay(&self.keyring, model)
                    .unwrap_or_else(|| ApiError::internal().into_problem_response()))
            }
            Ok(Claim::Owned) => {}
        }
        req.set_body(Body::from(body));
        let response = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let status = response.status();
        let headers: Vec<(String, String)> = REPLAYED_HEADERS
            .iter()
            .filter_map(|name| {
                response
                    .headers()
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (name.to_string(), v.to_string()))
            })
            .collect();
        let (parts, body) = response.into_parts();
        let bytes = body.into_bytes().await.unwrap_or_default();
        self.finish(&scope_key, status, &headers, &bytes).await;
        Ok(Response::from_parts(parts, Body::from(bytes)))
    }
}
