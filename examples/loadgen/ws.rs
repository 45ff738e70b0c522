//! A minimal websocket client (RFC 6455), just what a load generator needs:
//! the upgrade, unmasked server frames parsed in place from one reusable
//! buffer (no allocation per frame), masked client frames queued in another,
//! pings answered. General-purpose clients allocate per frame and let their
//! buffers grow under a flood; with thousands of sockets on the same
//! machine as the server under test, every cycle and byte here is taken from it.

use std::io;
use std::ops::Range;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read buffer size; it grows only for a frame larger than this.
const READ_BUFFER: usize = 8 * 1024;
/// A read is attempted only with at least this much free room.
const MIN_READ: usize = 2 * 1024;
/// Largest frame or message accepted from the server.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Largest HTTP upgrade response.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Frame opcodes (RFC 6455 §5.2).
mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A websocket connection owned by one task.
pub struct WebSocket {
    /// The TCP connection.
    stream: TcpStream,
    /// Bytes read and not yet consumed are `buf[start..end]`.
    buf: Vec<u8>,
    /// First unconsumed byte.
    start: usize,
    /// End of the bytes read.
    end: usize,
    /// Frames waiting to be written by [`WebSocket::flush`].
    out: Vec<u8>,
    /// A fragmented message being put together, with its first opcode.
    fragments: Option<(u8, Vec<u8>)>,
    /// The last whole fragmented message, handed out by reference.
    assembled: Vec<u8>,
    /// Source of masking keys (xorshift; masks need not be secret here).
    mask_state: u32,
}

/// What [`WebSocket::next_message`] found.
pub enum Incoming {
    /// A text message; [`WebSocket::text`] gives its bytes.
    Text(Span),
    /// Nothing complete is buffered: call [`WebSocket::fill`].
    NeedMore,
}

/// Where a received message's bytes are, valid until the next read. (A
/// position rather than a slice, so the caller can still queue a reply
/// while deciding what to do with it.)
#[derive(Debug, Clone)]
pub enum Span {
    /// In the read buffer.
    Buffered(Range<usize>),
    /// Put together from fragments.
    Assembled,
}

impl WebSocket {
    /// Performs the HTTP upgrade for `path_and_query` (e.g. `/socket.io/?EIO=4`).
    pub async fn connect(mut stream: TcpStream, host: &str, path_and_query: &str) -> io::Result<Self> {
        let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut socket = Self {
            stream,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            out: Vec::with_capacity(256),
            fragments: None,
            assembled: Vec::new(),
            mask_state: rand::random::<u32>() | 1,
        };
        let head_end = loop {
            if let Some(at) = socket.buf[..socket.end].windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if socket.end >= MAX_RESPONSE_HEAD {
                return Err(invalid("upgrade response too long"));
            }
            socket.fill().await?;
        };
        let head = String::from_utf8_lossy(&socket.buf[..head_end]).to_ascii_lowercase();
        let status = head.lines().next().unwrap_or_default();
        if !status.starts_with("http/1.1 101") || !head.contains("upgrade: websocket") {
            return Err(invalid(&format!("upgrade refused: {}", status.trim())));
        }
        // Frames may follow the response in the same read.
        socket.start = head_end;
        Ok(socket)
    }

    /// Reads more bytes from the server. Cancel-safe (nothing is lost if
    /// the future is dropped), so it can sit in a `select!`.
    pub async fn fill(&mut self) -> io::Result<()> {
        self.make_room(0);
        let read = self.stream.read(&mut self.buf[self.end..]).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += read;
        Ok(())
    }

