//! Files people send and avatars they upload: names, sizes, and types
//! decided from the bytes themselves (never from the name or a header).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValidationError;

/// Longest file name kept, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// What kind of media a file is; decides how clients show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// Shown inline.
    Image,
    /// Played with an audio player.
    Audio,
    /// Played with a video player.
    Video,
    /// Offered as a document.
    Pdf,
}

/// A media type chatwire accepts, as detected from a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType {
    /// The MIME type, e.g. `image/png`.
    pub mime: &'static str,
    /// Its family.
    pub kind: MediaKind,
}

/// The types accepted in messages: common images, audio, video, and PDF.
/// SVG is not among them (it is a document that can carry scripts).
const ALLOWED: &[(&str, MediaKind)] = &[
    ("image/png", MediaKind::Image),
    ("image/jpeg", MediaKind::Image),
    ("image/gif", MediaKind::Image),
    ("image/webp", MediaKind::Image),
    ("image/avif", MediaKind::Image),
    ("audio/mpeg", MediaKind::Audio),
    ("audio/ogg", MediaKind::Audio),
    ("audio/x-wav", MediaKind::Audio),
    ("audio/x-flac", MediaKind::Audio),
    ("audio/aac", MediaKind::Audio),
    ("audio/m4a", MediaKind::Audio),
    ("audio/x-m4a", MediaKind::Audio),
    ("audio/opus", MediaKind::Audio),
    ("video/mp4", MediaKind::Video),
    ("video/webm", MediaKind::Video),
    ("video/quicktime", MediaKind::Video),
    ("video/ogg", MediaKind::Video),
    ("application/pdf", MediaKind::Pdf),
];

impl MediaType {
    /// The accepted type of `bytes`, or why they are refused.
    pub fn sniff(bytes: &[u8]) -> Result<Self, ValidationError> {
        let detected = infer::get(bytes).map(|t| t.mime_type());
        ALLOWED
            .iter()
            .find(|(mime, _)| Some(*mime) == detected)
            .map(|&(mime, kind)| Self { mime, kind })
            .ok_or_else(|| ValidationError::FileType(detected.unwrap_or("unknown").to_owned()))
    }

    /// Like [`MediaType::sniff`], for avatars: images only.
    pub fn sniff_image(bytes: &[u8]) -> Result<Self, ValidationError> {
        match Self::sniff(bytes) {
            Ok(media) if media.kind == MediaKind::Image => Ok(media),
            Ok(media) => Err(ValidationError::FileType(media.mime.to_owned())),
            Err(err) => Err(err),
        }
    }
}

/// A file's name as shown to recipients: the last path component of what
/// the sender gave, 1 to 255 characters, no control characters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);

impl FileName {
    /// Validates a file name (directories in it are dropped).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let base = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
        if base.is_empty() || base == "." || base == ".." {
            return Err(ValidationError::FileName("must not be empty"));
        }
        if base.chars().count() > MAX_FILE_NAME_CHARS {
            return Err(ValidationError::FileName("must be at most 255 characters"));
        }
        if base.chars().any(char::is_control) {
            return Err(ValidationError::FileName("must not contain control characters"));
        }
        Ok(Self(base.to_owned()))
    }
}
checked_string!(FileName);
impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] =
        &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R'];

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(MediaType::sniff(PNG).unwrap(), MediaType { mime: "image/png", kind: MediaKind::Image });
        assert_eq!(MediaType::sniff(b"%PDF-1.7\n...").unwrap().kind, MediaKind::Pdf);
        assert!(MediaType::sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>").is_err());
        assert!(MediaType::sniff(b"#!/bin/sh\nrm -rf /").is_err());
        assert!(MediaType::sniff(b"").is_err());
        // A zip (or an executable) renamed .png is still refused.
        assert!(MediaType::sniff(b"PK\x03\x04rest-of-zip").is_err());
    }

    #[test]
    fn avatars_must_be_images() {
        assert!(MediaType::sniff_image(PNG).is_ok());
        assert!(MediaType::sniff_image(b"%PDF-1.7").is_err());
    }

    #[test]
    fn file_names_lose_their_directories() {
        assert_eq!(FileName::parse("../../etc/passwd").unwrap().as_str(), "passwd");
        assert_eq!(FileName::parse("C:\\Users\\me\\cat.png").unwrap().as_str(), "cat.png");
        assert!(FileName::parse("dir/").is_err());
        assert!(FileName::parse("..").is_err());
        assert!(FileName::parse("bad\u{0}name").is_err());
        assert!(FileName::parse(&"a".repeat(256)).is_err());
    }
}
