//! sea-orm entities, one module per table. Queries that touch tenant data go through the
//! `for_org` helpers so none forgets the organisation.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

/// Statuses of queued work (runs, jobs, deliveries), by their short names.
pub mod status {
    pub use super::super::queue::QueueStatus;

    pub const QUEUED: QueueStatus = QueueStatus::Queued;
    pub const RUNNING: QueueStatus = QueueStatus::Running;
    pub const SUCCEEDED: QueueStatus = QueueStatus::Succeeded;
    pub const FAILED: QueueStatus = QueueStatus::Failed;
    pub const CANCELLED: QueueStatus = QueueStatus::Cancelled;
}

pub mod organization {
    use sea_orm::entity::prelude::*;

    use crate::db::columns::RateLimitList;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "organizations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub created_at: DateTimeUtc,
        /// The organisation's default rate limits; `None` for the server's.
        pub rate_limits: Option<RateLimitList>,
        /// Whether a key reported leaked is revoked at once.
        pub revoke_leaked_keys: bool,
    }
    no_relations!();
}

pub mod operator {
    use sea_orm::entity::prelude::*;

    use crate::db::columns::Role;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "operators")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub email: String,
        pub password_hash: String,
        pub role: Role,
        pub verified: bool,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod api_key {
    use sea_orm::entity::prelude::*;

    use crate::db::columns::{
        IndexIdList, JsonText, NetworkList, OriginList, RateLimitList, ScopeList,
    };

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub name: String,
        /// Space-separated scope names.
        pub scopes: ScopeList,
        /// HMAC-SHA-256 of the secret under the server pepper, hex.
        pub digest: String,
        /// Masked form shown in lists.
        pub hint: String,
        /// The digest the key had before its last rotation, valid until `previous_valid_until`.
        pub previous_digest: Option<String>,
        pub previous_valid_until: Option<DateTimeUtc>,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub expires_at: Option<DateTimeUtc>,
        pub last_used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        pub rotated_at: Option<DateTimeUtc>,
        /// The key's own rate limits.
        pub rate_limits: RateLimitList,
        /// The networks the key may be used from (empty: anywhere).
        pub allowed_cidrs: NetworkList,
        pub metadata: JsonText<std::collections::BTreeMap<String, String>>,
        /// Who the key is for in the customer's system.
        pub owner_id: Option<String>,
        /// The indexes the key may touch (empty: every index).
        pub index_ids: IndexIdList,
        /// The most hits one request may ask for.
        pub max_top_k: Option<i32>,
        /// The key tenant tokens are signed with, derived from the secret, sealed
        /// (`secrets_at_rest`); `None` for a key made before tenant tokens, until rotated.
        pub tenant_key: Option<String>,
        /// The web pages the key may be used from (empty: none of another site).
        pub allowed_origins: OriginList,
        /// Limits counted per client address.
        pub client_rate_limits: RateLimitList,
        /// When `api_key.expiring` was sent for it.
        pub expiring_notice_at: Option<DateTimeUtc>,
        /// When `api_key.expired` was sent for it.
        pub expired_notice_at: Option<DateTimeUtc>,
        /// When a secret scanner first reported it found in public, who, and where.
        pub leak_reported_at: Option<DateTimeUtc>,
        pub leak_reporter: Option<String>,
        pub leak_url: Option<String>,
        pub leak_source: Option<String>,
    }
    no_relations!();

    /// This organisation's keys.
    pub fn for_org(org_id: &str) -> Select<Entity> {
        Entity::find().filter(Column::OrgId.eq(org_id))
    }
}

pub mod index {
    use sea_orm::entity::prelude::*;

