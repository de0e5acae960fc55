//! Rate limits and usage (issue 22): which limits hold for a request ([`policy`]), counting
//! requests against them in fixed windows ([`windows`]), the counter instances on one
//! PostgreSQL database share ([`shared`]), the check the guard runs on every authenticated
//! request ([`limiter`]), and the usage counts written in batches ([`usage`]).

pub mod limiter;
pub mod policy;
pub mod shared;
pub mod usage;
pub mod windows;
