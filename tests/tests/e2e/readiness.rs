//! Readiness (issue 24): `readiness_view` (and `/readyz` beside the API, for probes) names
//! each check's state: the database, the notification listener (PostgreSQL; not applicable
//! on SQLite), the search copy's lag and the secrets key; a secrets key that no longer opens
//! what the database holds makes the instance not ready, 503 `not_ready` naming it.

use reqwest::StatusCode;
use sea_orm::{sea_query::Expr, EntityTrait};
use serde_json::Value;
use videovector_server::db::entities::secrets_key_check;
use videovector_tests::{answer, TestServer};

#[tokio::test]
async fn readiness_names_each_check_and_a_broken_secrets_key_is_not_ready() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let (status, body) = answer(http.get(server.api("/readyz"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["database"]["state"], "up");
    assert_eq!(body["checks"]["secrets_key"]["state"], "up");
    assert_eq!(body["checks"]["search_copy"]["state"], "up");
    assert_eq!(body["checks"]["search_copy"]["lag_changes"], 0);
    let listener = if server.config().database_url().starts_with("postgres") {
        "up"
    } else {
        "not_applicable"
    };
    assert_eq!(body["checks"]["notification_listener"]["state"], listener);
    // The probe path answers the same.
    let probe: Value = http
        .get(format!("{}/readyz", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(probe["checks"], body["checks"]);

    // The database now holds secrets sealed under a key this instance does not have.
    secrets_key_check::Entity::update_many()
        .col_expr(secrets_key_check::Column::KeyId, Expr::value("k_elsewhere"))
        .exec(server.db())
        .await
        .unwrap();
    let (status, problem) = answer(http.get(server.api("/readyz"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(problem["code"], "not_ready");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("secrets_key"), "{detail}");
    assert!(!detail.contains("database:"), "{detail}");
    let probe = http
        .get(format!("{}/readyz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(probe.headers()["retry-after"], "5");
    server.stop().await;
}
