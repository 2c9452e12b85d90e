//! The SSRF guard: crawled links must never make leakwatch reach its own network.
//!
//! A hostile page can link to `http://127.0.0.1:15672/` or `http://169.254.169.254/`; a hostile
//! DNS name can resolve to either. The check is made on the *resolved* address, right before
//! connecting, and the connection goes to exactly the address that was checked (no second
//! lookup that a rebinding DNS server could answer differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is an address a crawler must not reach from a crawled link: loopback,
/// private, link-local, shared (CGNAT), unspecified, multicast, broadcast, documentation or
/// unique-local, including IPv4 addresses wrapped in IPv6.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_non_public(v4),
        IpAddr::V6(v6) => v6_non_public(v6),
    }
}

fn v4_non_public(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 shared address space
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || o[0] >= 240 // reserved
}

fn v6_non_public(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_non_public(v4);
    }
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    // 6to4 (2002::/16) carries the IPv4 address of its relay in bits 16..48.
    if s[0] == 0x2002 && v4_non_public(v4(s[1], s[2])) {
        return true;
    }
    // Teredo (2001:0::/32) carries a server address and the client's, the latter inverted.
    if s[0] == 0x2001
        && s[1] == 0
        && (v4_non_public(v4(s[2], s[3])) || v4_non_public(v4(!s[6], !s[7])))
    {
        return true;
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 can reach private v4
        || (s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_internal_addresses() {
        for a in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::1",                       // 6to4 around 127.0.0.1
            "2002:a9fe:a9fe::",                     // 6to4 around 169.254.169.254
            "2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo, client 10.0.0.1
            "2001:0:a00:1::1",                      // Teredo, server 10.0.0.1
        ] {
            assert!(is_non_public(ip(a)), "{a} should be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "2002:0808:0808::1",                    // 6to4 around 8.8.8.8
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo, client 8.8.8.8
        ] {
            assert!(!is_non_public(ip(a)), "{a} should be allowed");
        }
    }
}
