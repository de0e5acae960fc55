//! Versioned schema migrations, applied in order at start-up (`videovector migrate` applies
//! them alone). sea-orm-migration runs each migration in a transaction on PostgreSQL. One
//! file per migration; a migration, once released, never changes.

use sea_orm_migration::{prelude::*, schema::*};

mod m0001_initial;
mod m0002_prompts_and_runs;
mod m0003_connectors_and_jobs;
mod m0004_webhooks;
mod m0005_batch_changes;
mod m0006_login_attempts;
mod m0007_secrets_key_checks;
mod m0008_login_known_clients;
mod m0009_queue_leases;
mod m0010_vectors;
mod m0011_run_retrieval;
mod m0012_embedder_secrets;
mod m0013_reembeddings;
mod m0014_rate_limits;
mod m0015_key_restrictions;
mod m0016_key_index_restrictions;
mod m0017_tenant_token_keys;
mod m0018_key_origins;
mod m0019_key_client_limits;
mod m0020_key_expiry_notices;
mod m0021_leaked_keys;
mod m0022_audit_log;
mod m0023_trace_context;

use m0001_initial::M0001Initial;
use m0002_prompts_and_runs::M0002PromptsAndRuns;
use m0003_connectors_and_jobs::M0003ConnectorsAndJobs;
use m0004_webhooks::M0004Webhooks;
use m0005_batch_changes::M0005BatchChanges;
use m0006_login_attempts::M0006LoginAttempts;
use m0007_secrets_key_checks::M0007SecretsKeyChecks;
use m0008_login_known_clients::M0008LoginKnownClients;
use m0009_queue_leases::M0009QueueLeases;
use m0010_vectors::M0010Vectors;
use m0011_run_retrieval::M0011RunRetrieval;
use m0012_embedder_secrets::M0012EmbedderSecrets;
use m0013_reembeddings::M0013Reembeddings;
use m0014_rate_limits::M0014RateLimits;
use m0015_key_restrictions::M0015KeyRestrictions;
use m0016_key_index_restrictions::M0016KeyIndexRestrictions;
use m0017_tenant_token_keys::M0017TenantTokenKeys;
use m0018_key_origins::M0018KeyOrigins;
use m0019_key_client_limits::M0019KeyClientLimits;
use m0020_key_expiry_notices::M0020KeyExpiryNotices;
use m0021_leaked_keys::M0021LeakedKeys;
use m0022_audit_log::M0022AuditLog;
use m0023_trace_context::M0023TraceContext;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Initial),
            Box::new(M0002PromptsAndRuns),
            Box::new(M0003ConnectorsAndJobs),
            Box::new(M0004Webhooks),
            Box::new(M0005BatchChanges),
            Box::new(M0006LoginAttempts),
            Box::new(M0007SecretsKeyChecks),
            Box::new(M0008LoginKnownClients),
            Box::new(M0009QueueLeases),
            Box::new(M0010Vectors),
            Box::new(M0011RunRetrieval),
            Box::new(M0012EmbedderSecrets),
            Box::new(M0013Reembeddings),
            Box::new(M0014RateLimits),
            Box::new(M0015KeyRestrictions),
            Box::new(M0016KeyIndexRestrictions),
            Box::new(M0017TenantTokenKeys),
            Box::new(M0018KeyOrigins),
            Box::new(M0019KeyClientLimits),
            Box::new(M0020KeyExpiryNotices),
            Box::new(M0021LeakedKeys),
            Box::new(M0022AuditLog),
            Box::new(M0023TraceContext),
        ]
    }
}

/// A timestamp column with its time zone.
fn ts(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone(col)
}

/// A nullable timestamp column with its time zone.
fn ts_null(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone_null(col)
}
