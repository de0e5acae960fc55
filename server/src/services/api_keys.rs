//! The API key lifecycle: create and rotate (the only moments the secret is returned),
//! masked list and view, update (name, rate limits), revoke, delete. A token may only
//! manage keys whose scopes it holds.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use chrono::{Duration, Utc};
use poem_openapi::types::ToJSON;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, TransactionTrait, TryIntoModel,
};
use videovector_api_spec::ErrorCode;
use videovector_api_spec::{
    dto::{
        api_keys::*,
        audit::{AuditAction, AuditChange, AuditTargetType},
        webhooks::WebhookEventType,
    },
    problem::FieldError,
    services::{ApiKeyService, PageParams, ServiceResult, SignedReport},
    ApiError, Principal, Scope,
};

use super::{find_in_org, internal, pagination::PageRequest};
use crate::{
    audit::{changes, AuditLog, Entry},
    auth::{api_key_secret, leak_reporters::LeakReporters, tenant_tokens},
    db::{
        columns::{IndexIdList, JsonText, NetworkList, OriginList, RateLimitList, ScopeList},
        entities::api_key,
        notifications::Notice,
        point_reads::PointReads,
    },
    events::Events,
    ids::new_id,
    rate_limits::policy::Policy,
    secrets_at_rest::{places, Keyring},
};

pub struct ApiKeys {
    pub db: DatabaseConnection,
    pub reads: Arc<PointReads>,
    pub pepper: Vec<u8>,
    pub prefix: String,
    /// What limits a key may carry.
    pub policy: Policy,
    /// Tells the organisation's webhooks of each change (the masked key, never a secret).
    pub events: Events,
    /// Seals the key each secret's tenant tokens are signed with.
    pub keyring: Arc<Keyring>,
    /// The secret scanners whose signed reports of leaked keys are believed.
    pub reporters: Arc<LeakReporters>,
    /// Records every change, in its transaction, and every refused escalation.
    pub audit: AuditLog,
}

impl ApiKeys {
    /// The sealed key the tenant tokens of `secret` (of key `key_id`) are signed with.
    fn tenant_key(&self, key_id: &str, secret: &str) -> String {
        self.keyring.seal(
            &places::api_key_tenant_key(key_id),
            &tenant_tokens::signing_key(secret),
        )
    }
}

/// The key as the API shows it: masked, with its status now.
pub fn to_dto(model: &api_key::Model) -> ApiKey {
    let now = Utc::now();
    let status = if model.revoked_at.is_some() {
        ApiKeyStatus::Revoked
    } else if model.expires_at.is_some_and(|at| at <= now) {
        ApiKeyStatus::Expired
    } else {
        ApiKeyStatus::Active
    };
    ApiKey {
        id: model.id.clone(),
        name: model.name.clone(),
        scopes: model.scopes.to_vec(),
        status,
        masked_key: model.hint.clone(),
        created_at: model.created_at,
        expires_at: model.expires_at,
        last_used_at: model.last_used_at,
        revoked_at: model.revoked_at,
        rotated_at: model.rotated_at,
        rate_limits: model.rate_limits.0.to_vec(),
        client_rate_limits: model.client_rate_limits.0.to_vec(),
        allowed_cidrs: model.allowed_cidrs.given.to_vec(),
        allowed_origins: model.allowed_origins.given.to_vec(),
        metadata: model.metadata.0.clone(),
        owner_id: model.owner_id.clone(),
        leak: model.leak_reported_at.map(|reported_at| KeyLeak {
            reported_at,
            reporter: model.leak_reporter.clone().unwrap_or_default(),
            url: model.leak_url.clone(),
            source: model.leak_source.clone(),
        }),
        index_ids: model.index_ids.0.to_vec(),
        max_top_k: model.max_top_k.and_then(|n| u32::try_from(n).ok()),
    }
}

/// The most characters a metadata name and value may have.
const METADATA_NAME_MAX: usize = 40;
const METADATA_VALUE_MAX: usize = 500;

/// The networks given, parsed; a 422 naming each that is not one.
fn networks(cidrs: Vec<String>) -> Result<NetworkList, ApiError> {
    NetworkList::parse(cidrs).map_err(|(i, why)| {
        ApiError::validation(vec![FieldError::body(format!("/allowed_cidrs/{i}"), why)])
    })
}

