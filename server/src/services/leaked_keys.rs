//! Reports of leaked keys from secret scanners (`POST /leaked-keys`): the signature is
//! checked against the configured reporters' keys, each token is matched by its digest (the
//! only form keys are kept in), and a key of this server is marked with where it was found,
//! announced as `api_key.leaked`, and revoked at once unless its organisation said
//! otherwise. A token is never stored, logged or repeated: the answer names each by the
//! SHA-256 of its text.

use chrono::Utc;
use poem::http::StatusCode;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use videovector_api_spec::{
    dto::{
        api_keys::*,
        audit::{AuditAction, AuditActorType, AuditTargetType},
        webhooks::WebhookEventType,
    },
    problem::FieldError,
    services::{ServiceResult, SignedReport},
    ApiError, ErrorCode,
};

use super::{
    api_keys::{to_dto, ApiKeys},
    internal,
};
use crate::{
    audit::{Actor, Entry},
    auth::api_key_secret,
    db::entities::{api_key, organization},
};

/// The most tokens one report may carry.
const MAX_TOKENS: usize = 1000;

pub async fn report(
    keys: &ApiKeys,
    report: SignedReport<'_>,
    tokens: Vec<LeakedKeyReport>,
) -> ServiceResult<Vec<LeakedKeyVerdict>> {
    let reporter = keys
        .reporters
        .verify(report.key_identifier, report.signature, report.body)
        .map_err(|why| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidSignature,
                why.to_string(),
            )
        })?
        .to_string();
    if tokens.len() > MAX_TOKENS {
        return Err(ApiError::validation(vec![FieldError::body(
            "",
            format!("at most {MAX_TOKENS} tokens per report"),
        )]));
    }
    let mut verdicts = Vec::with_capacity(tokens.len());
    for found in tokens {
        let token_hash = crate::auth::api_key_secret::hex(&Sha256::digest(found.token.as_bytes()));
        let verdict = match ours(keys, &found.token).await? {
            Some((key, works)) => LeakedKeyVerdict {
                token_hash,
                label: LeakLabel::TruePositive,
                was_active: works,
                revoked: record(keys, key, works, &reporter, &found).await?,
            },
            None => LeakedKeyVerdict {
                token_hash,
                label: LeakLabel::FalsePositive,
                was_active: false,
                revoked: false,
            },
        };
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// The key `token` is a secret of (its current or its previous one), and whether that
/// secret works now.
async fn ours(keys: &ApiKeys, token: &str) -> ServiceResult<Option<(api_key::Model, bool)>> {
    if !api_key_secret::is_well_formed(token) {
        return Ok(None);
    }
    let digest = api_key_secret::digest(&keys.pepper, token);
    let key = api_key::Entity::find()
        .filter(
            Condition::any()
                .add(api_key::Column::Digest.eq(&digest))
                .add(api_key::Column::PreviousDigest.eq(&digest)),
        )
        .one(&keys.db)
        .await
        .map_err(|e| internal("looking up a reported key", e))?;
    let now = Utc::now();
    Ok(key.map(|key| {
        let secret_works =
            key.digest == digest || key.previous_valid_until.is_some_and(|until| until > now);
        let works =
            secret_works && key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now);
        (key, works)
    }))
}

/// Marks `key` leaked (on its first report) and revokes it when its secret `works` and its
/// organisation revokes leaked keys; announces both. Whether the key is revoked now.
async fn record(
    keys: &ApiKeys,
    key: api_key::Model,
    works: bool,
    reporter: &str,
    found: &LeakedKeyReport,
) -> ServiceResult<bool> {
    let policy = organization::Entity::find_by_id(&key.org_id)
        .one(&keys.db)
        .await
        .map_err(|e| internal("reading an organisation's leak policy", e))?;
    let revoke = works && policy.is_some_and(|org| org.revoke_leaked_keys);
    let first_report = key.leak_reported_at.is_none();
    if !first_report && !revoke {
        return Ok(key.revoked_at.is_some());
    }
    let now = Utc::now();
    let org_id = key.org_id.clone();
    let before = key.clone();
    let mut model: api_key::ActiveModel = key.into();
    if first_report {
        model.leak_reported_at = Set(Some(now));
        model.leak_reporter = Set(Some(reporter.to_string()));
        model.leak_url = Set(found.url.clone());
        model.leak_source = Set(found.source.clone());
    }
    if revoke {
        model.revoked_at = Set(Some(now));
    }
    let entry = Entry::new(
        &org_id,
        AuditAction::ApiKeyReportLeak,
        Actor::new(AuditActorType::LeakReporter, reporter),
        AuditTargetType::ApiKey,
        &before.id,
    );
    let saved = keys
        .write(&before, model, entry)
        .await
        .map_err(|e| internal("recording a leaked key", e))?;
    let shown = to_dto(&saved);
    let actor = format!("reporter:{reporter}");
    if first_report {
        keys.announce_as(&org_id, &actor, WebhookEventType::ApiKeyLeaked, &shown)
            .await;
    }
    if revoke {
        keys.announce_as(&org_id, &actor, WebhookEventType::ApiKeyRevoked, &shown)
            .await;
        tracing::warn!(key_id = %saved.id, reporter, "revoked a key reported leaked");
    }
    Ok(saved.revoked_at.is_some())
}
