//! Reads the committed spec and, for every operation, checks each credential kind against
//! what the spec requires: no credential, malformed/unknown/revoked/expired/deleted keys,
//! keys and JWTs of each scope, an unverified JWT, and a key on a JWT-only path.
//!
//! Path parameters name resources that do not exist, so an accepted credential gets past
//! the guard (any status but 401/403) without changing anything.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use videovector_api_spec::{
    contract::Contract,
    rules::OperationRule,
    security::{API_KEY_SCHEME, VERIFIED_BEARER_SCHEME},
    Scope,
};
use videovector_server::db::entities::api_key;
use videovector_tests::TestServer;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Pass,
    Unauthorized,
    Forbidden,
}

enum Cred {
    None,
    Key(String),
    /// A key sent by a page of another site (`Origin`).
    KeyFromPage(String, &'static str),
    Bearer(String),
}

fn rules() -> Vec<OperationRule> {
    Contract::committed()
        .operations()
        .iter()
        .map(|o| o.rule.clone())
        .collect()
}

fn concrete_path(template: &str) -> String {
    template
        .replace("{index_id}", "idx_does_not_exist")
        .replace("{key_id}", "key_does_not_exist")
        .replace("{page_token}", "not-a-token")
        .replace("{prompt_id}", "prm_does_not_exist")
        .replace("{run_id}", "run_does_not_exist")
        .replace("{connector_id}", "con_does_not_exist")
        .replace("{job_id}", "job_does_not_exist")
        .replace("{webhook_id}", "whk_does_not_exist")
}

async fn call(
    server: &TestServer,
    rule: &OperationRule,
    cred: &Cred,
) -> (StatusCode, serde_json::Value, Option<String>) {
    let http = reqwest::Client::new();
    let method = Method::from_bytes(rule.method.as_bytes()).unwrap();
    let mut request = http.request(method, server.api(&concrete_path(&rule.path)));
    request = match cred {
        Cred::None => request,
        Cred::Key(k) => request.header("X-API-Key", k),
        Cred::KeyFromPage(k, origin) => request.header("X-API-Key", k).header("Origin", *origin),
        Cred::Bearer(t) => request.bearer_auth(t),
    };
    if rule.method != "GET" && rule.method != "DELETE" {
        request = request
            .header("content-type", "application/json")
            .body("{}");
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body, challenge)
}

fn check(
    rule: &OperationRule,
    case: &str,
    expect: Expect,
    got: (StatusCode, serde_json::Value, Option<String>),
) {
    let (status, body, challenge) = got;
    let id = &rule.operation_id;
    match expect {
        Expect::Pass => assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{id} / {case}: expected to pass the guard, got {status} {body}"
        ),
        Expect::Unauthorized => {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{id} / {case}: {body}");
            assert!(
                challenge.is_some(),
                "{id} / {case}: 401 without WWW-Authenticate"
            );
            assert_eq!(
                body["status"], 401,
                "{id} / {case}: not a problem body: {body}"
            );
        }
        Expect::Forbidden => {
            assert_eq!(status, StatusCode::FORBIDDEN, "{id} / {case}: {body}");
            let required = rule.required_scope.unwrap().to_string();
            assert_eq!(body["code"], "insufficient_scope", "{id} / {case}");
            assert_eq!(body["required_scope"], required.as_str(), "{id} / {case}");
            assert!(
                challenge
                    .unwrap()
                    .contains(&format!("scope=\"{required}\"")),
                "{id} / {case}"
            );
        }
    }
}

fn scope_expectation(rule: &OperationRule, held: Scope) -> Expect {
    match rule.required_scope {
        Some(required) if !held.satisfies(required) => Expect::Forbidden,
        _ => Expect::Pass,
    }
}

