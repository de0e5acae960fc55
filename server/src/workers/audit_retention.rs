//! Retention: events older than the configured time are deleted, oldest first, and the
//! head remembers the last one pruned (its sequence and hash, under the head's MAC), so the
//! verifier starts the chain there and a row deleted by anyone else still shows as a gap.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Expr, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use tokio_util::sync::CancellationToken;

use crate::{
    audit::chain::ChainKey,
    db::entities::{audit_event, audit_head},
};

pub struct AuditRetention {
    pub db: DatabaseConnection,
    pub key: ChainKey,
    /// How long events are kept.
    pub keep: chrono::Duration,
    pub every: Duration,
}

impl AuditRetention {
    /// Prunes every `every`, until `shutdown`.
    pub fn spawn(self, shutdown: CancellationToken) {
        let retention = std::sync::Arc::new(self);
        super::every(
            retention.every,
            shutdown,
            "pruning audit events",
            move || {
                let retention = retention.clone();
                async move {
                    let pruned = retention.prune(Utc::now()).await?;
                    if pruned > 0 {
                        tracing::info!(pruned, "pruned audit events past retention");
                    }
                    Ok::<_, DbErr>(())
                }
            },
        );
    }

    /// Deletes the events older than the retention time at `now`; returns how many.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<u64, DbErr> {
        let cutoff = now
            .checked_sub_signed(self.keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let orgs: Vec<String> = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::OrgId)
            .filter(audit_event::Column::OccurredAt.lt(cutoff))
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut pruned = 0;
        for org_id in orgs {
            pruned += self.prune_org(&org_id, cutoff).await?;
        }
        Ok(pruned)
    }

    async fn prune_org(&self, org_id: &str, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
        let txn = self.db.begin().await?;
        // A write first: it takes the head's row lock (PostgreSQL) or the write lock
        // (SQLite) before anything is read, ordering this after every appender.
        audit_head::Entity::update_many()
            .col_expr(
                audit_head::Column::Sequence,
                Expr::col(audit_head::Column::Sequence).into(),
            )
            .filter(audit_head::Column::OrgId.eq(org_id))
            .exec(&txn)
            .await?;
        let Some(mut head) = audit_head::Entity::find_by_id(org_id.to_string())
            .one(&txn)
            .await?
        else {
            return Ok(0);
        };
        let Some(last) = audit_event::Entity::find()
            .filter(audit_event::Column::OrgId.eq(org_id))
            .filter(audit_event::Column::OccurredAt.lt(cutoff))
            .order_by_desc(audit_event::Column::Sequence)
            .one(&txn)
            .await?
        else {
            return Ok(0);
        };
        let deleted = audit_event::Entity::delete_many()
            .filter(audit_event::Column::OrgId.eq(org_id))
            .filter(audit_event::Column::Sequence.lte(last.sequence))
            .exec(&txn)
            .await?
            .rows_affected;
        head.pruned_sequence = last.sequence;
        head.pruned_hash = last.hash;
        head.mac = self.key.head_mac(&head);
        audit_head::Entity::update_many()
            .col_expr(
                audit_head::Column::PrunedSequence,
                Expr::value(head.pruned_sequence),
            )
            .col_expr(
                audit_head::Column::PrunedHash,
                Expr::value(head.pruned_hash),
            )
            .col_expr(audit_head::Column::Mac, Expr::value(head.mac))
            .filter(audit_head::Column::OrgId.eq(org_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(deleted)
    }
}
