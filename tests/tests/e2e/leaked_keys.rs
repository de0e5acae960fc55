//! Leaked-key reports (issue 23), as GitHub's secret scanning partner program sends them:
//! signed with a reporter key generated here in the same format (ECDSA P-256, DER, base64);
//! each token matched by digest, a key of this server marked with where it leaked,
//! announced, and revoked at once unless its organisation turned that off; forged,
//! tampered and unknown-key reports refused; a token never repeated in an answer.

use base64::{engine::general_purpose::STANDARD, Engine};
use p256::{
    ecdsa::{signature::Signer, Signature, SigningKey},
    pkcs8::{EncodePublicKey, LineEnding},
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use videovector_api_spec::Scope;
use videovector_server::config::LeakReporter;
use videovector_tests::{answer, LocalHttp, RecordedRequest, TestOrg, TestServer};

const IDENTIFIER: &str = "gh-secret-scanning-test-1";

/// A reporter key made from a fixed seed: the test needs no randomness to sign.
fn reporter_key(seed: &str) -> SigningKey {
    SigningKey::from_slice(&Sha256::digest(seed.as_bytes())).unwrap()
}

fn reporter(key: &SigningKey) -> LeakReporter {
    LeakReporter {
        name: "github".into(),
        key_identifier: IDENTIFIER.into(),
        public_key_pem: key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

/// Sends `body` signed by `key` as `identifier`.
async fn report(
    server: &TestServer,
    key: &SigningKey,
    identifier: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let signature: Signature = key.sign(body);
    answer(
        reqwest::Client::new()
            .post(server.api("/leaked-keys"))
            .header("Content-Type", "application/json")
            .header("Github-Public-Key-Identifier", identifier)
            .header(
                "Github-Public-Key-Signature",
                STANDARD.encode(signature.to_der().as_bytes()),
            )
            .body(body.to_vec()),
    )
    .await
}

fn found(tokens: &[&str]) -> Vec<u8> {
    let reports: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({"token": t, "type": "videovector_api_key",
                   "url": "https://github.com/someone/repo/blob/abc/config.py", "source": "content"})
        })
        .collect();
    serde_json::to_vec(&reports).unwrap()
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn key(server: &TestServer, org: &TestOrg) -> (String, String) {
    server.api_key(org, &[Scope::Read]).await
}

async fn works(server: &TestServer, secret: &str) -> bool {
    let (status, _) = answer(
        reqwest::Client::new()
            .get(server.api("/indexes"))
            .header("X-API-Key", secret),
    )
    .await;
    status == StatusCode::OK
}

#[tokio::test]
async fn a_reported_key_is_marked_announced_and_revoked_and_others_are_told_apart() {
    let signer = reporter_key("the reporter");
    let receiver = LocalHttp::start(vec![]).await;
    let server = TestServer::start_with(|c| {
        c.allow_private_targets = true;
        c.leak_reporters = vec![reporter(&signer)];
    })
    .await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let (status, hook) = answer(
        reqwest::Client::new()
            .post(server.api("/webhooks"))
            .bearer_auth(&admin)
            .json(&json!({"url": receiver.url("/hooks/leaks"),
                          "event_types": ["api_key.leaked", "api_key.revoked"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (key_id, secret) = key(&server, &org).await;
    let stranger = videovector_server::auth::api_key_secret::generate("sk_live_");
    let tokens = [secret.as_str(), stranger.as_str(), "ghp_not_ours_at_all"];

    let (status, verdicts) = report(&server, &signer, IDENTIFIER, &found(&tokens)).await;
    assert_eq!(status, StatusCode::OK, "{verdicts}");
    assert_eq!(
        verdicts,
        json!([
            {"token_hash": hash(&secret), "label": "true_positive", "was_active": true, "revoked": true},
            {"token_hash": hash(&stranger), "label": "false_positive", "was_active": false, "revoked": false},
            {"token_hash": hash(tokens[2]), "label": "false_positive", "was_active": false, "revoked": false},
        ])
    );
    assert!(
        !verdicts.to_string().contains(&secret[8..]),
        "a token repeated"
    );
    assert!(!works(&server, &secret).await, "a leaked key still works");
    let (_, view) = answer(
        reqwest::Client::new()
            .get(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(view["status"], "revoked", "{view}");
    assert_eq!(view["leak"]["reporter"], "github", "{view}");
    assert_eq!(view["leak"]["source"], "content");
    assert!(view["leak"]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://github.com/"));

    // Announced once, each naming the reporter, never the secret; a second report of the
    // same key changes nothing.
    let (status, again) = report(&server, &signer, IDENTIFIER, &found(&[&secret])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again[0]["was_active"], false);
    assert_eq!(again[0]["revoked"], true);
    let started = std::time::Instant::now();
    while receiver.requests.lock().unwrap().len() < 2 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let received: Vec<RecordedRequest> = receiver.requests.lock().unwrap().clone();
    let mut types: Vec<String> = received
        .iter()
        .map(|r| {
            let event = super::webhooks::verify(hook["secret"].as_str().unwrap(), r);
            assert_eq!(event["data"]["actor"], "reporter:github", "{event}");
            assert_eq!(event["data"]["key"]["id"], key_id.as_str());
            assert!(!String::from_utf8_lossy(&r.body).contains(&secret[8..]));
            event["type"].as_str().unwrap().to_string()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["api_key.leaked", "api_key.revoked"]);

    // In the audit log once, as the reporter, with where it was found and the revocation.
    let (status, page) = answer(
        reqwest::Client::new()
            .get(server.api("/audit-events?action=api_key.report_leak"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["items"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(
        events[0]["actor"],
        json!({"type": "leak_reporter", "id": "github"})
    );
    assert_eq!(
        events[0]["target"],
        json!({"type": "api_key", "id": key_id})
    );
    assert_eq!(events[0]["changes"]["status"]["to"], "revoked", "{page}");
    assert_eq!(
        events[0]["changes"]["leak"]["to"]["source"], "content",
        "{page}"
    );
    assert!(!page.to_string().contains(&secret[8..]));
    server.stop().await;
}

#[tokio::test]
async fn an_organisation_may_keep_leaked_keys_working_and_only_be_told() {
    let signer = reporter_key("the reporter");
    let server = TestServer::start_with(|c| c.leak_reporters = vec![reporter(&signer)]).await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let (status, settings) = answer(
        reqwest::Client::new()
            .get(server.api("/organization"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings["revoke_leaked_keys"], true, "the default");
    let (status, settings) = answer(
        reqwest::Client::new()
            .patch(server.api("/organization"))
            .bearer_auth(&admin)
            .json(&json!({"revoke_leaked_keys": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["revoke_leaked_keys"], false);
    let (key_id, secret) = key(&server, &org).await;
    let (status, verdicts) = report(&server, &signer, IDENTIFIER, &found(&[&secret])).await;
    assert_eq!(status, StatusCode::OK, "{verdicts}");
    assert_eq!(verdicts[0]["was_active"], true);
    assert_eq!(verdicts[0]["revoked"], false);
    assert!(works(&server, &secret).await);
    let (_, view) = answer(
        reqwest::Client::new()
            .get(server.api(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(view["leak"]["reporter"], "github", "{view}");
    assert_eq!(view["status"], "active");
    server.stop().await;
}

#[tokio::test]
async fn forged_tampered_and_unknown_reports_are_refused_and_change_nothing() {
    let signer = reporter_key("the reporter");
    let forger = reporter_key("someone else");
    let server = TestServer::start_with(|c| c.leak_reporters = vec![reporter(&signer)]).await;
    let org = server.org(true).await;
    let (_, secret) = key(&server, &org).await;
    let body = found(&[&secret]);
    let refused = |(status, problem): (StatusCode, Value), case: &str| {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {problem}");
        assert_eq!(problem["code"], "invalid_signature", "{case}: {problem}");
    };
    refused(report(&server, &forger, IDENTIFIER, &body).await, "forged");
    refused(
        report(&server, &signer, "gh-unknown", &body).await,
        "unknown key",
    );
    // Signed, then changed on the way.
    let signature: Signature = signer.sign(&body);
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("someone/repo", "someone/rep0")
        .into_bytes();
    let (status, problem) = answer(
        reqwest::Client::new()
            .post(server.api("/leaked-keys"))
            .header("Content-Type", "application/json")
            .header("Github-Public-Key-Identifier", IDENTIFIER)
            .header(
                "Github-Public-Key-Signature",
                STANDARD.encode(signature.to_der().as_bytes()),
            )
            .body(tampered),
    )
    .await;
    refused((status, problem), "tampered");
    let (status, problem) = answer(
        reqwest::Client::new()
            .post(server.api("/leaked-keys"))
            .header("Content-Type", "application/json")
            .header("Github-Public-Key-Identifier", IDENTIFIER)
            .header("Github-Public-Key-Signature", "not base64!")
            .body(body.clone()),
    )
    .await;
    refused((status, problem), "not a signature");
    let (status, problem) = answer(
        reqwest::Client::new()
            .post(server.api("/leaked-keys"))
            .header("Content-Type", "application/json")
            .body(body.clone()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unsigned: {problem}"
    );
    assert!(
        works(&server, &secret).await,
        "a refused report revoked the key"
    );
    // Signed, but too many tokens at once.
    let many: Vec<String> = (0..1001).map(|i| format!("token_{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let (status, problem) = report(&server, &signer, IDENTIFIER, &found(&many)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    server.stop().await;
}
