//! `REDIS_URL`: which Redis (or Redis Cluster) to use.
//!
//! - `redis://[user:password@]host:port[/db]`: one Redis server (a primary
//!   without Sentinel).
//! - `redis-cluster://[user:password@]host:port,host:port,...`: a Redis
//!   Cluster, reached through any of the listed nodes.
//! - `redis-sentinel://[user:password@]host:port[/db]?sentinelServiceName=NAME&node=host:port&...`:
//!   a primary watched by Redis Sentinel. `host:port` and every `node` are
//!   *sentinels*; `NAME` is the name in their `sentinel monitor` line. The
//!   credentials are the data nodes' (primary and replicas); sentinels that
//!   require a password of their own get `&sentinelPassword=...` (and
//!   `&sentinelUsername=...`). On every (re)connection fred asks the
//!   sentinels for the current primary and checks its `ROLE`, so a promoted
//!   replica is found by the ordinary reconnect loop.

use fred::prelude::{Config, ServerConfig};
use fred::types::RespVersion;

/// Why `REDIS_URL` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid REDIS_URL: {0}")]
pub struct UrlError(String);

/// A parsed `REDIS_URL`, ready to build fred configurations from.
///
/// Its `Debug` shows only [`RedisTarget::describe`]: fred's `Config` would
/// print the passwords (the data nodes' and the sentinels').
#[derive(Clone)]
pub struct RedisTarget {
    config: Config,
    clustered: bool,
}

impl RedisTarget {
    /// Parses the URL forms documented in the module.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let (config, clustered) = if let Some(rest) = url.strip_prefix("redis-cluster://") {
            (cluster_config(rest)?, true)
        } else if url.starts_with("redis-sentinel://") {
            (sentinel_config(url)?, false)
        } else if url.starts_with("redis://") {
            if query_values(url, SERVICE_NAME).next().is_some() {
                return Err(UrlError(format!(
                    "`{SERVICE_NAME}` needs the redis-sentinel:// scheme, got `{}`",
                    redact(url)
                )));
            }
            let config = Config::from_url(url).map_err(|err| UrlError(err.details().to_string()))?;
            (config, false)
        } else if url.starts_with("rediss") {
            return Err(UrlError("TLS to Redis (rediss://) is not supported; use a private network".into()));
        } else {
            return Err(UrlError(format!(
                "expected redis://, redis-cluster:// or redis-sentinel://, got `{}`",
                redact(url)
            )));
        };
        let mut config = config;
        // The `?protocol=resp3` URL parameter is ignored by fred: RESP3 must be
        // set here, or every sharded publish of the adapter fails.
        config.version = RespVersion::RESP3;
        // Keep retrying in the background instead of failing the first connect.
        config.fail_fast = false;
        Ok(Self { config, clustered })
    }

    /// The fred configuration.
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// True for a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.clustered
    }

    /// The nodes, for logs (no credentials).
    pub fn describe(&self) -> String {
        let list = |hosts: &[fred::types::config::Server]| {
            hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
        };
        match &self.config.server {
            ServerConfig::Centralized { server } => format!("redis {server}"),
            ServerConfig::Clustered { hosts, .. } => format!("cluster {}", list(hosts)),
            ServerConfig::Sentinel { hosts, service_name, .. } => {
                format!("sentinel service {service_name} via {}", list(hosts))
            }
            #[allow(unreachable_patterns, reason = "other server kinds are behind features we do not enable")]
            _ => "redis ?".into(),
        }
    }
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget").field("nodes", &self.describe()).finish_non_exhaustive()
    }
}

/// The query parameter naming the monitored primary.
const SERVICE_NAME: &str = "sentinelServiceName";

/// `redis-sentinel://...`: checked here first, so that a mistake gets a
/// message saying what to write (fred's own are terse), then parsed by fred.
fn sentinel_config(url: &str) -> Result<Config, UrlError> {
    if !query_values(url, SERVICE_NAME).any(|name| !name.is_empty()) {
        return Err(UrlError(format!(
            "redis-sentinel:// needs `?{SERVICE_NAME}=NAME` (the name in the sentinels' `sentinel monitor` line), got `{}`",
            redact(url)
        )));
    }
    for node in query_values(url, "node") {
        let port = node.rsplit_once(':').map(|(_, port)| port);
        if port.is_none_or(|port| port.parse::<u16>().is_err()) || node.matches(':').count() != 1 {
            return Err(UrlError(format!("sentinel node `{node}` needs host:port (IPv4 or a name)")));
        }
    }
    let mut config = Config::from_url_sentinel(url).map_err(|err| UrlError(err.details().to_string()))?;
    if let ServerConfig::Sentinel { hosts, .. } = &mut config.server {
        // fred appends the URL's own host after the `node`s; it is the one
        // the operator named first, so it is the one tried first.
        hosts.rotate_right(1);
    }
    Ok(config)
}

