//! The socket.io side of chatwire: the event contract of docs/PROTOCOL.md.
//!
//! Data flows one way: socket event → its place in the socket's [`queue`]
//! (flood control first, [`extract`]) → its payload parsed once into a
//! domain value ([`request`]) → its turn, and who asks ([`answer`]) → the
//! handler → [`Store`] and broadcast ([`emit`]) → the answer.
//!
//! Every incoming event is one row of [`table`]: its name, its request, its
//! handler, whether it may carry a file. Every event name, outgoing ones
//! too, is a constant of [`events`]. Handlers live in the module of their
//! area:
//!
//! - [`handshake`]: `auth: { token }` at connect, guest policy
//! - [`login`]: `add user`, `users`, disconnection
//! - [`rooms`]: `join`, `leave`, `rooms`
//! - [`messages`]: `message`, `new message`; [`history`]: `history`;
//!   [`target`]: a room or users; [`quota`]: what a message may cost
//! - [`typing`]: `typing`, `stop typing`
//! - [`presence`]: `user joined` / `user left`, the `presence` count, the `users` push
//! - [`avatars`]: `avatar changed`, after an upload over HTTP
//! - [`sessions`]: disconnects sockets whose token was revoked or expired
//! - [`membership`]: local members per room, for `ROUTED_ROOMS`' room channels
//!
//! Handlers are generic over the socketioxide adapter, so the same code
//! serves a single instance and a Redis-backed cluster.

mod answer;
mod avatars;
mod channels;
mod emit;
mod error;
mod events;
mod extract;
mod ghosts;
mod handshake;
mod history;
mod limits;
mod login;
mod login_deadline;
mod membership;
mod messages;
mod msgpack;
mod policy;
mod presence;
pub mod probe;
mod queue;
mod quota;
mod request;
mod rooms;
mod sessions;
mod socket_state;
mod table;
mod target;
mod typing;
mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};
use socketioxide::socket::Sid;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use channels::ONLINE;
pub use emit::{namespace, sign_out};
pub use error::{ChatError, ErrorBody};
pub use ghosts::{GhostWatch, Ghosts};
pub use handshake::on_connect;
pub use history::DEFAULT_HISTORY_PAGE;
pub use limits::MAX_BINARY_ATTACHMENTS;
pub use login::{announce_login, announce_logout, recheck_guests};
pub use membership::{Membership, RoomChannels};
pub use policy::Policy;
pub use presence::PUSH_MAX_USERS;
pub use rooms::{JOIN_HISTORY, announce_member_joined};
pub use wire::MAX_RECIPIENTS;

use crate::auth::Auth;
use crate::domain::{IdGenerator, MessageId, Username};
use crate::net::ConnectionsPerAddress;
use crate::store::{AccountStore, FileStore, SocketKey, Store, Stores};
use extract::ConnectData;
use limits::EventLimiter;
use queue::InOrder;
use socket_state::SocketState;

/// What every handler shares: the store, this instance's identity, the id
/// generator. Cheap to clone; given to socketioxide as state.
#[derive(Clone)]
pub struct Chat(Arc<Inner>);

struct Inner {
    stores: Stores,
    auth: Auth,
    policy: Policy,
    instance: Arc<str>,
    ids: IdGenerator,
    history_limit: usize,
    /// Set by every presence change, cleared by the pusher when it reads the list.
    presence_dirty: AtomicBool,
    presence_changes: Notify,
    /// Avatars changed, waiting to be announced.
    avatar_changes: avatars::Changes,
    /// Wakes the session sweeper after a revocation through this instance.
    sessions_changes: Notify,
    connections: Arc<ConnectionsPerAddress>,
    /// Asks the cluster whether a taken name is held by a dead instance.
    ghosts: Ghosts,
    /// Local members per room, when rooms are routed (set once, at wiring).
    membership: OnceLock<Membership>,
}

impl Chat {
    /// Chat state over `stores`, for the instance named `instance`, whose
    /// store keeps `history_limit` messages per conversation; `ghosts`
    /// looks for dead instances holding a name.
    pub fn new(
        stores: Stores,
        auth: Auth,
        policy: Policy,
        instance: impl Into<String>,
        history_limit: usize,
        ghosts: Ghosts,
    ) -> Self {
        let connections = ConnectionsPerAddress::new(policy.max_connections_per_address);
        table::name_metrics();
        Self(Arc::new(Inner {
            connections,
            stores,
            auth,
            policy,
            instance: Arc::from(instance.into()),
            ids: IdGenerator::new(),
            history_limit,
            presence_dirty: AtomicBool::new(false),
            presence_changes: Notify::new(),
            avatar_changes: avatars::Changes::default(),
            sessions_changes: Notify::new(),
            ghosts,
            membership: OnceLock::new(),
        }))
    }

    /// Routes rooms (`ROUTED_ROOMS`): from now on, joins and leaves keep
    /// `channels` subscribed to the rooms with local members. Call before
    /// the first socket connects; later calls are ignored.
    pub fn route_rooms(&self, channels: Arc<dyn RoomChannels>) {
        if self.0.membership.set(Membership::routed(channels)).is_err() {
            tracing::warn!("rooms are already routed");
        }
    }

