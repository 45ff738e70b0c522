//! Noticing within about two seconds that another instance's process died.
//!
//! Heartbeats take `INSTANCE_TTL_MS` to tell, and meanwhile the dead
//! instance's users still hold their names: a frontend that logs in again
//! with its name after reconnecting elsewhere (socket.io's chat demo does)
//! would be refused. But a dead process's Redis connections close at once.
//! Every instance names its command connections (`CLIENT SETNAME`, fred's
//! client id) and records that name beside its heartbeat. An instance
//! whose connection this one has *seen* since its own connection came up,
//! and which then is on no primary node for [`CONFIRM`], is dead: its
//! connection closed while Redis stayed up.
//!
//! A live instance loses its connections too when Redis restarts or a node
//! fails over, and may take a while to come back (through Sentinel, say).
//! But then this instance's own connection broke as well, which forgets
//! everything seen: an instance not seen since is left to its heartbeat.
//! No verdict either when a primary does not answer, or is not connected,
//! nor, with Sentinel, while this instance is not on the primary the
//! sentinels name.
//! Heartbeats stay the verdict for partitions, where nothing closes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use fred::interfaces::ClientInterface;
use fred::prelude::{Client, ClientLike, ClusterInterface};
use fred::types::client::ClientKillType;
use tokio::sync::watch;
use tokio::time::Instant;

use super::sentinel::NamedPrimary;
use crate::store::REDIS_TIMEOUT;

/// How long an instance's connections must stay gone before it counts as dead.
/// Longer than a live instance's reconnect takes when Redis is up (the
/// reconnect policy retries after 0.1, 0.2 and 0.4 s).
pub const CONFIRM: Duration = Duration::from_millis(1_500);

/// How recent the sentinels' word on the primary must be to judge.
const PRIMARY_FRESH: Duration = Duration::from_secs(3);

/// Why a look at the connections gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    /// Redis refused `CLIENT LIST` (an ACL without it).
    #[error("CLIENT LIST refused on {node}: {error}")]
    Refused { node: String, error: String },
    /// A node did not answer, or is not connected.
    #[error("CLIENT LIST on {node}: {error}")]
    Unanswered { node: String, error: String },
}

/// What one look found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Instances whose connections have been gone for [`CONFIRM`]: dead,
    /// to purge. They stay suspect until they leave the registry.
    pub dead: Vec<String>,
    /// Instances whose connections are gone, not yet for long enough.
    pub suspects: usize,
}

/// Who has been seen, who has been seen without connections, and since when.
pub struct Liveness {
    client: Client,
    /// With Sentinel: the primary it names, which this instance must be on
    /// to judge (on a primary about to be demoted, the others are absent).
    sentinel_primary: Option<watch::Receiver<NamedPrimary>>,
    /// Instances seen connected since this instance's connection came up.
    seen: HashSet<String>,
    absent_since: HashMap<String, Instant>,
    /// When a refused `CLIENT LIST` was last reported.
    refusal_reported: Option<Instant>,
}

impl Liveness {
    /// Looks at the connections through `client` (the command client).
    pub fn new(client: Client) -> Self {
        Self {
            client,
            sentinel_primary: None,
            seen: HashSet::new(),
            absent_since: HashMap::new(),
            refusal_reported: None,
        }
    }

    /// With Sentinel: judges only while on the primary the sentinels named
    /// within [`PRIMARY_FRESH`].
    pub fn on_sentinel_primary(self, named: Option<watch::Receiver<NamedPrimary>>) -> Self {
        Self { sentinel_primary: named, ..self }
    }

    /// True if a refused `CLIENT LIST` should be logged now: once a minute.
    pub fn report_refusal(&mut self) -> bool {
        let due = self.refusal_reported.is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
        if due {
            self.refusal_reported = Some(Instant::now());
        }
        due
    }

