//! What the server reads from the settings, beyond their raw values.

use super::{Config, DEFAULT_FRAME_BYTES, Transport};

/// Settings given in MB count mebibytes.
const MIB: u64 = 1024 * 1024;

impl Config {
    /// The instance name: the configured one, or the hostname.
    pub fn instance_name(&self) -> String {
        self.instance_name
            .clone()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
    }

    /// True if long-polling is enabled.
    pub fn polling_enabled(&self) -> bool {
        self.transports.contains(&Transport::Polling)
    }

    /// How long files are kept.
    pub fn file_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.file_ttl_hours * 3600)
    }

    /// How long a conversation's history outlives its last use.
    pub fn history_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.history_ttl_days * 24 * 3600)
    }

    /// The in-memory history budget, in bytes.
    pub fn history_max_bytes(&self) -> usize {
        usize::try_from(self.history_max_mb * MIB).unwrap_or(usize::MAX)
    }

    /// Bytes of files one user may send per day; 0 = unlimited.
    pub fn file_quota_bytes(&self) -> u64 {
        self.file_quota_mb_per_day.saturating_mul(MIB)
    }

    /// The token secret from SECRET or SECRET_FILE, if configured.
    pub fn token_secret(&self) -> Result<Option<Vec<u8>>, String> {
        let secret = match (&self.secret, &self.secret_file) {
            (Some(_), Some(_)) => return Err("set SECRET or SECRET_FILE, not both".into()),
            (Some(secret), None) => secret.trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|err| format!("cannot read SECRET_FILE {}: {err}", path.display()))?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        if secret.len() < 16 {
            return Err("the secret must be at least 16 characters (32 or more recommended)".into());
        }
        Ok(Some(secret.into_bytes()))
    }

    /// MAX_FRAME_BYTES, or its deprecated name MAX_MESSAGE_BYTES, or the
    /// default: the frame cap before files raise it.
    pub fn frame_bytes(&self) -> usize {
        let bytes = self.max_frame_bytes.or(self.max_message_bytes).unwrap_or(DEFAULT_FRAME_BYTES);
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    /// The transport cap: the largest frame (websocket message, polling
    /// body, or a packet's binary attachments together) read from a client.
    /// [`Config::frame_bytes`], raised to twice MAX_FILE_BYTES so that a
    /// file a little over its limit still arrives and gets `file_too_large`.
    pub fn transport_cap(&self) -> usize {
        self.frame_bytes().max(self.max_file_bytes.saturating_mul(2))
    }

    /// Warnings about settings that are still read but should be changed,
    /// logged at start.
    pub fn deprecations(&self) -> Vec<String> {
        match (self.max_message_bytes, self.max_frame_bytes) {
            (Some(old), None) => vec![format!(
                "MAX_MESSAGE_BYTES is deprecated: read as MAX_FRAME_BYTES={old} (frames over it disconnect); \
                 rename it, or unset it for Node's default of {DEFAULT_FRAME_BYTES}"
            )],
            (Some(_), Some(new)) => vec![format!(
                "MAX_MESSAGE_BYTES is deprecated and ignored: MAX_FRAME_BYTES={new} is set; remove MAX_MESSAGE_BYTES"
            )],
            (None, _) => Vec::new(),
        }
    }

    /// True if TLS is served directly.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// True if websocket is enabled.
    pub fn websocket_enabled(&self) -> bool {
        self.transports.contains(&Transport::Websocket)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from([&["chatwire"], args].concat()).unwrap()
    }

    #[test]
    fn the_frame_cap_is_nodes_unless_files_need_more() {
        let small_files = parse(&["--max-file-bytes", "100000"]);
        assert_eq!(small_files.frame_bytes(), 1_000_000, "Node's maxHttpBufferSize");
        assert_eq!(small_files.transport_cap(), 1_000_000);
        let default_files = parse(&[]);
        assert_eq!(default_files.transport_cap(), 10 * 1024 * 1024, "a 5 MiB file's frame may be twice that");
        let set = parse(&["--max-frame-bytes", "20000000"]);
        assert_eq!(set.transport_cap(), 20_000_000);
        assert!(set.deprecations().is_empty());
        assert!(Config::try_parse_from(["chatwire", "--max-frame-bytes", "1000"]).is_err(), "too small");
    }

    #[test]
    fn the_old_name_still_sets_the_frame_cap_with_a_warning() {
        let old = parse(&["--max-message-bytes", "16384", "--max-file-bytes", "4096"]);
        assert_eq!(old.transport_cap(), 16384, "an operator's smaller cap is kept");
        assert!(old.deprecations()[0].contains("read as MAX_FRAME_BYTES=16384"), "{:?}", old.deprecations());
        let both = parse(&["--max-message-bytes", "16384", "--max-frame-bytes", "2000000"]);
        assert_eq!(both.frame_bytes(), 2_000_000, "the new name wins");
        assert!(both.deprecations()[0].contains("ignored"), "{:?}", both.deprecations());
    }
}
