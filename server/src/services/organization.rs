//! The caller's organisation and its settings (`/organization`).

use async_trait::async_trait;
use poem_openapi::types::ToJSON;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, TryIntoModel,
};
use videovector_api_spec::{
    dto::{
        audit::{AuditAction, AuditTargetType},
        organization::*,
    },
    services::{OrganizationService, ServiceResult},
    ApiError, Principal,
};

use super::internal;
use crate::{
    audit::{changes, AuditLog},
    db::entities::organization,
};

pub struct Organizations {
    pub db: DatabaseConnection,
    /// Records each change of the settings, in its transaction.
    pub audit: AuditLog,
}

fn to_dto(model: organization::Model) -> Organization {
    Organization {
        id: model.id,
        name: model.name,
        revoke_leaked_keys: model.revoke_leaked_keys,
    }
}

impl Organizations {
    async fn find(&self, who: &Principal) -> ServiceResult<organization::Model> {
        organization::Entity::find_by_id(&who.org_id)
            .one(&self.db)
            .await
            .map_err(|e| internal("loading an organisation", e))?
            .ok_or_else(|| ApiError::not_found("organisation", &who.org_id))
    }
}

#[async_trait]
impl OrganizationService for Organizations {
    async fn view(&self, who: &Principal) -> ServiceResult<Organization> {
        Ok(to_dto(self.find(who).await?))
    }

    async fn update(
        &self,
        who: &Principal,
        request: OrganizationUpdate,
    ) -> ServiceResult<Organization> {
        let org = self.find(who).await?;
        let name = match request.name {
            Some(name) if name.trim().is_empty() => return Err(super::blank_name()),
            Some(name) => Some(name.trim().to_string()),
            None => None,
        };
        if name.is_none() && request.revoke_leaked_keys.is_none() {
            return Ok(to_dto(org));
        }
        let before = to_dto(org.clone()).to_json();
        let mut model: organization::ActiveModel = org.into();
        if let Some(name) = name {
            model.name = Set(name);
        }
        if let Some(revoke) = request.revoke_leaked_keys {
            model.revoke_leaked_keys = Set(revoke);
        }
        let saved: Result<organization::Model, DbErr> = async {
            let after = to_dto(model.clone().try_into_model()?).to_json();
            let entry = self
                .audit
                .entry(
                    who,
                    AuditAction::OrganizationUpdate,
                    AuditTargetType::Organization,
                    &who.org_id,
                )
                .with_changes(changes::diff(before.as_ref(), after.as_ref()));
            self.audit
                .commit_with(&self.db, entry, |txn| async move {
                    Ok((model.update(&txn).await?, txn))
                })
                .await
        }
        .await;
        let saved = saved.map_err(|e| internal("updating an organisation", e))?;
        Ok(to_dto(saved))
    }
}
