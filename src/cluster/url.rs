//! `REDIS_URL`: which Redis (or Redis Cluster) to use.
//!
//! - `redis://[user:password@]host:port[/db]`: one Redis server (a primary
//!   without Sentinel).
//! - `redis-cluster://[user:password@]host:port,host:port,...`: a Redis
//!   Cluster, reached through any of the listed nodes.

use fred::prelude::{Config, ServerConfig};
use fred::types::RespVersion;

/// Why `REDIS_URL` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid REDIS_URL: {0}")]
pub struct UrlError(String);

/// A parsed `REDIS_URL`, ready to build fred configurations from.
#[derive(Debug, Clone)]
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
        } else if url.starts_with("redis://") {
            let config = Config::from_url(url).map_err(|err| UrlError(err.details().to_string()))?;
            (config, false)
        } else if url.starts_with("rediss://") {
            return Err(UrlError("TLS to Redis (rediss://) is not supported; use a private network".into()));
        } else {
            return Err(UrlError(format!("expected redis:// or redis-cluster://, got `{}`", redact(url))));
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
        let hosts: Vec<String> = match &self.config.server {
            ServerConfig::Centralized { server } => vec![server.to_string()],
            ServerConfig::Clustered { hosts, .. } => hosts.iter().map(ToString::to_string).collect(),
            #[allow(unreachable_patterns, reason = "other server kinds are behind features we do not enable")]
            _ => vec!["?".into()],
        };
        let kind = if self.clustered { "cluster" } else { "redis" };
        format!("{kind} {}", hosts.join(","))
    }
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

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_owned(),
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
