//! [`Subscriber`]: what the task needs from the pub/sub connection, and
//! fred's [`SubscriberClient`] providing it; [`SlotMap`]: which master
//! serves which hash slots.

use std::future::Future;
use std::sync::Arc;

use fred::clients::SubscriberClient;
use fred::prelude::{ClientLike, ClusterInterface, EventInterface, PubsubInterface};
use fred::types::config::Server;
use tokio::sync::broadcast;

/// What the task needs from the pub/sub connection (fred's
/// [`SubscriberClient`]; a fake in the unit tests).
pub(super) trait Subscriber: Clone + Send + Sync + 'static {
    /// SSUBSCRIBE `channels` (all in one hash slot).
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
    fn shard_subscribe(&self, channels: Vec<String>) -> impl Future<Output = Result<(), String>> + Send {
        let client = self.clone();
        async move { client.ssubscribe(channels).await.map_err(|err| err.to_string()) }
    }

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
