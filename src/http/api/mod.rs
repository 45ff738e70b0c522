//! The HTTP API under `/api`: accounts, avatars, and files sent in messages.
//! Errors are JSON `{ "error": { "code", "message" } }` (see [`ApiError`]).

mod accounts;
mod avatars;
mod bearer;
mod error;
mod files;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

pub use avatars::MAX_AVATAR_BYTES;
pub use bearer::Bearer;
pub use error::ApiError;

use crate::auth::Auth;
use crate::store::Stores;

/// Largest JSON body the account endpoints read.
const MAX_JSON_BYTES: usize = 16 * 1024;

/// What the API handlers share.
#[derive(Clone)]
pub struct Api {
    auth: Auth,
    stores: Stores,
}

impl Api {
    /// The API over these accounts and stores.
    pub fn new(auth: Auth, stores: Stores) -> Self {
        Self { auth, stores }
    }
}

/// The `/api` routes.
pub fn routes(api: Api) -> Router {
    Router::new()
        .route("/api/register", post(accounts::register).layer(DefaultBodyLimit::max(MAX_JSON_BYTES)))
        .route("/api/login", post(accounts::login).layer(DefaultBodyLimit::max(MAX_JSON_BYTES)))
        .route("/api/me/avatar", put(avatars::upload).layer(DefaultBodyLimit::max(MAX_AVATAR_BYTES)))
        .route("/api/users/{name}/avatar", get(avatars::fetch))
        .route("/api/files/{id}", get(files::fetch))
        .with_state(api)
}
