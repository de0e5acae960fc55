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

/// A key that stops working says why to the caller that holds it (revoked, expired, a typo),
/// and nothing more to one that does not (an unknown key).
#[tokio::test]
async fn a_refused_key_says_why_to_whoever_holds_it() {
    use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
    use videovector_server::db::entities::api_key;

    let server = TestServer::start().await;
    let org = server.org(true).await;
    let http = reqwest::Client::new();
    let refusal = |key: String| {
        let request = http.get(server.api("/indexes")).header("X-API-Key", key);
        async move {
            let (status, body) = answer(request).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            (
                body["code"].as_str().unwrap_or_default().to_string(),
                body["detail"].clone(),
            )
        }
    };

    let (revoked_id, revoked) = server.api_key(&org, &[Scope::Read]).await;
    // A typo: the last character changed breaks the checksum.
    let mut typo = revoked.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    let (code, detail) = refusal(typo).await;
    assert_eq!(code, "malformed_api_key", "{detail}");
    assert!(detail.as_str().unwrap().contains("copied whole"));
    // Well formed, but no such key: nothing more is said.
    let unknown = videovector_server::auth::api_key_secret::generate("sk_live_");
    assert_eq!(refusal(unknown).await.0, "invalid_api_key");

    // Revoked.
    let revoke = http
        .post(server.api(&format!("/api-keys/{revoked_id}/revoke")))
        .bearer_auth(server.token(&org, &[Scope::Admin]));
    assert_eq!(answer(revoke).await.0, StatusCode::OK);
    assert_eq!(refusal(revoked).await.0, "api_key_revoked");

    // Expired (set in the store before the key's first use).
    let (expired_id, expired) = server.api_key(&org, &[Scope::Read]).await;
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    api_key::Entity::update_many()
        .col_expr(api_key::Column::ExpiresAt, Expr::value(past))
        .filter(api_key::Column::Id.eq(&expired_id))
        .exec(server.db())
        .await
        .unwrap();
    let (code, detail) = refusal(expired).await;
    assert_eq!(code, "api_key_expired", "{detail}");
    assert!(detail.as_str().unwrap().contains("expired at"), "{detail}");
}
