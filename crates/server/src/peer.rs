//! Who a client address is, for the limits that count per address (the request-rate limits and
//! the failed-login counter).
//!
//! An IPv4 address counts as itself, also when it reaches the server IPv4-mapped over an IPv6
//! socket (`::ffff:192.0.2.1`). An IPv6 address counts as its /64: that is what one subscriber
//! line or one host is usually given (a LAN is a /64), so a client could otherwise take a fresh
//! address from its /64 for every attempt and never meet a per-address limit.

use std::net::{IpAddr, Ipv6Addr};

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
}
