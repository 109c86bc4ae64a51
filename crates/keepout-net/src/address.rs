//! Addresses a sandbox must never reach, whatever name led to them.

use std::net::IpAddr;

/// Why `ip` may not be reached, or `None` when it is a public address that is not this host's.
pub fn forbidden(ip: IpAddr, own: &[IpAddr]) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let class = match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_private() {
                Some("a private address")
            } else if a.is_link_local() {
                Some("link-local")
            } else if a.is_multicast() || a.is_broadcast() {
                Some("multicast or broadcast")
            } else if a.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("carrier-grade NAT (shared) space")
            } else if o[0] >= 240 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified() {
                Some("unspecified")
            } else if a.is_multicast() {
                Some("multicast")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("a unique local (private) address")
            } else if (s[0] & 0xffc0) == 0xfec0 {
                Some("site-local")
            } else {
                None
            }
        }
    };
    class.or_else(|| {
        own.contains(&ip)
            .then_some("one of this host's own addresses")
    })
}

/// This host's own addresses (all interfaces), which a sandbox must not reach through the
/// proxy either: a service bound to the host's LAN address is the maintainer's too.
pub fn own_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .map(|list| list.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let no = |s: &str| forbidden(s.parse().unwrap(), &[]);
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.1.1",
        ] {
            assert!(no(bad).is_some(), "{bad} must be refused");
        }
        for good in ["151.101.0.223", "203.0.113.80", "2a04:4e42::223", "8.8.8.8"] {
            assert_eq!(no(good), None, "{good} is public");
        }
        let me: IpAddr = "151.101.0.223".parse().unwrap();
        assert!(forbidden(me, &[me]).is_some(), "the host's own address");
    }
}
