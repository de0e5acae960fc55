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
