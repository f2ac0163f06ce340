//! Who a client address is, for the limits that count per address (the request-rate limits and
//! the failed-login counter).
//!
//! An IPv4 address counts as itself, also when it reaches the server IPv4-mapped over an IPv6
//! socket (`::ffff:192.0.2.1`). An IPv6 address counts as its /64: that is what one subscriber
//! line or one host is usually given (a LAN is a /64), so a client could otherwise take a fresh
//! address from its /64 for every attempt and never meet a per-address limit.

//!
//! Behind a reverse proxy every caller has the proxy's address. The proxies named in
//! `trusted_proxies` are believed about who their caller was ([`TrustedProxies`]): the
//! `X-Forwarded-For` header they append to. Nobody else's is read, so a caller reaching the
//! server directly cannot choose the address it is counted under.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The text that identifies `ip` for per-address limits: `192.0.2.1`, or `2001:db8:1:2::/64`.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` names the client (`trusted_proxies`): none by
/// default.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it is, as peers are
/// compared in their canonical form.
fn canonical(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        _ => net,
    }
}

/// The most `X-Forwarded-For` entries read, from the right: more proxies than this in a row is
/// no deployment, and the walk stays short whatever a header holds.
const MOST_HOPS: usize = 32;

impl TrustedProxies {
    /// Parses `entries`, each an address (`10.0.0.7`) or a network (`10.0.0.0/8`,
    /// `fd00::/8`); the error names the entry that is neither.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut nets = Vec::with_capacity(entries.len());
        for e in entries {
            let net = match e.parse::<IpNet>() {
                Ok(net) => canonical(net.trunc()),
                Err(_) => match e.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip.to_canonical()),
                    Err(_) => {
                        return Err(format!(
                            "{e:?} is neither an address nor a network such as 10.0.0.0/8"
                        ))
                    }
                },
            };
            nets.push(net);
        }
        Ok(Self(nets.into()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a network is wider than a /8 (`0.0.0.0/0`, `0.0.0.0/1`, `::/0`): that is no
    /// proxy's address but a part of the internet, whose callers could then choose their own
    /// address; the server must only be reachable through the proxies then.
    pub fn trusts_a_wide_network(&self) -> bool {
        self.0.iter().any(|n| n.prefix_len() < 8)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The address the request from `peer` counts under: `peer` itself unless it is a trusted
    /// proxy. From a trusted proxy, `X-Forwarded-For` is read from the right (each proxy
    /// appends the address it was reached from), past every trusted proxy, to the first address
    /// that is not one: the client as the outermost trusted proxy saw it. An entry that is not
    /// an address (bytes that are not text included) stops the walk at the proxy that wrote it.
    /// What a caller put in the header itself lies to the left of that and is never read.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.0.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let mut hops = 0;
        // Several header lines are one list, in order (RFC 9110 §5.3).
        for line in headers.get_all("x-forwarded-for").iter().rev() {
            // Split as bytes: a line the caller began with bytes that are not text still ends
            // with the entry its proxy appended.
            for entry in line.as_bytes().rsplit(|b| *b == b',') {
                hops += 1;
                if hops > MOST_HOPS {
                    return client;
                }
                let parsed = std::str::from_utf8(entry)
                    .ok()
                    .and_then(|e| e.trim().parse::<IpAddr>().ok());
                let Some(ip) = parsed else {
                    return client;
                };
                client = ip.to_canonical();
                if !self.trusts(client) {
                    return client;
                }
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_ipv4_as_itself() {
        assert_eq!(address_key(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(address_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(address_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(address_key(ip("::1")), "::/64");
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_ne!(address_key(ip("192.0.2.1")), address_key(ip("192.0.2.2")));
    }

    #[test]
    fn the_rate_limits_key_addresses_the_same_way() {
        use crate::rate_limit::ip_key;
        assert_eq!(
            ip_key(ip("2001:db8:1:2::1")),
            ip_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(ip_key(ip("2001:db8:1:2::1")), ip_key(ip("2001:db8:1:3::1")));
        assert_eq!(ip_key(ip("::ffff:192.0.2.1")), ip_key(ip("192.0.2.1")));
        assert_ne!(ip_key(ip("192.0.2.1")), ip_key(ip("192.0.2.2")));
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        TrustedProxies::parse(&entries).unwrap()
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", l.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let none = TrustedProxies::default();
        let caddy = proxies(&["10.0.0.0/8"]);
        let h = forwarded(&["203.0.113.9"]);
        // Nothing trusted (the default), or a peer that is no proxy: the header is ignored.
        assert_eq!(none.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        assert_eq!(caddy.client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        // From the proxy: the address it appended.
        assert_eq!(caddy.client(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        assert_eq!(
            caddy.client(ip("::ffff:10.0.0.2"), &h),
            ip("203.0.113.9"),
            "an IPv4-mapped peer is its IPv4 address"
        );
        // No header from the proxy: the proxy itself.
        assert_eq!(
            caddy.client(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn what_the_caller_wrote_itself_is_never_read() {
        let caddy = proxies(&["10.0.0.0/8", "fd00::/8"]);
        // The caller sent `X-Forwarded-For: 192.0.2.1, 10.0.0.9`; the proxy appended the
        // caller's real address: everything left of it is the caller's own text.
        let h = forwarded(&["192.0.2.1, 10.0.0.9, 198.51.100.7"]);
        assert_eq!(caddy.client(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Two trusted proxies in a row, in one line or two: past both.
        let h = forwarded(&["192.0.2.1, 198.51.100.7, 10.1.1.1"]);
        assert_eq!(caddy.client(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        let h = forwarded(&["192.0.2.1, 198.51.100.7", "fd00::5"]);
        assert_eq!(caddy.client(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Bytes that are not text in the caller's part do not hide what the proxy appended.
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.7").unwrap(),
        );
        assert_eq!(caddy.client(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Garbage where the proxy wrote: the proxy that wrote it.
        for bad in ["unknown", "", "198.51.100.7:443", "not an address"] {
            let h = forwarded(&[&format!("192.0.2.1, {bad}")]);
            assert_eq!(caddy.client(ip("10.0.0.2"), &h), ip("10.0.0.2"), "{bad:?}");
            let h = forwarded(&[&format!("192.0.2.1, {bad}, 10.3.3.3")]);
            assert_eq!(caddy.client(ip("10.0.0.2"), &h), ip("10.3.3.3"), "{bad:?}");
        }
        // Every entry trusted: the first.
        let h = forwarded(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(caddy.client(ip("10.0.0.2"), &h), ip("10.9.9.9"));
        // A walk through thousands of trusted entries stops after a few.
        let long = vec!["10.1.1.1"; 5000].join(",");
        let h = forwarded(&[&long]);
        assert_eq!(caddy.client(ip("10.0.0.2"), &h), ip("10.1.1.1"));
    }

    #[test]
    fn entries_are_addresses_or_networks() {
        let p = proxies(&[
            "10.0.0.7",
            "192.168.0.0/16",
            "2001:db8::/32",
            "::ffff:172.16.0.1",
            "::ffff:127.0.0.0/104",
        ]);
        assert!(
            p.trusts(ip("127.0.0.9")),
            "a mapped network is its IPv4 network"
        );
        assert!(p.trusts(ip("10.0.0.7")));
        assert!(!p.trusts(ip("10.0.0.8")));
        assert!(p.trusts(ip("192.168.44.1")));
        assert!(p.trusts(ip("2001:db8:5::1")));
        assert!(p.trusts(ip("172.16.0.1")));
        assert!(!p.trusts_a_wide_network());
        for wide in [
            &["0.0.0.0/0"][..],
            &["0.0.0.0/1", "128.0.0.0/1"],
            &["::/0"],
            &["8.0.0.0/7"],
        ] {
            assert!(proxies(wide).trusts_a_wide_network(), "{wide:?}");
        }
        assert!(!proxies(&["10.0.0.0/8", "fd00::/8"]).trusts_a_wide_network());
        for bad in ["10.0.0.0/33", "example.com", "10.0.0", ""] {
            let err = TrustedProxies::parse(&[bad.to_owned()]).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