    use crate::db::{columns::JsonText, records::StoredEmbedder};

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "indexes")]
    pub struct Model {
        /// Internal, never reused: names the search index directory and owns the segments.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uid: String,
        pub org_id: String,
        /// The public id, unique within the organisation (`idx_archive`).
        pub id: String,
        pub name: String,
        pub description: Option<String>,
        pub segment_count: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// None: searched by words only.
        pub embedder: Option<JsonText<StoredEmbedder>>,
        /// The embedder's API key, sealed (`secrets_at_rest`, place
        /// `places::embedder_api_key`).
        pub embedder_secret: Option<String>,
        /// The embedder a re-embedding is moving the index to.
        pub pending_embedder: Option<JsonText<StoredEmbedder>>,
        /// Its API key, sealed (place `places::pending_embedder_api_key`).
        pub pending_embedder_secret: Option<String>,
        /// The segment change after which every search copy holds only the current
        /// embedder's vectors (0: they always did).
        pub embedder_seq: i64,
        /// The latest re-embedding of the index.
        pub reembedding_id: Option<String>,
    }
    no_relations!();

    /// This organisation's indexes.
    pub fn for_org(org_id: &str) -> Select<Entity> {
        Entity::find().filter(Column::OrgId.eq(org_id))
    }

    /// The indexes `who` may see: the organisation's, within a key's `index_ids`.
    pub fn visible_to(who: &videovector_api_spec::Principal) -> Select<Entity> {
        let all = for_org(&who.org_id);
        match who.index_restriction() {
            Some(ids) => all.filter(Column::Id.is_in(ids.iter().cloned())),
            None => all,
        }
    }
}

pub mod segment {
    use sea_orm::entity::prelude::*;

    use crate::db::columns::JsonText;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "segments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub index_uid: String,
        pub org_id: String,
        pub media_id: String,
        pub start_seconds: f64,
        pub end_seconds: f64,
        pub text: String,
        pub labels: JsonText<Vec<String>>,
        /// JSON object, if any: kept as text, it goes as it is into the search copies.
        pub metadata: Option<String>,
        pub created_at: DateTimeUtc,
        /// The `upsert_batch` change that last wrote this segment.
        pub change_seq: Option<i64>,
        /// Its vector (`db::vectors`), when its index has an embedder.
        pub vector: Option<Vec<u8>>,
        /// Its vector under the embedder a re-embedding moves its index to, until the switch.
        pub vector_next: Option<Vec<u8>>,
    }
    no_relations!();
}

pub mod segment_change {
    use sea_orm::entity::prelude::*;

    /// One change to the segments, in the order the search indexes must apply them.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "segment_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub index_uid: String,
        pub segment_id: Option<String>,
        pub op: ChangeOp,
    }
    no_relations!();

    /// What a change did; a stored value that is none of these fails the read.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "Text")]
    pub enum ChangeOp {
        /// The segments whose `change_seq` is this change's `seq`.
        #[sea_orm(string_value = "upsert_batch")]
        UpsertBatch,
        /// One segment (`segment_id`), as written before batches existed.
        #[sea_orm(string_value = "upsert")]
        Upsert,
        #[sea_orm(string_value = "drop_index")]
        DropIndex,
        /// The segments whose `change_seq` is this change's `seq`, rewritten (their vectors
        /// replaced by a re-embedding): each replaces its earlier version.
        #[sea_orm(string_value = "replace_batch")]
        ReplaceBatch,
    }

    impl ChangeOp {
        /// As stored (for the direct SQL of the ingest path).
        pub fn as_str(self) -> &'static str {
            match self {
                ChangeOp::UpsertBatch => "upsert_batch",
                ChangeOp::Upsert => "upsert",
                ChangeOp::DropIndex => "drop_index",
                ChangeOp::ReplaceBatch => "replace_batch",
            }
        }
    }
}

pub mod idempotency_record {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_records")]
    pub struct Model {
        /// SHA-256 of organisation, owner, method, path and key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope_key: String,
        /// SHA-256 of the request body.
        pub fingerprint: String,
        pub state: RecordState,
        pub status: Option<i32>,
        /// JSON array of [name, value] pairs worth replaying.
        pub headers: Option<String>,
        pub body: Option<Vec<u8>>,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
    }
    no_relations!();

    /// Whether the first request with the key is still being answered.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "Text")]
    pub enum RecordState {
        #[sea_orm(string_value = "in_flight")]
        InFlight,
        #[sea_orm(string_value = "done")]
        Done,
    }
}

pub mod prompt {
    use sea_orm::entity::prelude::*;

    use crate::db::columns::JsonText;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "prompts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub name: String,
        pub description: Option<String>,
        pub query_template: String,
        pub instructions: String,
        /// The variable names.
        pub variables: JsonText<Vec<String>>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();

