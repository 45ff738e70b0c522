//! The security headers of every response, chosen once at start.
//!
//! API answers (JSON, user files) are data, never documents: they always
//! carry the strictest set. Everything else is a page, or what a page loads,
//! and whose page it is decides:
//! - chatwire's bundled web client (recognised by [`BUNDLED_CLIENT_MARK`] in
//!   its `index.html`) gets its strict policy: nothing but its own origin,
//!   nothing inline, never framed;
//! - a frontend of the user's own gets no policy of ours, as under Node's
//!   socket.io: the scripts, styles and fonts it loads from a CDN keep
//!   loading. It keeps only the headers that cannot break a page;
//! - CONTENT_SECURITY_POLICY, when set, is the pages' policy in both cases,
//!   exactly as given (empty: none).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::config::Config;

/// The bundled client's policy: everything from this origin, media from
/// blob URLs (files received live), nothing inline, never framed.
const BUNDLED_CSP: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// API answers: a file opened directly runs no script and cannot be framed.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

/// What marks PUBLIC_DIR's `index.html` as chatwire's own web client. A copy
/// of the client keeps it (and the strict policy); a page that drops it is
/// the user's own.
pub const BUNDLED_CLIENT_MARK: &str = r#"<meta name="generator" content="chatwire">"#;

/// How much of `index.html` is searched for the mark (it sits in `<head>`).
const MARK_SEARCH_BYTES: u64 = 16 * 1024;

/// Whose pages PUBLIC_DIR serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// chatwire's bundled web client.
    Bundled,
    /// A page of the user's own (or no `index.html` at all).
    Own,
}

impl Frontend {
    /// Looks for the bundled client's mark in `public_dir/index.html`.
    pub fn of(public_dir: &Path) -> Self {
        // Bytes, not a string: the cut may fall inside a character.
        let mut head = Vec::new();
        let read = std::fs::File::open(public_dir.join("index.html"))
            .and_then(|file| file.take(MARK_SEARCH_BYTES).read_to_end(&mut head));
        let mark = BUNDLED_CLIENT_MARK.as_bytes();
        match read {
            Ok(_) if head.windows(mark.len()).any(|window| window == mark) => Self::Bundled,
            _ => Self::Own,
        }
    }
}

/// The headers added to API answers and to everything else.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    api: Arc<[(HeaderName, HeaderValue)]>,
    pages: Arc<[(HeaderName, HeaderValue)]>,
}

