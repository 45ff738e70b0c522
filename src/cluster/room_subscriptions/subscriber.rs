//! [`Subscriber`]: what the task needs from the pub/sub connection, and
//! fred's [`SubscriberClient`] providing it; [`SlotMap`]: which master
//! serves which hash slots.

use std::future::Future;
use std::sync::Arc;

use fred::clients::SubscriberClient;
use fred::prelude::{ClientLike, ClusterInterface, EventInterface, PubsubInterface};
use fred::types::config::Server;
use fred::types::{ClusterHash, CustomCommand, Value};
use tokio::sync::broadcast;

/// What the task needs from the pub/sub connection (fred's
/// [`SubscriberClient`]; a fake in the unit tests).
pub(super) trait Subscriber: Clone + Send + Sync + 'static {
    /// SSUBSCRIBE `channels` (all in one hash slot); `Ok` once Redis
    /// confirmed every one.
    fn shard_subscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send;
    /// SUNSUBSCRIBE `channels` (all in one hash slot).
    fn shard_unsubscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send;
    /// Whether the connection is up (every master's, on a cluster).
    fn is_connected(&self) -> bool;
    /// Reports each (re)connection.
    fn reconnects(&self) -> broadcast::Receiver<Server>;
    /// Which master serves which hash slots, `None` when not a cluster.
    fn slot_map(&self) -> Option<SlotMap>;
}

impl Subscriber for SubscriberClient {
    /// One SSUBSCRIBE per channel, pipelined, not one for all: fred takes
    /// the first of Redis's replies (one per channel) as the command's, and
    /// the others as the replies of whatever it sent next. A publish then
    /// failed ("Cannot convert array to number") though Redis delivered it,
    /// and a later subscribe was answered before Redis had made it. fred's
    /// own `ssubscribe` also waits for its reply before sending anything
    /// else; these are pipelined like any command.
    fn shard_subscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send {
        let client = self.clone();
        async move {
            let command = CustomCommand::new_static("SSUBSCRIBE", ClusterHash::FirstKey, false);
            // fred writes commands in the order their futures are first
            // polled, which `join_all` does in sequence.
            let calls =
                channels.into_iter().map(|channel| client.custom::<Value, _>(command.clone(), vec![channel]));
            let replies = futures_util::future::join_all(calls).await;
            replies.into_iter().find_map(Result::err).map_or(Ok(()), |err| Err(err.to_string()))
        }
    }

    /// fred's own SUNSUBSCRIBE: it expects no reply and drops Redis's
    /// confirmations (a custom command would wait for one forever). Left:
    /// on a Redis Cluster, an error reply to it (MOVED, after its slot moved
    /// to another master) would be taken for the reply of the next command
    /// on that connection, as above; the slot's move already unsubscribed
    /// the channel, and the periodic sweep subscribes what is still wanted.
    fn shard_unsubscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send {
        let client = self.clone();
        async move { client.sunsubscribe(channels).await.map_err(|err| err.to_string()) }
    }

    fn is_connected(&self) -> bool {
        ClientLike::is_connected(self)
    }

    fn reconnects(&self) -> broadcast::Receiver<Server> {
        self.reconnect_rx()
    }

    fn slot_map(&self) -> Option<SlotMap> {
        if !self.is_clustered() {
            return None;
        }
        let ranges = self.cached_cluster_state().map(|state| {
            let ranges = state.slots().iter();
            ranges.map(|range| (range.start, range.end, Arc::from(range.primary.to_string()))).collect()
        });
        Some(SlotMap(ranges.unwrap_or_default()))
    }
}

/// Which master serves which hash slots: `(first, last, master)`, sorted.
#[derive(Clone, Default)]
pub(super) struct SlotMap(pub(super) Vec<(u16, u16, Arc<str>)>);

impl SlotMap {
    /// The master serving `slot`, if known.
    pub(super) fn master(&self, slot: u16) -> Option<&Arc<str>> {
        let index = self.0.partition_point(|(_, last, _)| *last < slot);
        self.0.get(index).filter(|(first, _, _)| *first <= slot).map(|(_, _, master)| master)
    }
}
