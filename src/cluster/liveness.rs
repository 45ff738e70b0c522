//! Noticing in about a second that another instance's process died.
//!
//! Heartbeats take `INSTANCE_TTL_MS` to tell, and meanwhile the dead
//! instance's users still hold their names: a frontend that logs in again
//! with its name after reconnecting elsewhere (socket.io's chat demo does)
//! would be refused. But a dead process's Redis connections close at once.
//! Every instance names its command connections (`CLIENT SETNAME`, fred's
//! client id) and records that name beside its heartbeat; an instance
//! whose connection is on no primary node for [`CONFIRM`] is dead.
//!
//! A live instance can lose its connections too: when Redis restarts, or
//! a cluster node fails over. So nothing is judged while this instance's
//! own connection is younger than [`SETTLE`] (longer than the reconnect
//! policy's longest wait), nor when any node does not answer. Heartbeats
//! stay the verdict for partitions, where no connection closes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use fred::interfaces::ClientInterface;
use fred::prelude::{Client, ClusterInterface};
use fred::types::client::ClientKillType;
use tokio::time::Instant;

use crate::store::REDIS_TIMEOUT;

/// How long an instance's connections must stay gone before it counts as dead.
pub const CONFIRM: Duration = Duration::from_millis(1_000);
/// How long this instance's own connection must have been up before it
/// judges others: after a Redis restart every instance reconnects within
/// the reconnect policy's longest wait (2 s).
pub const SETTLE: Duration = Duration::from_secs(3);

/// Why a look at the connections gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    /// A node did not answer `CLIENT LIST`.
    #[error("CLIENT LIST on {node}: {error}")]
    Unanswered { node: String, error: String },
}

/// What one look found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Instances whose connections have been gone for [`CONFIRM`]: dead.
    pub dead: Vec<String>,
    /// Instances whose connections are gone, not yet for long enough.
    pub suspects: usize,
    /// Suspects no longer registered: another instance purged them.
    pub vanished: usize,
}

/// Who has been seen without connections, and since when.
pub struct Liveness {
    client: Client,
    absent_since: HashMap<String, Instant>,
}

impl Liveness {
    /// Looks at the connections through `client` (the command client).
    pub fn new(client: Client) -> Self {
        Self { client, absent_since: HashMap::new() }
    }

    /// True while some instance has been seen without connections and is
    /// not yet confirmed dead: the next look should come soon.
    pub fn has_suspects(&self) -> bool {
        !self.absent_since.is_empty()
    }

    /// Forgets every suspicion (this instance's own connection just came
    /// back: what it saw before says nothing).
    pub fn reset(&mut self) {
        self.absent_since.clear();
    }

    /// Compares `peers` (instance id, connection name) with the connections
    /// open on every primary node now.
    pub async fn sweep(&mut self, peers: &[(String, String)]) -> Result<Sweep, LivenessError> {
        let open = if peers.is_empty() { HashSet::new() } else { self.open_connections().await? };
        Ok(self.judge(peers, &open, Instant::now()))
    }

    /// The verdict on `peers`, given the connection names `open` at `now`.
    fn judge(&mut self, peers: &[(String, String)], open: &HashSet<String>, now: Instant) -> Sweep {
        let absent: HashSet<&str> =
            peers.iter().filter(|(_, name)| !open.contains(name)).map(|(id, _)| id.as_str()).collect();
        let mut sweep = Sweep::default();
        self.absent_since.retain(|id, _| {
            if !peers.iter().any(|(peer, _)| peer == id) {
                sweep.vanished += 1;
            }
            absent.contains(id.as_str())
        });
        for id in absent {
            let since = *self.absent_since.entry(id.to_owned()).or_insert(now);
            if now.duration_since(since) >= CONFIRM {
                sweep.dead.push(id.to_owned());
            } else {
                sweep.suspects += 1;
            }
        }
        for id in &sweep.dead {
            self.absent_since.remove(id);
        }
        sweep.dead.sort();
        sweep
    }

