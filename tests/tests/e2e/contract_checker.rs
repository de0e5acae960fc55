//! The harness's contract check itself: it must catch what it exists to catch.

use videovector_tests::contract::Contract;

const JSON: Option<&str> = Some("application/json");

#[test]
fn a_conforming_page_passes_and_names_its_operation() {
    let verdict = Contract::committed().check(
        "GET",
        "/api/v2/indexes",
        200,
        JSON,
        None,
        br#"{"items": []}"#,
    );
    assert_eq!(verdict, Ok(Some("index_list".to_string())));
}

#[test]
fn a_null_in_a_non_nullable_field_is_caught_with_its_pointer() {
    let verdict = Contract::committed().check(
        "GET",
        "/api/v2/indexes",
        200,
        JSON,
        None,
        br#"{"items": [], "next_cursor": null}"#,
    );
    let message = verdict.unwrap_err();
    for part in ["index_list", "200", "`/next_cursor`", "null"] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
}

#[test]
fn an_undeclared_status_is_caught() {
    let message = Contract::committed()
        .check("GET", "/api/v2/indexes", 418, JSON, None, b"{}")
        .unwrap_err();
    assert!(
        message.contains("index_list") && message.contains("418"),
        "{message}"
    );
}

#[test]
fn a_wrong_content_type_or_a_mismatched_problem_status_is_caught() {
    let contract = Contract::committed();
    let problem = br#"{"type": "urn:videovector:problem:not_found", "title": "Not Found",
        "status": 404, "detail": "no", "code": "not_found"}"#;
    assert!(contract
        .check("GET", "/api/v2/indexes/idx_x", 404, JSON, None, problem)
        .is_err());
    assert!(contract
        .check(
            "GET",
            "/api/v2/indexes/idx_x",
            403,
            Some("application/problem+json"),
            None,
            problem
        )
        .is_err());
    assert_eq!(
        contract.check(
            "GET",
            "/api/v2/indexes/idx_x",
            404,
            Some("application/problem+json"),
            None,
            problem
        ),
        Ok(Some("index_view".to_string()))
    );
}

#[test]
fn an_undeclared_method_must_answer_405_with_allow() {
    let contract = Contract::committed();
    let problem = br#"{"type": "urn:videovector:problem:method_not_allowed",
        "title": "Method Not Allowed", "status": 405, "detail": "no", "code": "method_not_allowed"}"#;
    let ct = Some("application/problem+json");
    assert!(contract
        .check("PUT", "/api/v2/indexes", 405, ct, None, problem)
        .is_err());
    assert_eq!(
        contract.check(
            "PUT",
            "/api/v2/indexes",
            405,
            ct,
            Some("GET, POST"),
            problem
        ),
        Ok(None)
    );
    assert!(contract
        .check(
            "PUT",
            "/api/v2/indexes",
            404,
            ct,
            Some("GET, POST"),
            problem
        )
        .is_err());
}

#[test]
fn rate_limit_headers_are_held_to_their_declarations() {
    use poem::http::{HeaderMap, HeaderValue};
    let contract = Contract::committed();
    // Every answer names its request.
    let with = |pairs: &[(&'static str, &'static str)]| {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("req_1"));
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    };
    let good = with(&[
        (
            "ratelimit-policy",
            "\"read_per_second\";q=100;w=1, \"daily\";q=5000;w=86400",
        ),
        ("ratelimit", "\"daily\";r=4;t=30"),
    ]);
    assert_eq!(contract.check_headers("index_list", 200, &good), Ok(()));
    let refused = with(&[("ratelimit", "\"daily\";r=0;t=30"), ("retry-after", "30")]);
    assert_eq!(contract.check_headers("index_list", 429, &refused), Ok(()));
    for (status, bad, part) in [
        (
            200,
            with(&[("ratelimit", "daily;r=4")]),
            "`RateLimit: daily;r=4`",
        ),
        (
            200,
            with(&[("ratelimit-policy", "\"Daily\";q=1;w=1")]),
            "RateLimit-Policy",
        ),
        (429, with(&[("retry-after", "soon")]), "not an integer"),
        (429, with(&[("retry-after", "0")]), "Retry-After"),
        // A 401 is given before the credential is known: no limits to tell.
        (
            401,
            with(&[("ratelimit", "\"daily\";r=4;t=30")]),
            "not declared",
        ),
    ] {
        let message = contract
            .check_headers("index_list", status, &bad)
            .unwrap_err();
        assert!(message.contains(part), "{part} missing from: {message}");
    }
    // Public operations are not counted, so declare no limits.
    assert!(contract.check_headers("token_create", 200, &good).is_err());
    // The request id is required on every answer, and held to its pattern.
    let mut unnamed = good.clone();
    unnamed.remove("x-request-id");
    let message = contract
        .check_headers("index_list", 200, &unnamed)
        .unwrap_err();
    assert!(message.contains("X-Request-Id"), "{message}");
    let mut odd = good.clone();
    odd.insert("x-request-id", HeaderValue::from_static("has space"));
    assert!(contract.check_headers("index_list", 200, &odd).is_err());
}
