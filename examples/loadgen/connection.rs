//! One socket.io client: the handshake (engine.io open, namespace connect,
//! `add user`, `join`), packets in and out, and a clean close. The owning
//! task drives it alone, so nothing is locked.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::protocol::{self, CONNECT, MessageEncoder, PING, PONG};
use crate::target::Target;
use crate::ws::{Incoming, WebSocket};

/// How long a close may take before the socket is simply dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Why a client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be made (refused, out of ports...).
    #[error("tcp connect: {0}")]
    Connect(#[source] io::Error),
    /// The websocket upgrade or a later read or write failed.
    #[error("websocket: {0}")]
    WebSocket(#[source] io::Error),
    /// The handshake took longer than allowed.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The server closed the connection or disconnected the socket.
    #[error("closed by the server")]
    Closed,
    /// The server sent something the protocol does not allow here.
    #[error("unexpected packet: {0}")]
    Unexpected(String),
    /// The server answered a request with `ok: false` (or refused the namespace).
    #[error("`{event}` refused: {reason}")]
    Refused {
        /// The event that was refused.
        event: &'static str,
        /// The server's reason.
        reason: String,
    },
}

impl From<io::Error> for ClientError {
    fn from(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::UnexpectedEof => ClientError::Closed,
            _ => ClientError::WebSocket(err),
        }
    }
}

/// A connected socket.io client on namespace `/`.
pub struct Connection {
    /// The websocket.
    socket: WebSocket,
    /// The id the next ack-requesting event gets.
    next_ack: u64,
    /// Reused to encode outgoing messages.
    scratch: String,
}

impl Connection {
    /// Opens a websocket to `target` and connects to namespace `/`.
    pub async fn open(target: &Target) -> Result<Self, ClientError> {
        let tcp = TcpStream::connect(target.addr()).await.map_err(ClientError::Connect)?;
        // Latency is measured per message: never let Nagle hold one back.
        tcp.set_nodelay(true).map_err(ClientError::Connect)?;
        let socket = WebSocket::connect(tcp, &target.addr().to_string(), Target::PATH).await?;
        let mut connection = Self { socket, next_ack: 0, scratch: String::with_capacity(128) };
        let open = connection.read_packet().await?;
        if !open.starts_with(b"0") {
            return Err(ClientError::Unexpected(protocol::preview(&open)));
        }
        connection.send(CONNECT).await?;
        loop {
            let packet = connection.read_packet().await?;
            if packet.starts_with(b"40") {
                return Ok(connection);
            }
            if let Some(reason) = packet.strip_prefix(b"44") {
                return Err(ClientError::Refused { event: "connect", reason: protocol::preview(reason) });
            }
        }
    }

    /// `add user` with `name`, waiting for a successful ack.
    pub async fn log_in(&mut self, name: &str) -> Result<(), ClientError> {
        self.request("add user", &protocol::json_string(name)).await
    }

    /// `join` `{ room }`, waiting for a successful ack.
    pub async fn join(&mut self, room: &str) -> Result<(), ClientError> {
        let arg = format!("{{\"room\":{}}}", protocol::json_string(room));
        self.request("join", &arg).await
    }

    /// Sends an event with an ack id and waits for that ack, skipping the
    /// events that arrive meanwhile.
    async fn request(&mut self, event: &'static str, arg_json: &str) -> Result<(), ClientError> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send(protocol::request(id, event, arg_json).as_bytes()).await?;
        loop {
            let packet = self.read_packet().await?;
            if let Some(body) = protocol::ack_body(&packet, id) {
                return protocol::check_ack(body).map_err(|reason| ClientError::Refused { event, reason });
            }
        }
    }

    /// Waits for the next socket.io packet (handshake only: it copies).
    async fn read_packet(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Some(packet) = self.next_packet()? {
                return Ok(packet.to_vec());
            }
            self.flush().await?;
            self.receive().await?;
        }
    }

    /// Waits for more bytes from the server. Cancel-safe, so it can sit in
    /// a `select!`; then take the packets with [`Connection::next_packet`].
    pub async fn receive(&mut self) -> Result<(), ClientError> {
        Ok(self.socket.fill().await?)
    }

    /// The next socket.io packet among the bytes received, if a whole one
    /// is there. engine.io pings are answered (queued: call
    /// [`Connection::flush`] after the batch). The server closing the
    /// connection or disconnecting the socket is an error.
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, ClientError> {
        let span = loop {
            let Incoming::Text(span) = self.socket.next_message()? else { return Ok(None) };
            let packet = self.socket.text(&span);
            if packet == PING {
                self.socket.queue_text(PONG);
                continue;
            }
            // engine.io close (`1`) or socket.io disconnect (`41`).
            if packet == b"1" || packet.starts_with(b"41") {
                return Err(ClientError::Closed);
            }
            break span;
        };
        Ok(Some(self.socket.text(&span)))
    }

    /// Queues a `message` stamped with the current time.
    pub fn queue_message(&mut self, encoder: &MessageEncoder) {
        encoder.encode_into(&mut self.scratch, protocol::unix_micros());
        self.socket.queue_text(self.scratch.as_bytes());
    }

    /// Sends one packet now.
    async fn send(&mut self, packet: &[u8]) -> Result<(), ClientError> {
        self.socket.queue_text(packet);
        self.flush().await
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        Ok(self.socket.flush().await?)
    }

    /// Closes the websocket: sends a close frame and waits (briefly) for
    /// the server to close. Errors are ignored: the connection is going
    /// away either way, and a late close says nothing about the server.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(CLOSE_WAIT, self.socket.close()).await;
    }
}
