//! Request ids (issue 24): every answer carries `X-Request-Id` (the contract checker also
//! requires it on every answer of every test, as the spec declares it required); a caller's
//! well-formed id is kept and a hostile one replaced, never echoed; every problem names the
//! id in `request_id`, unrouted paths and methods included; each request gets its own.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;
use videovector_api_spec::Scope;
use videovector_tests::TestServer;

fn id_of(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn every_answer_names_its_request_and_problems_repeat_it() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let http = reqwest::Client::new();
    let mut seen = BTreeSet::new();
    for request in [
        http.get(format!("{}/healthz", server.url())),
        http.get(server.api("/indexes")).bearer_auth(&admin),
        http.get(server.api("/indexes")),
        http.get(server.api("/nowhere")).bearer_auth(&admin),
        http.put(server.api("/indexes")).bearer_auth(&admin),
        http.post(server.api("/indexes"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body("{"),
    ] {
        let response = request.send().await.unwrap();
        let id = id_of(&response);
        assert!(id.starts_with("req_"), "{id}");
        assert!(seen.insert(id.clone()), "{id} given twice");
        let is_problem = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json");
        let status = response.status();
        if is_problem {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["request_id"], id.as_str(), "{status}: {body}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_callers_id_is_kept_when_well_formed_and_replaced_otherwise() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let send = |id: &str| {
        http.get(server.api("/indexes"))
            .header("X-Request-Id", id)
            .send()
    };
    for kept in [
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "Root=1-67891233-abcdef012345678912345678",
    ] {
        let response = send(kept).await.unwrap();
        assert_eq!(id_of(&response), kept);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["request_id"], kept, "{body}");
    }
    let long = "x".repeat(201);
    for hostile in ["has space", "<script>", "a\"b", long.as_str()] {
        let response = send(hostile).await.unwrap();
        let id = id_of(&response);
        assert!(
            id.starts_with("req_") && id != hostile,
            "{hostile} became {id}"
        );
        let body = response.text().await.unwrap();
        assert!(!body.contains(hostile), "{hostile} echoed in {body}");
    }
    assert_eq!(
        send("ok-id").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}
