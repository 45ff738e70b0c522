//! `message` (room, private, multicast), the demo's `new message`, and `history`.

use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};

use super::extract::{Payload, Reply};
use super::queue::InOrder;
use super::rooms::ensure_member;
use super::socket_state::SocketState;
use super::wire::{DemoMessage, Done, FileUpload, HistoryPageBody, HistoryRequest, Names, SendMessage, Sent};
use std::time::Instant;

use super::events::{MESSAGE, NEW_MESSAGE};
use super::{Chat, ChatError, channels, log_emit, quota};
use crate::domain::{
    Attachment, Conversation, FileName, MediaType, Message, MessageId, RoomName, Target, Text, UserId,
    Username, ValidationError,
};
use crate::metrics::metrics;
use crate::store::{HistoryPage, StoreError, StoredFile};
use bytes::Bytes;

/// Most users one multicast may name.
pub const MAX_RECIPIENTS: usize = 50;
/// Page size of `history` when the client gives no `limit`.
pub const DEFAULT_HISTORY_PAGE: usize = 50;

/// `message` { room | to, text } → `message` to the recipients, ack with the message.
pub(super) async fn on_message<A: Adapter>(
    turn: InOrder,
    State(chat): State<Chat>,
    socket: SocketRef<A>,
    Payload(request): Payload<SendMessage>,
    reply: Reply<A>,
) {
    let _turn = turn.wait().await;
    reply.send(send(&chat, &socket, request).await);
}

async fn send<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    request: Result<SendMessage, ChatError>,
) -> Result<Sent, ChatError> {
    let (from, my_id) = SocketState::of(socket).logged_in_as()?;
    let request = request?;
    let Resolved { target, ids } = resolve_target(chat, socket, request.room, request.to).await?;
    let text = request.text.map(|text| Text::parse(&text)).transpose()?;
    let upload = request.file.map(|file| check_upload(file, chat.policy().max_file_bytes)).transpose()?;
    if text.is_none() && upload.is_none() {
        return Err(ChatError::invalid_payload("a message needs a `text`, a `file`, or both"));
    }
    let file_bytes = upload.as_ref().map_or(0, |(_, _, data)| data.len());
    quota::charge_message(chat, socket, &target, text.as_ref(), file_bytes, &quota_key(&my_id)).await?;
    let id = chat.next_id();
    let file = upload.map(|(name, media, data)| Attachment {
        name,
        mime: media.mime.to_owned(),
        size: data.len() as u64,
        url: format!("/api/files/{id}"),
        data: Some(data),
    });
    let conversation = match &target {
        Target::Room(room) => Conversation::Room(room.clone()),
        Target::User(_) | Target::Users(_) => Conversation::private(&my_id, &ids),
    };
    let message = Message::new(id, from, target, text, file);
    let record = message.without_data();

    // The recipients see `message` (with the file's bytes) before the sender's
    // ack; history and the file are stored alongside delivery, not before it.
    let channels = delivery_channels(&message);
    let deliver = async {
        let started = Instant::now();
        let delivered = socket.to(channels).emit(MESSAGE, &message).await;
        metrics().emit_latency(started.elapsed());
        delivered
    };
    let (delivered, stored, kept) = tokio::join!(
        deliver,
        chat.store().append_message(&conversation, &record),
        keep_file(chat, &conversation, &message),
    );
    log_emit(MESSAGE, delivered);
    if let Err(err) = stored {
        tracing::warn!(id = %message.id, error = %err, "message delivered but not saved to history");
    }
    if let Err(err) = kept {
        tracing::warn!(id = %message.id, error = %err, "file delivered but not kept for history");
    }
    Ok(Sent { message: record })
}

/// The key a sender's file quota is counted under: the one place that says
/// whose quota a message is charged to. An identity's, not a name's: a
/// name's next holder does not inherit it, nor can its holder shed it by
/// giving the name up.
fn quota_key(id: &UserId) -> String {
    format!("files:{id}")
}

/// Checks a file: its size, its name, and its type as read from the bytes.
fn check_upload(file: FileUpload, max_bytes: usize) -> Result<(FileName, MediaType, Bytes), ChatError> {
    if file.data.len() > max_bytes {
        return Err(ValidationError::FileTooLarge(max_bytes).into());
    }
    let name = FileName::parse(&file.name)?;
    let media = MediaType::sniff(&file.data)?;
    if file.claimed_type.as_deref().is_some_and(|claimed| claimed != media.mime) {
        tracing::debug!(claimed = ?file.claimed_type, detected = media.mime, "file type differs from the sender's claim");
    }
    Ok((name, media, file.data))
}

/// Stores a message's file so history's URL can serve it.
async fn keep_file(chat: &Chat, conversation: &Conversation, message: &Message) -> Result<(), StoreError> {
    let Some(file) = &message.file else { return Ok(()) };
    let Some(bytes) = &file.data else { return Ok(()) };
    let stored = StoredFile {
        id: message.id,
        name: file.name.as_str().to_owned(),
        mime: file.mime.clone(),
        conversation: conversation.clone(),
        bytes: bytes.clone(),
    };
    chat.files().put_file(&stored).await
}

/// Where a message goes, and who its private recipients are.
pub(super) struct Resolved {
    /// The room or the users, as named.
    pub target: Target,
    /// The recipients' identities (private and multicast; empty for a room).
    pub ids: Vec<UserId>,
}

