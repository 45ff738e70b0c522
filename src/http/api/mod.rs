//! The HTTP API under `/api`: accounts and their tokens, avatars, and files sent in messages.
//! Errors are JSON `{ "error": { "code", "message" } }` (see [`ApiError`]).

mod accounts;
mod avatars;
mod bearer;
mod error;
mod files;
mod session;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Serialize;

pub use avatars::MAX_AVATAR_BYTES;
pub use bearer::Bearer;
pub use error::ApiError;

use crate::auth::Auth;
use crate::domain::Username;
use crate::store::Stores;

/// Largest JSON body the account endpoints read.
const MAX_JSON_BYTES: usize = 16 * 1024;

/// What the API handlers share.
#[derive(Clone)]
pub struct Api {
    auth: Auth,
    stores: Stores,
    limits: Arc<Limits>,
    /// The chat, told of changes its clients should hear about.
    notices: Arc<dyn ChatNotices>,
}

/// What the API tells the chat: changes its connected clients should hear
/// about. This is all the API needs of the chat; the chat implements it
/// where the two are wired together (`mode`), so `http` does not depend on
/// `chat`. Both calls only note the change and return at once.
pub trait ChatNotices: Send + Sync + 'static {
    /// `user`'s avatar changed: the clients that show it should reload it.
    fn avatar_changed(&self, user: &Username);
    /// A token was revoked or an account changed or was deleted: the
    /// sessions it carried should be checked now, not at the next sweep.
    fn sessions_changed(&self);
}

/// The limits clients may want to check before sending (`GET /api/config`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Whether `add user` (a guest login) is allowed.
    pub allow_guests: bool,
    /// Largest file a message may carry, in bytes.
    pub max_file_bytes: usize,
    /// Largest avatar, in bytes.
    pub max_avatar_bytes: usize,
    /// Longest message text, in characters.
    pub max_text_chars: usize,
    /// Longest username, in characters.
    pub max_username_chars: usize,
    /// Longest room name, in characters.
    pub max_room_chars: usize,
    /// Most recipients of one message.
    pub max_recipients: usize,
    /// Largest history page.
    pub history_limit: usize,
    /// The packet parser (PARSER), so the web client loads the matching
    /// socket.io build: `common` or `msgpack`.
    pub parser: &'static str,
}

impl Api {
    /// The API over these accounts and stores, publishing `limits`, telling
    /// the chat through `notices` what its clients should hear about.
    pub fn new(auth: Auth, stores: Stores, limits: Limits, notices: Arc<dyn ChatNotices>) -> Self {
        Self { auth, stores, limits: Arc::new(limits), notices }
    }
}

/// `GET /metrics`: the Prometheus exposition. The deployment-wide gauges
/// (users online, rooms) are read from the store and left out while it is
/// unreachable; the per-instance counters are always there.
async fn prometheus(State(api): State<Api>) -> impl axum::response::IntoResponse {
    let store = api.stores.state.as_ref();
    let (users, rooms) = tokio::join!(store.count_online(), store.rooms());
    let body = crate::metrics::metrics().render(users.ok(), rooms.ok().map(|r| r.len()));
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// `GET /api/config` → the deployment's [`Limits`].
async fn config(State(api): State<Api>) -> Json<Limits> {
    Json(api.limits.as_ref().clone())
}

/// The `/api` routes.
pub fn routes(api: Api) -> Router {
    Router::new()
        .route("/api/register", post(accounts::register).layer(DefaultBodyLimit::max(MAX_JSON_BYTES)))
        .route("/api/login", post(accounts::login).layer(DefaultBodyLimit::max(MAX_JSON_BYTES)))
        .route("/api/logout", post(session::logout))
        .route(
            "/api/me/password",
            post(session::change_password).layer(DefaultBodyLimit::max(MAX_JSON_BYTES)),
        )
        .route("/api/me", delete(session::delete_me).layer(DefaultBodyLimit::max(MAX_JSON_BYTES)))
        .route("/api/me/avatar", put(avatars::upload).layer(DefaultBodyLimit::max(MAX_AVATAR_BYTES)))
        .route("/api/users/{name}/avatar", get(avatars::fetch))
        .route("/api/files/{id}", get(files::fetch))
        .route("/api/config", get(config))
        .route("/metrics", get(prometheus))
        .with_state(api)
}
