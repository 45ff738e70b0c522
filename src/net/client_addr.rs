//! Who sent a request, and under which key per-address limits count them.
//!
//! - [`ClientAddr`] is the client's address as the HTTP edge established it
//!   (through trusted proxies only), an extractor for handlers and a request
//!   extension socket.io handlers read;
//! - [`AddressKey`] groups addresses for limits: IPv4 by the full address,
//!   IPv6 by its /64, which one subscriber usually holds whole.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The address of the client that sent a request: the peer, or, behind
/// trusted proxies, the address they reported in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The key per-address limits count this client under.
    pub fn key(self) -> AddressKey {
        AddressKey::of(self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let found = parts.extensions.get::<ClientAddr>().copied();
        Ok(found.unwrap_or_else(|| ClientAddr(peer_of(&parts.extensions).ip().to_canonical())))
    }
}

/// The unit every per-address limit counts (connections, login attempts):
/// an IPv4 address, or an IPv6 /64. One IPv6 subscriber usually gets a
/// whole /64 (often more), so keying by /128 would give one attacker 2^64
/// fresh counters. IPv4-mapped IPv6 addresses count as their IPv4 address.
///
/// Displayed as `203.0.113.9` or `2001:db8:1:2::/64`, for storage keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => Self(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX))))),
        }
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// The connection's peer, as the server saw it (before any proxy is
/// taken into account).
pub(crate) fn peer_of(extensions: &axum::http::Extensions) -> SocketAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |ConnectInfo(peer)| *peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let key = |ip: &str| AddressKey::of(ip.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb:cccc:dddd:eeee"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("203.0.113.9").to_string(), "203.0.113.9");
        assert_ne!(key("203.0.113.9"), key("203.0.113.10"), "IPv4 by the full address");
        assert_eq!(key("::ffff:203.0.113.9"), key("203.0.113.9"), "mapped IPv4 is IPv4");
    }
}
