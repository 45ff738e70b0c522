//! Which peers may speak for clients: [`TrustedProxies`] (TRUST_PROXY)
//! walks `X-Forwarded-For` right to left, past trusted hops only. A client
//! can prepend whatever it likes, but never gets past the hop its own proxy
//! wrote. The result becomes the request's [`ClientAddr`](crate::net::ClientAddr).

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// Which peers may speak for clients through `X-Forwarded-*`.
#[derive(Debug, Clone)]
pub(super) enum TrustedProxies {
    /// Nobody: the peer is the client.
    None,
    /// `true`: the peer is always exactly one proxy, so the client is the
    /// last `X-Forwarded-For` entry (the one that proxy added).
    One,
    /// These addresses and ranges are proxies: the client is the first
    /// hop, from the right, outside them.
    Listed(Vec<IpNet>),
}

/// What the proxies in front of this server said about a request.
#[derive(Debug)]
pub(super) struct Forwarded<'a> {
    /// The client (canonical: IPv4-mapped IPv6 as IPv4).
    pub client: IpAddr,
    /// `X-Forwarded-Proto` as the nearest trusted proxy set it.
    pub proto: Option<&'a str>,
    /// `X-Forwarded-Host` as the nearest trusted proxy set it.
    pub host: Option<&'a str>,
}

impl TrustedProxies {
    /// TRUST_PROXY: empty or `false`, `true`, or addresses and CIDR ranges.
    pub(super) fn parse(entries: &[String]) -> Result<Self, String> {
        let entries: Vec<&str> = entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()).collect();
        match entries.as_slice() {
            [] | ["false"] => Ok(Self::None),
            ["true"] | ["*"] => Ok(Self::One),
            list => list
                .iter()
                .map(|entry| {
                    entry
                        .parse::<IpNet>()
                        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| format!("TRUST_PROXY: `{entry}` is not an address or CIDR range"))
                })
                .collect::<Result<_, _>>()
                .map(Self::Listed),
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        match self {
            Self::None => false,
            Self::One => true,
            Self::Listed(nets) => nets.iter().any(|net| net.contains(&ip)),
        }
    }

    /// Reads the forwarded headers of a request that came from `peer`.
    /// From an untrusted peer they are ignored.
    pub(super) fn read<'a>(&self, headers: &'a HeaderMap, peer: IpAddr) -> Forwarded<'a> {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return Forwarded { client: peer, proto: None, host: None };
        }
        let mut hops = entries_from_right(headers, "x-forwarded-for").into_iter();
        let client = match self {
            Self::None => peer,
            Self::One => hops.next().and_then(parse_hop).unwrap_or(peer),
            Self::Listed(_) => {
                // Each trusted hop vouches for the entry left of it; the
                // first entry not from a trusted proxy is the client. A
                // malformed entry vouches for nothing: stop at the last good one.
                let mut client = peer;
                for ip in hops.map_while(parse_hop) {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                client
            }
        };
        let nearest = |name| entries_from_right(headers, name).into_iter().next().filter(|v| !v.is_empty());
        Forwarded { client, proto: nearest("x-forwarded-proto"), host: nearest("x-forwarded-host") }
    }
}

