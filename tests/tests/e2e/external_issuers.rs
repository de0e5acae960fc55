//! Tokens from configured identity providers: a PEM key (EdDSA), a JWKS file (RS256, by
//! `kid`) and a JWKS URL, each with its algorithms pinned. The keys are test fixtures.

use std::path::PathBuf;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use videovector_server::config::ExternalIssuer;
use videovector_tests::TestServer;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn issuer(name: &str, algorithms: &[&str]) -> ExternalIssuer {
    ExternalIssuer {
        issuer: name.into(),
        audience: None,
        algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
        jwks_file: None,
        jwks_url: None,
        pem_file: None,
        shared_secret: None,
        default_organization: None,
    }
}

/// Serves one JSON document over plain HTTP on 127.0.0.1 (the JWKS URL).
async fn serve_json(body: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/jwks.json")
}

#[tokio::test]
async fn configured_identity_providers_are_trusted_with_pinned_algorithms() {
    let jwks_url = serve_json(std::fs::read_to_string(fixture("rsa_jwks.json")).unwrap()).await;
    let server = TestServer::start_with(|config| {
        let mut ed = issuer("https://idp.example/ed", &["EdDSA"]);
        ed.pem_file = Some(fixture("ed25519_public.pem"));
        let mut rsa_file = issuer("https://idp.example/rsa", &["RS256"]);
        rsa_file.jwks_file = Some(fixture("rsa_jwks.json"));
        let mut rsa_url = issuer("https://idp.example/url", &["RS256"]);
        rsa_url.jwks_url = Some(jwks_url);
        config.jwt.external_issuers = vec![ed, rsa_file, rsa_url];
    })
    .await;
    let org = server.org(true).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |iss: &str, scope: &str| {
        json!({"iss": iss, "aud": "videovector-api", "sub": "user-1", "exp": now + 600,
               "org_id": org.org_id, "scope": scope, "email_verified": true})
    };
    let ed_key =
        EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519_private.pem")).unwrap()).unwrap();
    let rsa_key =
        EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa_private.pem")).unwrap()).unwrap();
    let mut rsa_header = Header::new(Algorithm::RS256);
    rsa_header.kid = Some("test-rsa-1".into());
    let mut wrong_kid = rsa_header.clone();
    wrong_kid.kid = Some("unknown".into());
    let rsa_public_pem = std::fs::read(fixture("rsa_public.pem")).unwrap();

    let ed_read = encode(
        &Header::new(Algorithm::EdDSA),
        &claims("https://idp.example/ed", "read"),
        &ed_key,
    )
    .unwrap();
    let rsa_file_read = encode(
        &rsa_header,
        &claims("https://idp.example/rsa", "read"),
        &rsa_key,
    )
    .unwrap();
    let rsa_url_read = encode(
        &rsa_header,
        &claims("https://idp.example/url", "read"),
        &rsa_key,
    )
    .unwrap();
    let cases = [
        ("PEM EdDSA", ed_read.clone(), StatusCode::OK),
        ("JWKS file RS256", rsa_file_read, StatusCode::OK),
        ("JWKS URL RS256", rsa_url_read, StatusCode::OK),
        (
            "unknown kid",
            encode(
                &wrong_kid,
                &claims("https://idp.example/rsa", "read"),
                &rsa_key,
            )
            .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "RS256 on an EdDSA-pinned issuer",
            encode(
                &rsa_header,
                &claims("https://idp.example/ed", "read"),
                &rsa_key,
            )
            .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "HS256 keyed with the RSA public key (confusion)",
            encode(
                &Header::new(Algorithm::HS256),
                &claims("https://idp.example/rsa", "read"),
                &EncodingKey::from_secret(&rsa_public_pem),
            )
            .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    let http = reqwest::Client::new();
    for (case, token, expected) in cases {
        let response = http
            .get(server.api("/indexes"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{case}");
    }
    // The provider's scopes count: read may not write.
    let response = http
        .post(server.api("/indexes"))
        .bearer_auth(&ed_read)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}
