//! `message` (room, private, multicast) and the demo's `new message`.

use std::time::Instant;

use bytes::Bytes;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::answer::LoggedIn;
use super::emit::log_emit;
use super::events::{MESSAGE, NEW_MESSAGE};
use super::request::Request;
use super::target::{self, ROOM_OR_TO, Resolved};
use super::wire::{DemoMessage, Done, FileUpload, SendMessage, Sent};
use super::{Chat, ChatError, channels, quota};
use crate::domain::{
    Attachment, Conversation, FileName, MediaType, Message, MessageId, Target, Text, UserId, ValidationError,
};
use crate::metrics::metrics;
use crate::store::{StoreError, StoredFile};

/// `message`'s request: where it goes, and a text, a file, or both.
pub(super) struct NewMessage {
    target: Target,
    text: Option<Text>,
    file: Option<Upload>,
}

/// A file sent with a message, its name and type checked (its size is
/// checked against MAX_FILE_BYTES by the handler).
struct Upload {
    name: FileName,
    media: MediaType,
    data: Bytes,
}

impl Request for NewMessage {
    type Wire = SendMessage;

    fn from_wire(request: SendMessage) -> Result<Self, ChatError> {
        let target = target::parse(request.room, request.to, &ROOM_OR_TO)?;
        let text = request.text.map(|text| Text::parse(&text)).transpose()?;
        let file = request.file.map(Upload::from_wire).transpose()?;
        if text.is_none() && file.is_none() {
            return Err(ChatError::invalid_payload("a message needs a `text`, a `file`, or both"));
        }
        Ok(Self { target, text, file })
    }
}

impl Upload {
    /// Checks a file's name, and its type as read from the bytes.
    fn from_wire(file: FileUpload) -> Result<Self, ChatError> {
        let name = FileName::parse(&file.name)?;
        let media = MediaType::sniff(&file.data)?;
        if file.claimed_type.as_deref().is_some_and(|claimed| claimed != media.mime) {
            tracing::debug!(claimed = ?file.claimed_type, detected = media.mime, "file type differs from the sender's claim");
        }
        Ok(Self { name, media, data: file.data })
    }

    /// The file as message `id` carries it.
    fn attachment(self, id: MessageId) -> Attachment {
        let Self { name, media, data } = self;
        let url = format!("/api/files/{id}");
        Attachment { name, mime: media.mime.to_owned(), size: data.len() as u64, url, data: Some(data) }
    }
}

/// `message` { room | to, text?, file? } → `message` to the recipients, ack with the message.
pub(super) async fn send<A: Adapter>(me: LoggedIn<A>, request: NewMessage) -> Result<Sent, ChatError> {
    let LoggedIn { chat, socket, user: from, id: my_id } = me;
    let Resolved { target, ids } = target::resolve(&chat, &socket, request.target).await?;
    let file_bytes = request.file.as_ref().map_or(0, |file| file.data.len());
    let max_bytes = chat.policy().max_file_bytes;
    if file_bytes > max_bytes {
        return Err(ValidationError::FileTooLarge(max_bytes).into());
    }
    let text = request.text;
    quota::charge_message(&chat, &socket, &target, text.as_ref(), file_bytes, &quota_key(&my_id)).await?;
    let id = chat.next_id();
    let file = request.file.map(|upload| upload.attachment(id));
    let conversation = match &target {
        Target::Room(room) => Conversation::Room(room.clone()),
        Target::User(_) | Target::Users(_) => Conversation::private(&my_id, &ids),
    };
    let message = Message::new(id, from, target, text, file);
    Ok(Sent { message: deliver(&chat, &socket, &conversation, message).await })
}

/// Delivers a message and keeps it: the recipients see `message` (with the
/// file's bytes) before the sender's ack; history and the file are stored
/// alongside delivery, not before it. Returns the message as history keeps it.
async fn deliver<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    conversation: &Conversation,
    message: Message,
) -> Message {
    let record = message.without_data();
    let delivery = async {
        let started = Instant::now();
        let delivered = socket.to(delivery_channels(&message)).emit(MESSAGE, &message).await;
        metrics().emit_latency(started.elapsed());
        delivered
    };
    let (delivered, stored, kept) = tokio::join!(
        delivery,
        chat.store().append_message(conversation, &record),
        keep_file(chat, conversation, &message),
    );
    log_emit(MESSAGE, delivered);
    if let Err(err) = stored {
        tracing::warn!(id = %message.id, error = %err, "message delivered but not saved to history");
    }
    if let Err(err) = kept {
        tracing::warn!(id = %message.id, error = %err, "file delivered but not kept for history");
    }
    record
}

/// The key a sender's file quota is counted under: the one place that says
/// whose quota a message is charged to. An identity's, not a name's: a
/// name's next holder does not inherit it, nor can its holder shed it by
/// giving the name up.
fn quota_key(id: &UserId) -> String {
    format!("files:{id}")
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

/// The socket.io rooms a message is emitted to. Private and multicast
/// messages also reach the sender's other sockets (other tabs stay in sync);
/// the sending socket itself gets the ack instead.
fn delivery_channels(message: &Message) -> Vec<String> {
    let mut channels = channels::of(&message.target);
    if message.target.room().is_none() {
        channels.push(channels::user(&message.from));
    }
    channels
}

/// The demo's `new message` takes a bare text.
impl Request for Text {
    type Wire = String;

    fn from_wire(text: String) -> Result<Self, ChatError> {
        Ok(Text::parse(&text)?)
    }
}

/// The demo's `new message` (text) → `new message` { username, message } to everyone else.
pub(super) async fn new_message<A: Adapter>(me: LoggedIn<A>, text: Text) -> Result<Done, ChatError> {
    let event = DemoMessage { username: &me.user, message: text.as_str() };
    log_emit(NEW_MESSAGE, me.socket.to(channels::ONLINE).emit(NEW_MESSAGE, &event).await);
    Ok(Done {})
}
