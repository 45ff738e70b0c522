//! `add user`, `users` and disconnection: who is online.

use rand::RngCore;
use sha2::{Digest, Sha256};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};
use socketioxide::socket::{DisconnectReason, Sid};

use super::answer::{Guest, LoggedIn};
use super::emit::{log_emit, namespace, online, sign_out};
use super::events::{LOGIN, MEMBER_LEFT};
use super::queue::InOrder;
use super::request::Request;
use super::socket_state::SocketState;
use super::wire::{AddUser, LoginAck, LoginEvent, MemberEvent, UsersList, UsersRequest};
use super::{Chat, ChatError, channels, presence};
use crate::auth::{Identity, IdentityKind, Session};
use crate::domain::Username;
use crate::domain::roster::RosterQuery;
use crate::store::{Login, Logout, OwnerProof, StoreError};

/// `add user`'s request: a name, and the secret of an earlier login to
/// take it back with.
pub(super) struct NewLogin {
    user: Username,
    session: Option<SessionToken>,
}

impl Request for NewLogin {
    type Wire = AddUser;

    fn from_wire(request: AddUser) -> Result<Self, ChatError> {
        let (name, session) = match request {
            AddUser::Name(name) => (name, None),
            AddUser::WithSession { username, session } => (username, session),
        };
        let user = Username::parse(&name)?;
        Ok(Self { user, session: session.as_deref().map(SessionToken::parse).transpose()? })
    }

    fn malformed(_: ChatError) -> ChatError {
        ChatError::invalid_payload("`add user` takes a name, or { username, session }")
    }
}

/// `add user` (name | { username, session }) → `login` to the socket, and
/// `user joined` to everyone else (up to the announce limit).
pub(super) async fn add_user<A: Adapter>(guest: Guest<A>, request: NewLogin) -> Result<LoginAck, ChatError> {
    let Guest { chat, socket } = guest;
    let NewLogin { user, session } = request;
    // While the account store is unreachable (a Redis outage) guests are let
    // in, and checked again once it is back: a registered name always wins.
    let verified = match chat.auth().is_registered(&user).await {
        Ok(true) => return Err(ChatError::NameRegistered(user.to_string())),
        Ok(false) => true,
        Err(err) => {
            tracing::warn!(%user, error = %err, "cannot tell whether the name is registered; checking again later");
            false
        }
    };
    let session = session.unwrap_or_else(SessionToken::generate);
    let identity = Identity { user, kind: IdentityKind::Guest(session.proof()) };
    let login = log_in(&chat, &socket, &identity).await?;
    if !verified {
        SocketState::of(&socket).mark_unverified();
    }
    let token = chat.auth().guest_token(&login.user, &identity.proof());
    match chat.auth().verify(&token) {
        // The socket stands on its session secret, not the token: it does
        // not expire with it, but revoking the token (logout) ends it.
        Ok(session) => SocketState::of(&socket).set_session(Session { expires_at: u64::MAX, ..session }),
        Err(err) => tracing::error!(error = %err, "a token just issued does not verify"),
    }
    Ok(LoginAck { username: login.user, num_users: login.num_users, session: session.0, token })
}

/// Logs a socket in as `identity`: presence, the user's channels, `login`
/// to the socket and, if the user just came online, `user joined` to the
/// others. Shared by `add user` and the handshake's token.
pub(super) async fn log_in<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    identity: &Identity,
) -> Result<Login, ChatError> {
    let state = SocketState::of(socket);
    let key = chat.socket_key(socket.id);
    let login = match chat.store().login(&identity.user, &identity.proof(), &key).await {
        // Held by sockets of an instance that died? Then the name is free
        // once that instance is purged: what a frontend that logs in again
        // after reconnecting elsewhere needs. A live holder still wins.
        Err(StoreError::NameTaken(_)) if chat.ghosts().reap().await => {
            let login = chat.store().login(&identity.user, &identity.proof(), &key).await?;
            tracing::info!(user = %login.user, "name free on a second look (its holder was a dead instance, or left)");
            login
        }
        result => result?,
    };
    let max_sockets = chat.policy().max_sockets_per_user;
    if login.sockets > max_sockets as usize {
        // Not the user's first socket, so nobody was told it came online.
        chat.store().logout(&key).await?;
        return Err(ChatError::TooManySockets(max_sockets));
    }
    state.set_user(login.user.clone(), identity.id());
    let rooms = [channels::ONLINE.to_owned(), channels::user(&login.user)];
    // Listening to the rooms' channels before `login`: a message sent to
    // the user once it is answered must reach this instance.
    chat.membership().enter(rooms.clone()).await;
    socket.join(rooms);
    log_emit(LOGIN, socket.emit(LOGIN, &LoginEvent { num_users: login.num_users }));
    if login.first_socket {
        presence::user_joined(chat, socket.to(channels::ONLINE), &login.user, login.num_users).await;
    }
    tracing::info!(user = %login.user, sid = %socket.id, account = identity.is_account(), first_socket = login.first_socket, "logged in");
    Ok(login)
}

