//! Swagger UI at `/docs` (vendored assets, no network) showing the committed spec served at
//! `/api/v2/openapi.json`.

use std::sync::Arc;

use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path, Redirect},
    IntoResponse, Response,
};
use videovector_api_spec::COMMITTED_SPEC;

pub const SPEC_PATH: &str = "/api/v2/openapi.json";

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
