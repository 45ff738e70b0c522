//! Which web origins and hosts are this deployment's: ALLOWED_ORIGINS and
//! PUBLIC_URL parsed once ([`Origins`], [`PublicUrl`]), and the syntax an
//! origin or a `Host` must have to count at all ([`normalize_origin`],
//! [`parse_host`]). The [`edge`](super::edge) decides with them.

use axum::http::uri::Authority;

/// Which web origins may use the socket endpoint and the API.
#[derive(Debug, Clone)]
pub(super) enum Origins {
    /// These origins (ALLOWED_ORIGINS and PUBLIC_URL's). When the list is
    /// empty, a page whose origin names the request's `Host` is allowed
    /// too; once a list is configured that is not enough, because a
    /// DNS-rebinding page controls both (its own name, resolved to us).
    Listed(Vec<String>),
    /// Any origin (`*`).
    Any,
}

impl Origins {
    pub(super) fn parse(entries: &[String], public: Option<&PublicUrl>) -> Result<Self, String> {
        let mut listed: Vec<String> = public.map(|public| public.origin.clone()).into_iter().collect();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Ok(Self::Any);
            }
            let origin = normalize_origin(entry).ok_or_else(|| {
                format!("ALLOWED_ORIGINS: `{entry}` is not an origin like https://chat.example.com")
            })?;
            listed.push(origin);
        }
        Ok(Self::Listed(listed))
    }

    pub(super) fn lists(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Listed(list) => list.iter().any(|o| o == origin),
        }
    }

    /// True while no origin is configured: then the request's own `Host`
    /// is the only thing the server's origin can be told by.
    pub(super) fn trusts_host(&self) -> bool {
        matches!(self, Self::Listed(list) if list.is_empty())
    }
}

/// `scheme://host[:port]`, lower-cased, or None if `raw` is not an origin.
pub(super) fn normalize_origin(raw: &str) -> Option<String> {
    let raw = raw.trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = raw.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = parse_host(rest)?;
    (authority.as_str() == rest).then_some(raw)
}

/// `host[:port]` if `raw` is one: a DNS name (underscores tolerated), an
/// IPv4 address or a bracketed IPv6 address, and a port that fits in 16 bits.
pub(super) fn parse_host(raw: &str) -> Option<Authority> {
    let authority: Authority = raw.trim().parse().ok()?;
    let host = authority.host();
    let port = authority.as_str().strip_prefix(host)?;
    if !(port.is_empty() || port.strip_prefix(':').is_some_and(|port| port.parse::<u16>().is_ok())) {
        return None;
    }
    let valid = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            let name = host.strip_suffix('.').unwrap_or(host);
            !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    (1..=63).contains(&label.len())
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        }
    };
    valid.then_some(authority)
}

/// PUBLIC_URL: the one origin browsers reach this deployment at.
#[derive(Debug, Clone)]
pub(super) struct PublicUrl {
    /// `https://chat.example.com`, normalized.
    pub(super) origin: String,
    /// `chat.example.com` (with the port, if the URL has one).
    pub(super) authority: Authority,
    /// True for https.
    pub(super) https: bool,
}

impl PublicUrl {
    pub(super) fn parse(raw: &str) -> Result<Self, String> {
        let invalid = || format!("PUBLIC_URL: `{raw}` is not a URL like https://chat.example.com (no path)");
        let origin = normalize_origin(raw.trim()).ok_or_else(invalid)?;
        let (scheme, rest) = origin.split_once("://").ok_or_else(invalid)?;
        let authority = parse_host(rest).ok_or_else(invalid)?;
        Ok(Self { https: scheme == "https", authority, origin })
    }

    /// True if `host` (from a request) names this URL's host, on any port.
    pub(super) fn is_host_of(&self, host: &Authority) -> bool {
        let strip = |h: &str| h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase();
        strip(host.host()) == strip(self.authority.host())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_syntactically_valid_hosts_are_hosts() {
        for valid in
            ["chat.example.com", "chat.example.com:8443", "127.0.0.1:3000", "[::1]:3000", "chatwire_1", "a."]
        {
            assert!(parse_host(valid).is_some(), "{valid}");
        }
        for invalid in [
            "",
            "user@chat.example.com",
            "chat.example.com:99999",
            "-bad.example",
            "a..b",
            "[::1",
            "ex ample",
            "ex%20ample",
            "a/b",
            "[zz::1]",
        ] {
            assert!(parse_host(invalid).is_none(), "{invalid}");
        }
    }

    #[test]
    fn a_configured_origin_list_stops_same_host_from_sufficing() {
        let open = Origins::parse(&[], None).unwrap();
        assert!(open.trusts_host(), "nothing configured: the page's Host is all there is");
        let listed = Origins::parse(&["https://chat.example.com".into()], None).unwrap();
        assert!(!listed.trusts_host());
        let public = PublicUrl::parse("https://chat.example.com/").unwrap();
        let by_url = Origins::parse(&[], Some(&public)).unwrap();
        assert!(!by_url.trusts_host());
        assert!(by_url.lists("https://chat.example.com"));
        assert!(!by_url.lists("http://rebound.example:3000"));
    }
}
