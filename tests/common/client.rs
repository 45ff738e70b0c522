//! A minimal socket.io v4 client over a raw websocket, for tests. It speaks
//! the engine.io framing itself (open, ping/pong, message) so tests can also
//! send packets a well-behaved client never would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::stream::{SplitSink, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(5);

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Frame>;

/// What the server sent, as parsed socket.io packets.
#[derive(Default)]
struct Inbox {
    events: Vec<(String, Vec<Value>)>,
    acks: HashMap<u64, oneshot::Sender<Vec<Value>>>,
    closed: bool,
}

/// A connected socket.io client on namespace `/`.
pub struct Client {
    sink: Arc<tokio::sync::Mutex<Sink>>,
    inbox: Arc<Mutex<Inbox>>,
    arrived: Arc<Notify>,
    next_ack: std::sync::atomic::AtomicU64,
    /// The socket id the server assigned.
    pub sid: String,
}

/// Why a connection was refused at the socket.io level.
#[derive(Debug)]
pub struct ConnectError(pub Value);

impl Client {
    /// Connects and joins namespace `/`.
    pub async fn connect(addr: SocketAddr) -> Client {
        Self::connect_with_auth(addr, None).await.expect("namespace connect refused")
    }

    /// Connects with an auth payload; `Err` carries a `connect_error`.
    pub async fn connect_with_auth(addr: SocketAddr, auth: Option<Value>) -> Result<Client, ConnectError> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket connect timed out")
            .expect("websocket connect failed");
        let (mut sink, mut stream) = ws.split();
        let open = next_text(&mut stream).await;
        assert!(open.starts_with('0'), "expected engine.io open packet, got {open}");
        let connect = match auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        sink.send(Frame::text(connect)).await.expect("send connect");
        let reply = loop {
            match next_text(&mut stream).await.as_str() {
                "2" => sink.send(Frame::text("3")).await.expect("send pong"),
                other => break other.to_owned(),
            }
        };
        if let Some(error) = reply.strip_prefix("44") {
            return Err(ConnectError(serde_json::from_str(error).unwrap_or(Value::Null)));
        }
        let body = reply.strip_prefix("40").unwrap_or_else(|| panic!("expected connect packet, got {reply}"));
        let sid = serde_json::from_str::<Value>(body).expect("connect body")["sid"]
            .as_str()
            .unwrap_or("")
            .to_owned();

        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let arrived = Arc::new(Notify::new());
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let client = Client {
            sink: sink.clone(),
            inbox: inbox.clone(),
            arrived: arrived.clone(),
            next_ack: 0.into(),
            sid,
        };
        tokio::spawn(async move {
            // A binary packet's text part, waiting for its attachments.
            let mut partial: Option<(String, usize, Vec<Vec<u8>>)> = None;
            while let Some(Ok(frame)) = stream.next().await {
                match frame {
                    Frame::Binary(data) => {
                        let Some((text, expected, mut parts)) = partial.take() else { continue };
                        parts.push(data.to_vec());
                        if parts.len() == expected {
                            route(&inbox, &fill_placeholders(&text, &parts));
                            arrived.notify_waiters();
                        } else {
                            partial = Some((text, expected, parts));
                        }
                    }
                    Frame::Text(text) => {
                        let text = text.as_str();
                        if text == "2" {
                            let _ = sink.lock().await.send(Frame::text("3")).await;
                        } else if let Some((packet, count)) = binary_header(text) {
                            partial = Some((packet, count, Vec::new()));
                        } else if text.starts_with("41") {
                            // The server disconnected the socket from the namespace.
                            inbox.lock().unwrap().closed = true;
                            arrived.notify_waiters();
                        } else {
                            route(&inbox, text);
                            arrived.notify_waiters();
                        }
                    }
                    _ => {}
                }
            }
            inbox.lock().unwrap().closed = true;
            arrived.notify_waiters();
        });
        Ok(client)
    }

    /// Sends a raw engine.io text frame (e.g. `42["event",1]`).
    pub async fn send_raw(&self, frame: impl Into<String>) {
        let mut sink = self.sink.lock().await;
        let _ = sink.send(Frame::text(frame.into())).await;
    }

    /// Sends a raw websocket frame of any kind.
    pub async fn send_frame(&self, frame: Frame) {
        let mut sink = self.sink.lock().await;
        let _ = sink.send(frame).await;
    }

    /// Emits an event without an ack; `args` is the argument list.
    pub async fn emit(&self, event: &str, args: Vec<Value>) {
        let mut packet = vec![Value::from(event)];
        packet.extend(args);
        self.send_raw(format!("42{}", Value::from(packet))).await;
    }

    /// Emits an event with one argument and returns the ack's first argument.
    pub async fn request(&self, event: &str, arg: Value) -> Value {
        self.request_args(event, vec![arg]).await
    }

    /// Emits an event with no argument and returns the ack's first argument.
    pub async fn request_empty(&self, event: &str) -> Value {
        self.request_args(event, vec![]).await
    }

    /// Emits an event with these arguments and returns the ack's first argument.
    pub async fn request_args(&self, event: &str, args: Vec<Value>) -> Value {
        self.request_within(event, args, WAIT).await
    }

    /// [`Client::request_args`], waiting up to `wait` for the ack (for a
    /// server that is meant to be slow: Redis frozen, say).
    pub async fn request_within(&self, event: &str, args: Vec<Value>, wait: Duration) -> Value {
        let id = self.next_ack.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inbox.lock().unwrap().acks.insert(id, tx);
        let mut packet = vec![Value::from(event)];
        packet.extend(args);
        self.send_raw(format!("42{id}{}", Value::from(packet))).await;
        let reply = tokio::time::timeout(wait, rx)
            .await
            .unwrap_or_else(|_| panic!("no ack for `{event}` within {wait:?}"))
            .expect("connection closed before the ack");
        reply.into_iter().next().unwrap_or(Value::Null)
    }

    /// Emits an event whose single argument carries binary attachments
    /// (`{"_placeholder":true,"num":i}` in `arg` for each) and returns the ack.
    pub async fn request_binary(&self, event: &str, arg: Value, attachments: &[&[u8]]) -> Value {
        let id = self.next_ack.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inbox.lock().unwrap().acks.insert(id, tx);
        let packet = Value::from(vec![Value::from(event), arg]);
        self.send_raw(format!("45{}-{id}{packet}", attachments.len())).await;
        for data in attachments {
            self.send_frame(Frame::binary(data.to_vec())).await;
        }
        let reply = tokio::time::timeout(WAIT, rx)
            .await
            .unwrap_or_else(|_| panic!("no ack for `{event}` within {WAIT:?}"))
            .expect("connection closed before the ack");
        reply.into_iter().next().unwrap_or(Value::Null)
    }

    /// Waits for the next `event` (earlier events of other names stay queued)
    /// and returns its first argument.
    pub async fn next(&self, event: &str) -> Value {
        self.next_args(event).await.into_iter().next().unwrap_or(Value::Null)
    }

    /// Waits for the `event` whose `text` is `text`, and returns the ones of
    /// that name that came before it.
    pub async fn until_text(&self, event: &str, text: &str) -> Vec<Value> {
        let mut before = Vec::new();
        loop {
            let got = self.next(event).await;
            if got["text"] == text {
                return before;
            }
            before.push(got);
        }
    }

    /// Like [`Client::next`], returning every argument.
    pub async fn next_args(&self, event: &str) -> Vec<Value> {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let notified = self.arrived.notified();
                if let Some(args) = self.take(event) {
                    return args;
                }
                notified.await;
            }
        });
        found.await.unwrap_or_else(|_| panic!("no `{event}` event within {WAIT:?}"))
    }

    /// Asserts that no `event` arrives within `wait`.
    pub async fn expect_none(&self, event: &str, wait: Duration) {
        tokio::time::sleep(wait).await;
        if let Some(args) = self.take(event) {
            panic!("unexpected `{event}` event: {args:?}");
        }
    }

    /// Takes every queued event named in `names`, in the order they arrived,
    /// with its first argument.
    pub fn drain(&self, names: &[&str]) -> Vec<(String, Value)> {
        let mut inbox = self.inbox.lock().unwrap();
        let (taken, kept) = std::mem::take(&mut inbox.events)
            .into_iter()
            .partition::<Vec<_>, _>(|(name, _)| names.contains(&name.as_str()));
        inbox.events = kept;
        taken.into_iter().map(|(name, args)| (name, args.into_iter().next().unwrap_or(Value::Null))).collect()
    }

    /// Waits for `presence` events until one tells `count` users online.
    pub async fn count_told(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.next("presence").await != serde_json::json!({ "numUsers": count }) {
            assert!(tokio::time::Instant::now() < deadline, "the count never reached {count}");
        }
    }

    /// Takes `event`s as they come until none has for `quiet` (at most
    /// [`WAIT`] in all), and returns how many came: for "everything the
    /// server had to send has arrived", when nothing tells the last one.
    pub async fn until_quiet(&self, event: &str, quiet: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut n = 0;
        while tokio::time::timeout(quiet, self.next_args(event)).await.is_ok() {
            n += 1;
            assert!(tokio::time::Instant::now() < deadline, "`{event}` never stopped within {WAIT:?}");
        }
        n
    }

    /// Drops every queued event.
    pub fn clear(&self) {
        self.inbox.lock().unwrap().events.clear();
    }

    /// True once the server closed the connection (or disconnected the socket).
    pub async fn wait_closed(&self) -> bool {
        let closed = tokio::time::timeout(WAIT, async {
            loop {
                let notified = self.arrived.notified();
                if self.inbox.lock().unwrap().closed {
                    return;
                }
                notified.await;
            }
        });
        closed.await.is_ok()
    }

    fn take(&self, event: &str) -> Option<Vec<Value>> {
        let mut inbox = self.inbox.lock().unwrap();
        let index = inbox.events.iter().position(|(name, _)| name == event)?;
        Some(inbox.events.remove(index).1)
    }

    /// Closes the websocket.
    pub async fn close(self) {
        let mut sink = self.sink.lock().await;
        let _ = sink.send(Frame::Close(None)).await;
    }
}