impl SecurityHeaders {
    /// The headers for PUBLIC_DIR's frontend and CONTENT_SECURITY_POLICY.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let frontend = Frontend::of(&config.public_dir);
        let policy = match config.content_security_policy.as_deref() {
            Some(policy) if policy.trim().is_empty() => None,
            Some(policy) => Some(
                HeaderValue::from_str(policy)
                    .map_err(|_| "CONTENT_SECURITY_POLICY is not a valid header value".to_owned())?,
            ),
            None => (frontend == Frontend::Bundled).then_some(HeaderValue::from_static(BUNDLED_CSP)),
        };
        Ok(Self::new(frontend, policy))
    }

    /// Says once, at start, which policy the pages carry.
    pub fn log(config: &Config) {
        let frontend = Frontend::of(&config.public_dir);
        match (&config.content_security_policy, frontend) {
            (Some(policy), _) if policy.trim().is_empty() => {
                tracing::info!("CONTENT_SECURITY_POLICY is empty: pages carry no Content-Security-Policy")
            }
            (Some(policy), _) => tracing::info!(%policy, "pages carry CONTENT_SECURITY_POLICY"),
            (None, Frontend::Bundled) => {
                tracing::info!("pages carry the bundled web client's strict Content-Security-Policy")
            }
            (None, Frontend::Own) => tracing::info!(
                public_dir = %config.public_dir.display(),
                "PUBLIC_DIR holds a frontend of your own: its pages carry no Content-Security-Policy \
                 (set CONTENT_SECURITY_POLICY to send one)"
            ),
        }
    }

    fn new(frontend: Frontend, policy: Option<HeaderValue>) -> Self {
        let api = [
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
            (
                HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
            ),
        ];
        let policy = policy.map(|policy| (header::CONTENT_SECURITY_POLICY, policy));
        let pages: Vec<_> = match frontend {
            // The bundled client needs no frame, popup, camera or referrer.
            Frontend::Bundled => policy.into_iter().chain(api.iter().skip(1).cloned()).collect(),
            // A user's page may be framed, open an OAuth popup, use the camera
            // or rely on the Referer a CDN checks: only what cannot break it.
            // The referrer policy is the browsers' own default, for old ones.
            Frontend::Own => policy
                .into_iter()
                .chain([
                    (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                    (header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin")),
                ])
                .collect(),
        };
        Self { api: api.into(), pages: pages.into() }
    }

    /// Adds the headers to a response, keeping any a route set itself.
    pub fn apply(&self, api: bool, headers: &mut HeaderMap) {
        let set = if api { &self.api } else { &self.pages };
        for (name, value) in set.iter() {
            headers.entry(name).or_insert_with(|| value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn applied(headers: &SecurityHeaders, api: bool) -> HeaderMap {
        let mut map = HeaderMap::new();
        headers.apply(api, &mut map);
        map
    }

    #[test]
    fn the_bundled_client_is_recognised_by_its_mark() {
        let dir = std::env::temp_dir().join(format!("chatwire-frontend-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Frontend::of(&dir), Frontend::Own, "no index.html");
        std::fs::write(dir.join("index.html"), "<script src=https://cdn.example/jquery.js></script>")
            .unwrap();
        assert_eq!(Frontend::of(&dir), Frontend::Own);
        std::fs::write(dir.join("index.html"), format!("<head>{BUNDLED_CLIENT_MARK}</head>")).unwrap();
        assert_eq!(Frontend::of(&dir), Frontend::Bundled);
        // The search window ends inside a two-byte character.
        let long = format!("<head>{BUNDLED_CLIENT_MARK}{}</head>", "é".repeat(MARK_SEARCH_BYTES as usize));
        std::fs::write(dir.join("index.html"), format!(" {long}")).unwrap();
        assert_eq!(Frontend::of(&dir), Frontend::Bundled, "a cut character does not hide the mark");
        std::fs::remove_dir_all(&dir).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("public");
        assert_eq!(Frontend::of(&shipped), Frontend::Bundled, "public/index.html lost its mark");
    }

    #[test]
    fn own_pages_keep_only_headers_that_cannot_break_them() {
        let headers = SecurityHeaders::new(Frontend::Own, None);
        let page = applied(&headers, false);
        assert!(page.get(header::CONTENT_SECURITY_POLICY).is_none());
        assert!(page.get(header::X_FRAME_OPTIONS).is_none());
        assert_eq!(page[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let api = applied(&headers, true);
        assert_eq!(api[header::CONTENT_SECURITY_POLICY], API_CSP, "the API stays strict");
        assert_eq!(api[header::X_FRAME_OPTIONS], "DENY");
    }

    #[test]
    fn a_configured_policy_replaces_the_bundled_one_exactly() {
        let policy = HeaderValue::from_static("default-src 'self' https://cdn.example");
        let page = applied(&SecurityHeaders::new(Frontend::Bundled, Some(policy.clone())), false);
        assert_eq!(page[header::CONTENT_SECURITY_POLICY], policy);
        assert_eq!(page.get_all(header::CONTENT_SECURITY_POLICY).iter().count(), 1);
        assert_eq!(page[header::X_FRAME_OPTIONS], "DENY", "the bundled client keeps the rest");
        let strict = applied(
            &SecurityHeaders::new(Frontend::Bundled, Some(HeaderValue::from_static(BUNDLED_CSP))),
            false,
        );
        assert_eq!(strict[header::CONTENT_SECURITY_POLICY], BUNDLED_CSP);
    }
}
