//! `GET /readyz`: whether this instance can serve, for load balancers and orchestrators.
//! Public (a probe holds no credential) and uncounted; it reads nothing of any organisation.

use poem::web::Data;
use poem_openapi::OpenApi;

use super::ApiTag;
use crate::{
    dto::health::Readiness,
    problem::{Problems, ReadinessErrors},
    responses::Ok200,
    services::Services,
};

pub struct HealthApi;

#[OpenApi(tag = "ApiTag::Health")]
impl HealthApi {
    /// Check readiness
    ///
    /// Public. Answers 200 with each check's state while this instance can serve (`status`
    /// `degraded` when the notification listener is down or the search copy is behind but
    /// within the limit), and 503 `not_ready` naming each failed check when it cannot: the
    /// database is unreachable, the secrets key does not open what the database holds, or
    /// the search copy is further behind than `readiness_max_lag_changes`. Also served at
    /// `/readyz` beside the API, for probes.
    #[oai(path = "/readyz", method = "get", operation_id = "readiness_view")]
    async fn readiness_view(
        &self,
        services: Data<&Services>,
    ) -> Result<Ok200<Readiness>, Problems<ReadinessErrors>> {
        Ok(Ok200(services.health.readiness().await?))
    }
}
