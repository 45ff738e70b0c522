//! The session sweeper: a socket stands on a token (the handshake's, or the
//! one `add user` issued a guest), and a token can fall: revoked by a logout
//! or a password change, its account deleted, or (for a handshake token)
//! expired. Every `session_check` each instance checks the tokens of its own
//! sockets in one pass and disconnects those whose token fell, after a
//! `chat error` `session_ended`. A change made through this instance's API
//! wakes its sweeper at once; the other instances see it on their next round.

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::task::JoinHandle;

use super::emit::{namespace, sign_out};
use super::socket_state::SocketState;
use super::{Chat, ChatError};

/// Checks this instance's sockets' tokens every `session_check`, and when woken.
pub(super) fn spawn_sweeper<A: Adapter>(io: SocketIo<A>, chat: Chat) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(chat.policy().session_check) => {}
                () = chat.sessions_change() => {}
            }
            let ended = sweep(&io, &chat).await;
            if ended > 0 {
                tracing::info!(ended, "disconnected sockets whose token was revoked or expired");
            }
        }
    })
}

/// Disconnects this instance's sockets whose token fell; returns how many.
async fn sweep<A: Adapter>(io: &SocketIo<A>, chat: &Chat) -> usize {
    let Some(namespace) = namespace(io) else { return 0 };
    let sockets = namespace.local().sockets();
    let states: Vec<_> = sockets.iter().map(SocketState::of).collect();
    let standing: Vec<(usize, &crate::auth::Session)> =
        states.iter().enumerate().filter_map(|(i, state)| Some((i, state.session()?))).collect();
    if standing.is_empty() {
        return 0;
    }
    let sessions: Vec<_> = standing.iter().map(|(_, session)| *session).collect();
    let fallen = chat.auth().fallen(&sessions).await;
    let mut ended = 0;
    for ((i, session), fallen) in standing.iter().zip(fallen) {
        if !fallen {
            continue;
        }
        let socket = &sockets[*i];
        tracing::info!(user = %session.identity.user, sid = %socket.id, "session ended: disconnecting");
        sign_out(socket, &ChatError::SessionEnded);
        ended += 1;
    }
    ended
}