/// The comma-separated entries of every `name` header, rightmost first (the
/// last header line holds what the nearest proxy appended). A line that is
/// not text counts as one empty, malformed entry.
fn entries_from_right<'a>(headers: &'a HeaderMap, name: &'static str) -> Vec<&'a str> {
    let mut entries = Vec::new();
    for line in headers.get_all(HeaderName::from_static(name)).iter().rev() {
        match line.to_str() {
            Ok(line) => entries.extend(line.rsplit(',').map(str::trim)),
            Err(_) => entries.push(""),
        }
    }
    entries
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (some
/// load balancers add one).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop.parse::<IpAddr>().or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip())).ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(trust: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&trust.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn forwarded_for(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", line.parse().unwrap());
        }
        headers
    }

    /// The client `trust` finds for a request from `peer` with these
    /// `X-Forwarded-For` lines.
    fn client(trust: &[&str], peer: &str, lines: &[&str]) -> String {
        proxies(trust).read(&forwarded_for(lines), peer.parse().unwrap()).client.to_string()
    }

    #[test]
    fn true_means_the_peer_is_one_proxy_and_the_client_is_the_last_hop() {
        assert_eq!(client(&["true"], "10.0.0.2", &["203.0.113.9"]), "203.0.113.9");
        assert_eq!(
            client(&["true"], "10.0.0.2", &["198.51.100.1, 192.0.2.7, 203.0.113.9"]),
            "203.0.113.9",
            "entries the client sent itself are left of the proxy's"
        );
        assert_eq!(client(&["true"], "10.0.0.2", &["1.1.1.1", "203.0.113.9"]), "203.0.113.9", "last line");
        assert_eq!(client(&["true"], "10.0.0.2", &[]), "10.0.0.2", "no header: the peer");
        assert_eq!(client(&["true"], "10.0.0.2", &["1.1.1.1, garbage"]), "10.0.0.2", "malformed: the peer");
    }

    #[test]
    fn a_list_walks_past_trusted_hops_to_the_first_untrusted_one() {
        let trust = ["10.0.0.0/8", "192.0.2.1"];
        assert_eq!(client(&trust, "10.0.0.2", &["203.0.113.9"]), "203.0.113.9");
        assert_eq!(client(&trust, "10.0.0.2", &["203.0.113.9, 192.0.2.1, 10.9.9.9"]), "203.0.113.9");
        assert_eq!(
            client(&trust, "10.0.0.2", &["10.1.1.1, 10.2.2.2"]),
            "10.1.1.1",
            "all trusted: the leftmost"
        );
        assert_eq!(client(&trust, "198.51.100.7", &["203.0.113.9"]), "198.51.100.7", "untrusted peer");
        assert_eq!(client(&trust, "::ffff:10.0.0.2", &["203.0.113.9"]), "203.0.113.9", "mapped peer");
        assert_eq!(client(&trust, "10.0.0.2", &["[2001:db8::1]:443"]), "2001:db8::1", "with a port");
    }

    #[test]
    fn prepended_fake_hops_do_not_change_the_client() {
        // nginx appends the address it saw; everything left of it is the client's.
        let trust = ["172.28.0.10"];
        let honest = client(&trust, "172.28.0.10", &["203.0.113.9"]);
        for spoofed in ["1.2.3.4, 203.0.113.9", "172.28.0.10, 203.0.113.9", "10.0.0.1, 5.6.7.8, 203.0.113.9"]
        {
            assert_eq!(client(&trust, "172.28.0.10", &[spoofed]), honest, "{spoofed}");
        }
        // A client inside a trusted range would be walked past, so anything
        // it prepends would count: trust the proxy alone, and it cannot.
        let spoof = ["1.2.3.4, 10.0.0.5"];
        assert_eq!(client(&["10.0.0.0/8", "172.16.0.0/12"], "172.28.0.10", &spoof), "1.2.3.4");
        assert_eq!(client(&trust, "172.28.0.10", &spoof), "10.0.0.5");
    }

    #[test]
    fn a_malformed_entry_stops_the_walk_at_the_last_good_hop() {
        let trust = ["10.0.0.0/8"];
        assert_eq!(client(&trust, "10.0.0.2", &["203.0.113.9, unknown, 10.0.0.3"]), "10.0.0.3");
        assert_eq!(client(&trust, "10.0.0.2", &["203.0.113.9, unknown"]), "10.0.0.2");
        assert_eq!(client(&trust, "10.0.0.2", &["203.0.113.9,,10.0.0.3"]), "10.0.0.3");
        assert_eq!(client(&trust, "10.0.0.2", &["203.0.113.9", ""]), "10.0.0.2", "an empty last line");
        let mut headers = forwarded_for(&["203.0.113.9"]);
        headers.append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(
            proxies(&trust).read(&headers, "10.0.0.2".parse().unwrap()).client.to_string(),
            "10.0.0.2"
        );
    }

    #[test]
    fn proto_and_host_are_the_nearest_proxys() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", "https, http".parse().unwrap());
        headers.insert("x-forwarded-host", "evil.example, chat.example.com".parse().unwrap());
        let read = proxies(&["10.0.0.0/8"]).read(&headers, "10.0.0.2".parse().unwrap());
        assert_eq!(read.proto, Some("http"), "the value the client prepended does not count");
        assert_eq!(read.host, Some("chat.example.com"));
        let stranger = proxies(&["10.0.0.0/8"]).read(&headers, "198.51.100.7".parse().unwrap());
        assert_eq!((stranger.proto, stranger.host), (None, None), "ignored from an untrusted peer");
    }

    #[test]
    fn settings_are_checked() {
        assert!(TrustedProxies::parse(&["not-an-ip".into()]).is_err());
        assert!(matches!(TrustedProxies::parse(&["true".into()]), Ok(TrustedProxies::One)));
        assert!(matches!(TrustedProxies::parse(&[]), Ok(TrustedProxies::None)));
    }
}