/// Parses and checks where a message (or a typing notice) goes: a room the
/// socket joined, or online users (whose identities the message's
/// conversation belongs to).
pub(super) async fn resolve_target<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    room: Option<String>,
    to: Option<Names>,
) -> Result<Resolved, ChatError> {
    match (room, to) {
        (Some(room), None) => {
            let room = RoomName::parse(&room)?;
            ensure_member(socket, &room)?;
            Ok(Resolved { target: Target::Room(room), ids: Vec::new() })
        }
        (None, Some(Names::One(name))) => {
            let online = chat.store().find_online(&[Username::parse(&name)?]).await?;
            let (user, id) = online.into_iter().next().ok_or(ChatError::UnknownUser(name))?;
            Ok(Resolved { target: Target::User(user), ids: vec![id] })
        }
        (None, Some(Names::Many(names))) => {
            let names = parse_names(&names)?;
            let (users, ids) = chat.store().find_online(&names).await?.into_iter().unzip();
            Ok(Resolved { target: Target::Users(users), ids })
        }
        (Some(_), Some(_)) => Err(ChatError::invalid_payload("give either `room` or `to`, not both")),
        (None, None) => Err(ChatError::invalid_payload("say where the message goes: `room` or `to`")),
    }
}

/// Who holds these names now: the online user's identity (a guest session
/// or an account), else the account registered under the name. `None` if
/// any name has neither: an ended guest session's conversations stay
/// unreachable, and a name taken later starts with nothing.
async fn identities_of(chat: &Chat, names: &[Username]) -> Result<Option<Vec<UserId>>, ChatError> {
    let holders = chat.store().holders_of(names).await?;
    let mut ids = Vec::with_capacity(names.len());
    for (name, holder) in names.iter().zip(holders) {
        let id = match holder {
            Some((_, proof)) => proof.user_id(),
            None => match chat.auth().account(name).await? {
                Some(account) => UserId::account(&account.id),
                None => return Ok(None),
            },
        };
        ids.push(id);
    }
    Ok(Some(ids))
}

/// A recipient list: 1 to [`MAX_RECIPIENTS`] valid names, duplicates dropped.
fn parse_names(raw: &[String]) -> Result<Vec<Username>, ChatError> {
    if raw.is_empty() {
        return Err(ChatError::invalid_payload("`to` must name at least one user"));
    }
    if raw.len() > MAX_RECIPIENTS {
        return Err(ChatError::TooManyRecipients(MAX_RECIPIENTS));
    }
    let mut names: Vec<Username> = Vec::with_capacity(raw.len());
    for name in raw {
        let name = Username::parse(name)?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// The socket.io rooms a message is emitted to. Private and multicast
/// messages also reach the sender's other sockets (other tabs stay in sync);
/// the sending socket itself gets the ack instead.
fn delivery_channels(message: &Message) -> Vec<String> {
    match (&message.room, &message.to) {
        (Some(room), _) => vec![channels::room(room)],
        (None, Some(to)) => {
            let mut users: Vec<String> = to.names().iter().map(channels::user).collect();
            users.push(channels::user(&message.from));
            users
        }
        (None, None) => Vec::new(),
    }
}

/// The demo's `new message` (text) → `new message` { username, message } to everyone else.
pub(super) async fn on_new_message<A: Adapter>(
    turn: InOrder,
    socket: SocketRef<A>,
    Payload(text): Payload<String>,
    reply: Reply<A>,
) {
    let _turn = turn.wait().await;
    let result = async {
        let user = SocketState::of(&socket).logged_in()?;
        let text = Text::parse(&text?)?;
        let event = DemoMessage { username: &user, message: text.as_str() };
        log_emit(NEW_MESSAGE, socket.to(channels::ONLINE).emit(NEW_MESSAGE, &event).await);
        Ok(Done {})
    };
    reply.send(result.await);
}

/// `history` { room | with, before?, after?, limit? } → messages, oldest first.
pub(super) async fn on_history<A: Adapter>(
    turn: InOrder,
    State(chat): State<Chat>,
    socket: SocketRef<A>,
    Payload(request): Payload<HistoryRequest>,
    reply: Reply<A>,
) {
    let _turn = turn.wait().await;
    reply.send(history(&chat, &socket, request).await);
}

async fn history<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    request: Result<HistoryRequest, ChatError>,
) -> Result<HistoryPageBody, ChatError> {
    let (_, me) = SocketState::of(socket).logged_in_as()?;
    let request = request?;
    let names = match &request.with {
        Some(Names::One(name)) => Some(vec![Username::parse(name)?]),
        Some(Names::Many(names)) => Some(parse_names(names)?),
        None => None,
    };
    let conversation = match (request.room, names) {
        (Some(room), None) => {
            let room = RoomName::parse(&room)?;
            ensure_member(socket, &room)?;
            Conversation::Room(room)
        }
        (None, Some(names)) => match identities_of(chat, &names).await? {
            Some(ids) => Conversation::private(&me, &ids),
            // Someone named holds no identity now (a guest whose session
            // ended): nothing of theirs is anyone's to read.
            None => return Ok(HistoryPageBody { messages: Vec::new() }),
        },
        (Some(_), Some(_)) => {
            return Err(ChatError::invalid_payload("give either `room` or `with`, not both"));
        }
        (None, None) => return Err(ChatError::invalid_payload("say which history: `room` or `with`")),
    };
    let max = chat.history_limit();
    let limit = match request.limit {
        None => DEFAULT_HISTORY_PAGE.min(max),
        Some(n) if (1..=max as u64).contains(&n) => n as usize,
        Some(_) => return Err(ChatError::invalid_payload(format!("`limit` must be between 1 and {max}"))),
    };
    let cursor = |raw: Option<String>| raw.map(|id| MessageId::parse(&id)).transpose();
    let page = HistoryPage { before: cursor(request.before)?, after: cursor(request.after)?, limit };
    Ok(HistoryPageBody { messages: chat.store().history(&conversation, &page).await? })
}
