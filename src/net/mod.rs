//! The network side of a client connection, shared by the HTTP edge, the
//! TLS listener and the chat: who the client is ([`ClientAddr`], keyed for
//! limits by [`AddressKey`]), how many connections each address holds
//! ([`ConnectionsPerAddress`]), and the TCP settings of an accepted
//! connection ([`no_delay`]). It depends on no other chatwire module.

mod client_addr;
mod connections;

pub(crate) use client_addr::peer_of;
pub use client_addr::{AddressKey, ClientAddr};
pub use connections::{AddressSlot, ConnectionsPerAddress};

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

    use tokio::net::TcpListener;

    use super::*;

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
