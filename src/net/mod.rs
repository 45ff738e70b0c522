//! The network side of a client connection, shared by the HTTP edge, the
//! TLS listener and the chat: who the client is ([`ClientAddr`], keyed for
//! limits by [`AddressKey`]), how many connections each address holds
//! ([`ConnectionsPerAddress`]), the listening sockets ([`listen`]) and the
//! TCP settings of an accepted connection ([`no_delay`]). It depends on no
//! other chatwire module.

mod client_addr;
mod connections;

pub(crate) use client_addr::peer_of;
pub use client_addr::{AddressKey, ClientAddr};
pub use connections::{AddressSlot, ConnectionsPerAddress};

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel may hold for `accept` on a listening socket (it
/// caps this at `net.core.somaxconn`, 4,096 on current Linux). tokio's
/// `TcpListener::bind` asks for 128, as the standard library does: in a
/// login storm of 2,000 clients over two instances the queue overflowed
/// about 1,000 times a run, and each of those clients waited for its own
/// SYN retransmission a second later (the storm's p99 was 1.1 to 1.3 s,
/// and 2 s once in ten runs).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listening TCP socket on `addr` with [`LISTEN_BACKLOG`] (and, off
/// Windows, `SO_REUSEADDR`, as tokio's `bind` sets: a restart finds the port
/// free while the last run's connections are in TIME_WAIT; on Windows it
/// would let another process take the port).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Turns Nagle's algorithm off on an accepted connection, as Node's HTTP
/// server does: a chat event is a small frame that should leave at once, not
/// wait for the peer to acknowledge the previous one (up to its delayed-ACK
/// timer, 40 ms on Linux).
pub fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(error = %err, "could not set TCP_NODELAY");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[tokio::test]
    async fn a_listener_binds_a_free_port_and_accepts() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        listener.accept().await.unwrap();
        assert!(listen(addr).is_err(), "the port is taken while it listens");
    }

    #[tokio::test]
    async fn accepted_connections_send_small_frames_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();
        assert!(!accepted.nodelay().unwrap(), "Nagle is on by default");
        no_delay(&mut accepted);
        assert!(accepted.nodelay().unwrap());
    }
}
