//! Memory mode: a single instance, its state in this process (lost when it
//! stops), socket.io's local adapter.

use std::sync::Arc;

use socketioxide::handler::ConnectHandler;

use super::{Instance, StartError, Wiring, router, services, socketio_builder};
use crate::chat;
use crate::config::Config;
use crate::http::Readiness;
use crate::store::{MemoryStore, Stores};

/// Files kept in memory in single-instance mode, at most (oldest go first).
const MEMORY_FILES_MAX_BYTES: usize = 256 * 1024 * 1024;

/// Single instance: state in memory, socket.io's local adapter.
pub fn wire(config: &Config, instance: &Instance) -> Result<Wiring, StartError> {
    let history_limit = config.history_limit as usize;
    let store = MemoryStore::new(history_limit)
        .with_file_limits(config.file_ttl(), MEMORY_FILES_MAX_BYTES)
        .with_history_limits(config.history_max_bytes(), config.history_ttl());
    let secret = match config.token_secret().map_err(StartError::Config)? {
        Some(secret) => secret,
        None => {
            tracing::info!("no SECRET set: using a random one; login tokens end when this process does");
            rand::random::<[u8; 32]>().to_vec()
        }
    };
    let (chat, api) = services(config, instance, Stores::of(Arc::new(store)), &secret, chat::Ghosts::none());
    let (socketio, io) = socketio_builder(config).with_state(chat.clone()).build_svc();
    io.ns("/", chat::on_connect.with(chat::prepare_socket));
    let tasks = chat::spawn_tasks(&io, &chat);
    let readiness = Readiness::new(instance.name.clone(), "memory", true);
    Ok(Wiring {
        router: router(config, readiness, api, socketio)?,
        tasks,
        shutdown: Box::pin(async move { io.close().await }),
    })
}
