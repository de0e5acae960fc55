//! Errors that say how to fix the request: the base path left out, a body that is not
//! JSON, a misspelt field, a private webhook target on a server that refuses them.

use reqwest::StatusCode;
use serde_json::{json, Value};
use videovector_api_spec::Scope;
use videovector_tests::{answer, common_calls::create_index, TestServer};

#[tokio::test]
async fn refusals_name_the_fix() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let token = server.token(&org, &[Scope::Admin]);
    create_index(&server.admin_client(&org), "idx_taught", "Taught").await;
    let http = reqwest::Client::new();
    let detail = |body: &Value| body["detail"].as_str().unwrap_or_default().to_string();

    // The base path left out: the path that was meant.
    let (status, body) = answer(
        http.get(format!("{}/indexes", server.url()))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        detail(&body).contains("did you mean `/api/v2/indexes`"),
        "{body}"
    );
    let (_, body) = answer(http.get(format!("{}/nothing-here", server.url()))).await;
    assert_eq!(detail(&body), "no such path");

    // A form-encoded body: send JSON, and this is what was sent.
    let (status, body) = answer(
        http.post(server.api("/indexes"))
            .bearer_auth(&token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=Archive"),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let told = detail(&body);
    assert!(
        told.contains("`Content-Type: application/json`")
            && told.contains("application/x-www-form-urlencoded"),
        "{body}"
    );

    // A misspelt field: the missing one, and the one that was probably meant (in `errors[]`
    // and in the problem's `detail`).
    let (status, body) = answer(
        http.post(server.api("/indexes/idx_taught/search"))
            .bearer_auth(&token)
            .json(&json!({"q": "bridge"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["pointer"], "/query", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`q` is not a property here: did you mean `query`?")),
        "{body}"
    );
    assert!(detail(&body).contains("did you mean `query`?"), "{body}");

    // A private webhook target: refused, naming the setting that allows it.
    let (status, body) = answer(
        http.post(server.api("/webhooks"))
            .bearer_auth(&token)
            .json(&json!({"url": "http://127.0.0.1:9/hook", "event_types": ["run.succeeded"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        detail(&body).contains("VIDEOVECTOR_ALLOW_PRIVATE_TARGETS=true"),
        "{body}"
    );
}