    /// The names of the normal (non-pub/sub) connections open on every
    /// primary node: one Redis, the master Sentinel points to, or each
    /// primary of a cluster (fred's cluster client connects to all of them).
    async fn open_connections(&self) -> Result<HashSet<String>, LivenessError> {
        let primaries = self.client.cached_cluster_state().map(|state| state.unique_primary_nodes());
        let mut open = HashSet::new();
        match primaries {
            Some(nodes) => {
                for node in nodes {
                    let list = self.client.with_cluster_node(node.clone());
                    let listed = tokio::time::timeout(
                        REDIS_TIMEOUT,
                        list.client_list::<String, String>(Some(ClientKillType::Normal), None),
                    )
                    .await;
                    open.extend(names(&answered(listed, &node.to_string())?));
                }
            }
            None => {
                let listed = tokio::time::timeout(
                    REDIS_TIMEOUT,
                    self.client.client_list::<String, String>(Some(ClientKillType::Normal), None),
                )
                .await;
                open.extend(names(&answered(listed, "redis")?));
            }
        }
        Ok(open)
    }
}

fn answered(
    listed: Result<fred::prelude::FredResult<String>, tokio::time::error::Elapsed>,
    node: &str,
) -> Result<String, LivenessError> {
    match listed {
        Ok(Ok(list)) => Ok(list),
        Ok(Err(err)) => Err(LivenessError::Unanswered { node: node.to_owned(), error: err.to_string() }),
        Err(_) => Err(LivenessError::Unanswered {
            node: node.to_owned(),
            error: format!("no answer within {REDIS_TIMEOUT:?}"),
        }),
    }
}

/// The connection names in a `CLIENT LIST` reply (one client per line,
/// `key=value` fields; names cannot contain spaces).
fn names(list: &str) -> impl Iterator<Item = String> + '_ {
    list.lines()
        .filter_map(|line| {
            line.split(' ').find_map(|field| field.strip_prefix("name=")).filter(|name| !name.is_empty())
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(id, name)| ((*id).to_owned(), (*name).to_owned())).collect()
    }

    #[test]
    fn names_are_read_from_client_list() {
        let list = "id=3 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=8 name=fred-abc age=2 cmd=client|list\n\
                    id=4 addr=127.0.0.1:5001 laddr=127.0.0.1:6379 fd=9 name= age=1 cmd=ping\n\
                    id=5 addr=127.0.0.1:5002 laddr=127.0.0.1:6379 fd=10 name=fred-def age=1 cmd=evalsha\n";
        assert_eq!(names(list).collect::<Vec<_>>(), ["fred-abc", "fred-def"]);
    }

    #[tokio::test]
    async fn an_instance_is_dead_only_once_its_connections_stayed_gone() {
        let client = fred::prelude::Builder::default_centralized().build().unwrap();
        let mut liveness = Liveness::new(client);
        let peers = peers(&[("a#1", "fred-a"), ("b#2", "fred-b")]);
        let start = Instant::now();
        let open: HashSet<String> = ["fred-a".to_owned()].into();

        let first = liveness.judge(&peers, &open, start);
        assert_eq!(first, Sweep { suspects: 1, ..Sweep::default() }, "gone once is a suspicion");
        let soon = liveness.judge(&peers, &open, start + CONFIRM / 2);
        assert_eq!(soon.suspects, 1);
        let later = liveness.judge(&peers, &open, start + CONFIRM);
        assert_eq!(later, Sweep { dead: vec!["b#2".into()], ..Sweep::default() }, "gone for CONFIRM is dead");
        assert!(!liveness.has_suspects());
    }

    #[tokio::test]
    async fn a_suspect_purged_by_another_instance_has_vanished() {
        let client = fred::prelude::Builder::default_centralized().build().unwrap();
        let mut liveness = Liveness::new(client);
        let start = Instant::now();
        liveness.judge(&peers(&[("b#2", "fred-b")]), &HashSet::new(), start);
        let after = liveness.judge(&[], &HashSet::new(), start + CONFIRM / 2);
        assert_eq!(after, Sweep { vanished: 1, ..Sweep::default() });
        assert!(!liveness.has_suspects());
    }

    #[tokio::test]
    async fn a_connection_that_comes_back_clears_the_suspicion() {
        let client = fred::prelude::Builder::default_centralized().build().unwrap();
        let mut liveness = Liveness::new(client);
        let peers = peers(&[("b#2", "fred-b")]);
        let start = Instant::now();
        liveness.judge(&peers, &HashSet::new(), start);
        let back: HashSet<String> = ["fred-b".to_owned()].into();
        assert_eq!(liveness.judge(&peers, &back, start + CONFIRM / 2), Sweep::default());
        let again = liveness.judge(&peers, &HashSet::new(), start + CONFIRM);
        assert_eq!(again.suspects, 1, "the clock starts again from the new absence");
    }
}
