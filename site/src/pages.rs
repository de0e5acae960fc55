//! The site's guides: which `docs/*.md` sources become pages, in the order the navigation
//! lists them. The sources are compiled in, so a server binary carries its own docs.

/// One guide page.
pub struct Guide {
    /// The output name without `.html` (and the source name without `.md`).
    pub slug: &'static str,
    /// The navigation label.
    pub title: &'static str,
    /// The Markdown source.
    pub source: &'static str,
}

macro_rules! guides {
    ($($slug:literal => $title:literal),* $(,)?) => {
        /// Every guide, in navigation order; `index` is the home page.
        pub const GUIDES: &[Guide] = &[
            $(Guide {
                slug: $slug,
                title: $title,
                source: include_str!(concat!("../../docs/", $slug, ".md")),
            }),*
        ];
    };
}

guides! {
    "index" => "Overview",
    "quickstart" => "Quickstart",
    "authentication" => "Authentication",
    "api-keys" => "Create and rotate API keys",
    "tenant-tokens" => "Tenant tokens",
    "browser-search" => "Search from a web page",
    "idempotency" => "Idempotency",
    "rate-limits" => "Rate limits and usage",
    "errors" => "Errors",
    "changelog" => "Changelog",
    "sdk-python" => "SDK setup (Python)",
    "rust-client" => "Rust client",
    "mcp" => "MCP setup",
    "search-by-meaning" => "Search by meaning",
    "webhooks" => "Webhooks",
    "audit-log" => "Audit log",
    "secrets-at-rest" => "Secrets at rest",
    "deployment" => "Deployment",
    "operations" => "Operations",
    "performance" => "Performance",
    "adding-an-endpoint" => "Adding an endpoint",
}

/// Sources under `docs/` that are deliberately not pages: the Markdown reference, for
/// readers of the repository (the site renders its own from the spec).
pub const NOT_PAGES: &[&str] = &["reference"];
