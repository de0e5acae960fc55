//! Login limits a stranger cannot turn against an operator (the review's finding 8: ten
//! wrong passwords from one address kept the operator out from every other for 15
//! minutes, and behind a proxy every login shared one address), and fairness under a flood
//! (finding 10: 300 bad logins at once delayed a good one by 8.3 s). Clients are told apart
//! by `X-Forwarded-For`, honoured because the test's own address is a trusted proxy.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use videovector_tests::TestServer;

const OPERATOR: &str = "bootstrap@example.com";
const PASSWORD: &str = "bootstrap-password";

/// A server that believes the forwarding headers of 127.0.0.1 (the tests' own address).
async fn behind_a_proxy() -> TestServer {
    TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.login_max_failures = 10;
    })
    .await
}

/// A login for `email` from `client` (as the proxy says); its status and how long it took.
async fn login(
    server: &TestServer,
    email: &str,
    password: &str,
    client: &str,
) -> (StatusCode, Duration) {
    let started = Instant::now();
    let status = reqwest::Client::new()
        .post(server.api("/auth/token"))
        .header("x-forwarded-for", client)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .status();
    (status, started.elapsed())
}

#[tokio::test]
async fn a_strangers_failures_never_lock_the_operator_out_from_elsewhere() {
    let server = behind_a_proxy().await;
    for _ in 0..10 {
        let (status, _) = login(&server, OPERATOR, "wrong", "203.0.113.7").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // That address is held to its limit, even with the right password...
    let (status, _) = login(&server, OPERATOR, PASSWORD, "203.0.113.7").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...another is not: slowed down past the limit, never refused.
    let (status, took) = login(&server, OPERATOR, PASSWORD, "198.51.100.9").await;
    assert_eq!(status, StatusCode::OK, "after {took:?}");
    // The operator's success forgets the email's failures: no more slowing down.
    let (status, took) = login(&server, OPERATOR, PASSWORD, "198.51.100.10").await;
    assert_eq!(status, StatusCode::OK);
    assert!(took < Duration::from_secs(3), "{took:?}");
    // IPv6 clients are counted by their /64: another address in it is the same client.
    for i in 0..10 {
        let (status, _) = login(&server, OPERATOR, "wrong", &format!("2001:db8:7:7::{i:x}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = login(&server, OPERATOR, PASSWORD, "2001:db8:7:7::ffff").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    server.stop().await;
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    // No trusted proxy: the header is anyone's to write, so it is ignored.
    let server = TestServer::start_with(|c| c.login_max_failures = 3).await;
    for i in 0..3 {
        let (status, _) = login(&server, OPERATOR, "wrong", &format!("203.0.113.{i}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = login(&server, OPERATOR, PASSWORD, "203.0.113.200").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a spoofed header walked out of the limit"
    );
    server.stop().await;
}

/// One address trying many emails is held to a limit of its own.
#[tokio::test]
async fn one_address_trying_many_emails_is_held_to_its_limit() {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.login_max_failures_per_client = 5;
    })
    .await;
    for i in 0..5 {
        let (status, _) = login(
            &server,
            &format!("nobody{i}@example.com"),
            "x",
            "203.0.113.50",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = login(&server, OPERATOR, PASSWORD, "203.0.113.50").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = login(&server, OPERATOR, PASSWORD, "203.0.113.51").await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// 300 bad logins at once from 300 addresses, for made-up emails and for the operator
/// itself; meanwhile the operator logs in from where they did before, and another operator
/// logs in from a new address. Both get in quickly; before, each waited for the argon2
/// checks of the whole flood, one core at a time. (The flood against the operator is still
/// being slowed down when the test ends.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_logins_does_not_starve_good_ones() {
    let server = behind_a_proxy().await;
    let other = server.org(true).await;
    let (status, _) = login(&server, OPERATOR, PASSWORD, "198.51.100.1").await;
    assert_eq!(status, StatusCode::OK);

    let http = reqwest::Client::new();
    let flood: Vec<_> = (0..300u32)
        .map(|i| {
            let email = if i % 2 == 0 {
                format!("made-up-{i}@example.com")
            } else {
                OPERATOR.to_string()
            };
            let request = http
                .post(server.api("/auth/token"))
                .header("x-forwarded-for", format!("10.0.{}.{}", i / 256, i % 256))
                .json(&json!({ "email": email, "password": "wrong" }));
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (known, known_took) = login(&server, OPERATOR, PASSWORD, "198.51.100.1").await;
    let (fresh, fresh_took) = login(
        &server,
        &other.operator.email,
        &other.password,
        "192.0.2.77",
    )
    .await;
    println!(
        "login flood of 300: the known operator got in after {known_took:.2?}, another \
         operator from a new address after {fresh_took:.2?}"
    );
    assert_eq!(known, StatusCode::OK);
    assert_eq!(fresh, StatusCode::OK);
    assert!(known_took < Duration::from_secs(3), "{known_took:?}");
    assert!(fresh_took < Duration::from_secs(3), "{fresh_took:?}");
    // What the flood got so far: refusals, never a server error.
    let mut answered = Vec::new();
    for attempt in flood {
        if attempt.is_finished() {
            if let Ok(Ok(status)) = attempt.await {
                answered.push(status);
            }
        } else {
            attempt.abort();
        }
    }
    assert!(
        answered
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{answered:?}"
    );
    server.stop().await;
}