/// The origins given, parsed; a 422 naming each that is not one.
fn origins(origins: Vec<String>) -> Result<OriginList, ApiError> {
    OriginList::parse(origins).map_err(|(i, why)| {
        ApiError::validation(vec![FieldError::body(format!("/allowed_origins/{i}"), why)])
    })
}

/// A 422 for metadata names or values the schema cannot bound (3.0 has no `propertyNames`).
fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (name, value) in metadata {
        let pointer = format!("/metadata/{}", name.replace('~', "~0").replace('/', "~1"));
        let name_chars = name.chars().count();
        if name_chars == 0 || name_chars > METADATA_NAME_MAX || name.contains('\0') {
            errors.push(FieldError::body(
                pointer.clone(),
                format!("names must be 1–{METADATA_NAME_MAX} characters without U+0000"),
            ));
        }
        if value.chars().count() > METADATA_VALUE_MAX {
            errors.push(FieldError::body(
                pointer,
                format!("values must be at most {METADATA_VALUE_MAX} characters"),
            ));
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(ApiError::validation(errors)),
    }
}

/// What a key's audit event says changed: the fields of its view, and the secret.
pub(super) fn key_changes(
    before: Option<&api_key::Model>,
    after: Option<&api_key::Model>,
) -> BTreeMap<String, AuditChange> {
    let view = |m: &api_key::Model| to_dto(m).to_json();
    let mut changes = changes::diff(
        before.and_then(view).as_ref(),
        after.and_then(view).as_ref(),
    );
    if let Some(after) = after {
        if before.is_none_or(|b| b.digest != after.digest) {
            changes::secret_changed(&mut changes, "secret", before.is_some());
        }
    }
    changes
}

/// The verb a refused action's problem uses.
fn verb_of(action: AuditAction) -> &'static str {
    match action {
        AuditAction::ApiKeyCreate => "create",
        AuditAction::ApiKeyRotate => "rotate",
        AuditAction::ApiKeyRevoke => "revoke",
        AuditAction::ApiKeyDelete => "delete",
        _ => "update",
    }
}

/// 403 unless the caller holds every scope in `scopes`.
fn ensure_holds(who: &Principal, scopes: &[Scope], verb: &str) -> Result<(), ApiError> {
    match scopes.iter().find(|s| !who.holds(**s)) {
        None => Ok(()),
        Some(missing) => {
            let mut error = ApiError::forbidden(
                ErrorCode::ScopeEscalation,
                format!("your token does not hold the `{missing}` scope, so it cannot {verb} a key that has it"),
            );
            error.problem.required_scope = Some(*missing);
            Err(error)
        }
    }
}

impl ApiKeys {
    /// Queues `event` for the key as it now is, naming who changed it.
    async fn announce(&self, who: &Principal, event: WebhookEventType, key: &ApiKey) {
        self.announce_as(&who.org_id, &who.owner(), event, key)
            .await;
    }

    /// Queues `event` for the key of `org_id` as it now is, naming `actor`.
    pub(super) async fn announce_as(
        &self,
        org_id: &str,
        actor: &str,
        event: WebhookEventType,
        key: &ApiKey,
    ) {
        let data = serde_json::json!({"key": key.to_json(), "actor": actor});
        self.events.emit(org_id, event, data).await;
    }

    /// Saves a changed key with its audit event (`entry`, its changes filled in here from
    /// the key's view before and after) and tells every instance to forget what it cached
    /// of it.
    pub(super) async fn write(
        &self,
        before: &api_key::Model,
        model: api_key::ActiveModel,
        entry: Entry,
    ) -> Result<api_key::Model, DbErr> {
        let after = model.clone().try_into_model()?;
        let entry = entry.with_changes(key_changes(Some(before), Some(&after)));
        let txn = self.db.begin().await?;
        let saved = model.update(&txn).await?;
        self.audit.append(&txn, entry).await?;
        let notice = Notice::ApiKey {
            key_id: saved.id.clone(),
        };
        self.reads.commit_announcing(txn, &notice).await?;
        Ok(saved)
    }