/// The values of the query parameter `key` (not percent-decoded: names and
/// addresses do not need encoding).
fn query_values<'a>(url: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    query.split('&').filter_map(move |pair| match pair.split_once('=') {
        Some((name, value)) if name == key => Some(value),
        _ => None,
    })
}

/// `[user:password@]host:port,host:port,...`
fn cluster_config(rest: &str) -> Result<Config, UrlError> {
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((credentials, hosts)) => (Some(credentials), hosts),
        None => (None, rest),
    };
    let hosts = hosts.trim_end_matches('/');
    let mut nodes = Vec::new();
    for node in hosts.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let (host, port) = node
            .rsplit_once(':')
            .ok_or_else(|| UrlError(format!("cluster node `{node}` needs host:port")))?;
        let port: u16 = port.parse().map_err(|_| UrlError(format!("bad port in cluster node `{node}`")))?;
        nodes.push((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port));
    }
    if nodes.is_empty() {
        return Err(UrlError("redis-cluster:// needs at least one host:port".into()));
    }
    let mut config = Config { server: ServerConfig::new_clustered(nodes), ..Config::default() };
    if let Some(credentials) = credentials {
        match credentials.split_once(':') {
            Some((user, password)) => {
                config.username = (!user.is_empty()).then(|| user.to_owned());
                config.password = Some(password.to_owned());
            }
            None => config.password = Some(credentials.to_owned()),
        }
    }
    Ok(config)
}