    /// Moves unconsumed bytes to the front, and grows the buffer when one
    /// frame of `frame_len` bytes needs more than it holds.
    fn make_room(&mut self, frame_len: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > READ_BUFFER && frame_len == 0 {
                // A large frame is gone: give the memory back.
                self.buf = vec![0; READ_BUFFER];
            }
        } else if self.buf.len() - self.end < MIN_READ.max(frame_len.saturating_sub(self.end - self.start)) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let wanted = frame_len.max(self.end + MIN_READ);
        if wanted > self.buf.len() {
            self.buf.resize(wanted.next_power_of_two(), 0);
        }
    }

    /// The next complete text message among the bytes read so far. Pings
    /// are answered (the pong is queued: call [`WebSocket::flush`]) and
    /// binary messages skipped; a close frame is an `UnexpectedEof` error.
    pub fn next_message(&mut self) -> io::Result<Incoming> {
        loop {
            let Some((header_len, payload_len)) = self.frame_header()? else {
                return Ok(Incoming::NeedMore);
            };
            let frame_len = header_len + payload_len;
            if self.end - self.start < frame_len {
                self.make_room(frame_len);
                return Ok(Incoming::NeedMore);
            }
            let (first, second) = (self.buf[self.start], self.buf[self.start + 1]);
            if second & 0x80 != 0 {
                return Err(invalid("the server masked a frame"));
            }
            let (fin, code) = (first & 0x80 != 0, first & 0x0f);
            let payload = self.start + header_len..self.start + frame_len;
            self.start += frame_len;
            match code {
                opcode::TEXT if fin && self.fragments.is_none() => {
                    return Ok(Incoming::Text(Span::Buffered(payload)));
                }
                // No event these scenarios use carries binary data.
                opcode::BINARY if fin && self.fragments.is_none() => {}
                opcode::TEXT | opcode::BINARY if self.fragments.is_none() => {
                    self.fragments = Some((code, self.buf[payload].to_vec()));
                }
                opcode::CONTINUATION => {
                    let Some((first_code, mut message)) = self.fragments.take() else {
                        return Err(invalid("continuation without a message"));
                    };
                    message.extend_from_slice(&self.buf[payload]);
                    if message.len() > MAX_MESSAGE {
                        return Err(invalid("message too large"));
                    }
                    if !fin {
                        self.fragments = Some((first_code, message));
                    } else if first_code == opcode::TEXT {
                        self.assembled = message;
                        return Ok(Incoming::Text(Span::Assembled));
                    }
                }
                opcode::CLOSE => return Err(io::ErrorKind::UnexpectedEof.into()),
                opcode::PING => {
                    let ping = self.buf[payload].to_vec();
                    self.queue(opcode::PONG, &ping);
                }
                opcode::TEXT | opcode::BINARY => return Err(invalid("new message inside a fragmented one")),
                _ => {} // pongs and reserved opcodes
            }
        }
    }

    /// The bytes of a message [`WebSocket::next_message`] returned.
    pub fn text(&self, span: &Span) -> &[u8] {
        match span {
            Span::Buffered(range) => &self.buf[range.clone()],
            Span::Assembled => &self.assembled,
        }
    }

    /// The header of the frame at `start`: its length and the payload's.
    fn frame_header(&self) -> io::Result<Option<(usize, usize)>> {
        let bytes = &self.buf[self.start..self.end];
        let [_, second, ..] = *bytes else { return Ok(None) };
        let mask = if second & 0x80 != 0 { 4 } else { 0 };
        let (extra, payload_len) = match second & 0x7f {
            126 if bytes.len() >= 4 => (2, u16::from_be_bytes([bytes[2], bytes[3]]) as u64),
            127 if bytes.len() >= 10 => {
                let mut length = [0; 8];
                length.copy_from_slice(&bytes[2..10]);
                (8, u64::from_be_bytes(length))
            }
            126 | 127 => return Ok(None),
            short => (0, u64::from(short)),
        };
        if payload_len > MAX_MESSAGE as u64 {
            return Err(invalid("frame too large"));
        }
        Ok(Some((2 + extra + mask, payload_len as usize)))
    }

    /// Queues a text message.
    pub fn queue_text(&mut self, payload: &[u8]) {
        self.queue(opcode::TEXT, payload);
    }

    /// Queues one masked frame (client frames must be masked).
    fn queue(&mut self, code: u8, payload: &[u8]) {
        self.out.push(0x80 | code);
        match payload.len() {
            short @ 0..=125 => self.out.push(0x80 | short as u8),
            medium @ 126..=0xffff => {
                self.out.push(0x80 | 126);
                self.out.extend_from_slice(&(medium as u16).to_be_bytes());
            }
            long => {
                self.out.push(0x80 | 127);
                self.out.extend_from_slice(&(long as u64).to_be_bytes());
            }
        }
        let key = self.next_mask().to_be_bytes();
        self.out.extend_from_slice(&key);
        self.out.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ key[i % 4]));
    }

    fn next_mask(&mut self) -> u32 {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        x
    }

    /// Writes every queued frame.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Sends a close frame and waits for the server to close its side (the
    /// caller bounds the wait).
    pub async fn close(&mut self) -> io::Result<()> {
        self.queue(opcode::CLOSE, &1000u16.to_be_bytes());
        self.flush().await?;
        loop {
            self.start = self.end;
            match self.fill().await {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::{Incoming, WebSocket};

    /// An unmasked server frame.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        match payload.len() {
            short @ 0..=125 => out.push(short as u8),
            medium @ 126..=0xffff => {
                out.push(126);
                out.extend_from_slice(&(medium as u16).to_be_bytes());
            }
            long => {
                out.push(127);
                out.extend_from_slice(&(long as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    /// Every text message the client reads until the server's close frame.
    async fn read_all(socket: &mut WebSocket) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        loop {
            match socket.next_message() {
                Ok(Incoming::Text(span)) => messages.push(socket.text(&span).to_vec()),
                Ok(Incoming::NeedMore) => {
                    socket.flush().await.unwrap();
                    socket.fill().await.unwrap();
                }
                Err(err) => {
                    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
                    return messages;
                }
            }
        }
    }

    #[tokio::test]
    async fn messages_of_every_size_and_fragments_arrive_whole_and_pings_are_answered() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let big = vec![b'x'; 100_000];
        let expected_big = big.clone();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 1024];
            let read = stream.read(&mut request).await.unwrap();
            assert!(String::from_utf8_lossy(&request[..read]).starts_with("GET /ws HTTP/1.1"));
            let mut reply =
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                    .to_vec();
            reply.extend(frame(0x81, b"first"));
            stream.write_all(&reply).await.unwrap();
            stream.write_all(&frame(0x89, b"hi")).await.unwrap();
            stream.write_all(&frame(0x01, b"frag")).await.unwrap();
            stream.write_all(&frame(0x80, b"mented")).await.unwrap();
            let mid = frame(0x81, &big);
            // Split mid-header and mid-payload, as TCP may.
            for chunk in [&mid[..1], &mid[1..5000], &mid[5000..]] {
                stream.write_all(chunk).await.unwrap();
                stream.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let mut pong = [0; 8];
            stream.read_exact(&mut pong).await.unwrap();
            stream.write_all(&frame(0x88, &[])).await.unwrap();
            pong
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut socket = WebSocket::connect(stream, &addr.to_string(), "/ws").await.unwrap();
        let messages = read_all(&mut socket).await;
        assert_eq!(messages, vec![b"first".to_vec(), b"fragmented".to_vec(), expected_big]);
        let pong = server.await.unwrap();
        assert_eq!(pong[0], 0x8A, "a final pong frame");
        assert_eq!(pong[1], 0x80 | 2, "masked, two bytes");
        let unmasked: Vec<u8> = pong[6..].iter().zip(&pong[2..6]).map(|(byte, key)| byte ^ key).collect();
        assert_eq!(unmasked, b"hi");
    }
}
