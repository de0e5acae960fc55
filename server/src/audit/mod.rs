//! The audit log: every security-relevant action is appended to its organisation's chain
//! in the same transaction as the change it records, so there is never a change without
//! its event nor an event without its change. Who acted comes from the principal; the
//! request id and the client's address from the request being handled.
//!
//! `chain` holds the arithmetic, `changes` how a change is described (secrets never),
//! `verify` the checker behind `videovector audit verify`; the pruning is a worker
//! (`workers::audit_retention`).

pub mod chain;
pub mod changes;
pub mod verify;

use std::{collections::BTreeMap, future::Future};

use chrono::{SubsecRound, Utc};
use sea_orm::{
    sea_query::{Expr, OnConflict, Query},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, TransactionTrait,
};
use videovector_api_spec::{
    dto::audit::{
        wire_name, AuditAction, AuditActorType, AuditChange, AuditOutcome, AuditTargetType,
    },
    security::Credential,
    Principal,
};

use self::chain::{ChainKey, GENESIS};
use crate::{
    db::entities::{audit_event, audit_head},
    ids::new_id,
    request_context::RequestContext,
};

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: AuditActorType,
    pub id: String,
}

impl Actor {
    pub fn new(kind: AuditActorType, id: impl Into<String>) -> Actor {
        Actor {
            kind,
            id: id.into(),
        }
    }
}

/// One action to record.
#[derive(Debug, Clone)]
pub struct Entry {
    pub org_id: String,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    pub actor: Actor,
    pub target_type: AuditTargetType,
    pub target_id: String,
    pub changes: BTreeMap<String, AuditChange>,
}

impl Entry {
    /// A successful `action` by `actor` in `org_id` on a target, with no changes yet.
    pub fn new(
        org_id: &str,
        action: AuditAction,
        actor: Actor,
        target_type: AuditTargetType,
        target_id: &str,
    ) -> Entry {
        Entry {
            org_id: org_id.to_string(),
            action,
            outcome: AuditOutcome::Success,
            actor,
            target_type,
            target_id: target_id.to_string(),
            changes: BTreeMap::new(),
        }
    }

    pub fn failed(mut self) -> Entry {
        self.outcome = AuditOutcome::Failure;
        self
    }

    pub fn with_changes(mut self, changes: BTreeMap<String, AuditChange>) -> Entry {
        self.changes = changes;
        self
    }
}

/// Appends events to the organisations' chains.
#[derive(Clone)]
pub struct AuditLog {
    key: ChainKey,
    /// The built-in issuer's name: its tokens' subjects are operators.
    builtin_issuer: String,
}

impl AuditLog {
    pub fn new(pepper: &[u8], builtin_issuer: &str) -> AuditLog {
        AuditLog {
            key: ChainKey::new(pepper),
            builtin_issuer: builtin_issuer.to_string(),
        }
    }

    /// The chain key (the verifier's).
    pub fn key(&self) -> &ChainKey {
        &self.key
    }

    /// The actor a principal is.
    pub fn actor(&self, who: &Principal) -> Actor {
        match &who.credential {
            Credential::ApiKey { key_id } => Actor::new(AuditActorType::ApiKey, key_id),
            Credential::Jwt { issuer, subject } if *issuer == self.builtin_issuer => {
                Actor::new(AuditActorType::Operator, subject)
            }
            Credential::Jwt { issuer, subject } => {
                Actor::new(AuditActorType::Jwt, format!("{issuer}|{subject}"))
            }
        }
    }

    /// An entry for `action` by `who` in its organisation.
    pub fn entry(
        &self,
        who: &Principal,
        action: AuditAction,
        target_type: AuditTargetType,
        target_id: &str,
    ) -> Entry {
        Entry::new(&who.org_id, action, self.actor(who), target_type, target_id)
    }

