//! The docs site at `/`: the guides, the API reference and the contract, built once at
//! start from the compiled-in sources (`videovector-site`), the same files
//! `videovector-codegen site <dir>` writes for a static host. Swagger UI stays at `/docs`.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use poem::{get, handler, http::StatusCode, web::Data, IntoResponse, Request, Response, Route};

/// The built site's files by URL path (`/`, `/reference.html`, ...).
pub struct SiteFiles(HashMap<String, (&'static str, Bytes)>);

/// The pages may load only what the site itself serves.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'";

impl SiteFiles {
    pub fn build() -> anyhow::Result<Arc<Self>> {
        let site = videovector_site::build_committed()?;
        let mut files = HashMap::new();
        for file in site.files {
            let body = Bytes::from(file.bytes);
            if file.path == "index.html" {
                files.insert("/".to_string(), (file.content_type, body.clone()));
            }
            files.insert(format!("/{}", file.path), (file.content_type, body));
        }
        Ok(Arc::new(Self(files)))
    }

    /// A route for every file of the site (and `/` for the home page).
    pub fn mount(&self, mut routes: Route) -> Route {
        for path in self.0.keys() {
            routes = routes.at(path, get(site_file));
        }
        routes
    }
}

#[handler]
fn site_file(req: &Request, site: Data<&Arc<SiteFiles>>) -> Response {
    match site.0 .0.get(req.uri().path()) {
        Some((content_type, body)) => Response::builder()
            .content_type(*content_type)
            .header("X-Content-Type-Options", "nosniff")
            .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            .header("Cache-Control", "no-cache")
            .body(body.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
