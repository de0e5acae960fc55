//! The chain's arithmetic: each event's hash is HMAC-SHA-256, under a key derived from the
//! server's pepper, of the previous event's hash and the event's canonical form (a JSON array
//! of every stored field in a fixed order). The head of each chain carries a MAC over its
//! state too. Without the key nobody can write an event, or move a head, that verifies: a
//! row edited, deleted or inserted in the database shows as a broken link.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::{
    auth::api_key_secret::hex,
    db::entities::{audit_event, audit_head},
    purpose_key::PurposeKey,
};

/// The `previous_hash` of an organisation's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Signs and checks chains.
#[derive(Clone)]
pub struct ChainKey {
    key: PurposeKey,
}

/// How times are written into the canonical form: microseconds, the precision both
/// databases keep.
pub fn canonical_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl ChainKey {
    pub fn new(pepper: &[u8]) -> ChainKey {
        ChainKey {
            key: PurposeKey::derive(pepper, b"videovector audit chain v1"),
        }
    }

    /// The hash `event` must carry, given its `previous_hash`.
    pub fn event_hash(&self, event: &audit_event::Model) -> String {
        let canonical = json!([
            "event",
            event.org_id,
            event.sequence,
            event.id,
            canonical_time(event.occurred_at),
            event.action,
            event.outcome,
            event.actor_type,
            event.actor_id,
            event.target_type,
            event.target_id,
            event.client_address,
            event.request_id,
            event.changes,
            event.previous_hash,
        ]);
        hex(&self.key.tag(canonical.to_string().as_bytes()))
    }

    /// The MAC `head` must carry.
    pub fn head_mac(&self, head: &audit_head::Model) -> String {
        let canonical = json!([
            "head",
            head.org_id,
            head.sequence,
            head.hash,
            head.pruned_sequence,
            head.pruned_hash,
        ]);
        hex(&self.key.tag(canonical.to_string().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> audit_event::Model {
        audit_event::Model {
            id: "aud_1".into(),
            org_id: "org_1".into(),
            sequence: 1,
            occurred_at: "2026-12-02T10:00:00.123456Z".parse().unwrap(),
            action: "api_key.create".into(),
            outcome: "success".into(),
            actor_type: "operator".into(),
            actor_id: "op_1".into(),
            target_type: "api_key".into(),
            target_id: "key_1".into(),
            client_address: Some("192.0.2.1".into()),
            request_id: Some("req_1".into()),
            changes: "{}".into(),
            previous_hash: GENESIS.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn every_field_is_covered_and_the_key_matters() {
        let key = ChainKey::new(b"pepper");
        let base = key.event_hash(&event());
        assert_eq!(base.len(), 64);
        let edits: [fn(&mut audit_event::Model); 14] = [
            |e| e.id.push('x'),
            |e| e.org_id.push('x'),
            |e| e.sequence += 1,
            |e| e.occurred_at += chrono::Duration::microseconds(1),
            |e| e.action.push('x'),
            |e| e.outcome.push('x'),
            |e| e.actor_type.push('x'),
            |e| e.actor_id.push('x'),
            |e| e.target_type.push('x'),
            |e| e.target_id.push('x'),
            |e| e.client_address = None,
            |e| e.request_id = None,
            |e| e.changes = "{\"a\":{}}".into(),
            |e| e.previous_hash = "1".repeat(64),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut edited = event();
            edit(&mut edited);
            assert_ne!(key.event_hash(&edited), base, "edit {i} went unnoticed");
        }
        assert_ne!(ChainKey::new(b"other").event_hash(&event()), base);
        // The hash field itself is not part of what is hashed.
        let mut stored = event();
        stored.hash = base.clone();
        assert_eq!(key.event_hash(&stored), base);
    }
}
