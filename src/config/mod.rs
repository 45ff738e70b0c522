//! [`Config`]: every setting, as a command-line flag with an environment
//! variable fallback. `chatwire --help` lists them; the README explains them.
//!
//! This file declares the settings; `values` holds the types of the
//! enumerated ones, `derived` what the rest of the server reads from them
//! (durations, byte budgets, the secret, the frame cap).

mod derived;
mod values;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

pub use values::{LogFormat, PacketParser, Transport};

/// MAX_FRAME_BYTES when unset: Node's `maxHttpBufferSize` default (1e6).
pub const DEFAULT_FRAME_BYTES: u64 = 1_000_000;

/// The smallest MAX_FRAME_BYTES accepted: a frame must hold the largest
/// valid event (a 4000-character text is up to 24 KB of JSON).
const MIN_FRAME_BYTES: u64 = 32 * 1024;

/// chatwire's settings.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chatwire",
    version,
    about = "A Socket.IO-compatible chat server",
    after_help = "Logging is controlled by RUST_LOG (for example RUST_LOG=debug or RUST_LOG=chatwire=debug,info)."
)]
pub struct Config {
    /// Port to listen on; 0 picks any free port (the log says which).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Redis to share state with other instances. Unset: embedded
    /// single-instance mode, all state in memory.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Transports clients may use: `websocket`, or `websocket,polling` to let
    /// clients that cannot do websocket-only fall back to long-polling.
    #[arg(long, env = "TRANSPORTS", value_delimiter = ',', default_value = "websocket")]
    pub transports: Vec<Transport>,

    /// How socket.io packets are encoded: `common` (socket.io's default
    /// parser) or `msgpack` (socket.io-msgpack-parser's MessagePack). Every
    /// client and every instance of a deployment must use the same one.
    #[arg(long, env = "PARSER", default_value = "common")]
    pub parser: PacketParser,

    /// Directory holding the web client, served at `/`.
    #[arg(long, env = "PUBLIC_DIR", default_value = "public")]
    pub public_dir: PathBuf,

    /// Threads running connections and events. Unset: one per core. When
    /// several instances share a machine, give each its share of the cores
    /// (two instances on two cores: 1 each); more threads than cores only
    /// adds switching between them (docs/BENCHMARKS.md measures it).
    #[arg(long, env = "WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,

    /// This instance's name in logs, `/readyz` and shared state. Defaults to the hostname.
    #[arg(long, env = "INSTANCE_NAME")]
    pub instance_name: Option<String>,

    /// Messages kept per room and per private conversation; also the largest history page.
    #[arg(long, env = "HISTORY_LIMIT", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub history_limit: u32,

    /// Embedded mode: most history kept in memory, in MiB (estimated). Over
    /// it, the conversations used least recently lose their oldest messages
    /// first. With REDIS_URL, Redis's own `maxmemory` bounds history instead.
    #[arg(long, env = "HISTORY_MAX_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub history_max_mb: u64,

    /// Days a conversation's history outlives its last message (embedded
    /// mode: its last message or history read); then it is deleted. Rooms
    /// and private conversations alike.
    #[arg(long, env = "HISTORY_TTL_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub history_ttl_days: u64,

    /// Largest frame a client may send, in bytes: a websocket message or a
    /// polling request body (Node's `maxHttpBufferSize`). Default 1000000.
    /// Raised to twice MAX_FILE_BYTES when that is larger, so a file fits in
    /// its frame. A client sending more is disconnected; a smaller frame is
    /// read, and content over an application limit is answered with an
    /// error code.
    #[arg(long, env = "MAX_FRAME_BYTES", value_parser = clap::value_parser!(u64).range(MIN_FRAME_BYTES..))]
    pub max_frame_bytes: Option<u64>,

    /// Deprecated name of MAX_FRAME_BYTES, which it stood for before the
    /// text part of a frame had a cap of its own; read when MAX_FRAME_BYTES
    /// is not set, with a warning at start.
    #[arg(long, env = "MAX_MESSAGE_BYTES", hide = true)]
    pub max_message_bytes: Option<u64>,

    /// Prefix of every Redis key and pub/sub channel, so several deployments
    /// can share one Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "chatwire")]
    pub redis_prefix: String,

