//! `GET /api/files/{id}`: a file sent in a message, for the members of its
//! room or the participants (identities, not names) of its private conversation.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{Api, ApiError, Bearer};
use crate::domain::{Conversation, MessageId};

/// Serves a stored file to someone allowed to see it.
pub async fn fetch(
    State(api): State<Api>,
    Bearer(session): Bearer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let identity = session.identity;
    let not_found = || ApiError::NotFound("no such file (it may have expired)".into());
    let id = MessageId::parse(&id).map_err(|_| not_found())?;
    let file = api.stores.files.file(&id).await.map_err(ApiError::store_failed)?.ok_or_else(not_found)?;
    let allowed = match &file.conversation {
        Conversation::Room(room) => {
            api.stores.state.is_member(room, &identity.user).await.map_err(ApiError::store_failed)?
        }
        // Private files belong to identities: a later holder of a
        // participant's name, guest or account, is someone else.
        private @ Conversation::Private(_) => private.includes(&identity.id()),
    };
    if !allowed {
        return Err(ApiError::Forbidden("only the conversation's members can fetch this file".into()));
    }
    let content_type =
        HeaderValue::from_str(&file.mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition =
        HeaderValue::from_str(&format!("inline; filename*=UTF-8''{}", percent_encode(&file.name)))
            .unwrap_or(HeaderValue::from_static("inline"));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600")),
    ];
    Ok((headers, file.bytes).into_response())
}

/// RFC 5987 encoding of a file name for `filename*=`.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_are_percent_encoded_for_headers() {
        assert_eq!(super::percent_encode("a b\"é.png"), "a%20b%22%C3%A9.png");
    }
}