async fn next_text(
    stream: &mut futures_util::stream::SplitStream<WebSocketStream<MaybeTlsStream<TcpStream>>>,
) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("timed out waiting for the server")
            .expect("connection closed")
            .expect("websocket error");
        if let Frame::Text(text) = frame {
            return text.as_str().to_owned();
        }
    }
}

/// A placeholder for binary attachment `num`, as socket.io writes it.
pub fn placeholder(num: usize) -> Value {
    serde_json::json!({ "_placeholder": true, "num": num })
}

/// The bytes of a received binary value (see `fill_placeholders`).
pub fn bytes_of(value: &Value) -> Vec<u8> {
    let hex = value["$bytes"].as_str().unwrap_or_else(|| panic!("not binary: {value}"));
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// `451-...`: a binary event (5) or ack (6) and how many attachments follow.
fn binary_header(text: &str) -> Option<(String, usize)> {
    let rest = text.strip_prefix('4')?;
    let kind = rest.chars().next().filter(|c| *c == '5' || *c == '6')?;
    let rest = &rest[1..];
    let (count, body) = rest.split_once('-')?;
    let count: usize = count.parse().ok()?;
    // Re-written as a plain event/ack so `route` understands it.
    let plain = if kind == '5' { '2' } else { '3' };
    Some((format!("4{plain}{body}"), count))
}

/// Replaces each placeholder by `{"$bytes": "<hex>"}`.
fn fill_placeholders(text: &str, parts: &[Vec<u8>]) -> String {
    let mut out = text.to_owned();
    for (i, part) in parts.iter().enumerate() {
        let hex: String = part.iter().map(|b| format!("{b:02x}")).collect();
        for pattern in
            [format!(r#"{{"_placeholder":true,"num":{i}}}"#), format!(r#"{{"num":{i},"_placeholder":true}}"#)]
        {
            out = out.replace(&pattern, &format!(r#"{{"$bytes":"{hex}"}}"#));
        }
    }
    out
}

/// Files a socket.io packet from the server: an event or an ack.
fn route(inbox: &Mutex<Inbox>, text: &str) {
    let Some(packet) = text.strip_prefix('4') else { return };
    let (kind, rest) = packet.split_at(1);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let (id, body) = rest.split_at(digits);
    let Ok(Value::Array(mut items)) = serde_json::from_str::<Value>(body) else { return };
    let mut inbox = inbox.lock().unwrap();
    match kind {
        "2" if !items.is_empty() => {
            let name = items.remove(0).as_str().unwrap_or_default().to_owned();
            inbox.events.push((name, items));
        }
        "3" => {
            if let Some(tx) = id.parse().ok().and_then(|id| inbox.acks.remove(&id)) {
                let _ = tx.send(items);
            }
        }
        _ => {}
    }
}