    /// This organisation's prompts.
    pub fn for_org(org_id: &str) -> Select<Entity> {
        Entity::find().filter(Column::OrgId.eq(org_id))
    }
}

pub mod run {
    use sea_orm::entity::prelude::*;

    use std::collections::BTreeMap;

    use videovector_api_spec::dto::runs::RunResult;

    use crate::db::{
        columns::{ApiJson, JsonText},
        records::RunRetrieval,
    };

    /// A run, and its place in the run queue (`status = 'queued'`).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub prompt_id: String,
        /// The public id of the index.
        pub index_id: String,
        /// The variable values.
        pub variables: JsonText<BTreeMap<String, String>>,
        pub status: QueueStatus,
        pub attempt: i32,
        pub retry_of: Option<String>,
        pub query: String,
        pub instructions: String,
        pub top_k: i32,
        /// How it retrieves; none: lexically (a run from before runs had a mode).
        pub retrieval: Option<JsonText<RunRetrieval>>,
        /// The result, as returned.
        pub result: Option<ApiJson<RunResult>>,
        pub error: Option<String>,
        pub created_at: DateTimeUtc,
        pub started_at: Option<DateTimeUtc>,
        pub finished_at: Option<DateTimeUtc>,
        /// The `X-Request-Id` of the request that created it (its webhook events name it).
        pub request_id: Option<String>,
        /// The `traceparent` of the request that created it (its span continues that trace).
        pub trace_parent: Option<String>,
    }
    no_relations!();

    /// This organisation's runs.
    pub fn for_org(org_id: &str) -> Select<Entity> {
        Entity::find().filter(Column::OrgId.eq(org_id))
    }

    /// The runs `who` may see: the organisation's, over a key's `index_ids`.
    pub fn visible_to(who: &videovector_api_spec::Principal) -> Select<Entity> {
        let all = for_org(&who.org_id);
        match who.index_restriction() {
            Some(ids) => all.filter(Column::IndexId.is_in(ids.iter().cloned())),
            None => all,
        }
    }

    pub use super::status::*;
}

pub mod connector {
    use sea_orm::entity::prelude::*;

    use crate::db::{columns::JsonText, records::StoredFile};

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "connectors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub name: String,
        pub kind: String,
        pub files: JsonText<Vec<StoredFile>>,
        /// JSON object of request headers. The values are secrets: never returned.
        pub headers: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();

    /// This organisation's connectors.
    pub fn for_org(org_id: &str) -> Select<Entity> {
        Entity::find().filter(Column::OrgId.eq(org_id))
    }
}

pub mod job {
    use sea_orm::entity::prelude::*;

    use crate::db::{columns::JsonText, records::StoredFile};

    /// An ingestion job, and its place in the job queue (`status = 'queued'`).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub connector_id: String,
        pub status: QueueStatus,
        pub attempt: i32,
        pub retry_of: Option<String>,
        /// The job's files with their state.
        pub files: JsonText<Vec<StoredFile>>,
        pub error: Option<String>,
        pub created_at: DateTimeUtc,
        pub started_at: Option<DateTimeUtc>,
        pub finished_at: Option<DateTimeUtc>,
        /// The `X-Request-Id` of the request that created it (its webhook events name it).
        pub request_id: Option<String>,
        /// The `traceparent` of the request that created it (its span continues that trace).
        pub trace_parent: Option<String>,
    }
    no_relations!();

    /// This organisation's jobs.
    pub fn for_org(org_id: &str) -> Select<Entity> {
        Entity::find().filter(Column::OrgId.eq(org_id))
    }

    pub use super::status::*;
}

pub mod reembedding {
    use sea_orm::entity::prelude::*;

    /// A change of an index's embedder: every segment embedded again, in the background,
    /// and its place in the re-embedding queue (`status = 'queued'`).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "reembeddings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub index_uid: String,
        pub status: QueueStatus,
        /// Segments embedded again so far, and in all.
        pub done: i64,
        pub total: i64,
        pub error: Option<String>,
        pub created_at: DateTimeUtc,
        pub started_at: Option<DateTimeUtc>,
        pub finished_at: Option<DateTimeUtc>,
    }
    no_relations!();

    pub use super::status::*;
}

