//! Outbound HTTP to user-supplied URLs (connector files, webhook endpoints): only `http` and
//! `https`, no redirects, and no private, loopback, link-local or otherwise non-public
//! address unless configuration allows it. The host is resolved once and the connection
//! pinned to the checked address, so DNS cannot swap in another one.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
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

/// What a refusal of a non-public target adds: how a server for development allows it.
const PRIVATE_TARGETS_HINT: &str = "(for development, the server's operator can allow private \
and loopback targets with VIDEOVECTOR_ALLOW_PRIVATE_TARGETS=true)";

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
                "`{url}` points at a non-public address, which this server does not allow \
                 {PRIVATE_TARGETS_HINT}"
            ));
        }
    }
    if !allow_private
        && (literal.eq_ignore_ascii_case("localhost") || literal.ends_with(".localhost"))
    {
        return Err(format!(
            "`{url}` points at a non-public address, which this server does not allow \
             {PRIVATE_TARGETS_HINT}"
        ));
    }
    Ok(parsed)
}

/// Whether an address is on the public internet: not in any special-use range of the IANA
/// registries, and for an IPv6 address that carries an IPv4 one (IPv4-mapped,
/// IPv4-compatible, NAT64, 6to4, Teredo), the IPv4 address inside is public too.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(inner) => is_public_v4(inner),
            None => !is_special_v6(v6),
        },
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

/// The IPv4 address an IPv6 address carries, for the formats that route to it.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && u32::from(low) > 1)) {
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d; not :: or ::1).
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64, the well-known prefix 64:ff9b::/96.
        return Some(low);
    }
    if s[0] == 0x2002 {
        // 6to4: 2002:a.b.c.d::/48.
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // Teredo: the client's address, inverted, in the last 32 bits.
        return Some(Ipv4Addr::from(!u32::from(low)));
    }
    None
}

/// IPv6 special-use ranges (those that carry IPv4 addresses are decoded before this).
fn is_special_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    v6.is_unspecified()
        || v6.is_loopback()
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 (64:ff9b:1::/48)
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard-only (100::/64)
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments (2001::/23)
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || (s[0] & 0xfff0) == 0x3ff0 // documentation (3fff::/20)
        || s[0] == 0x5f00 // SRv6 SIDs
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || s[..6] == [0; 6] // the rest of ::/96
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
            "`{host}` resolves to a non-public address, which this server does not allow \
             {PRIVATE_TARGETS_HINT}"
        ));
    }
    reqwest::Client::builder()
        // A proxy from `HTTP(S)_PROXY` would connect wherever it likes: the checked,
        // pinned address would mean nothing.
        .no_proxy()
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

    #[test]
    fn embedded_and_special_use_addresses_are_refused() {
        // The review's bypasses, then the rest of the special-use registries.
        for url in [
            "http://[::127.0.0.1]/x",
            "http://[64:ff9b::a9fe:a9fe]/x",
            "http://[2002:7f00:1::]/x",
            "http://[fec0::1]/x",
            "http://198.18.0.1/x",
            "http://240.0.0.1/x",
            // Teredo whose client is 127.0.0.1 (inverted: 80ff:fffe).
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x",
            "http://[::ffff:10.0.0.1]/x",
            "http://[64:ff9b:1::1]/x",
            "http://[100::1]/x",
            "http://[2001:db8::1]/x",
            "http://[3fff::1]/x",
            "http://[fd00::1]/x",
            "http://[ff02::1]/x",
            "http://0.1.2.3/x",
            "http://192.0.0.8/x",
            "http://192.0.2.1/x",
            "http://255.255.255.255/x",
            "http://224.0.0.1/x",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
        }
        // Embedded public addresses, and plain public ones, stay reachable.
        for public in [
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "1.1.1.1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