    /// Cluster mode: route room broadcasts on one sharded pub/sub channel
    /// per room, which only instances with members of that room subscribe
    /// (`cluster::routing`), instead of on the namespace channel every
    /// instance reads (`false`, as before routing existed). Instances may differ (a rolling upgrade): a routed
    /// one keeps room broadcasts on the namespace channel while its
    /// heartbeat finds a live instance that does not route. One without it
    /// that starts among routed ones is seen at their next heartbeat; its
    /// users may miss their room messages until then.
    #[arg(long, env = "ROUTED_ROOMS", default_value_t = true, action = clap::ArgAction::Set)]
    pub routed_rooms: bool,

    /// Cluster mode: milliseconds between heartbeats (and maintenance rounds).
    #[arg(long, env = "HEARTBEAT_INTERVAL_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub heartbeat_interval_ms: u64,

    /// Cluster mode: an instance silent for this many milliseconds is taken
    /// for dead, and the others remove its users.
    #[arg(long, env = "INSTANCE_TTL_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(300..))]
    pub instance_ttl_ms: u64,

    /// Secret that signs login tokens; every instance of a deployment needs
    /// the same one. Required with REDIS_URL. Without it, a single instance
    /// makes a random one (tokens then end with the process).
    #[arg(long, env = "SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// File holding the secret (alternative to SECRET, e.g. a Docker secret).
    #[arg(long, env = "SECRET_FILE")]
    pub secret_file: Option<PathBuf>,

    /// How long login tokens stay valid, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 24 * 3600, value_parser = clap::value_parser!(u64).range(1..=365 * 24 * 3600))]
    pub token_ttl_secs: u64,

    /// How often, in milliseconds, each instance checks the tokens its
    /// sockets stand on and disconnects those revoked (logout, password
    /// change, deleted account) or expired. A revocation made through an
    /// instance's API acts there at once; on the others within this time.
    #[arg(long, env = "SESSION_CHECK_MS", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub session_check_ms: u64,

    /// Whether guests may chat without an account (`add user`).
    #[arg(long, env = "ALLOW_GUESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_guests: bool,

    /// Largest file a message may carry, in bytes.
    #[arg(long, env = "MAX_FILE_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_file_bytes: usize,

    /// How long files sent in messages are kept for history, in hours.
    #[arg(long, env = "FILE_TTL_HOURS", default_value_t = 7 * 24, value_parser = clap::value_parser!(u64).range(1..))]
    pub file_ttl_hours: u64,

    // ---- TLS and proxies ----
    /// PEM certificate chain: serve https and wss directly (with TLS_KEY).
    /// The files are re-read when they change, without a restart.
    #[arg(long, env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for TLS_CERT.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// With TLS_CERT: also listen on this port for plain HTTP that only
    /// redirects to https (308). Unset: no plain-HTTP port.
    #[arg(long, env = "HTTP_REDIRECT_PORT")]
    pub http_redirect_port: Option<u16>,

    /// Proxies whose `X-Forwarded-Proto` / `X-Forwarded-For` / `X-Forwarded-Host`
    /// are believed. `true`: every peer is exactly one proxy (only when
    /// nothing else can reach the port); the client is the last
    /// `X-Forwarded-For` entry. Or a comma-separated list of the proxies'
    /// addresses and CIDR ranges: `X-Forwarded-For` is walked from the
    /// right past listed hops, and the first other one is the client.
    #[arg(long, env = "TRUST_PROXY", value_delimiter = ',')]
    pub trust_proxy: Vec<String>,

    /// The URL browsers reach this deployment at (`https://chat.example.com`).
    /// Redirects to https go to its host, and requests naming another host
    /// are refused instead; its origin may open sockets and call the API
    /// (with ALLOWED_ORIGINS), and a page matching only the `Host` header
    /// no longer may (DNS rebinding).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Redirect plain-HTTP requests to https (308) and refuse websocket
    /// upgrades over plain HTTP. Plain means: not TLS here, and no trusted
    /// proxy said `X-Forwarded-Proto: https`. /healthz and /readyz are exempt.
    #[arg(long, env = "FORCE_HTTPS", default_value_t = false, action = clap::ArgAction::Set)]
    pub force_https: bool,

    /// Serve `/metrics` and `/readyz` on this separate address (e.g.
    /// `127.0.0.1:9100`) and answer 404 for them on the app port. Unset: both
    /// stay on the app port. `/healthz` is on the app port either way.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// `max-age` of the Strict-Transport-Security header sent on https
    /// responses, in seconds; 0 sends none.
    #[arg(long, env = "HSTS_MAX_AGE", default_value_t = 365 * 24 * 3600)]
    pub hsts_max_age: u64,

