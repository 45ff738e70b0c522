//! chatwire: a Socket.IO-compatible chat server. The unmodified socket.io
//! JavaScript client connects (websocket transport), chats and reconnects as
//! it would with a Node.js server; the event contract is docs/PROTOCOL.md.
//!
//! Map of the modules, following a request from the edge inwards:
//!
//! - [`config`] — settings (flags with environment fallbacks)
//! - [`auth`] — accounts, passwords, tokens, login rate limits
//! - [`app`] — [`app::Application`] builds and runs an instance
//! - [`http`] — the axum router: web client, socket.io bundle, health checks
//! - [`chat`] — the socket.io events, one handler per event
//! - [`domain`] — validated values (usernames, rooms, texts, messages)
//! - [`store`] — shared state (presence, rooms, history) behind one trait
//! - [`telemetry`], [`shutdown`], [`metrics`] — logging, the stop signal, Prometheus metrics
//! - [`tls`] — direct TLS with certificate reload

pub mod app;
pub mod auth;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod mode;
pub mod net;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tls;