    /// True while some instance has been seen without connections and has
    /// not left the registry: the next look should come soon.
    pub fn has_suspects(&self) -> bool {
        !self.absent_since.is_empty()
    }

    /// How many other instances are watched.
    pub fn watched(&self) -> usize {
        self.seen.len()
    }

    /// Forgets everything: this instance's own connection just broke, so
    /// what it saw before says nothing about the others.
    pub fn reset(&mut self) {
        self.seen.clear();
        self.absent_since.clear();
    }

    /// The names of the normal (non-pub/sub) connections open on every
    /// primary node: one Redis, the master Sentinel points to, or each
    /// primary of a cluster (fred's cluster client connects to all of them),
    /// asked together.
    pub async fn look(&self) -> Result<HashSet<String>, LivenessError> {
        let Some(state) = self.client.cached_cluster_state() else {
            self.check_sentinel_primary()?;
            return names_on(&self.client, "redis").await.map(HashSet::from_iter);
        };
        let connected = self.client.active_connections();
        let primaries = state.unique_primary_nodes();
        if primaries.is_empty() {
            return Err(LivenessError::Unanswered {
                node: "cluster".into(),
                error: "no primary known".into(),
            });
        }
        if let Some(missing) = primaries.iter().find(|node| !connected.contains(node)) {
            // fred would reconnect the whole client to route a command there
            // (a node whose connection broke since is caught by its answer).
            return Err(LivenessError::Unanswered {
                node: missing.to_string(),
                error: "not connected".into(),
            });
        }
        let lists = primaries.iter().map(|node| {
            let client = self.client.with_cluster_node(node.clone());
            async move { names_on(&client, &node.to_string()).await }
        });
        let mut open = HashSet::new();
        for names in futures_util::future::join_all(lists).await {
            open.extend(names?);
        }
        Ok(open)
    }

    /// With Sentinel: `Ok` only while this instance is on the primary the
    /// sentinels name now. (The others leave a demoted primary first when
    /// this instance is the one slow to move, or cut off from the sentinels.)
    fn check_sentinel_primary(&self) -> Result<(), LivenessError> {
        let Some(named) = &self.sentinel_primary else { return Ok(()) };
        let named = named.borrow().clone();
        match named {
            Some((primary, at)) if at.elapsed() < PRIMARY_FRESH => {
                if self.client.active_connections().contains(&primary) {
                    Ok(())
                } else {
                    Err(LivenessError::Unanswered {
                        node: primary.to_string(),
                        error: "not yet on the primary the sentinels name".into(),
                    })
                }
            }
            _ => Err(LivenessError::Unanswered {
                node: "sentinel".into(),
                error: "no recent word from the sentinels on the primary".into(),
            }),
        }
    }

    /// The verdict on `peers` (instance id, connection name), given the
    /// connection names `open` at `now`.
    pub fn judge(&mut self, peers: &[(String, String)], open: &HashSet<String>, now: Instant) -> Verdict {
        let registered: HashSet<&str> = peers.iter().map(|(id, _)| id.as_str()).collect();
        // Gone from the registry: purged (by whoever) and announced.
        self.seen.retain(|id| registered.contains(id.as_str()));
        self.absent_since.retain(|id, _| registered.contains(id.as_str()));
        let mut verdict = Verdict::default();
        for (id, name) in peers {
            if open.contains(name) {
                self.seen.insert(id.clone());
                self.absent_since.remove(id);
            } else if self.seen.contains(id) {
                let since = *self.absent_since.entry(id.clone()).or_insert(now);
                if now.duration_since(since) >= CONFIRM {
                    verdict.dead.push(id.clone());
                } else {
                    verdict.suspects += 1;
                }
            }
        }
        verdict.dead.sort();
        verdict
    }
}