#[tokio::test]
async fn every_operation_enforces_what_the_spec_declares() {
    let server = TestServer::start().await;
    let org = server.org(true).await;

    let mut keys = Vec::new();
    for scope in Scope::ALL {
        keys.push((scope, server.api_key(&org, &[scope]).await.1));
    }
    let (revoked_id, revoked) = server.api_key(&org, &[Scope::Admin]).await;
    server
        .admin_client(&org)
        .api_key_revoke()
        .key_id(&revoked_id)
        .send()
        .await
        .unwrap();
    let (deleted_id, deleted) = server.api_key(&org, &[Scope::Admin]).await;
    server
        .admin_client(&org)
        .api_key_delete()
        .key_id(&deleted_id)
        .send()
        .await
        .unwrap();
    let (expired_id, expired) = server.api_key(&org, &[Scope::Admin]).await;
    let row = api_key::Entity::find_by_id(expired_id)
        .one(server.db())
        .await
        .unwrap()
        .unwrap();
    let mut row: api_key::ActiveModel = row.into();
    row.expires_at = Set(Some(Utc::now() - Duration::seconds(1)));
    row.update(server.db()).await.unwrap();
    let unknown = videovector_server::auth::api_key_secret::generate("sk_live_");

    let rules = rules();
    assert!(
        rules.len() >= 15,
        "the spec lists {} operations",
        rules.len()
    );
    for rule in &rules {
        let public = rule.schemes.is_empty();
        let takes_key = rule.schemes.iter().any(|s| s == API_KEY_SCHEME);
        let needs_verified = rule.schemes.iter().any(|s| s == VERIFIED_BEARER_SCHEME);
        let bad_key = if public {
            Expect::Pass
        } else {
            Expect::Unauthorized
        };

        check(
            rule,
            "no credential",
            bad_key,
            call(&server, rule, &Cred::None).await,
        );
        for (case, secret) in [
            ("malformed key", "sk_live_nonsense".to_string()),
            ("unknown key", unknown.clone()),
            ("revoked key", revoked.clone()),
            ("expired key", expired.clone()),
            ("deleted key", deleted.clone()),
        ] {
            check(
                rule,
                case,
                bad_key,
                call(&server, rule, &Cred::Key(secret)).await,
            );
        }
        for (scope, secret) in &keys {
            let expect = if public {
                Expect::Pass
            } else if !takes_key {
                Expect::Unauthorized // includes "a key on a JWT-only path"
            } else {
                scope_expectation(rule, *scope)
            };
            check(
                rule,
                &format!("{scope} key"),
                expect,
                call(&server, rule, &Cred::Key(secret.clone())).await,
            );
        }
        for scope in Scope::ALL {
            let token = server.token(&org, &[scope]);
            let expect = if public {
                Expect::Pass
            } else {
                scope_expectation(rule, scope)
            };
            check(
                rule,
                &format!("{scope} JWT"),
                expect,
                call(&server, rule, &Cred::Bearer(token)).await,
            );
        }
        let unverified = server.unverified_token(&org, &[Scope::Admin]);
        let expect = if needs_verified {
            Expect::Unauthorized
        } else {
            Expect::Pass
        };
        let got = call(&server, rule, &Cred::Bearer(unverified)).await;
        if needs_verified {
            assert_eq!(
                got.1["code"], "insufficient_user_authentication",
                "{}",
                rule.operation_id
            );
            assert!(got
                .2
                .as_deref()
                .unwrap()
                .contains("error=\"insufficient_user_authentication\""));
        }
        check(rule, "unverified admin JWT", expect, got);
    }
    server.stop().await;
}

/// Creates a key with `extra` restrictions through the API; returns its id and secret.
async fn restricted_key(
    server: &TestServer,
    org: &videovector_tests::TestOrg,
    extra: serde_json::Value,
) -> (String, String) {
    let mut body = serde_json::json!({"name": "restricted", "scopes": ["admin"]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, created) = videovector_tests::answer(
        reqwest::Client::new()
            .post(server.api("/api-keys"))
            .bearer_auth(server.token(org, &[Scope::Admin]))
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["key"]["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

/// The matrix beyond scopes: for every operation an API key may call, a key used from
/// outside its networks, a key used from a page it does not list, one used from a page it
/// lists, and a tenant token (which holds `search` alone), each as the spec's schemes and
/// scopes imply. (Index restrictions have their own matrix, `index_restrictions`.)
#[tokio::test]
async fn every_operation_holds_networks_pages_and_tenant_tokens() {
    const PAGE: &str = "https://shop.example.com";
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let (_, elsewhere) = restricted_key(
        &server,
        &org,
        serde_json::json!({"allowed_cidrs": ["10.0.0.0/8"]}),
    )
    .await;
    let (_, pageless) = restricted_key(&server, &org, serde_json::json!({})).await;
    let (listed_id, listed) = restricted_key(
        &server,
        &org,
        serde_json::json!({"allowed_origins": [PAGE]}),
    )
    .await;
    let token = videovector_client::tenant_token(
        &listed_id,
        &listed,
        std::time::Duration::from_secs(600),
        &Default::default(),
    )
    .unwrap();
    let refused = |rule: &OperationRule,
                   case: &str,
                   got: (StatusCode, serde_json::Value, Option<String>),
                   code: &str| {
        assert_eq!(
            got.0,
            StatusCode::FORBIDDEN,
            "{} / {case}: {}",
            rule.operation_id,
            got.1
        );
        assert_eq!(got.1["code"], code, "{} / {case}", rule.operation_id);
    };
    let rules: Vec<OperationRule> = rules()
        .into_iter()
        .filter(|r| r.schemes.iter().any(|s| s == API_KEY_SCHEME))
        .collect();
    assert!(rules.len() >= 30, "{} operations take keys", rules.len());
    for rule in &rules {
        let got = call(&server, rule, &Cred::Key(elsewhere.clone())).await;
        refused(
            rule,
            "a key outside its networks",
            got,
            "address_not_allowed",
        );
        let got = call(&server, rule, &Cred::KeyFromPage(pageless.clone(), PAGE)).await;
        refused(
            rule,
            "a key from a page it does not list",
            got,
            "origin_not_allowed",
        );
        let got = call(&server, rule, &Cred::KeyFromPage(listed.clone(), PAGE)).await;
        check(rule, "a key from a page it lists", Expect::Pass, got);
        let got = call(&server, rule, &Cred::KeyFromPage(token.clone(), PAGE)).await;
        check(
            rule,
            "a tenant token",
            scope_expectation(rule, Scope::Search),
            got,
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn auth_runs_before_the_body_is_parsed() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let response = http
        .post(server.api("/indexes"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let org = server.org(true).await;
    let response = http
        .post(server.api("/indexes"))
        .bearer_auth(server.token(&org, &[Scope::Read]))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    server.stop().await;
}