    /// The Content-Security-Policy header of the pages served from
    /// PUBLIC_DIR, exactly as given; empty sends none. Unset: the bundled
    /// web client gets its strict policy, a frontend of your own none (as
    /// under Node), so that scripts, styles and fonts it loads from a CDN
    /// keep working.
    #[arg(long, env = "CONTENT_SECURITY_POLICY")]
    pub content_security_policy: Option<String>,

    // ---- abuse limits ----
    /// Web origins (`https://chat.example.com`) allowed to open sockets and
    /// call the API from a browser, comma-separated; `*` allows any. The
    /// server's own origin and clients that send no Origin (non-browser
    /// clients) are always allowed. CORS is answered for listed origins only.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Events one socket may send per second, sustained (token bucket).
    #[arg(long, env = "EVENT_RATE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub event_rate: u32,

    /// Events one socket may send in a burst above EVENT_RATE.
    #[arg(long, env = "EVENT_BURST", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub event_burst: u32,

    /// Bytes one socket may have delivered per second, sustained: a message
    /// costs its size times its recipients (a room message with a file: the
    /// room's members). Over it, `message` answers `rate_limited`.
    #[arg(long, env = "DELIVERY_BYTES_PER_SEC", default_value_t = 2 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub delivery_bytes_per_sec: u64,

    /// Bytes one socket may have delivered at once, above
    /// DELIVERY_BYTES_PER_SEC. A message costing more passes only when the
    /// allowance is full, and empties it.
    #[arg(long, env = "DELIVERY_BURST_BYTES", default_value_t = 32 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub delivery_burst_bytes: u64,

    /// MiB of files one user may send per day (a window of 24 hours from
    /// their first file), across all instances; 0 = unlimited. Over it,
    /// `message` with a file answers `quota_exceeded`.
    #[arg(long, env = "FILE_QUOTA_MB_PER_DAY", default_value_t = 100)]
    pub file_quota_mb_per_day: u64,

    /// Open sockets per client address on one instance (after TRUST_PROXY;
    /// IPv6 addresses count by their /64); 0 = no limit. Behind a proxy
    /// without TRUST_PROXY every client has the proxy's address.
    #[arg(long, env = "MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 50)]
    pub max_connections_per_address: u32,

    /// Rooms one socket may be in at once.
    #[arg(long, env = "MAX_ROOMS_PER_SOCKET", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rooms_per_socket: u32,

    /// Sockets one user may have logged in at once (tabs, devices).
    #[arg(long, env = "MAX_SOCKETS_PER_USER", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sockets_per_user: u32,

    /// Most users online for which each login and logout is announced to
    /// everyone (`user joined` / `user left`, as in the socket.io chat demo).
    /// Each announcement goes to every socket; above this only the count is
    /// told (`presence`), and names are asked for (`users`). 0: announce
    /// each one, always.
    #[arg(long, env = "ANNOUNCE_MAX_USERS", default_value_t = 100)]
    pub announce_max_users: u32,

    /// Seconds a connection may take to complete the socket.io handshake
    /// before it is closed.
    #[arg(long, env = "CONNECT_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub connect_timeout_secs: u64,

    /// Accept socket.io-client 2.x (Engine.IO protocol 3, socket.io
    /// protocol 4), as Node's `allowEIO3`. `false`: its handshake gets 400
    /// `Unsupported protocol version`, as from a Node server without it.
    #[arg(long, env = "ALLOW_EIO3", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_eio3: bool,

    /// Node's `pingInterval`, in milliseconds: how often the server pings a
    /// 3.x/4.x client (a 2.x client pings the server at this interval).
    #[arg(long, env = "PING_INTERVAL_MS", default_value_t = 25_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub ping_interval_ms: u64,

    /// Node's `pingTimeout`, in milliseconds: how long a ping may wait for its
    /// answer before the connection counts as dead (for a 2.x client: how
    /// long past PING_INTERVAL_MS its next ping may be late).
    #[arg(long, env = "PING_TIMEOUT_MS", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub ping_timeout_ms: u64,

    /// Seconds a connection may take to send a request's headers (from its
    /// start, or between keep-alive requests) before it is closed.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_read_timeout_secs: u64,

    /// Seconds a socket may stay connected without logging in (`add user` or
    /// a token) before it gets `chat error` `login_timeout` and is
    /// disconnected; 0 = never.
    #[arg(long, env = "LOGIN_TIMEOUT_SECS", default_value_t = 30)]
    pub login_timeout_secs: u64,

    /// Log output: human-readable `text` or one `json` object per line.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}
