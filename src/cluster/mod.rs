//! Running as one of several instances over Redis: the parts cluster mode
//! (`mode::cluster`) is wired from; nothing here depends on the modes.
//!
//! - [`url`]: which Redis, from `REDIS_URL`
//! - [`pubsub`]: the socket.io adapter's driver (sharded pub/sub)
//! - [`routing`]: with `ROUTED_ROOMS`, room broadcasts on per-room channels
//! - [`maintenance`]: heartbeats, purging dead instances, recovering from outages
//! - [`liveness`]: noticing within about two seconds that an instance's process died
//! - [`peers`]: the settings instances tell each other: every instance on the
//!   same PARSER (or an error in the log), room channels only while every
//!   instance routes
//! - [`sentinel`]: with Redis Sentinel, staying on the primary it names
//!
//! [`Cluster::connect`] returns at once, whether or not Redis is up: both
//! connections keep retrying in the background, and the instance serves its
//! own clients meanwhile (see `store::RedisStore`).

mod liveness;
mod maintenance;
mod peers;
mod pubsub;
mod purge;
mod room_subscriptions;
mod routing;
mod sentinel;
mod url;

use std::time::Duration;

use fred::prelude::{Builder, Client, ClientLike, ReconnectPolicy};
use fred::types::config::ClusterDiscoveryPolicy;
use tokio::task::JoinHandle;

pub use maintenance::{Maintenance, Timing};
pub use peers::{PeerCheck, RoutingSwitch};
pub use pubsub::PubSub;
pub use url::{RedisTarget, UrlError};

/// The two connections an instance keeps to Redis.
#[derive(Clone)]
pub struct Cluster {
    commands: Client,
    pubsub: PubSub,
    target: RedisTarget,
    /// With Sentinel: the connections that ask it where the primary is.
    sentinel: Option<sentinel::PrimaryWatch>,
}

/// Reconnection: quickly at first, then every two seconds, forever.
fn reconnect_policy() -> ReconnectPolicy {
    ReconnectPolicy::new_exponential(0, 100, 2_000, 2)
}

/// The fred client configuration every chatwire connection uses. (Without a
/// reconnect policy, a client that may not fail fast never connects at all.)
pub fn client_builder(target: &RedisTarget) -> Builder {
    let mut config = target.config();
    if target.is_cluster() {
        // fred's default (`ConfigEndpoint`) rediscovers the cluster only
        // through the nodes in REDIS_URL. Once failovers have killed all of
        // them, every reconnect fails against dead addresses while the
        // cluster itself is healthy: the instance stays unready until it is
        // restarted. `UseCache` also tries the primaries last seen in
        // CLUSTER SLOTS, which include every promoted replica.
        if let Err(err) = config.server.set_cluster_discovery_policy(ClusterDiscoveryPolicy::UseCache) {
            tracing::warn!(error = %err, "could not set the cluster discovery policy");
        }
    }
    let mut builder = Builder::from_config(config);
    builder.set_policy(reconnect_policy());
    builder.with_connection_config(|connection| {
        connection.connection_timeout = Duration::from_secs(2);
        connection.internal_command_timeout = Duration::from_secs(2);
        // Each connection is named after the client (`CLIENT SETNAME`), so
        // the others see when this process's connections close (liveness).
        connection.auto_client_setname = true;
        // No automatic retries: a script that ran but whose reply was lost
        // must not run twice; the resync repairs what a failure left behind.
        connection.max_command_attempts = 1;
        // Commands queued while reconnecting are bounded, not piled up.
        connection.max_command_buffer_len = 10_000;
        // A Redis that stops answering (frozen, partitioned) is treated as gone.
        connection.unresponsive.max_timeout = Some(Duration::from_secs(5));
        connection.unresponsive.interval = Duration::from_secs(1);
    });
    builder.with_performance_config(|performance| {
        // Timed-out commands are dropped by fred, never sent late.
        performance.default_command_timeout = crate::store::REDIS_TIMEOUT;
        // Received pub/sub messages queue here; fred's default of 32 drops
        // messages as soon as a burst outpaces the dispatcher.
        performance.broadcast_channel_capacity = 8_192;
    });
    builder
}

impl Cluster {
    /// Starts both connections in the background and returns at once.
    pub fn connect(target: &RedisTarget) -> Result<(Self, Vec<JoinHandle<()>>), fred::error::Error> {
        let commands = client_builder(target).build()?;
        drop(commands.connect());
        let subscriber = client_builder(target).build_subscriber_client()?;
        let sentinel = sentinel::PrimaryWatch::new(target)?;
        let watching = sentinel.as_ref().map(|watch| watch.spawn(commands.clone(), subscriber.clone()));
        let (pubsub, mut tasks) = PubSub::start(subscriber);
        tasks.extend(watching);
        Ok((Self { commands, pubsub, target: target.clone(), sentinel }, tasks))
    }

    /// The client for commands and scripts.
    pub fn commands(&self) -> Client {
        self.commands.clone()
    }

    /// The adapter's pub/sub driver.
    pub fn pubsub(&self) -> PubSub {
        self.pubsub.clone()
    }

    /// True when both connections are up.
    pub fn is_connected(&self) -> bool {
        self.commands.is_connected() && self.pubsub.is_connected()
    }

    /// With Sentinel, the primary the sentinels last named.
    pub fn sentinel_primary(&self) -> Option<tokio::sync::watch::Receiver<sentinel::NamedPrimary>> {
        self.sentinel.as_ref().map(sentinel::PrimaryWatch::named)
    }

    /// Which Redis, for logs.
    pub fn describe(&self) -> String {
        self.target.describe()
    }

    /// Closes both connections.
    pub async fn quit(&self) {
        self.pubsub.quit().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.commands.quit()).await;
        if let Some(sentinel) = &self.sentinel {
            sentinel.quit().await;
        }
    }
}
