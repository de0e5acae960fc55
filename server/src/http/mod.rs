//! The HTTP surface: routes, middleware (problem mapping, guard, idempotency, request ids,
//! connections kept usable), Swagger UI, health checks.

pub mod docs;
pub mod idempotency;
pub mod keep_alive;
pub mod lingering;
pub mod problems;
pub mod request_checks;
pub mod request_id;
pub mod request_span;
pub mod response_tap;
pub mod routes;
pub mod site;
