//! A fleet of clients, one task each: connect (optionally behind a start
//! gate and a cap on handshakes in flight), log in (optionally behind the
//! gate instead, already connected), maybe join a room, play a [`Role`]
//! until the fleet shuts down, then close the socket.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::connection::{ClientError, Connection};
use crate::counters::Counters;
use crate::roles::Role;
use crate::target::Target;

/// How long shutdown waits for every socket to close.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);
/// How often the controller checks whether clients have settled.
const POLL: Duration = Duration::from_millis(10);

/// One client: where it connects, who it is, and what it does.
pub struct Member {
    /// The server it connects to.
    pub target: Target,
    /// The name it logs in with (`add user`).
    pub name: String,
    /// The room it joins after logging in, if any.
    pub room: Option<Arc<str>>,
    /// What it does once ready.
    pub role: Role,
}

/// How clients connect.
#[derive(Clone)]
pub struct Limits {
    /// Handshakes in flight at once, shared by every fleet given this
    /// semaphore; `None` for no cap.
    pub concurrency: Option<Arc<Semaphore>>,
    /// The longest one handshake (TCP connect to the last ack) may take.
    pub handshake_timeout: Duration,
    /// Where clients wait for [`Fleet::open_gate`], if they do.
    pub gate: Gate,
}

/// Where a client waits for [`Fleet::open_gate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Nowhere: it connects and logs in at once.
    None,
    /// Before connecting (`storm`: everyone connects and logs in together).
    BeforeConnect,
    /// Connected to the namespace, answering pings, before `add user`
    /// (`loginstorm`: everyone logs in together over idle connections).
    /// The concurrency cap applies to connecting only, and the handshake
    /// time recorded is the login's alone: `add user` to its ack.
    BeforeLogin,
}

/// What every client task of a fleet shares.
struct Shared {
    /// How clients connect.
    limits: Limits,
    /// What happened to them.
    counters: Arc<Counters>,
}

/// The controller's handle on a fleet.
pub struct Fleet {
    /// The client tasks.
    tasks: JoinSet<()>,
    /// Turns true to make every client close its socket and end.
    shutdown: watch::Sender<bool>,
    /// Turns true to let gated clients start.
    gate: watch::Sender<bool>,
    /// Shared with the tasks.
    shared: Arc<Shared>,
    /// Clients spawned.
    size: usize,
}

impl Fleet {
    /// An empty fleet.
    pub fn new(limits: Limits, counters: Arc<Counters>) -> Self {
        Self {
            tasks: JoinSet::new(),
            shutdown: watch::channel(false).0,
            gate: watch::channel(false).0,
            shared: Arc::new(Shared { limits, counters }),
            size: 0,
        }
    }

    /// The fleet's counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.shared.counters
    }

    /// Clients spawned so far.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Starts a client.
    pub fn spawn(&mut self, member: Member) {
        let shared = self.shared.clone();
        let shutdown = self.shutdown.subscribe();
        let gate = self.gate.subscribe();
        self.tasks.spawn(run(shared, member, gate, shutdown));
        self.size += 1;
    }

    /// Waits until every gated client is waiting at the gate or has failed
    /// (at most `limit`).
    pub async fn wait_parked(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let counters = self.counters();
        while counters.parked.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed) < self.size
            && Instant::now() < deadline
        {
            tokio::time::sleep(POLL).await;
        }
    }

    /// Lets gated clients start; returns when.
    pub fn open_gate(&self) -> Instant {
        let now = Instant::now();
        self.gate.send_replace(true);
        now
    }

    /// Waits until every client has either completed or failed its
    /// handshake. Each handshake has a timeout, so this ends.
    pub async fn wait_settled(&self) {
        while self.counters().settled() < self.size {
            tokio::time::sleep(POLL).await;
        }
    }

    /// Closes every socket and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        // Clients still at the gate are let through, see the shutdown and end.
        self.gate.send_replace(true);
        let drained = tokio::time::timeout(SHUTDOWN_WAIT, async {
            while let Some(joined) = self.tasks.join_next().await {
                if let Err(err) = joined {
                    eprintln!("a client task failed: {err}");
                }
            }
        });
        if drained.await.is_err() {
            eprintln!("{} clients did not close within {SHUTDOWN_WAIT:?}; dropping them", self.tasks.len());
            self.tasks.abort_all();
        }
    }
}

