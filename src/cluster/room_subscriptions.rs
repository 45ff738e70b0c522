//! The one task that subscribes and unsubscribes room channels
//! (`ROUTED_ROOMS`, see [`super::routing`]), in the order it is asked, so a
//! late unsubscribe never overtakes a re-join.
//!
//! It remembers which channels are wanted and whether Redis confirmed each:
//! - after a reconnect it subscribes them all again ([`Request::Resubscribe`]);
//! - every [`RETRY`] it tries again the ones that failed;
//! - every [`SWEEP`] it subscribes them all again anyway: when a slot moves
//!   to another master, Redis tells subscribers with a `sunsubscribe`
//!   message that fred does not pass on, so nothing else would notice.
//!
//! After a subscribe fails or times out, requests are answered `false` at
//! once for [`BACKOFF`] instead of each waiting for its own timeout: with a
//! frozen Redis, logins would otherwise queue behind one another here.

use std::collections::HashMap;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{ClientLike, PubsubInterface};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Longest a SSUBSCRIBE / SUNSUBSCRIBE may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often channels whose subscribe failed are tried again.
const RETRY: Duration = Duration::from_secs(5);
/// How often every wanted channel is subscribed again (idempotent).
const SWEEP: Duration = Duration::from_secs(60);
/// How long after a failure requests are answered without asking Redis.
const BACKOFF: Duration = Duration::from_secs(2);

/// What the task is asked to do.
pub(super) enum Request {
    /// Subscribe this channel (if not already); answer once subscribed.
    Watch(String, oneshot::Sender<bool>),
    /// Unsubscribe this channel.
    Unwatch(String),
    /// After a reconnect: subscribe every wanted channel again.
    Resubscribe,
}

/// Wanted channels (`true` once Redis confirmed), and since when Redis fails.
struct Subscriptions {
    client: SubscriberClient,
    wanted: HashMap<String, bool>,
    failing_until: Option<Instant>,
}

/// Runs the requests in order, and the retries and sweeps between them.
pub(super) async fn run(client: SubscriberClient, mut asked: mpsc::UnboundedReceiver<Request>) {
    let mut subscriptions = Subscriptions { client, wanted: HashMap::new(), failing_until: None };
    let mut retries = tokio::time::interval(RETRY);
    let mut sweeps = tokio::time::interval_at(Instant::now() + SWEEP, SWEEP);
    loop {
        tokio::select! {
            request = asked.recv() => match request {
                Some(request) => subscriptions.handle(request).await,
                None => return,
            },
            _ = retries.tick() => subscriptions.again(false).await,
            _ = sweeps.tick() => subscriptions.again(true).await,
        }
    }
}

impl Subscriptions {
    async fn handle(&mut self, request: Request) {
        match request {
            Request::Watch(channel, answer) => {
                let done = match self.wanted.get(&channel) {
                    Some(true) => true,
                    _ => self.subscribe(&channel).await,
                };
                self.wanted.insert(channel, done);
                let _ = answer.send(done);
            }
            Request::Unwatch(channel) => {
                if self.wanted.remove(&channel).is_some() && self.client.is_connected() {
                    match tokio::time::timeout(TIMEOUT, self.client.sunsubscribe(channel.clone())).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => tracing::warn!(channel, error = %err, "room unsubscribe failed"),
                        Err(_) => tracing::warn!(channel, "room unsubscribe timed out"),
                    }
                }
            }
            Request::Resubscribe => {
                self.failing_until = None;
                self.again(true).await;
                let failed = self.wanted.values().filter(|done| !**done).count();
                tracing::info!(rooms = self.wanted.len(), failed, "room channels subscribed again");
            }
        }
    }

    /// Subscribes again every wanted channel (`all`), or those not confirmed.
    async fn again(&mut self, all: bool) {
        let channels: Vec<String> = self
            .wanted
            .iter()
            .filter(|(_, done)| all || !**done)
            .map(|(channel, _)| channel.clone())
            .collect();
        for channel in channels {
            let done = self.subscribe(&channel).await;
            self.wanted.insert(channel, done);
        }
    }

    /// One SSUBSCRIBE, bounded; false if Redis is down, failing lately, or
    /// did not confirm.
    async fn subscribe(&mut self, channel: &str) -> bool {
        if !self.client.is_connected() || self.failing_until.is_some_and(|until| Instant::now() < until) {
            return false;
        }
        let failure = match tokio::time::timeout(TIMEOUT, self.client.ssubscribe(channel.to_owned())).await {
            Ok(Ok(())) => return true,
            Ok(Err(err)) => err.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        tracing::warn!(channel, error = failure, "room subscribe failed; retrying in the background");
        self.failing_until = Some(Instant::now() + BACKOFF);
        false
    }
}
