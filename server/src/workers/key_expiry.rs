//! Announces keys' expiry on the webhooks: `api_key.expiring` once a key is within the
//! server's warning time of its `expires_at`, and `api_key.expired` once it has passed it.
//! Each is sent once per key: an instance claims a key's notice by setting its time in a
//! conditional `UPDATE` (`… WHERE notice IS NULL`), so of several instances exactly one
//! announces it.
//! Revoked keys are not announced (they no longer work either way).

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem_openapi::types::ToJSON;
use sea_orm::{
    sea_query::Expr, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
};
use tokio_util::sync::CancellationToken;
use videovector_api_spec::dto::webhooks::WebhookEventType;

use crate::{db::entities::api_key, events::Events, services::api_keys::to_dto};

/// Who acted, in the event's `data`, for notices the server sends of itself.
const ACTOR: &str = "videovector";

pub struct KeyExpiryNotices {
    pub db: DatabaseConnection,
    pub events: Events,
    /// How long before `expires_at` the `expiring` notice goes out.
    pub warning: Duration,
    pub every: Duration,
}

impl KeyExpiryNotices {
    /// Looks for keys to announce every `every`, until `shutdown`.
    pub fn spawn(self, shutdown: CancellationToken) {
        let notices = std::sync::Arc::new(self);
        super::every(
            notices.every,
            shutdown,
            "announcing keys' expiry",
            move || {
                let notices = notices.clone();
                async move { notices.announce_due(Utc::now()).await }
            },
        );
    }

    /// Sends every notice due at `now`.
    pub async fn announce_due(&self, now: DateTime<Utc>) -> Result<(), DbErr> {
        let warning = chrono::Duration::from_std(self.warning).unwrap_or(chrono::Duration::MAX);
        let horizon = now
            .checked_add_signed(warning)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // Expired first: a key that expired between two looks gets `expired` alone.
        let expired = self
            .claim(
                api_key::Column::ExpiredNoticeAt,
                Condition::all().add(api_key::Column::ExpiresAt.lte(now)),
                now,
            )
            .await?;
        self.announce(WebhookEventType::ApiKeyExpired, expired)
            .await;
        let expiring = self
            .claim(
                api_key::Column::ExpiringNoticeAt,
                Condition::all()
                    .add(api_key::Column::ExpiresAt.gt(now))
                    .add(api_key::Column::ExpiresAt.lte(horizon))
                    .add(api_key::Column::ExpiredNoticeAt.is_null()),
                now,
            )
            .await?;
        self.announce(WebhookEventType::ApiKeyExpiring, expiring)
            .await;
        Ok(())
    }

    /// The live keys `due` selects whose notice is not sent yet and that this instance
    /// claimed: each is claimed by a conditional update of its own, which only one
    /// instance's can change.
    async fn claim(
        &self,
        notice: api_key::Column,
        due: Condition,
        now: DateTime<Utc>,
    ) -> Result<Vec<api_key::Model>, DbErr> {
        let candidates = api_key::Entity::find()
            .filter(due)
            .filter(notice.is_null())
            .filter(api_key::Column::RevokedAt.is_null())
            .all(&self.db)
            .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for key in candidates {
            let updated = api_key::Entity::update_many()
                .col_expr(notice, Expr::value(now))
                .filter(api_key::Column::Id.eq(&key.id))
                .filter(notice.is_null())
                .exec(&self.db)
                .await?;
            if updated.rows_affected == 1 {
                claimed.push(key);
            }
        }
        Ok(claimed)
    }

    async fn announce(&self, event: WebhookEventType, keys: Vec<api_key::Model>) {
        for key in keys {
            let data = serde_json::json!({"key": to_dto(&key).to_json(), "actor": ACTOR});
            self.events.emit(&key.org_id, event, data).await;
        }
    }
}