/// One client's life.
async fn run(
    shared: Arc<Shared>,
    member: Member,
    mut gate: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
) {
    let counters = &shared.counters;
    if shared.limits.gate == Gate::BeforeConnect {
        counters.parked.fetch_add(1, Ordering::Relaxed);
        // An error means the fleet is gone: go ahead, shutdown is seen later.
        let _ = gate.wait_for(|open| *open).await;
    }
    if *shutdown.borrow() {
        return;
    }
    let connection = match shared.limits.gate {
        Gate::BeforeLogin => log_in_at_gate(&shared, &member, gate, &shutdown).await,
        Gate::None | Gate::BeforeConnect => {
            let permit = acquire(&shared).await;
            let started = Instant::now();
            let handshake = timed(&shared, started, handshake(&member)).await;
            drop(permit);
            handshake
        }
    };
    let Some(mut connection) = connection else { return };
    match member.role.play(&mut connection, shutdown).await {
        Ok(()) => {
            counters.disconnected(None);
            connection.close().await;
        }
        Err(err) => counters.disconnected(Some(&err)),
    }
}

/// [`Gate::BeforeLogin`]: connect, wait at the gate answering pings, then
/// log in. A client lost before it logs in counts as a failed handshake.
async fn log_in_at_gate(
    shared: &Shared,
    member: &Member,
    gate: watch::Receiver<bool>,
    shutdown: &watch::Receiver<bool>,
) -> Option<Connection> {
    let counters = &shared.counters;
    let timeout = shared.limits.handshake_timeout;
    let permit = acquire(shared).await;
    let opened = tokio::time::timeout(timeout, Connection::open(&member.target)).await;
    drop(permit);
    let mut connection = match opened {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => return failed(counters, &err),
        Err(_) => return failed(counters, &ClientError::Timeout(timeout)),
    };
    counters.parked.fetch_add(1, Ordering::Relaxed);
    // Idle until the gate opens: pings are answered, so the server keeps
    // the connection however long the controller waits.
    let waited = Role::Idle.play(&mut connection, gate).await;
    counters.parked.fetch_sub(1, Ordering::Relaxed);
    if let Err(err) = waited {
        return failed(counters, &err);
    }
    if *shutdown.borrow() {
        connection.close().await;
        return None;
    }
    let started = Instant::now();
    timed(shared, started, async {
        connection.log_in(&member.name).await?;
        Ok(connection)
    })
    .await
}

/// A permit from the concurrency cap, if there is one.
async fn acquire(shared: &Shared) -> Option<OwnedSemaphorePermit> {
    match &shared.limits.concurrency {
        Some(limiter) => limiter.clone().acquire_owned().await.ok(),
        None => None,
    }
}

/// Runs a handshake under the handshake timeout and counts how it went;
/// its duration is measured from `started`.
async fn timed(
    shared: &Shared,
    started: Instant,
    handshake: impl Future<Output = Result<Connection, ClientError>>,
) -> Option<Connection> {
    let counters = &shared.counters;
    let timeout = shared.limits.handshake_timeout;
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(connection)) => {
            counters.handshake_done(started.elapsed());
            Some(connection)
        }
        Ok(Err(err)) => failed(counters, &err),
        Err(_) => failed(counters, &ClientError::Timeout(timeout)),
    }
}

/// Counts a failed handshake.
fn failed(counters: &Counters, err: &ClientError) -> Option<Connection> {
    counters.handshake_failed(err);
    None
}

/// Connect, `add user`, and `join` if the member has a room.
async fn handshake(member: &Member) -> Result<Connection, ClientError> {
    let mut connection = Connection::open(&member.target).await?;
    connection.log_in(&member.name).await?;
    if let Some(room) = &member.room {
        connection.join(room).await?;
    }
    Ok(connection)
}