pub mod webhook {
    use sea_orm::entity::prelude::*;
    use videovector_api_spec::dto::webhooks::WebhookEventType;

    use crate::db::columns::ApiJson;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhooks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub url: String,
        pub event_types: ApiJson<Vec<WebhookEventType>>,
        pub description: Option<String>,
        /// `whsec_...`: the signing secret. Never returned after creation.
        pub secret: String,
        pub enabled: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();

    /// This organisation's webhooks.
    pub fn for_org(org_id: &str) -> Select<Entity> {
        Entity::find().filter(Column::OrgId.eq(org_id))
    }
}

pub mod webhook_delivery {
    use sea_orm::entity::prelude::*;

    use crate::db::{
        columns::{EventName, JsonText},
        records::StoredAttempt,
    };

    /// A delivery of one event to one webhook, and its place in the delivery queue.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_deliveries")]
    pub struct Model {
        /// `msg_...`, sent as `webhook-id`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub webhook_id: String,
        pub org_id: String,
        pub event_type: EventName,
        /// The JSON body, exactly as signed and sent.
        pub payload: String,
        /// Queued, running, succeeded or failed.
        pub status: QueueStatus,
        pub attempts: JsonText<Vec<StoredAttempt>>,
        /// When the next attempt is due, in Unix milliseconds.
        pub next_attempt_ms: i64,
        pub created_at: DateTimeUtc,
        pub delivered_at: Option<DateTimeUtc>,
        /// The `X-Request-Id` of the request that caused the event, sent as `X-Request-Id`.
        pub request_id: Option<String>,
        /// The `traceparent` of the span that queued it (its delivery continues that trace).
        pub trace_parent: Option<String>,
    }
    no_relations!();

    pub use super::status::*;
}

pub mod secrets_key_check {
    use sea_orm::entity::prelude::*;

    /// A value sealed under one secrets key, proving which keys sealed what the database
    /// holds (the key checks beside the keyring read and write these).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "secrets_key_checks")]
    pub struct Model {
        /// The key's id, as sealed values name it.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key_id: String,
        /// A known text sealed under that key.
        pub sealed: String,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod api_key_usage {
    use sea_orm::entity::prelude::*;

    /// Requests of one key and family in one time bucket, by outcome.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_key_usage")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub org_id: String,
        /// `minute`, `hour` or `day`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub granularity: String,
        /// Epoch seconds.
        #[sea_orm(primary_key, auto_increment = false)]
        pub bucket_start: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key_id: String,
        /// `search`, `read` or `write`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub family: String,
        pub allowed: i64,
        pub rate_limited: i64,
        pub refused_by_scope: i64,
        pub not_found: i64,
        pub client_error: i64,
        pub server_error: i64,
    }
    no_relations!();
}

pub mod audit_event {
    use sea_orm::entity::prelude::*;

    /// One recorded action, chained to the one before it in its organisation
    /// (`crate::audit` writes and checks the chain).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub struct Model {
        /// `aud_...`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        /// 1, 2, 3, ... in its organisation.
        pub sequence: i64,
        pub occurred_at: DateTimeUtc,
        /// Wire names (`api_key.create`, `success`, `operator`, ...).
        pub action: String,
        pub outcome: String,
        pub actor_type: String,
        pub actor_id: String,
        pub target_type: String,
        pub target_id: String,
        pub client_address: Option<String>,
        pub request_id: Option<String>,
        /// JSON object of field changes, exactly as hashed.
        pub changes: String,
        pub previous_hash: String,
        pub hash: String,
    }
    no_relations!();

    /// This organisation's events.
    pub fn for_org(org_id: &str) -> Select<Entity> {
        Entity::find().filter(Column::OrgId.eq(org_id))
    }
}

pub mod audit_head {
    use sea_orm::entity::prelude::*;

    /// The end of an organisation's audit chain, and where retention cut its start.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_heads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub org_id: String,
        /// The last event's sequence and hash.
        pub sequence: i64,
        pub hash: String,
        /// The last pruned event's sequence (0: none) and hash.
        pub pruned_sequence: i64,
        pub pruned_hash: String,
        /// HMAC over the four above, so the head cannot be wound back to hide the last
        /// events, nor moved forward to hide the first.
        pub mac: String,
    }
    no_relations!();
}
