//! [`Policy`]: what the deployment allows, as the chat reads it from the
//! configuration.

use std::time::Duration;

/// What the deployment allows.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Whether `add user` (a guest login) is allowed.
    pub allow_guests: bool,
    /// Largest file a message may carry, in bytes.
    pub max_file_bytes: usize,
    /// The transport cap (MAX_FRAME_BYTES, raised for files): also the most
    /// bytes of one socket's events held waiting for their turn.
    pub max_frame_bytes: usize,
    /// Largest text part of a packet: MAX_FRAME_BYTES, not raised for files.
    pub max_text_bytes: usize,
    /// Events per second one socket may send, sustained.
    pub event_rate: u32,
    /// Events one socket may send in a burst.
    pub event_burst: u32,
    /// Bytes one socket may have delivered per second (size × recipients).
    pub delivery_bytes_per_sec: u64,
    /// Bytes one socket may have delivered at once.
    pub delivery_burst_bytes: u64,
    /// Bytes of files one user may send per day (0: unlimited).
    pub file_quota_bytes: u64,
    /// Rooms one socket may be in.
    pub max_rooms_per_socket: u32,
    /// Sockets one user may have logged in.
    pub max_sockets_per_user: u32,
    /// Sockets one client address may have open on this instance (0: any).
    pub max_connections_per_address: u32,
    /// How long a socket may stay connected without logging in (None: forever).
    pub login_timeout: Option<Duration>,
    /// Most users online for which each login and logout is announced on
    /// its own; above it only the count is told, by `presence` (0: no limit).
    pub announce_max_users: u32,
    /// How often each instance checks its sockets' tokens (revoked,
    /// expired, account gone) and disconnects those that fell.
    pub session_check: Duration,
}
