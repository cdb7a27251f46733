//! Who a request comes from, behind a proxy: the UI's sign-in rate limit and the webhook
//! receiver's throttle count per client address, and behind an Ingress every request's peer is
//! the Ingress controller. Only peers the operator named (`--ui-trusted-proxies`,
//! `--webhook-trusted-proxies`) are believed when they say, in `X-Forwarded-For`, whom they
//! forward: anyone else could name a new address per attempt.

use std::net::IpAddr;

use hyper::HeaderMap;

/// A block of addresses, `10.0.0.0/8` or `fd00::/8` (a bare address is the block of itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDRESS[/PREFIX]`, for `--ui-trusted-proxies` and `--webhook-trusted-proxies`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
        let network: IpAddr = address.parse().map_err(|_| {
            format!(
                "`{text}` is not an address block: expected an IP address and a prefix, like 10.0.0.0/8 or fd00::/8"
            )
        })?;
        let bits = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            "" => bits,
            given => given
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("`{text}`: the prefix must be a number from 0 to {bits}"))?,
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        // An IPv4 peer on an IPv6 socket arrives as ::ffff:a.b.c.d.
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let (network, address, bits) = match (self.network, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)), u128::from(u32::from(a)), 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        let host_bits = bits - u32::from(self.prefix);
        // A /0 matches everything: shifting by the whole width would overflow.
        host_bits == bits || (network >> host_bits) == (address >> host_bits)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        Cidr::parse(text)
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// nearest address in `X-Forwarded-For` that is not one (proxies append the peer they heard
/// from, so addresses left of the last untrusted one are the client's say, not a proxy's).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let trusted_peer = |address: IpAddr| trusted.iter().any(|cidr| cidr.contains(address));
    if !trusted_peer(peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in forwarded.into_iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(address) if trusted_peer(address) => continue,
            Ok(address) => return address,
            // What a proxy would not write: nothing left of it is believed.
            Err(_) => break,
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains(ip("10.1.255.3")) && !block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")), "an IPv4 peer on an IPv6 socket");
        assert!(!block.contains(ip("fd00::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.7")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(Cidr::parse("192.0.2.1").unwrap().contains(ip("192.0.2.1")));
        assert!(!Cidr::parse("192.0.2.1").unwrap().contains(ip("192.0.2.2")));
        for bad in ["10.0.0.0/33", "fd00::/129", "ingress", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_peers() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert("x-forwarded-for", value.parse().unwrap());
            map
        };
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let forwarded = headers("198.51.100.9, 203.0.113.5, 10.0.0.3");
        assert_eq!(client_address(ip("10.0.0.2"), &forwarded, &trusted), ip("203.0.113.5"));
        assert_eq!(client_address(ip("192.0.2.1"), &forwarded, &trusted), ip("192.0.2.1"), "an untrusted peer");
        assert_eq!(client_address(ip("10.0.0.2"), &forwarded, &[]), ip("10.0.0.2"), "none trusted");
        assert_eq!(client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"), "no header");
        assert_eq!(client_address(ip("10.0.0.2"), &headers("198.51.100.9, garbage"), &trusted), ip("10.0.0.2"));
        let appended = {
            let mut map = headers("198.51.100.9");
            map.append("x-forwarded-for", "10.0.0.3".parse().unwrap());
            map
        };
        assert_eq!(client_address(ip("10.0.0.2"), &appended, &trusted), ip("198.51.100.9"), "two headers");
    }
}