    /// 403 unless `who` holds every scope in `scopes`; a refusal is recorded as a failed
    /// `action` on `target`.
    async fn ensure_holds(
        &self,
        who: &Principal,
        scopes: &[Scope],
        action: AuditAction,
        target: &str,
    ) -> Result<(), ApiError> {
        let held = ensure_holds(who, scopes, verb_of(action));
        if held.is_err() {
            let mut entry = self
                .audit
                .entry(who, action, AuditTargetType::ApiKey, target)
                .failed();
            let wanted = serde_json::json!(scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>());
            entry.changes.insert(
                "scopes".into(),
                AuditChange {
                    from: None,
                    to: Some(wanted),
                },
            );
            self.audit.record(&self.db, entry).await;
        }
        held
    }

    async fn find(&self, who: &Principal, key_id: &str) -> ServiceResult<api_key::Model> {
        find_in_org(
            &self.db,
            api_key::for_org(&who.org_id),
            api_key::Column::Id,
            key_id,
            "API key",
        )
        .await
    }
}

#[async_trait]
impl ApiKeyService for ApiKeys {
    async fn create(
        &self,
        who: &Principal,
        request: ApiKeyCreate,
    ) -> ServiceResult<ApiKeyWithSecret> {
        let scopes = ScopeList::new(request.scopes);
        self.ensure_holds(who, scopes.as_slice(), AuditAction::ApiKeyCreate, "")
            .await?;
        let name = request.name.trim().to_string();
        if name.is_empty() {
            return Err(crate::services::blank_name());
        }
        let rate_limits = request.rate_limits.unwrap_or_default();
        self.policy.check(&rate_limits, "rate_limits")?;
        let client_rate_limits = request.client_rate_limits.unwrap_or_default();
        self.policy
            .check(&client_rate_limits, "client_rate_limits")?;
        let allowed_cidrs = networks(request.allowed_cidrs.unwrap_or_default())?;
        let allowed_origins = origins(request.allowed_origins.unwrap_or_default())?;
        let metadata = request.metadata.unwrap_or_default();
        check_metadata(&metadata)?;
        let secret = api_key_secret::generate(&self.prefix);
        let now = Utc::now();
        let id = new_id("key");
        let model = api_key::ActiveModel {
            tenant_key: Set(Some(self.tenant_key(&id, &secret))),
            id: Set(id),
            org_id: Set(who.org_id.clone()),
            name: Set(name),
            scopes: Set(scopes),
            digest: Set(api_key_secret::digest(&self.pepper, &secret)),
            hint: Set(api_key_secret::mask(&secret)),
            previous_digest: Set(None),
            previous_valid_until: Set(None),
            created_by: Set(who.owner()),
            created_at: Set(now),
            expires_at: Set(request
                .expires_in_days
                .map(|d| now + Duration::days(d as i64))),
            last_used_at: Set(None),
            revoked_at: Set(None),
            rotated_at: Set(None),
            rate_limits: Set(RateLimitList::new(rate_limits)),
            client_rate_limits: Set(RateLimitList::new(client_rate_limits)),
            allowed_cidrs: Set(allowed_cidrs),
            allowed_origins: Set(allowed_origins),
            metadata: Set(JsonText(metadata)),
            owner_id: Set(request.owner_id),
            index_ids: Set(IndexIdList::new(request.index_ids.unwrap_or_default())),
            max_top_k: Set(request.max_top_k.map(|n| n as i32)),
            expiring_notice_at: Set(None),
            expired_notice_at: Set(None),
            leak_reported_at: Set(None),
            leak_reporter: Set(None),
            leak_url: Set(None),
            leak_source: Set(None),
        };
        let created: Result<api_key::Model, DbErr> = async {
            let saved = model.clone().try_into_model()?;
            let entry = self
                .audit
                .entry(
                    who,
                    AuditAction::ApiKeyCreate,
                    AuditTargetType::ApiKey,
                    &saved.id,
                )
                .with_changes(key_changes(None, Some(&saved)));
            self.audit
                .commit_with(&self.db, entry, |txn| async move {
                    Ok((model.insert(&txn).await?, txn))
                })
                .await
        }
        .await;
        let saved = created.map_err(|e| internal("creating an API key", e))?;
        let key = to_dto(&saved);
        self.announce(who, WebhookEventType::ApiKeyCreated, &key)
            .await;
        Ok(ApiKeyWithSecret { secret, key })
    }

