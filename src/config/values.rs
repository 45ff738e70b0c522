//! The types of the settings that take one of a few values.

use clap::ValueEnum;

/// A socket.io transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// WebSocket, the default and the only one without sticky sessions.
    Websocket,
    /// HTTP long-polling; behind several instances it needs sticky sessions.
    Polling,
}

/// A socket.io packet encoding (PARSER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PacketParser {
    /// socket.io's default parser: JSON text, binaries as attachments.
    Common,
    /// socket.io-msgpack-parser: every packet one MessagePack binary frame.
    Msgpack,
}

impl PacketParser {
    /// The setting's value, as logs and peers name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Common => "common",
            Self::Msgpack => "msgpack",
        }
    }
}

impl std::fmt::Display for PacketParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}
