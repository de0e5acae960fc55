//! Swagger UI at `/docs` (vendored assets, no network) showing the committed spec served at
//! `/api/v2/openapi.json`, under the site's security headers: it shares the origin of the
//! API and of the docs site, so it may load and call only what this server serves, may not
//! be framed (clickjacking of Authorize and Try it out), and its files are never sniffed.

use std::sync::Arc;

use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path, Redirect},
    IntoResponse, Response,
};
use videovector_api_spec::COMMITTED_SPEC;

pub const SPEC_PATH: &str = "/api/v2/openapi.json";

/// Swagger UI's scripts and styles are files of its own (no inline script); React sets
/// styles through the DOM, and its own stylesheet rules need `'unsafe-inline'` for styles
/// only. Its icons are `data:` images.
pub const SWAGGER_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[handler]
pub fn openapi_json() -> Response {
    Response::builder()
        .content_type("application/json")
        .body(COMMITTED_SPEC)
}

pub fn swagger_config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    Arc::new(
        utoipa_swagger_ui::Config::new([SPEC_PATH])
            .persist_authorization(true)
            .try_it_out_enabled(true),
    )
}

#[handler]
pub fn docs_root() -> Redirect {
    Redirect::see_other("/docs/")
}

fn serve_docs(tail: &str, config: &Arc<utoipa_swagger_ui::Config<'static>>) -> Response {
    match utoipa_swagger_ui::serve(tail, config.clone()) {
        Ok(Some(file)) => Response::builder()
            .content_type(file.content_type)
            .header("X-Content-Type-Options", "nosniff")
            .header("Content-Security-Policy", SWAGGER_CONTENT_SECURITY_POLICY)
            .header("X-Frame-Options", "DENY")
            .body(file.bytes.into_owned()),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "serving Swagger UI");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[handler]
pub fn docs_file(
    Path(tail): Path<String>,
    config: Data<&Arc<utoipa_swagger_ui::Config<'static>>>,
) -> Response {
    serve_docs(&tail, config.0)
}

#[handler]
pub fn docs_index(config: Data<&Arc<utoipa_swagger_ui::Config<'static>>>) -> Response {
    serve_docs("", config.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_spec_is_served_under_the_base_path() {
        let base = videovector_api_spec::spec::BASE_PATH;
        assert_eq!(super::SPEC_PATH, format!("{base}/openapi.json"));
    }
}