    async fn list(
        &self,
        who: &Principal,
        page: PageParams,
        owner_id: Option<&str>,
    ) -> ServiceResult<ApiKeyPage> {
        let mut keys = api_key::for_org(&who.org_id);
        if let Some(owner_id) = owner_id {
            keys = keys.filter(api_key::Column::OwnerId.eq(owner_id));
        }
        let (rows, next_cursor) = PageRequest::parse(page)?
            .fetch(&self.db, keys, api_key::Column::Id, |r| &r.id, "API keys")
            .await?;
        Ok(ApiKeyPage {
            items: rows.iter().map(to_dto).collect(),
            next_cursor,
        })
    }

    async fn view(&self, who: &Principal, key_id: &str) -> ServiceResult<ApiKey> {
        Ok(to_dto(&self.find(who, key_id).await?))
    }

    async fn update(
        &self,
        who: &Principal,
        key_id: &str,
        request: ApiKeyUpdate,
    ) -> ServiceResult<ApiKey> {
        let key = self.find(who, key_id).await?;
        self.ensure_holds(
            who,
            key.scopes.as_slice(),
            AuditAction::ApiKeyUpdate,
            key_id,
        )
        .await?;
        if let Some(limits) = &request.rate_limits {
            self.policy.check(limits, "rate_limits")?;
        }
        if let Some(limits) = &request.client_rate_limits {
            self.policy.check(limits, "client_rate_limits")?;
        }
        let allowed_cidrs = request.allowed_cidrs.map(networks).transpose()?;
        let allowed_origins = request.allowed_origins.map(origins).transpose()?;
        if let Some(metadata) = &request.metadata {
            check_metadata(metadata)?;
        }
        let name = match request.name {
            Some(name) if name.trim().is_empty() => return Err(crate::services::blank_name()),
            Some(name) => Some(name.trim().to_string()),
            None => None,
        };
        let unchanged = name.is_none()
            && request.rate_limits.is_none()
            && request.client_rate_limits.is_none()
            && allowed_cidrs.is_none()
            && allowed_origins.is_none()
            && request.metadata.is_none()
            && request.owner_id.is_undefined()
            && request.index_ids.is_none()
            && request.max_top_k.is_undefined();
        if unchanged {
            return Ok(to_dto(&key));
        }
        let before = key.clone();
        let mut model: api_key::ActiveModel = key.into();
        if let Some(name) = name {
            model.name = Set(name);
        }
        if let Some(limits) = request.rate_limits {
            model.rate_limits = Set(RateLimitList::new(limits));
        }
        if let Some(limits) = request.client_rate_limits {
            model.client_rate_limits = Set(RateLimitList::new(limits));
        }
        if let Some(networks) = allowed_cidrs {
            model.allowed_cidrs = Set(networks);
        }
        if let Some(origins) = allowed_origins {
            model.allowed_origins = Set(origins);
        }
        if let Some(metadata) = request.metadata {
            model.metadata = Set(JsonText(metadata));
        }
        if !request.owner_id.is_undefined() {
            model.owner_id = Set(request.owner_id.take());
        }
        if let Some(ids) = request.index_ids {
            model.index_ids = Set(IndexIdList::new(ids));
        }
        if !request.max_top_k.is_undefined() {
            model.max_top_k = Set(request.max_top_k.take().map(|n| n as i32));
        }
        let entry = self.audit.entry(
            who,
            AuditAction::ApiKeyUpdate,
            AuditTargetType::ApiKey,
            key_id,
        );
        let saved = self
            .write(&before, model, entry)
            .await
            .map_err(|e| internal("updating an API key", e))?;
        let key = to_dto(&saved);
        self.announce(who, WebhookEventType::ApiKeyUpdated, &key)
            .await;
        Ok(key)
    }

