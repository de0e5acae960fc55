//! Tokens that must be refused: `alg: none`, a forged signature, an algorithm the issuer
//! does not pin (HS/RS confusion), expired, wrong audience, wrong issuer, missing `exp`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;
use videovector_tests::TestServer;

fn unsigned(header: serde_json::Value, claims: serde_json::Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test]
async fn forged_and_confused_tokens_are_refused() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let now = chrono::Utc::now().timestamp();
    let good = json!({"iss": "videovector", "aud": "videovector-api", "sub": org.operator.id,
        "exp": now + 600, "org_id": org.org_id, "scope": "admin", "email_verified": true});
    let secret =
        std::fs::read_to_string(server.data_dir.path().join("secrets/jwt_signing_secret")).unwrap();
    let real_key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim())
        .unwrap();
    let sign = |claims: &serde_json::Value, key: &[u8]| {
        encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    };

    let mut cases = vec![
        (
            "alg none",
            unsigned(json!({"alg": "none", "typ": "JWT"}), good.clone()),
        ),
        (
            "forged signature",
            sign(&good, b"not the server secret at all, 32+ bytes"),
        ),
        ("RS256 header on an HS256 issuer", {
            let signed = sign(&good, &real_key);
            let parts: Vec<&str> = signed.split('.').collect();
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string()),
                parts[1],
                parts[2]
            )
        }),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (case, mutate) in [
        ("expired", json!({"exp": now - 3600})),
        ("wrong audience", json!({"aud": "someone-else"})),
        ("wrong issuer", json!({"iss": "https://evil.example"})),
    ] {
        let mut claims = good.clone();
        for (k, v) in mutate.as_object().unwrap() {
            claims[k] = v.clone();
        }
        cases.push((case, sign(&claims, &real_key)));
    }
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    cases.push(("missing exp", sign(&no_exp, &real_key)));
    // Expired and forged: only a token whose signature verifies is told it expired.
    let mut expired = good.clone();
    expired["exp"] = json!(now - 3600);
    cases.push((
        "expired and forged",
        sign(&expired, b"not the server secret at all, 32+ bytes"),
    ));

    let http = reqwest::Client::new();
    let ok = http
        .get(server.api("/indexes"))
        .bearer_auth(sign(&good, &real_key))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK, "the control token must work");
    for (case, token) in cases {
        let response = http
            .get(server.api("/indexes"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{case}"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        let expected = if case == "expired" {
            "token_expired"
        } else {
            "invalid_token"
        };
        assert_eq!(problem["code"], expected, "{case}: {problem}");
    }
    server.stop().await;
}
