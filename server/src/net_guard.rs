//! Outbound HTTP to user-supplied URLs (connector files, webhook endpoints): only `http` and
//! `https`, no redirects, and no private, loopback, link-local or otherwise non-public
//! address unless configuration allows it. The host is resolved once and the connection
//! pinned to the checked address, so DNS cannot swap in another one.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use reqwest::Url;

/// An error with its causes, for messages users read ("error sending request ...: client
/// error (Connect): tcp connect error: Connection refused").
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A parsed target URL, or why it is refused.
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(format!("`{url}` must use http or https"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("`{url}` has no host"))?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        if !allow_private && !is_public(ip) {
            return Err(format!(
                "`{url}` points at a non-public address, which this server does not allow"
            ));
        }
    }
    if !allow_private
        && (literal.eq_ignore_ascii_case("localhost") || literal.ends_with(".localhost"))
    {
        return Err(format!(
            "`{url}` points at a non-public address, which this server does not allow"
        ));
    }
    Ok(parsed)
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A client for one checked URL: resolved now, every address checked, pinned to the first.
pub async fn client_for(
    url: &Url,
    allow_private: bool,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let host = url.host_str().ok_or("the URL has no host")?.to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| format!("`{host}` has no address"))?;
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(format!(
            "`{host}` resolves to a non-public address, which this server does not allow"
        ));
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .resolve(&lookup_host, first)
        .build()
        .map_err(|e| format!("building an HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/x",
            "http://192.168.0.1/x",
            "http://169.254.169.254/latest",
            "http://[::1]/x",
            "http://localhost:8080/x",
            "http://100.64.0.1/x",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(check_url("ftp://example.com/x", true).is_err());
        assert!(check_url("https://example.com/captions.vtt", false).is_ok());
        assert!(is_public("8.8.8.8".parse().unwrap()));
        assert!(!is_public("::ffff:127.0.0.1".parse().unwrap()));
    }
}
