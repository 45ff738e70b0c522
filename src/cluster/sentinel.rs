//! [`PrimaryWatch`]: with Redis Sentinel, keeps both connections on the
//! primary the sentinels currently name.
//!
//! fred asks the sentinels for the primary (and checks its `ROLE`) only when
//! it (re)connects. When the old primary dies that is enough: the
//! connections drop and the reconnect loop finds the promoted replica. But
//! when the old primary stays up (a switchover with `SENTINEL FAILOVER`, or
//! a partition between it and the sentinels), its connections stay open and
//! it keeps accepting writes until Sentinel demotes it, about 10 s after the
//! promotion (measured, Redis 7.0); everything written there meanwhile
//! (history, accounts) is lost when it resyncs from the new primary. So
//! this task asks the configured sentinels every [`INTERVAL`] which primary
//! is current and reconnects a connection that is still elsewhere.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{Builder, Client, ClientLike, Config, ServerConfig};
use fred::types::config::Server;
use fred::types::{ClusterHash, CustomCommand};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::RedisTarget;

/// How often the sentinels are asked: a write can reach a demoted primary
/// for about this long after a switchover.
const INTERVAL: Duration = Duration::from_millis(500);
/// Longest a sentinel may take to answer, or a forced reconnect to finish.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Least time between two forced reconnects of one connection: right after
/// a promotion the sentinel fred asks may not know yet, and fred lands on the
/// old primary again; the next try comes once the sentinels agree.
const RETRY_GAP: Duration = Duration::from_secs(1);

/// The primary the sentinels last named, and when.
pub type NamedPrimary = Option<(Server, tokio::time::Instant)>;

/// Connections to the sentinels listed in `REDIS_URL`, asked for the primary.
#[derive(Clone)]
pub struct PrimaryWatch {
    sentinels: Vec<Client>,
    service: String,
    named: Arc<watch::Sender<NamedPrimary>>,
}

impl PrimaryWatch {
    /// Connects (in the background) to every sentinel of a `redis-sentinel://`
    /// target; `None` for the other kinds.
    pub fn new(target: &RedisTarget) -> Result<Option<Self>, fred::error::Error> {
        let config = target.config();
        let ServerConfig::Sentinel { hosts, service_name, username, password } = &config.server else {
            return Ok(None);
        };
        let mut sentinels = Vec::with_capacity(hosts.len());
        for host in hosts {
            // A sentinel has no databases and speaks RESP2 to every client.
            let sentinel = Config {
                server: ServerConfig::Centralized { server: host.clone() },
                username: username.clone(),
                password: password.clone(),
                fail_fast: false,
                ..Config::default()
            };
            let mut builder = Builder::from_config(sentinel);
            builder.set_policy(super::reconnect_policy());
            builder.with_connection_config(|connection| {
                connection.connection_timeout = TIMEOUT;
                connection.internal_command_timeout = TIMEOUT;
                connection.max_command_attempts = 1;
            });
            builder.with_performance_config(|performance| performance.default_command_timeout = TIMEOUT);
            let client = builder.build()?;
            drop(client.connect());
            sentinels.push(client);
        }
        Ok(Some(Self { sentinels, service: service_name.clone(), named: Arc::new(watch::Sender::new(None)) }))
    }

    /// Starts the task that moves `commands` and `subscriber` to the current
    /// primary whenever they are connected elsewhere.
    pub fn spawn(&self, commands: Client, subscriber: SubscriberClient) -> JoinHandle<()> {
        let watch = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut commands_moved, mut subscriber_moved) = (None, None);
            loop {
                ticks.tick().await;
                let Some(primary) = watch.current_primary().await else { continue };
                watch.named.send_replace(Some((primary.clone(), tokio::time::Instant::now())));
                follow(&commands, "commands", &primary, &mut commands_moved).await;
                follow(&subscriber, "pub/sub", &primary, &mut subscriber_moved).await;
            }
        })
    }

    /// The primary the sentinels last named, as it changes.
    pub fn named(&self) -> watch::Receiver<NamedPrimary> {
        self.named.subscribe()
    }

    /// Closes the connections to the sentinels.
    pub async fn quit(&self) {
        for sentinel in &self.sentinels {
            let _ = tokio::time::timeout(TIMEOUT, sentinel.quit()).await;
        }
    }

    /// The primary named by the reachable sentinels; where they disagree
    /// (some have not heard of a promotion yet), the newest configuration
    /// (highest `config-epoch`) wins.
    async fn current_primary(&self) -> Option<Server> {
        let asks = self.sentinels.iter().filter(|s| s.is_connected()).map(|sentinel| {
            let command = CustomCommand::new_static("SENTINEL", ClusterHash::FirstKey, false);
            sentinel.custom::<HashMap<String, String>, _>(command, vec!["MASTER", self.service.as_str()])
        });
        let replies = futures_util::future::join_all(asks).await;
        replies
            .into_iter()
            .filter_map(|reply| match reply {
                Ok(fields) => primary_of(&fields),
                Err(err) => {
                    tracing::debug!(error = %err, "a sentinel did not name the primary");
                    None
                }
            })
            .max_by_key(|(epoch, _)| *epoch)
            .map(|(_, primary)| primary)
    }
}

/// `(config-epoch, ip:port)` from a `SENTINEL MASTER` reply.
fn primary_of(fields: &HashMap<String, String>) -> Option<(u64, Server)> {
    let epoch = fields.get("config-epoch")?.parse().ok()?;
    let port = fields.get("port")?.parse().ok()?;
    Some((epoch, Server::new(fields.get("ip")?.as_str(), port)))
}

/// Reconnects `client` if it is connected to another server than `primary`
/// (fred asks the sentinels again as it reconnects).
async fn follow<C: ClientLike>(
    client: &C,
    name: &str,
    primary: &Server,
    moved: &mut Option<tokio::time::Instant>,
) {
    // While disconnected fred is already on its way to the sentinels.
    if !client.is_connected() || moved.is_some_and(|at| at.elapsed() < RETRY_GAP) {
        return;
    }
    let on = client.active_connections();
    if on.is_empty() || on.contains(primary) {
        return;
    }
    let old: Vec<String> = on.iter().map(ToString::to_string).collect();
    tracing::warn!(connection = name, old = ?old, new = %primary, "Sentinel moved the primary: reconnecting");
    *moved = Some(tokio::time::Instant::now());
    match tokio::time::timeout(TIMEOUT, client.force_reconnection()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::warn!(connection = name, error = %err, "reconnecting to the new primary failed; retrying")
        }
        Err(_) => tracing::warn!(connection = name, "reconnecting to the new primary timed out; retrying"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_is_read_from_a_sentinel_master_reply() {
        let fields: HashMap<String, String> = [
            ("name", "chat"),
            ("ip", "10.0.0.7"),
            ("port", "6380"),
            ("config-epoch", "3"),
            ("flags", "master"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(primary_of(&fields), Some((3, Server::new("10.0.0.7", 6380))));
        let mut partial = fields.clone();
        partial.remove("config-epoch");
        assert_eq!(primary_of(&partial), None);
    }

    #[test]
    fn only_sentinel_targets_are_watched() {
        let plain = RedisTarget::parse("redis://127.0.0.1:6379").unwrap();
        assert!(PrimaryWatch::new(&plain).unwrap().is_none());
    }
}
