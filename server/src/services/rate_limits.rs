//! An organisation's default rate limits (read, replaced) and the usage its keys made.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use poem_openapi::types::ToJSON;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, TryIntoModel,
};
use videovector_api_spec::{
    dto::{
        audit::{AuditAction, AuditTargetType},
        rate_limits::*,
    },
    problem::{FieldError, FieldLocation},
    services::{RateLimitService, ServiceResult, UsageParams},
    ApiError, Principal,
};

use super::{find_in_org, internal};
use crate::{
    audit::{changes, AuditLog},
    db::{
        columns::RateLimitList,
        entities::{api_key, api_key_usage, organization},
        notifications::Notice,
        point_reads::PointReads,
    },
    rate_limits::{
        policy::Policy,
        usage::{granularity_name, granularity_seconds},
    },
};

pub struct RateLimits {
    pub db: DatabaseConnection,
    pub reads: Arc<PointReads>,
    pub policy: Policy,
    /// Records each change of the organisation's limits, in its transaction.
    pub audit: AuditLog,
}

/// The longest range a usage query may cover, per granularity, and the range it covers when
/// `from` is left out.
fn ranges(granularity: UsageGranularity) -> (Duration, Duration) {
    match granularity {
        UsageGranularity::Minute => (Duration::hours(24), Duration::hours(1)),
        UsageGranularity::Hour => (Duration::days(31), Duration::hours(24)),
        UsageGranularity::Day => (Duration::days(366), Duration::days(30)),
    }
}

fn query_error(pointer: &str, message: String) -> ApiError {
    ApiError::validation(vec![FieldError::at(FieldLocation::Query, pointer, message)])
}

impl RateLimits {
    async fn organization(&self, org_id: &str) -> ServiceResult<organization::Model> {
        organization::Entity::find_by_id(org_id)
            .one(&self.db)
            .await
            .map_err(|e| internal("reading an organisation", e))?
            .ok_or_else(|| ApiError::not_found("organisation", org_id))
    }

    fn policy_of(&self, org: &organization::Model) -> RateLimitPolicy {
        let (limits, source) = match &org.rate_limits {
            Some(limits) => (limits.0.to_vec(), RateLimitSource::Organization),
            None => (
                self.policy.server_defaults().to_vec(),
                RateLimitSource::Server,
            ),
        };
        RateLimitPolicy {
            limits,
            source,
            max_requests_per_second: self.policy.max_requests_per_second(),
        }
    }
}

#[async_trait]
impl RateLimitService for RateLimits {
    async fn policy(&self, who: &Principal) -> ServiceResult<RateLimitPolicy> {
        Ok(self.policy_of(&self.organization(&who.org_id).await?))
    }

    async fn update_policy(
        &self,
        who: &Principal,
        request: RateLimitPolicyUpdate,
    ) -> ServiceResult<RateLimitPolicy> {
        self.policy.check(&request.limits, "limits")?;
        let org = self.organization(&who.org_id).await?;
        let before = self.policy_of(&org).to_json();
        let mut model: organization::ActiveModel = org.into();
        model.rate_limits =
            Set((!request.limits.is_empty()).then(|| RateLimitList::new(request.limits)));
        let saved: Result<organization::Model, sea_orm::DbErr> = async {
            let after = self.policy_of(&model.clone().try_into_model()?).to_json();
            let entry = self
                .audit
                .entry(
                    who,
                    AuditAction::OrganizationUpdateRateLimits,
                    AuditTargetType::Organization,
                    &who.org_id,
                )
                .with_changes(changes::diff(before.as_ref(), after.as_ref()));
            let txn = self.db.begin().await?;
            let saved = model.update(&txn).await?;
            self.audit.append(&txn, entry).await?;
            let notice = Notice::Organization {
                org_id: saved.id.clone(),
            };
            self.reads.commit_announcing(txn, &notice).await?;
            Ok(saved)
        }
        .await;
        let saved = saved.map_err(|e| internal("saving an organisation's rate limits", e))?;
        Ok(self.policy_of(&saved))
    }

    async fn usage(
        &self,
        who: &Principal,
        key_id: Option<&str>,
        params: UsageParams,
    ) -> ServiceResult<UsageReport> {
        let granularity = params.granularity.unwrap_or(UsageGranularity::Hour);
        let (longest, default_range) = ranges(granularity);
        let to = params.to.unwrap_or_else(Utc::now);
        let from = params.from.unwrap_or(to - default_range);
        if from >= to {
            return Err(query_error("/from", "must be before `to`".into()));
        }
        if to - from > longest {
            return Err(query_error(
                "/to",
                format!(
                    "is more than {} days after `from`; by {} a query covers at most that",
                    longest.num_days(),
                    granularity_name(granularity)
                ),
            ));
        }
        let size = granularity_seconds(granularity);
        let from_seconds = from.timestamp() - from.timestamp().rem_euclid(size);
        let mut names: HashMap<String, String> = HashMap::new();
        let mut query = api_key_usage::Entity::find()
            .filter(api_key_usage::Column::OrgId.eq(&who.org_id))
            .filter(api_key_usage::Column::Granularity.eq(granularity_name(granularity)))
            .filter(api_key_usage::Column::BucketStart.gte(from_seconds))
            .filter(api_key_usage::Column::BucketStart.lt(to.timestamp()));
        match key_id {
            Some(key_id) => {
                let key = find_in_org(
                    &self.db,
                    api_key::for_org(&who.org_id),
                    api_key::Column::Id,
                    key_id,
                    "API key",
                )
                .await?;
                names.insert(key.id.clone(), key.name);
                query = query.filter(api_key_usage::Column::KeyId.eq(key_id));
            }
            None => {
                let keys: Vec<(String, String)> = api_key::for_org(&who.org_id)
                    .select_only()
                    .column(api_key::Column::Id)
                    .column(api_key::Column::Name)
                    .into_tuple()
                    .all(&self.db)
                    .await
                    .map_err(|e| internal("listing API keys for usage", e))?;
                names.extend(keys);
            }
        }
        let rows = query
            .order_by_asc(api_key_usage::Column::KeyId)
            .order_by_asc(api_key_usage::Column::BucketStart)
            .order_by_asc(api_key_usage::Column::Family)
            .all(&self.db)
            .await
            .map_err(|e| internal("reading usage", e))?;
        let mut keys: Vec<ApiKeyUsage> = Vec::new();
        for row in rows {
            let Some(family) = RateLimitFamily::parse(&row.family) else {
                continue;
            };
            if keys.last().is_none_or(|k| k.key_id != row.key_id) {
                keys.push(ApiKeyUsage {
                    name: names.get(&row.key_id).cloned(),
                    key_id: row.key_id.clone(),
                    buckets: Vec::new(),
                });
            }
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            if let Some(usage) = keys.last_mut() {
                usage.buckets.push(UsageBucket {
                    start: Utc
                        .timestamp_opt(row.bucket_start, 0)
                        .single()
                        .unwrap_or_default(),
                    family,
                    allowed: count(row.allowed),
                    rate_limited: count(row.rate_limited),
                    refused_by_scope: count(row.refused_by_scope),
                    not_found: count(row.not_found),
                    client_error: count(row.client_error),
                    server_error: count(row.server_error),
                });
            }
        }
        Ok(UsageReport {
            granularity,
            from: DateTime::from_timestamp(from_seconds, 0).unwrap_or(from),
            to,
            keys,
        })
    }
}
