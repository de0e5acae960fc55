//! Browser origins: which web pages may use an API key (its `allowed_origins`), and the
//! CORS answers that follow from them.
//!
//! A browser names the page that makes a cross-origin request in `Origin`; a key used from a
//! page whose origin its list does not hold is refused (403 `origin_not_allowed`), and a
//! key without origins cannot be used from any other page at all. A preflight carries no
//! credential, so it cannot be answered from a key's list: it is answered for any origin at
//! a path the API serves, and the request that follows is held to the key's list. Pages
//! served by this server itself (Swagger UI, the docs site) are same-origin and not
//! checked. `Origin` is a guard against other web pages, not a secret: a client that is not
//! a browser sends what it likes.

use poem::http::{HeaderMap, HeaderValue};

/// The headers a cross-origin page may send and read.
pub const ALLOW_HEADERS: &str = "X-API-Key, Content-Type, Idempotency-Key";
pub const EXPOSE_HEADERS: &str =
    "RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed, Location";
/// How long a browser may keep a preflight's answer.
pub const MAX_AGE_SECONDS: &str = "600";

/// One allowed origin: exact (`https://shop.example.com`, `http://localhost:3000`), or
/// every subdomain of a host (`https://*.example.com`). Hosts are names or IPv4 addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigin {
    Exact(String),
    /// The scheme with `://`, and the suffix every host must end with (`.example.com`).
    Subdomains {
        scheme: String,
        suffix: String,
    },
}

impl AllowedOrigin {
    /// `text` as an allowed origin: `http` or `https`, a host, an optional port; no path,
    /// no user, no trailing slash. Hosts are compared lower-case, as browsers send them.
    pub fn parse(text: &str) -> Result<AllowedOrigin, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("an origin is `scheme://host[:port]`, e.g. `https://shop.example.com`")?;
        if scheme != "https" && scheme != "http" {
            return Err("the scheme must be `https` or `http`".into());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        if let Some(port) = port {
            if port.is_empty() || port.len() > 5 || port.parse::<u16>().is_err() {
                return Err(format!("`{port}` is not a port"));
            }
        }
        let wildcard = host.strip_prefix("*.");
        let name = wildcard.unwrap_or(host);
        let valid_name = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !name.starts_with('.')
            && !name.ends_with('.');
        if !valid_name {
            return Err(
                "the host must be lower-case letters, digits, `-` and `.` (no path, no \
                 trailing slash)"
                    .into(),
            );
        }
        Ok(match wildcard {
            Some(domain) if domain.contains('.') => AllowedOrigin::Subdomains {
                scheme: format!("{scheme}://"),
                suffix: format!(
                    ".{domain}{}",
                    port.map(|p| format!(":{p}")).unwrap_or_default()
                ),
            },
            Some(_) => return Err("`*.` must be followed by a domain with a dot".into()),
            None => AllowedOrigin::Exact(text.to_string()),
        })
    }

    /// Whether a page at `origin` (as a browser sends it) is allowed.
    pub fn admits(&self, origin: &str) -> bool {
        match self {
            AllowedOrigin::Exact(exact) => exact == origin,
            AllowedOrigin::Subdomains { scheme, suffix } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|host| host.strip_suffix(suffix.as_str()))
                .is_some_and(|label| !label.is_empty() && !label.contains('/')),
        }
    }
}

/// The `Origin` of a cross-origin request: `None` when there is none, or when it names this
/// server itself (its `Host`), which a page of another site cannot make its browser claim.
pub fn cross_origin(headers: &HeaderMap) -> Option<&str> {
    let origin = headers.get("origin")?.to_str().ok()?;
    let host = headers.get("host").and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, host)| host);
    match (origin_host, host) {
        (Some(origin_host), Some(host)) if origin_host.eq_ignore_ascii_case(host) => None,
        _ => Some(origin),
    }
}

/// The headers that let the page at `origin` read an answer.
pub fn allow(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert("access-control-allow-origin", value);
        headers.insert(
            "access-control-expose-headers",
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    headers.append("vary", HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_strictly_and_match_as_browsers_send_them() {
        let exact = AllowedOrigin::parse("https://shop.example.com").unwrap();
        assert!(exact.admits("https://shop.example.com"));
        assert!(!exact.admits("http://shop.example.com"));
        assert!(!exact.admits("https://shop.example.com:8443"));
        assert!(!exact.admits("https://shop.example.com.evil.test"));
        let local = AllowedOrigin::parse("http://localhost:3000").unwrap();
        assert!(local.admits("http://localhost:3000"));
        let any = AllowedOrigin::parse("https://*.example.com").unwrap();
        assert!(any.admits("https://a.example.com"));
        assert!(any.admits("https://a.b.example.com"));
        assert!(!any.admits("https://example.com"));
        assert!(!any.admits("https://evil-example.com"));
        assert!(!any.admits("https://a.example.com.evil.test"));
        assert!(!any.admits("http://a.example.com"));
        for bad in [
            "shop.example.com",
            "ftp://shop.example.com",
            "https://shop.example.com/",
            "https://shop.example.com/path",
            "https://Shop.example.com",
            "https://shop.example.com:99999",
            "https://shop.example.com:",
            "https://*.com",
            "https://*",
            "https://user@shop.example.com",
            "https://",
            "*",
            "https://shop.example.com\0",
        ] {
            assert!(AllowedOrigin::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_page_of_this_server_is_not_cross_origin() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(cross_origin(&headers), None);
        headers.insert("origin", HeaderValue::from_static("http://127.0.0.1:8080"));
        assert_eq!(cross_origin(&headers), None);
        headers.insert(
            "origin",
            HeaderValue::from_static("https://shop.example.com"),
        );
        assert_eq!(cross_origin(&headers), Some("https://shop.example.com"));
    }
}