    async fn rotate(
        &self,
        who: &Principal,
        key_id: &str,
        request: ApiKeyRotate,
    ) -> ServiceResult<ApiKeyWithSecret> {
        let key = self.find(who, key_id).await?;
        self.ensure_holds(
            who,
            key.scopes.as_slice(),
            AuditAction::ApiKeyRotate,
            key_id,
        )
        .await?;
        let now = Utc::now();
        if key.revoked_at.is_some() {
            return Err(ApiError::conflict(
                ErrorCode::KeyRevoked,
                "a revoked key cannot be rotated; create a new one",
            ));
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::conflict(
                ErrorCode::KeyExpired,
                "an expired key cannot be rotated; create a new one",
            ));
        }
        let grace = request.grace_period_seconds.unwrap_or(0) as i64;
        let secret = api_key_secret::generate(&self.prefix);
        let old_digest = key.digest.clone();
        let before = key.clone();
        let mut model: api_key::ActiveModel = key.into();
        model.digest = Set(api_key_secret::digest(&self.pepper, &secret));
        model.hint = Set(api_key_secret::mask(&secret));
        // Tokens minted from the old secret end with it, at once (a grace period keeps only
        // the old secret itself working).
        model.tenant_key = Set(Some(self.tenant_key(key_id, &secret)));
        model.previous_digest = Set((grace > 0).then_some(old_digest));
        model.previous_valid_until = Set((grace > 0).then(|| now + Duration::seconds(grace)));
        model.rotated_at = Set(Some(now));
        let entry = self.audit.entry(
            who,
            AuditAction::ApiKeyRotate,
            AuditTargetType::ApiKey,
            key_id,
        );
        let saved = self
            .write(&before, model, entry)
            .await
            .map_err(|e| internal("rotating an API key", e))?;
        let key = to_dto(&saved);
        self.announce(who, WebhookEventType::ApiKeyRotated, &key)
            .await;
        Ok(ApiKeyWithSecret { secret, key })
    }

    async fn revoke(&self, who: &Principal, key_id: &str) -> ServiceResult<ApiKey> {
        let key = self.find(who, key_id).await?;
        self.ensure_holds(
            who,
            key.scopes.as_slice(),
            AuditAction::ApiKeyRevoke,
            key_id,
        )
        .await?;
        if key.revoked_at.is_some() {
            return Ok(to_dto(&key));
        }
        let before = key.clone();
        let mut model: api_key::ActiveModel = key.into();
        model.revoked_at = Set(Some(Utc::now()));
        model.previous_digest = Set(None);
        model.previous_valid_until = Set(None);
        let entry = self.audit.entry(
            who,
            AuditAction::ApiKeyRevoke,
            AuditTargetType::ApiKey,
            key_id,
        );
        let saved = self
            .write(&before, model, entry)
            .await
            .map_err(|e| internal("revoking an API key", e))?;
        let key = to_dto(&saved);
        self.announce(who, WebhookEventType::ApiKeyRevoked, &key)
            .await;
        Ok(key)
    }

    async fn report_leaks(
        &self,
        report: SignedReport<'_>,
        tokens: Vec<LeakedKeyReport>,
    ) -> ServiceResult<Vec<LeakedKeyVerdict>> {
        super::leaked_keys::report(self, report, tokens).await
    }

    async fn delete(&self, who: &Principal, key_id: &str) -> ServiceResult<()> {
        let key = self.find(who, key_id).await?;
        self.ensure_holds(
            who,
            key.scopes.as_slice(),
            AuditAction::ApiKeyDelete,
            key_id,
        )
        .await?;
        let gone = to_dto(&key);
        let entry = self
            .audit
            .entry(
                who,
                AuditAction::ApiKeyDelete,
                AuditTargetType::ApiKey,
                key_id,
            )
            .with_changes(key_changes(Some(&key), None));
        let deleted: Result<(), DbErr> = async {
            let txn = self.db.begin().await?;
            api_key::Entity::delete_many()
                .filter(api_key::Column::Id.eq(&key.id))
                .filter(api_key::Column::OrgId.eq(&who.org_id))
                .exec(&txn)
                .await?;
            self.audit.append(&txn, entry).await?;
            self.reads
                .commit_announcing(txn, &Notice::ApiKey { key_id: key.id })
                .await
        }
        .await;
        deleted.map_err(|e| internal("deleting an API key", e))?;
        self.announce(who, WebhookEventType::ApiKeyDeleted, &gone)
            .await;
        Ok(())
    }
}
