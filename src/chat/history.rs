//! `history`: a page of a room's messages, or of a private conversation's.

use socketioxide::adapter::Adapter;

use super::answer::LoggedIn;
use super::request::Request;
use super::rooms::ensure_member;
use super::target::{self, ROOM_OR_WITH};
use super::wire::{HistoryPageBody, HistoryRequest};
use super::{Chat, ChatError};
use crate::domain::{Conversation, MessageId, Target, UserId, Username};
use crate::store::HistoryPage;

/// Page size of `history` when the client gives no `limit`.
pub const DEFAULT_HISTORY_PAGE: usize = 50;

/// `history`'s request: which conversation, and which page of it.
pub(super) struct HistoryQuery {
    target: Target,
    before: Option<MessageId>,
    after: Option<MessageId>,
    /// Checked by the handler: its bound is the deployment's history limit.
    limit: Option<u64>,
}

impl Request for HistoryQuery {
    type Wire = HistoryRequest;

    fn from_wire(request: HistoryRequest) -> Result<Self, ChatError> {
        let target = target::parse(request.room, request.with, &ROOM_OR_WITH)?;
        let cursor = |raw: Option<String>| raw.map(|id| MessageId::parse(&id)).transpose();
        Ok(Self {
            target,
            before: cursor(request.before)?,
            after: cursor(request.after)?,
            limit: request.limit,
        })
    }
}

/// `history` { room | with, before?, after?, limit? } → messages, oldest first.
pub(super) async fn history<A: Adapter>(
    me: LoggedIn<A>,
    query: HistoryQuery,
) -> Result<HistoryPageBody, ChatError> {
    let LoggedIn { chat, socket, id: me, .. } = me;
    let conversation = match query.target {
        Target::Room(room) => {
            ensure_member(&socket, &room)?;
            Conversation::Room(room)
        }
        Target::User(_) | Target::Users(_) => match identities_of(&chat, query.target.users()).await? {
            Some(ids) => Conversation::private(&me, &ids),
            // Someone named holds no identity now (a guest whose session
            // ended): nothing of theirs is anyone's to read.
            None => return Ok(HistoryPageBody { messages: Vec::new() }),
        },
    };
    let max = chat.history_limit();
    let limit = match query.limit {
        None => DEFAULT_HISTORY_PAGE.min(max),
        Some(n) if (1..=max as u64).contains(&n) => n as usize,
        Some(_) => return Err(ChatError::invalid_payload(format!("`limit` must be between 1 and {max}"))),
    };
    let page = HistoryPage { before: query.before, after: query.after, limit };
    Ok(HistoryPageBody { messages: chat.store().history(&conversation, &page).await? })
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
