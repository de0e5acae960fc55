//! The client's address: the peer's, unless the peer is a configured trusted proxy, in
//! which case the address that proxy says it forwarded for (`X-Forwarded-For`, else
//! `Forwarded: for=`).
//!
//! Forwarding headers are honoured only from trusted proxies: anyone else could write any
//! address there and walk out of a per-address limit. Behind a chain of proxies the list is
//! read from the right, skipping trusted proxies, and the first address that is not one is
//! the client (what each proxy appended is all that can be believed). Without the setting,
//! every login behind a reverse proxy would share the proxy's address, and one client's
//! failures would count against all.
//!
//! The address travels in the request's data as [`ClientAddress`], for the operations and
//! limits that need it.

use std::net::{IpAddr, Ipv6Addr};

use poem::{http::HeaderMap, Endpoint, IntoResponse, Request, Response};
pub use videovector_api_spec::security::ClientAddress;

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`; a bare address is
/// a network of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    base: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    pub fn parse(text: &str) -> anyhow::Result<IpNetwork> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let base: IpAddr = address
            .parse()
            .map_err(|_| anyhow::anyhow!("`{text}` is not an IP address or network"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| anyhow::anyhow!("`{text}`: the prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(IpNetwork { base, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.base, canonical(address)) {
            (IpAddr::V4(base), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(base) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(base) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNetwork>);

impl TrustedProxies {
    /// From the `trusted_proxies` setting.
    pub fn from_config(networks: &[String]) -> anyhow::Result<TrustedProxies> {
        networks
            .iter()
            .map(|n| IpNetwork::parse(n).map_err(|e| anyhow::anyhow!("trusted_proxies: {e}")))
            .collect::<anyhow::Result<_>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(address))
    }

    /// The client of a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut forwarded = forwarded_for(headers);
        // Read from the right: the nearest hop first.
        while let Some(hop) = forwarded.pop() {
            if !self.trusts(hop) {
                return hop;
            }
        }
        peer
    }
}

/// The addresses the forwarding headers name, nearest hop last: `X-Forwarded-For` when
/// present, else `Forwarded`'s `for=`. An entry that does not parse ends the list there:
/// what lies left of it cannot be read in order.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let mut hops = Vec::new();
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let entries: Vec<String> = if !xff.is_empty() {
        xff.iter().map(|s| s.trim().to_string()).collect()
    } else {
        headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| value.trim().trim_matches('"').to_string())
                })
            })
            .collect()
    };
    for entry in entries.iter().rev() {
        match parse_node(entry) {
            Some(address) => hops.push(canonical(address)),
            None => break,
        }
    }
    hops.reverse();
    hops
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:5678`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest
            .split_once(']')?
            .0
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6);
    }
    node.rsplit_once(':')?.0.parse().ok()
}

/// The key a client's attempts are counted under: its address, or for IPv6 its /64 (one
/// subscriber holds a whole /64 and can use any address in it).
pub fn limit_key(address: IpAddr) -> String {
    match canonical(address) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", Ipv6Addr::from(network))
        }
    }
}

/// The middleware: puts the request's [`ClientAddress`] in its data.
pub async fn find_client<E: Endpoint>(
    next: E,
    mut req: Request,
    trusted: std::sync::Arc<TrustedProxies>,
) -> poem::Result<Response> {
    if let Some(peer) = req.remote_addr().as_socket_addr().map(|a| a.ip()) {
        let client = trusted.client(peer, req.headers());
        req.set_data(ClientAddress(client));
    }
    next.call(req).await.map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn networks_parse_and_contain() {
        let net = IpNetwork::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        let v6 = IpNetwork::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(IpNetwork::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("8.8.8.8")));
        assert!(IpNetwork::parse("127.0.0.1")
            .unwrap()
            .contains(ip("127.0.0.1")));
        for bad in ["10.0.0.0/33", "nonsense", "::/129", "10.0.0.0/x", ""] {
            assert!(IpNetwork::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            none.client(ip("198.51.100.1"), &spoofed),
            ip("198.51.100.1")
        );

        let trusted = TrustedProxies::from_config(&["10.0.0.0/8".into()]).unwrap();
        // The rightmost address that is not a trusted proxy: the client may put anything
        // to its left.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &chain), ip("203.0.113.9"));
        let two_headers = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.10"),
        ]);
        assert_eq!(
            trusted.client(ip("10.0.0.2"), &two_headers),
            ip("203.0.113.10")
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(
            trusted.client(ip("10.0.0.2"), &forwarded),
            ip("2001:db8:cafe::17")
        );
        // Nothing usable: the proxy itself.
        let garbage = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &garbage), ip("10.0.0.2"));
        assert_eq!(
            trusted.client(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(limit_key(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }
}