/// The connection names in one node's `CLIENT LIST TYPE normal`.
async fn names_on<C: ClientInterface + Sync>(client: &C, node: &str) -> Result<Vec<String>, LivenessError> {
    let listed = tokio::time::timeout(
        REDIS_TIMEOUT,
        client.client_list::<String, String>(Some(ClientKillType::Normal), None),
    )
    .await;
    match listed {
        Ok(Ok(list)) => Ok(names(&list).collect()),
        // Denied by an ACL, or the command renamed away.
        Ok(Err(err)) if err.details().contains("NOPERM") || err.details().contains("unknown command") => {
            Err(LivenessError::Refused { node: node.to_owned(), error: err.to_string() })
        }
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

    fn open(names: &[&str]) -> HashSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn liveness() -> Liveness {
        Liveness::new(fred::prelude::Builder::default_centralized().build().unwrap())
    }

    #[test]
    fn names_are_read_from_client_list() {
        let list = "id=3 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=8 name=fred-abc age=2 cmd=client|list\n\
                    id=4 addr=127.0.0.1:5001 laddr=127.0.0.1:6379 fd=9 name= age=1 cmd=ping\n\
                    id=5 addr=127.0.0.1:5002 laddr=127.0.0.1:6379 fd=10 name=fred-def age=1 cmd=evalsha\n";
        assert_eq!(names(list).collect::<Vec<_>>(), ["fred-abc", "fred-def"]);
    }

    #[tokio::test]
    async fn a_seen_instance_is_dead_only_once_its_connections_stayed_gone() {
        let mut liveness = liveness();
        let peers = peers(&[("a#1", "fred-a"), ("b#2", "fred-b")]);
        let start = Instant::now();
        liveness.judge(&peers, &open(&["fred-a", "fred-b"]), start);
        assert_eq!(liveness.watched(), 2);

        let first = liveness.judge(&peers, &open(&["fred-a"]), start);
        assert_eq!(first, Verdict { suspects: 1, ..Verdict::default() }, "gone once is a suspicion");
        assert_eq!(liveness.judge(&peers, &open(&["fred-a"]), start + CONFIRM / 2).suspects, 1);
        let later = liveness.judge(&peers, &open(&["fred-a"]), start + CONFIRM);
        assert_eq!(
            later,
            Verdict { dead: vec!["b#2".into()], ..Verdict::default() },
            "gone for CONFIRM is dead"
        );
        assert!(liveness.has_suspects(), "dead stays suspect until it leaves the registry");
        liveness.judge(&peers[..1], &open(&["fred-a"]), start + CONFIRM);
        assert!(!liveness.has_suspects());
    }

    #[tokio::test]
    async fn an_instance_not_seen_since_this_one_connected_is_left_to_its_heartbeat() {
        let mut liveness = liveness();
        let peers = peers(&[("b#2", "fred-b")]);
        let start = Instant::now();
        liveness.judge(&peers, &open(&["fred-b"]), start);
        liveness.reset();
        let verdict = liveness.judge(&peers, &open(&[]), start + CONFIRM * 10);
        assert_eq!(verdict, Verdict::default(), "after a reconnect, absent is not dead");
        liveness.judge(&peers, &open(&["fred-b"]), start + CONFIRM * 11);
        assert_eq!(
            liveness.judge(&peers, &open(&[]), start + CONFIRM * 12).suspects,
            1,
            "seen again: watched again"
        );
    }

    #[tokio::test]
    async fn a_connection_that_comes_back_clears_the_suspicion() {
        let mut liveness = liveness();
        let peers = peers(&[("b#2", "fred-b")]);
        let start = Instant::now();
        liveness.judge(&peers, &open(&["fred-b"]), start);
        liveness.judge(&peers, &open(&[]), start);
        assert_eq!(liveness.judge(&peers, &open(&["fred-b"]), start + CONFIRM / 2), Verdict::default());
        let again = liveness.judge(&peers, &open(&[]), start + CONFIRM);
        assert_eq!(again.suspects, 1, "the clock starts again from the new absence");
    }
}
