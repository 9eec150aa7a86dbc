//! Who a request comes from: the peer's address, or, behind a proxy that names the
//! client in a header (`HERALD_TRUSTED_PROXY_HEADER`), the address that proxy put there.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName};
use herald_platform::http::{PeerAddr, per_subscriber};

/// The client a request is counted against and passed on as (login throttling, open
/// sockets, budgets): an IPv4 address (IPv4-mapped IPv6 ones included), or an IPv6 /64,
/// the block one subscriber usually holds (and can pick any address of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    pub fn new(addr: IpAddr) -> ClientAddr {
        ClientAddr(per_subscriber(addr))
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientAddrs {
    header: Option<HeaderName>,
}

impl ClientAddrs {
    /// `header` was validated with the settings.
    pub fn new(header: Option<&str>) -> ClientAddrs {
        ClientAddrs {
            header: header.and_then(|h| HeaderName::try_from(h).ok()),
        }
    }

    /// With a trusted header, the last address in it (the one the proxy in front of Herald
    /// added: earlier ones came from the client and prove nothing); without one, or when
    /// the header is missing or holds no address, the peer.
    pub fn of(&self, peer: Option<&PeerAddr>, headers: &HeaderMap) -> ClientAddr {
        let named = self.header.as_ref().and_then(|header| {
            let last = headers.get_all(header).iter().next_back()?;
            let last = last.to_str().ok()?.rsplit(',').next()?.trim();
            parse_addr(last)
        });
        let peer = peer.map(|p| p.0.ip());
        ClientAddr::new(named.or(peer).unwrap_or(IpAddr::from([0, 0, 0, 0])))
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_addr(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::try_from(*k).unwrap(), v.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_peer_unless_a_trusted_header_names_the_client() {
        let peer = PeerAddr("10.0.0.9:5000".parse().unwrap());
        let plain = ClientAddrs::new(None);
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(plain.of(Some(&peer), &forwarded).0.to_string(), "10.0.0.9");

        let proxied = ClientAddrs::new(Some("X-Forwarded-For"));
        assert_eq!(
            proxied.of(Some(&peer), &forwarded).0.to_string(),
            "203.0.113.7"
        );
        // A client's own entries come first; the proxy's last.
        let spoofed = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.2")]);
        assert_eq!(
            proxied.of(Some(&peer), &spoofed).0.to_string(),
            "198.51.100.2"
        );
        let repeated = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "[2001:db8::5]:443"),
        ]);
        assert_eq!(
            proxied.of(Some(&peer), &repeated).to_string(),
            "2001:db8::/64"
        );
        let garbage = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(proxied.of(Some(&peer), &garbage).0.to_string(), "10.0.0.9");
        assert_eq!(proxied.of(None, &HeaderMap::new()).0.to_string(), "0.0.0.0");
    }

    #[test]
    fn ipv6_clients_are_their_64_block_and_mapped_ones_ipv4() {
        let of = |text: &str| ClientAddr::new(text.parse().unwrap());
        assert_eq!(of("2001:db8:1:2:aaaa::1"), of("2001:db8:1:2:bbbb::2"));
        assert_ne!(of("2001:db8:1:2::1"), of("2001:db8:1:3::1"));
        assert_eq!(of("::ffff:10.0.0.1"), of("10.0.0.1"));
        assert_eq!(of("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
        // The peer's address is counted the same way as a proxy's header.
        let peer = PeerAddr("[2001:db8:7:7:1::9]:5000".parse().unwrap());
        assert_eq!(
            ClientAddrs::new(None).of(Some(&peer), &HeaderMap::new()),
            of("2001:db8:7:7::")
        );
    }
}