/// The URL without its passwords (the data nodes' and the sentinels'), for
/// error messages. Over-redacting beats leaking, so a password holding a raw
/// `?`, `@`, `/` or `&` costs some of the rest of the URL, never its tail:
/// first every `...password=` query value goes (up to the next `&`), then
/// everything between `://` and the last `@` left.
fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.to_ascii_lowercase().find("password=") {
        let (before, after) = rest.split_at(at + "password=".len());
        out.push_str(before);
        out.push('…');
        rest = after.find('&').map_or("", |end| &after[end..]);
    }
    out.push_str(rest);
    let without_credentials = |rest: &str| match rest.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => rest.to_owned(),
    };
    match out.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", without_credentials(rest)),
        None => without_credentials(&out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_redis_url_uses_resp3_and_keeps_retrying() {
        let target = RedisTarget::parse("redis://127.0.0.1:6390/0").unwrap();
        assert!(!target.is_cluster());
        assert_eq!(target.config().version, RespVersion::RESP3);
        assert!(!target.config().fail_fast);
        assert_eq!(target.describe(), "redis 127.0.0.1:6390");
    }

    #[test]
    fn a_cluster_url_lists_its_nodes_and_credentials() {
        let target =
            RedisTarget::parse("redis-cluster://:secret@127.0.0.1:7000, 127.0.0.1:7001,127.0.0.1:7002")
                .unwrap();
        assert!(target.is_cluster());
        assert_eq!(target.describe(), "cluster 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002");
        assert_eq!(target.config().password.as_deref(), Some("secret"));
        assert_eq!(target.config().version, RespVersion::RESP3);
    }

    #[test]
    fn a_sentinel_url_names_its_service_and_sentinels_first_host_first() {
        let target = RedisTarget::parse(
            "redis-sentinel://:secret@10.0.0.1:26379/2?sentinelServiceName=chat&node=10.0.0.2:26380&node=s3:26381",
        )
        .unwrap();
        assert!(!target.is_cluster());
        let config = target.config();
        assert_eq!(config.version, RespVersion::RESP3);
        assert!(!config.fail_fast);
        assert_eq!(config.password.as_deref(), Some("secret"));
        assert_eq!(config.database, Some(2));
        assert_eq!(target.describe(), "sentinel service chat via 10.0.0.1:26379,10.0.0.2:26380,s3:26381");
        assert!(!target.describe().contains("secret"));
        // The data nodes' password is not sent to the sentinels unless asked.
        let ServerConfig::Sentinel { password, username, .. } = &config.server else {
            panic!("not a sentinel config: {:?}", config.server)
        };
        assert_eq!((username, password), (&None, &None));
    }

    #[test]
    fn sentinels_may_have_credentials_of_their_own() {
        let target = RedisTarget::parse(
            "redis-sentinel://127.0.0.1?sentinelServiceName=chat&sentinelUsername=watcher&sentinelPassword=s3cret",
        )
        .unwrap();
        let config = target.config();
        assert_eq!(config.password, None);
        let ServerConfig::Sentinel { hosts, username, password, .. } = &config.server else {
            panic!("not a sentinel config: {:?}", config.server)
        };
        assert_eq!(hosts[0].to_string(), "127.0.0.1:26379", "the sentinels' default port");
        assert_eq!(username.as_deref(), Some("watcher"));
        assert_eq!(password.as_deref(), Some("s3cret"));
        assert!(!target.describe().contains("s3cret"), "{}", target.describe());
    }

    #[test]
    fn bad_sentinel_urls_say_what_is_missing_without_the_password() {
        for (bad, expected) in [
            ("redis-sentinel://u:hunter2@h:26379", "sentinelServiceName=NAME"),
            ("redis-sentinel://u:hunter2@h:26379/0?node=h2:26380", "sentinelServiceName=NAME"),
            ("redis-sentinel://:hunter2@h:26379?sentinelServiceName=", "sentinelServiceName=NAME"),
            (
                "redis-sentinel://:hunter2@h?sentinelServiceName=x&node=h2",
                "sentinel node `h2` needs host:port",
            ),
            ("redis-sentinel://:hunter2@h?sentinelServiceName=x&node=h2:port", "needs host:port"),
            ("redis://:hunter2@h:6379?sentinelServiceName=x", "redis-sentinel://"),
            ("rediss-sentinel://:hunter2@h?sentinelServiceName=x", "not supported"),
            ("redis-sentinel://h?sentinelServiceName&sentinelPassword=hunter2", "sentinelServiceName=NAME"),
        ] {
            let err = RedisTarget::parse(bad).unwrap_err().to_string();
            assert!(err.contains(expected), "{bad}: {err}");
            assert!(!err.contains("hunter2"), "passwords are not echoed: {err}");
        }
    }

    #[test]
    fn debug_output_holds_no_password() {
        for url in [
            "redis://user:hunter2@127.0.0.1:6379/0",
            "redis-cluster://:hunter2@127.0.0.1:7000,127.0.0.1:7001",
            "redis-sentinel://:hunter2@127.0.0.1:26379/0?sentinelServiceName=chat&sentinelPassword=hunter3&node=127.0.0.1:26380",
        ] {
            let target = RedisTarget::parse(url).unwrap();
            let shown = format!("{target:?} {target:#?}");
            assert!(!shown.contains("hunter"), "{url}: {shown}");
            assert!(shown.contains(&target.describe()), "{shown}");
        }
    }

    #[test]
    fn redaction_keeps_no_part_of_a_password_whatever_it_holds() {
        for (url, shown) in [
            ("redis://:hun?ter2@h:1", "redis://…@h:1"),
            ("redis://us:hun@ter?2@h:1/0?a=b", "redis://…@h:1/0?a=b"),
            ("redis://:hunter2/x@h", "redis://…@h"),
            (
                "redis-sentinel://h:2?sentinelServiceName=x&sentinelPassword=hun@ter?2&node=n:3",
                "redis-sentinel://h:2?sentinelServiceName=x&sentinelPassword=…&node=n:3",
            ),
            ("redis-sentinel://h:2?SENTINELPASSWORD=hunter2", "redis-sentinel://h:2?SENTINELPASSWORD=…"),
            ("redis://:x%40y@h?sentinelPassword=a@hunter2", "redis://…@h?sentinelPassword=…"),
            ("user:hunter2@h", "…@h"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn sentinel_passwords_in_the_query_are_form_decoded() {
        // Hence the README: `+` must be written `%2B`, or it becomes a space.
        let target =
            RedisTarget::parse("redis-sentinel://h?sentinelServiceName=x&sentinelPassword=a%2Bb+c").unwrap();
        let ServerConfig::Sentinel { password, .. } = &target.config().server else {
            panic!("not a sentinel config")
        };
        assert_eq!(password.as_deref(), Some("a+b c"));
    }

    #[test]
    fn bad_urls_are_refused_clearly() {
        for bad in
            ["http://x", "redis-cluster://", "redis-cluster://host", "redis-cluster://h:port", "rediss://h:1"]
        {
            assert!(RedisTarget::parse(bad).is_err(), "{bad}");
        }
        let err = RedisTarget::parse("mysql://user:pw@host").unwrap_err().to_string();
        assert!(!err.contains("pw"), "passwords are not echoed: {err}");
    }
}