    /// Appends `entry` to its organisation's chain, inside the caller's transaction `txn`
    /// (which must not have read before its first write on SQLite, like every writer here).
    /// The head's row lock orders concurrent appenders of one organisation: sequence n+1
    /// commits after n, so a poller never sees a gap that later fills.
    pub async fn append<C: ConnectionTrait>(&self, txn: &C, entry: Entry) -> Result<(), DbErr> {
        let context = RequestContext::current();
        let backend = txn.get_database_backend();
        let claim = Query::insert()
            .into_table(audit_head::Entity)
            .columns([
                audit_head::Column::OrgId,
                audit_head::Column::Sequence,
                audit_head::Column::Hash,
                audit_head::Column::PrunedSequence,
                audit_head::Column::PrunedHash,
                audit_head::Column::Mac,
            ])
            .values_panic([
                entry.org_id.clone().into(),
                1i64.into(),
                GENESIS.into(),
                0i64.into(),
                GENESIS.into(),
                "".into(),
            ])
            .on_conflict(
                OnConflict::column(audit_head::Column::OrgId)
                    .value(
                        audit_head::Column::Sequence,
                        Expr::col((audit_head::Entity, audit_head::Column::Sequence)).add(1),
                    )
                    .to_owned(),
            )
            .to_owned();
        txn.execute(backend.build(&claim)).await?;
        let mut head = audit_head::Entity::find_by_id(entry.org_id.clone())
            .one(txn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the audit head just claimed".into()))?;
        let changes = serde_json::to_string(&changes::to_json(&entry.changes))
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        let mut event = audit_event::Model {
            id: new_id("aud"),
            org_id: entry.org_id,
            sequence: head.sequence,
            occurred_at: Utc::now().trunc_subsecs(6),
            action: wire_name(&entry.action),
            outcome: wire_name(&entry.outcome),
            actor_type: wire_name(&entry.actor.kind),
            actor_id: entry.actor.id,
            target_type: wire_name(&entry.target_type),
            target_id: entry.target_id,
            client_address: context.client.map(|c| c.to_string()),
            request_id: context.request_id,
            changes,
            previous_hash: head.hash.clone(),
            hash: String::new(),
        };
        event.hash = self.key.event_hash(&event);
        head.hash = event.hash.clone();
        head.mac = self.key.head_mac(&head);
        audit_event::Entity::insert(audit_event::ActiveModel::from(event))
            .exec_without_returning(txn)
            .await?;
        audit_head::Entity::update_many()
            .col_expr(audit_head::Column::Hash, Expr::value(head.hash))
            .col_expr(audit_head::Column::Mac, Expr::value(head.mac))
            .filter(audit_head::Column::OrgId.eq(head.org_id))
            .exec(txn)
            .await?;
        Ok(())
    }

    /// Runs `change` in a new transaction, appends `entry` to it and commits: the change
    /// and its event land together or not at all. `change` takes the transaction and hands
    /// it back with its result.
    pub async fn commit_with<T, F, Fut>(
        &self,
        db: &DatabaseConnection,
        entry: Entry,
        change: F,
    ) -> Result<T, DbErr>
    where
        F: FnOnce(DatabaseTransaction) -> Fut,
        Fut: Future<Output = Result<(T, DatabaseTransaction), DbErr>>,
    {
        let txn = db.begin().await?;
        let (value, txn) = change(txn).await?;
        self.append(&txn, entry).await?;
        txn.commit().await?;
        Ok(value)
    }

    /// Records `entry` in a transaction of its own (an action that changed nothing: a
    /// refusal, a failed login). A failure to record is logged, never the caller's error:
    /// the refusal stands either way.
    pub async fn record(&self, db: &DatabaseConnection, entry: Entry) {
        let action = entry.action;
        let recorded = async {
            self.commit_with(db, entry, |txn| async { Ok(((), txn)) })
                .await
        }
        .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, action = %wire_name(&action), "recording an audit event");
        }
    }
}
