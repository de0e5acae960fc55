//! Checks each organisation's chain end to end (`videovector audit verify`): the head's MAC,
//! then every event from where retention cut the chain to the head, in sequence order: no
//! sequence missing, each linked to the one before, each hash its contents'. The first
//! broken link is named by sequence and id, with what it means: an edited row fails its own
//! hash, a deleted one leaves a gap (or a head past the last event), an inserted one breaks
//! a link, or stands past the head, or before the chain's start.

use std::collections::BTreeSet;

use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::chain::{ChainKey, GENESIS};
use crate::db::entities::{audit_event, audit_head};

/// Events read per query while walking a chain.
const BATCH: u64 = 500;

/// What the check of one organisation's chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub org_id: String,
    /// Events checked.
    pub events: u64,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
}

/// Where a chain breaks, and what that means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub sequence: i64,
    /// The event there (none where an event is missing).
    pub event_id: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.broken {
            None => write!(f, "{}: {} events, chain intact", self.org_id, self.events),
            Some(link) => write!(
                f,
                "{}: BROKEN at sequence {}{}: {}",
                self.org_id,
                link.sequence,
                link.event_id
                    .as_ref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default(),
                link.reason
            ),
        }
    }
}

/// Checks every organisation's chain.
pub async fn verify_all(db: &DatabaseConnection, key: &ChainKey) -> Result<Vec<Verdict>, DbErr> {
    let mut orgs: BTreeSet<String> = audit_head::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|h| h.org_id)
        .collect();
    let with_events: Vec<String> = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::OrgId)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    orgs.extend(with_events);
    let mut verdicts = Vec::new();
    for org_id in orgs {
        verdicts.push(verify_org(db, key, &org_id).await?);
    }
    Ok(verdicts)
}

/// Checks one organisation's chain.
pub async fn verify_org(
    db: &DatabaseConnection,
    key: &ChainKey,
    org_id: &str,
) -> Result<Verdict, DbErr> {
    let head = audit_head::Entity::find_by_id(org_id.to_string())
        .one(db)
        .await?;
    let mut verdict = Verdict {
        org_id: org_id.to_string(),
        events: 0,
        broken: None,
    };
    let broken = |sequence: i64, event_id: Option<&str>, reason: String| BrokenLink {
        sequence,
        event_id: event_id.map(str::to_string),
        reason,
    };
    let head = match head {
        Some(head) if key.head_mac(&head) != head.mac => {
            verdict.broken = Some(broken(
                head.sequence,
                None,
                "the chain's head was changed outside the server (its MAC does not match)".into(),
            ));
            return Ok(verdict);
        }
        Some(head) => head,
        None => audit_head::Model {
            org_id: org_id.to_string(),
            sequence: 0,
            hash: GENESIS.into(),
            pruned_sequence: 0,
            pruned_hash: GENESIS.into(),
            mac: String::new(),
        },
    };
    let mut expected_sequence = head.pruned_sequence + 1;
    let mut expected_previous = head.pruned_hash.clone();
    let mut after = i64::MIN;
    loop {
        let events = audit_event::Entity::find()
            .filter(audit_event::Column::OrgId.eq(org_id))
            .filter(audit_event::Column::Sequence.gt(after))
            .order_by_asc(audit_event::Column::Sequence)
            .limit(BATCH)
            .all(db)
            .await?;
        let Some(last) = events.last() else { break };
        after = last.sequence;
        for event in events {
            let id = Some(event.id.as_str());
            let link = if event.sequence < expected_sequence {
                Some(broken(
                    event.sequence,
                    id,
                    format!(
                        "an event before the chain's start (sequence {expected_sequence}): \
                         inserted"
                    ),
                ))
            } else if event.sequence > head.sequence {
                Some(broken(
                    event.sequence,
                    id,
                    format!(
                        "an event past the head (sequence {}): inserted",
                        head.sequence
                    ),
                ))
            } else if event.sequence > expected_sequence {
                Some(broken(
                    expected_sequence,
                    None,
                    format!(
                        "sequence {expected_sequence}{} missing: deleted",
                        match event.sequence - expected_sequence {
                            1 => " is".to_string(),
                            n => format!(" to {} ({n} events) are", event.sequence - 1),
                        }
                    ),
                ))
            } else if key.event_hash(&event) != event.hash {
                Some(broken(
                    event.sequence,
                    id,
                    "its contents do not match its hash: edited".into(),
                ))
            } else if event.previous_hash != expected_previous {
                Some(broken(
                    event.sequence,
                    id,
                    "it does not link to the event before it: inserted or replaced".into(),
                ))
            } else {
                None
            };
            if link.is_some() {
                verdict.broken = link;
                return Ok(verdict);
            }
            verdict.events += 1;
            expected_sequence += 1;
            expected_previous = event.hash;
        }
    }
    if head.sequence >= expected_sequence {
        verdict.broken = Some(broken(
            expected_sequence,
            None,
            format!(
                "the head names sequence {} but the chain ends at {}: the last events were \
                 deleted",
                head.sequence,
                expected_sequence - 1
            ),
        ));
    } else if head.hash != expected_previous {
        verdict.broken = Some(broken(
            head.sequence,
            None,
            "the head's hash is not the last event's".into(),
        ));
    }
    Ok(verdict)
}
