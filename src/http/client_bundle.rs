//! `/socket.io/socket.io.js` and friends: the socket.io browser client, as
//! Node's socket.io serves it, so pages that load the client from the server
//! keep working; `socket.io.msgpack.min.js` is the build with
//! socket.io-msgpack-parser, for `PARSER=msgpack` (served whatever PARSER is,
//! as Node does). The files are socket.io-client 4.8.4 from npm, embedded in
//! the binary (see assets/socket.io-client/).

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The bundled client's version, quoted: the ETag, as in Node's socket.io.
const ETAG: &str = "\"4.8.4\"";

/// (file name, content type, bytes)
const FILES: &[(&str, &str, &[u8])] = &[
    ("socket.io.js", JS, include_bytes!("../../assets/socket.io-client/socket.io.js")),
    ("socket.io.min.js", JS, include_bytes!("../../assets/socket.io-client/socket.io.min.js")),
    ("socket.io.esm.min.js", JS, include_bytes!("../../assets/socket.io-client/socket.io.esm.min.js")),
    ("socket.io.js.map", MAP, include_bytes!("../../assets/socket.io-client/socket.io.js.map")),
    ("socket.io.min.js.map", MAP, include_bytes!("../../assets/socket.io-client/socket.io.min.js.map")),
    (
        "socket.io.esm.min.js.map",
        MAP,
        include_bytes!("../../assets/socket.io-client/socket.io.esm.min.js.map"),
    ),
    (
        "socket.io.msgpack.min.js",
        JS,
        include_bytes!("../../assets/socket.io-client/socket.io.msgpack.min.js"),
    ),
    (
        "socket.io.msgpack.min.js.map",
        MAP,
        include_bytes!("../../assets/socket.io-client/socket.io.msgpack.min.js.map"),
    ),
];
const JS: &str = "application/javascript; charset=utf-8";
const MAP: &str = "application/json; charset=utf-8";

/// Serves one bundled file, with a 304 when the client already has this version.
pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=0")),
        (header::ETAG, HeaderValue::from_static(ETAG)),
    ];
    if headers.get(header::IF_NONE_MATCH).is_some_and(|tag| tag.as_bytes() == ETAG.as_bytes()) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], *bytes).into_response()
}
