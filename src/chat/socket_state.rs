//! [`SocketState`]: what this instance remembers about one of its sockets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Socket;

use super::ChatError;
use super::limits::{Admission, EventLimiter, PacketSize};
use super::queue::Queue;
use crate::auth::Session;
use crate::domain::{UserId, Username};
use crate::metrics::SocketGauge;
use crate::net::AddressSlot;

/// Per-socket state, stored in the socket's extensions when it connects.
pub struct SocketState {
    /// Who the socket is logged in as; set once, by `add user` or a token.
    user: OnceLock<Username>,
    /// The identity behind that name: what private conversations belong to.
    id: OnceLock<UserId>,
    /// The token the socket stands on (the handshake's, or the one `add
    /// user` issued), checked periodically: revoking it disconnects the socket.
    session: OnceLock<Session>,
    /// The handshake's verified token, until the connect handler logs it in.
    pending: Mutex<Option<Session>>,
    /// A guest let in while it could not be checked against the accounts.
    unverified: AtomicBool,
    /// The socket's events, waiting for their turn.
    queue: Arc<Queue>,
    /// The socket's event allowance.
    limiter: Mutex<EventLimiter>,
    /// Its place in the per-address connection count, freed with the socket.
    address_slot: OnceLock<AddressSlot>,
    /// Counts the socket in `/metrics` while it exists.
    _gauge: SocketGauge,
}

impl Default for SocketState {
    fn default() -> Self {
        Self::new(EventLimiter::new(1, 1))
    }
}

impl SocketState {
    fn new(limiter: EventLimiter) -> Self {
        Self {
            user: OnceLock::new(),
            id: OnceLock::new(),
            session: OnceLock::new(),
            pending: Mutex::default(),
            unverified: AtomicBool::new(false),
            queue: Arc::default(),
            limiter: Mutex::new(limiter),
            address_slot: OnceLock::new(),
            _gauge: SocketGauge::new(),
        }
    }

    /// Attaches fresh state to a socket that is connecting.
    pub fn attach<A: Adapter>(socket: &SocketRef<A>, limiter: EventLimiter) {
        socket.extensions.insert(Arc::new(Self::new(limiter)));
    }

    /// The socket's queue of events.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Keeps the socket's per-address slot for as long as the socket lives.
    pub fn hold_address_slot(&self, slot: AddressSlot) {
        let _ = self.address_slot.set(slot);
    }

    /// Whether a packet's text part is within the cap (see
    /// [`EventLimiter::text_fits`]).
    pub fn text_fits(&self, size: PacketSize) -> bool {
        self.limiter.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).text_fits(size)
    }

    /// Decides whether the socket may send one more event, of `size`, now.
    pub fn admit(&self, size: PacketSize) -> Admission {
        let backlog = self.queue.backlog();
        self.limiter.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).admit(backlog, size)
    }

    /// Charges a message's delivery against the socket's byte allowance
    /// (see [`EventLimiter::charge_delivery`]).
    pub fn charge_delivery(&self, cost: u64) -> Result<(), std::time::Duration> {
        self.limiter.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).charge_delivery(cost)
    }

    /// The state of a socket.
    pub fn of<A: Adapter>(socket: &SocketRef<A>) -> Arc<Self> {
        Self::lookup(socket.extensions.get::<Arc<Self>>(), socket.id)
    }

    pub(super) fn of_socket<A: Adapter>(socket: &Arc<Socket<A>>) -> Arc<Self> {
        Self::lookup(socket.extensions.get::<Arc<Self>>(), socket.id)
    }

    fn lookup(found: Option<Arc<Self>>, sid: socketioxide::socket::Sid) -> Arc<Self> {
        found.unwrap_or_else(|| {
            // The connect middleware attaches state before any event can arrive.
            tracing::error!(%sid, "socket has no state attached; treating it as logged out");
            Arc::default()
        })
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&Username> {
        self.user.get()
    }

    /// Records the login. Returns false if the socket was already logged in.
    pub fn set_user(&self, user: Username, id: UserId) -> bool {
        self.id.set(id).is_ok() && self.user.set(user).is_ok()
    }

    /// Records the token the socket stands on.
    pub fn set_session(&self, session: Session) {
        let _ = self.session.set(session);
    }

    /// The token the socket stands on, once logged in.
    pub fn session(&self) -> Option<&Session> {
        self.session.get()
    }

    /// Remembers the handshake's verified token.
    pub fn set_pending(&self, session: Session) {
        *self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(session);
    }

    /// Takes the handshake's token, if any.
    pub fn take_pending(&self) -> Option<Session> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    /// Notes a guest let in without checking the accounts.
    pub fn mark_unverified(&self) {
        self.unverified.store(true, Ordering::Release);
    }

    /// Notes that the check was made.
    pub fn mark_verified(&self) {
        self.unverified.store(false, Ordering::Release);
    }

    /// True for a guest still to be checked against the accounts.
    pub fn is_unverified(&self) -> bool {
        self.unverified.load(Ordering::Acquire)
    }

    /// The logged-in user and identity, or `not_logged_in`.
    pub fn logged_in_as(&self) -> Result<(Username, UserId), ChatError> {
        match (self.user.get(), self.id.get()) {
            (Some(user), Some(id)) => Ok((user.clone(), id.clone())),
            _ => Err(ChatError::NotLoggedIn),
        }
    }
}
