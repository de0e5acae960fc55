//! Background workers that drain queues living in the database: runs (and, later, jobs and
//! webhook deliveries). Work survives restarts; on PostgreSQL several instances share the
//! queues, each row claimed by exactly one (`FOR UPDATE SKIP LOCKED`).

pub mod deliveries;
pub mod jobs;
pub mod queue;
pub mod runs;