/// `users` takes nothing (the first page), or which page.
impl Request for RosterQuery {
    type Wire = Option<UsersRequest>;

    fn from_wire(request: Option<UsersRequest>) -> Result<Self, ChatError> {
        let request = request.unwrap_or_default();
        Ok(RosterQuery::parse(request.after.as_deref(), request.prefix.as_deref(), request.limit)?)
    }

    fn missing() -> Result<Self, ChatError> {
        Self::from_wire(None)
    }
}

/// `users` (nothing, or `{ after?, prefix?, limit? }`) → a page of the
/// online list, and the count.
pub(super) async fn users<A: Adapter>(me: LoggedIn<A>, query: RosterQuery) -> Result<UsersList, ChatError> {
    let store = me.chat.store();
    let (page, num_users) = tokio::try_join!(store.roster(&query), store.count_online())?;
    Ok(UsersList::new(page.users, num_users, page.more))
}

/// Disconnection: the socket leaves presence and its rooms; if it was the
/// user's last socket, everyone gets `user left`.
pub(super) async fn on_disconnect<A: Adapter>(
    turn: InOrder,
    State(chat): State<Chat>,
    io: SocketIo<A>,
    socket: SocketRef<A>,
    reason: DisconnectReason,
) {
    let _turn = turn.wait().await;
    let membership = chat.membership();
    if membership.is_counted() {
        membership.leave(socket.rooms().into_iter().map(|room| room.to_string()));
    }
    let Some(user) = SocketState::of(&socket).user().cloned() else { return };
    match chat.store().logout(&chat.socket_key(socket.id)).await {
        Ok(Some(logout)) => {
            tracing::info!(%user, sid = %socket.id, ?reason, last_socket = logout.last_socket, "logged out");
            announce_logout(&chat, &io, &logout, Some(socket.id)).await;
        }
        // At shutdown the instance has already left the cluster.
        Ok(None) if namespace(&io).is_none() => {
            tracing::debug!(%user, sid = %socket.id, "disconnected at shutdown")
        }
        Ok(None) => tracing::warn!(%user, sid = %socket.id, "disconnected socket was not in presence"),
        Err(err) => tracing::warn!(%user, sid = %socket.id, error = %err, "could not record logout"),
    }
}

/// Tells the others that a socket (or, after a crash, many) went away:
/// `member left` to each room the user is no longer in, and `user left` to
/// everyone if the user is now offline. `except` is the departing socket.
pub async fn announce_logout<A: Adapter>(
    chat: &Chat,
    io: &SocketIo<A>,
    logout: &Logout,
    except: Option<Sid>,
) {
    let Some(namespace) = namespace(io) else { return };
    let except: Vec<String> = except.iter().map(Sid::to_string).collect();
    for room in &logout.left_rooms {
        let event = MemberEvent { room, username: &logout.user };
        log_emit(
            MEMBER_LEFT,
            namespace.clone().to(channels::room(room)).except(except.clone()).emit(MEMBER_LEFT, &event).await,
        );
    }
    if logout.last_socket {
        presence::user_left(
            chat,
            namespace.to(channels::ONLINE).except(except),
            &logout.user,
            logout.num_users,
        )
        .await;
    }
}

/// Checks the guests who logged in while the account store was unreachable:
/// those who took a registered name are signed out (`chat error`
/// `name_registered`). Returns how many are still unchecked.
pub async fn recheck_guests<A: Adapter>(io: &SocketIo<A>, chat: &Chat) -> usize {
    let mut unchecked = 0;
    let Some(namespace) = namespace(io) else { return 0 };
    for socket in namespace.local().sockets() {
        let state = SocketState::of(&socket);
        let Some(user) = state.user().filter(|_| state.is_unverified()).cloned() else { continue };
        match chat.auth().is_registered(&user).await {
            Ok(false) => state.mark_verified(),
            Ok(true) => {
                tracing::warn!(%user, sid = %socket.id, "a guest took a registered name during an outage: signing it out");
                sign_out(&socket, &ChatError::NameRegistered(user.to_string()));
            }
            Err(_) => unchecked += 1,
        }
    }
    unchecked
}

/// Tells every logged-in socket of the deployment that `user` is online:
/// after a resync, for users the rest of the deployment had not seen.
pub async fn announce_login<A: Adapter>(chat: &Chat, io: &SocketIo<A>, user: &Username, num_users: usize) {
    let Some(online) = online(io) else { return };
    presence::user_joined(chat, online, user, num_users).await;
}

/// The secret that lets a client take its name back: 128 random bits, hex.
struct SessionToken(String);

impl SessionToken {
    fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex(&bytes))
    }

    fn parse(raw: &str) -> Result<Self, ChatError> {
        if raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ChatError::invalid_payload("`session` must be the value returned by an earlier login"))
        }
    }

    /// What the store keeps: a hash, so a leaked store doesn't leak sessions.
    fn proof(&self) -> OwnerProof {
        OwnerProof(hex(&Sha256::digest(self.0.as_bytes())))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
