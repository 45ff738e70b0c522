//! chatwire: a Socket.IO-compatible chat server. The unmodified socket.io
//! JavaScript client connects (websocket transport), chats and reconnects as
//! it would with a Node.js server; the event contract is docs/PROTOCOL.md.
//!
//! Map of the modules, following a request from the edge inwards:
//!
//! - [`config`] — settings (flags with environment fallbacks)
//! - [`app`] — [`app::Application`] binds, picks a mode and runs an instance
//! - [`mode`] — the two ways of running: [`mode::memory`] (one instance) and
//!   [`mode::cluster`] (several over Redis), wired from the same parts
//! - [`tls`] — direct TLS with certificate reload
//! - [`http`] — the axum router: edge rules, web client, socket.io bundle,
//!   health checks, the `/api` endpoints
//! - [`net`] — the client's address, connections per address, TCP settings
//! - [`chat`] — the socket.io events, one handler per event
//! - [`auth`] — accounts, passwords, tokens, login rate limits
//! - [`domain`] — validated values (usernames, rooms, texts, messages)
//! - [`store`] — shared state (presence, rooms, history) behind one trait
//! - [`cluster`] — the Redis connections, the adapter's pub/sub, heartbeats,
//!   liveness, what cluster mode is made of
//! - [`telemetry`], [`shutdown`], [`metrics`] — logging, the stop signal, Prometheus metrics
//!
//! Modules depend one way (none imports a module that imports it): `app` →
//! `mode` → `cluster` → `chat` → `auth` → `store` → `domain`; `http` sits
//! beside `chat` (on `auth` and `store`, never on `chat`); `net` serves
//! `http`, `tls`, `chat` and `auth`; `net`, `domain` and `config` depend on
//! no other chatwire module.

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
