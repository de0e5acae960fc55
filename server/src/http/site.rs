//! The docs site at `/`: the guides, the API reference and the contract, built once at
//! start from the compiled-in sources (`videovector-site`), the same files
//! `videovector-codegen site <dir>` writes for a static host. Swagger UI stays at `/docs`.

use bytes::Bytes;
use poem::{endpoint::make_sync, get, Response, Route};

/// The pages may load only what the site itself serves.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'";

/// Adds a route for every file of the site (and `/` for the home page) to `routes`; any
/// other path stays unrouted (404).
pub fn mount(mut routes: Route) -> anyhow::Result<Route> {
    for file in videovector_site::build_committed()?.files {
        let content_type = file.content_type;
        let body = Bytes::from(file.bytes);
        let path = if file.path == "index.html" {
            routes = routes.at("/", get(serve(content_type, body.clone())));
            "/index.html".to_string()
        } else {
            format!("/{}", file.path)
        };
        routes = routes.at(path, get(serve(content_type, body)));
    }
    Ok(routes)
}

fn serve(
    content_type: &'static str,
    body: Bytes,
) -> impl poem::Endpoint<Output = Response> + 'static {
    make_sync(move |_| {
        Response::builder()
            .content_type(content_type)
            .header("X-Content-Type-Options", "nosniff")
            .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            .header("Cache-Control", "no-cache")
            .body(body.clone())
    })
}
