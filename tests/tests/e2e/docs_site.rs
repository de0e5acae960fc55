//! The docs site at `/`: every guide, the reference (a section per operation of the
//! committed spec), the contract as the one downloadable copy, the search index, and the
//! headers that keep the pages to what the site serves; Swagger UI stays at `/docs`; paths
//! the site does not have are 404s, whatever their spelling.

use reqwest::StatusCode;
use videovector_api_spec::{contract::Contract, COMMITTED_SPEC};
use videovector_tests::TestServer;

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).send().await.unwrap()
}

#[tokio::test]
async fn the_site_is_served_at_the_root_with_every_guide_and_operation() {
    let server = TestServer::start().await;
    let base = server.url();

    let home = get(&format!("{base}/")).await;
    assert_eq!(home.status(), StatusCode::OK);
    let headers = home.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'self'"));
    let home = home.text().await.unwrap();
    assert!(home.contains(r#"<input id="search-input""#), "{home}");

    for guide in videovector_site::pages::GUIDES {
        let page = get(&format!("{base}/{}.html", guide.slug)).await;
        assert_eq!(page.status(), StatusCode::OK, "{}", guide.slug);
        let text = page.text().await.unwrap();
        let main = &text[text.find("<main").expect("a main element")..];
        assert!(main.contains("<h1 id="), "{}", guide.slug);
    }

    for op in Contract::committed().operations() {
        let rule = &op.rule;
        let page = format!(
            "reference-{}.html",
            videovector_site::markdown::slug(op.tag().unwrap())
        );
        let reference = get(&format!("{base}/{page}")).await.text().await.unwrap();
        let section = format!(r#"<section class="operation" id="{}">"#, rule.operation_id);
        let at = reference
            .find(&section)
            .unwrap_or_else(|| panic!("{}", rule.operation_id));
        let facts = &reference[at..at + reference[at..].find("</dl>").unwrap()];
        if let Some(scope) = rule.required_scope {
            assert!(
                facts.contains(&format!("<code>{scope}</code> or higher")),
                "{facts}"
            );
        }
        let idempotency = if rule.idempotent {
            "accepted"
        } else {
            "not accepted"
        };
        assert!(
            facts.contains(&format!("<dt>Idempotency-Key</dt><dd>{idempotency}")),
            "{facts}"
        );
    }

    for path in ["/openapi.json", "/api/v2/openapi.json"] {
        let spec = get(&format!("{base}{path}")).await;
        assert_eq!(spec.headers()["content-type"], "application/json");
        assert_eq!(spec.text().await.unwrap(), COMMITTED_SPEC, "{path}");
    }
    let index = get(&format!("{base}/assets/search-index.js"))
        .await
        .text()
        .await
        .unwrap();
    assert!(index.contains(r#""u":"reference-search.html#index_search""#));
    assert!(index.contains(r#""u":"api-keys.html""#));

    // Swagger UI shares the origin: the same kind of headers (the review saw none).
    for file in [
        "/docs/",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let swagger = get(&format!("{base}{file}")).await;
        assert_eq!(swagger.status(), StatusCode::OK, "{file}");
        let headers = swagger.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{file}");
        assert_eq!(headers["x-frame-options"], "DENY", "{file}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.starts_with("default-src 'self'"), "{file}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{file}: {policy}"
        );
        assert!(policy.contains("script-src 'self';"), "{file}: {policy}");
    }
    let swagger = get(&format!("{base}/docs/")).await;
    assert!(swagger.text().await.unwrap().contains("swagger"));
    server.stop().await;
}

#[tokio::test]
async fn paths_the_site_does_not_have_are_404s() {
    let server = TestServer::start().await;
    let base = server.url();
    for path in [
        "/nope.html",
        "/index.md",
        "/assets/",
        "/%2e%2e/Cargo.toml",
        "/assets/..%2f..%2fCargo.toml",
        "/index.html%00",
        "/INDEX.HTML",
    ] {
        let answer = get(&format!("{base}{path}")).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let post = reqwest::Client::new()
        .post(format!("{base}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await;
}
