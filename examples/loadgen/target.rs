//! Where the load goes: a loopback socket.io server given as a URL.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// A server under test. Only loopback addresses are accepted: the load
/// generator is a benchmark tool for this machine, not a way to flood others.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The address the TCP connection goes to.
    addr: SocketAddr,
}

impl Target {
    /// The engine.io websocket endpoint on every server.
    pub const PATH: &str = "/socket.io/?EIO=4&transport=websocket";

    /// The server's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl FromStr for Target {
    type Err = String;

    /// Parses `http://127.0.0.1:PORT` (also `ws://`, no scheme, `localhost`
    /// or `[::1]`); any path is ignored, socket.io lives at `/socket.io/`.
    fn from_str(raw: &str) -> Result<Self, String> {
        let rest = ["http://", "ws://"].iter().find_map(|scheme| raw.strip_prefix(scheme)).unwrap_or(raw);
        if rest.contains("://") {
            return Err(format!("`{raw}`: only http:// and ws:// URLs are supported"));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let addr = match authority.strip_prefix("localhost:") {
            Some(port) => {
                let port = port.parse().map_err(|_| format!("`{raw}`: bad port"))?;
                SocketAddr::from((Ipv4Addr::LOCALHOST, port))
            }
            None => authority.parse().map_err(|_| format!("`{raw}`: expected http://HOST:PORT"))?,
        };
        if !addr.ip().is_loopback() {
            return Err(format!("`{raw}`: only loopback addresses may be load tested"));
        }
        Ok(Self { addr })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn loopback_urls_are_accepted() {
        for url in ["http://127.0.0.1:3000", "ws://127.0.0.1:3000/", "localhost:3000", "http://[::1]:80"] {
            assert!(url.parse::<Target>().is_ok(), "{url}");
        }
        let target: Target = "http://127.0.0.1:3000/anything".parse().unwrap();
        assert_eq!(target.addr().to_string(), "127.0.0.1:3000");
        let target: Target = "localhost:3000".parse().unwrap();
        assert_eq!(target.addr().to_string(), "127.0.0.1:3000");
    }

    #[test]
    fn other_hosts_are_refused() {
        for url in ["http://10.0.0.1:3000", "https://127.0.0.1:3000", "http://example.com:80", "127.0.0.1"] {
            assert!(url.parse::<Target>().is_err(), "{url}");
        }
    }
}