    /// Local room membership (counting nothing unless rooms are routed).
    pub fn membership(&self) -> Membership {
        self.0.membership.get().cloned().unwrap_or_default()
    }

    /// Looks for dead instances holding names.
    pub fn ghosts(&self) -> &Ghosts {
        &self.0.ghosts
    }

    /// The shared state store.
    pub fn store(&self) -> &dyn Store {
        self.0.stores.state.as_ref()
    }

    /// Where files sent in messages are kept.
    pub fn files(&self) -> &dyn FileStore {
        self.0.stores.files.as_ref()
    }

    /// Accounts, avatars and counters (the file quota's among them).
    pub fn accounts(&self) -> &dyn AccountStore {
        self.0.stores.accounts.as_ref()
    }

    /// Accounts and tokens.
    pub fn auth(&self) -> &Auth {
        &self.0.auth
    }

    /// What the deployment allows.
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }

    /// This instance's name.
    pub fn instance(&self) -> &str {
        &self.0.instance
    }

    /// The deployment-wide key of one of this instance's sockets.
    pub fn socket_key(&self, sid: Sid) -> SocketKey {
        SocketKey { instance: self.0.instance.clone(), sid: sid.to_string() }
    }

    /// Messages kept per conversation, which is also the largest history page.
    pub fn history_limit(&self) -> usize {
        self.0.history_limit
    }

    fn next_id(&self) -> MessageId {
        self.0.ids.next()
    }

    /// Schedules a `users` push (coalesced with other changes).
    pub fn presence_changed(&self) {
        self.0.presence_dirty.store(true, Ordering::Release);
        self.0.presence_changes.notify_one();
    }

    /// Schedules `avatar changed` for `user`, to everyone online.
    pub fn avatar_changed(&self, user: &Username) {
        self.0.avatar_changes.note(user);
    }

    /// Wakes the session sweeper: a token was revoked or an account changed.
    pub fn sessions_changed(&self) {
        self.0.sessions_changes.notify_one();
    }

    /// Waits for [`Chat::sessions_changed`].
    async fn sessions_change(&self) {
        self.0.sessions_changes.notified().await;
    }

    /// The most users online for which each login and logout is announced
    /// on its own, or `None` for no limit.
    fn announce_limit(&self) -> Option<usize> {
        Some(self.0.policy.announce_max_users as usize).filter(|&limit| limit > 0)
    }

    /// Whether a login or logout with `num_users` online is announced on its
    /// own (above the limit only the count is told).
    fn announces_each(&self, num_users: usize) -> bool {
        self.announce_limit().is_none_or(|limit| num_users <= limit)
    }

    /// Waits for a presence change.
    async fn presence_change(&self) {
        self.0.presence_changes.notified().await;
    }

    /// True (once) if presence changed since the last call. A wake-up whose
    /// change was already included in a push finds this false and is skipped.
    fn take_presence_change(&self) -> bool {
        self.0.presence_dirty.swap(false, Ordering::AcqRel)
    }
}

/// Starts the chat's background tasks (presence's pusher and counter, the
/// avatar announcer, the session sweeper); every wiring (memory or cluster)
/// runs them all and aborts them at shutdown.
pub fn spawn_tasks<A: Adapter>(io: &SocketIo<A>, chat: &Chat) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::from(presence::spawn_tasks(io, chat));
    tasks.push(avatars::spawn_announcer(io.clone(), chat.clone()));
    tasks.push(sessions::spawn_sweeper(io.clone(), chat.clone()));
    tasks
}

/// Connect middleware: attaches per-socket state, admits the socket (the
/// per-address cap, its credentials) and registers every event handler. It
/// runs before the client is told it is connected, so no event can arrive
/// before its handler exists; a refusal becomes the client's `connect_error`
/// (socket.io-client 2.x: `error`), with the refusal's code as message.
pub async fn prepare_socket<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    State(chat): State<Chat>,
    // An `Option`: under PARSER=msgpack a connect without `auth` carries nil.
    ConnectData(auth): ConnectData<Option<handshake::HandshakeAuth>>,
) -> Result<(), handshake::Refusal> {
    let policy = chat.policy();
    let limiter = EventLimiter::new(policy.event_rate, policy.event_burst)
        .with_delivery_allowance(policy.delivery_bytes_per_sec, policy.delivery_burst_bytes)
        .with_in_flight_bytes(policy.max_frame_bytes)
        .with_max_text_bytes(policy.max_text_bytes);
    SocketState::attach(&socket, limiter);
    SocketState::of(&socket).queue().reserve_first();
    handshake::admit(&chat, &socket, auth)
        .await
        .map_err(|refusal| handshake::refused(&io, &socket, refusal))?;
    table::register(&socket);
    socket.on_fallback(on_unknown_event);
    socket.on_disconnect(login::on_disconnect::<A>);
    if let Some(timeout) = policy.login_timeout {
        login_deadline::spawn(io, socket.id, timeout);
    }
    Ok(())
}

/// Unknown events are ignored, but they count against the socket's
/// allowance like any other (`InOrder` refuses and cuts off floods).
async fn on_unknown_event(_turn: InOrder) {}
