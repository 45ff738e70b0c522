//! Gives a socket.io request a head of its own, out of hyper's read buffer.
//!
//! hyper parses the URI and header values as slices of the connection's
//! read buffer (16 KiB once it has grown), and the socket.io engine keeps a
//! websocket's request head for the life of the socket
//! (`socket.req_parts()`). So every connected socket held a 16 KiB buffer for
//! a head of a few hundred bytes: about a third of an idle connection's
//! memory. Copying the head costs a few hundred bytes once per connection.
//! (axum's `original-uri` feature would keep a clone of the URI, and with it
//! the buffer, in the request's extensions: it stays off.)

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Uri};

/// Replaces the request's URI and header values with copies that share no
/// memory with the connection's read buffer.
pub fn own_head(mut request: Request) -> Request {
    if let Ok(uri) = request.uri().to_string().parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    let mut headers = HeaderMap::with_capacity(request.headers().len());
    for (name, value) in request.headers() {
        headers.append(name.clone(), copy(value));
    }
    *request.headers_mut() = headers;
    request
}

/// `value`, in memory of its own.
fn copy(value: &HeaderValue) -> HeaderValue {
    // Bytes that made a valid value before make one again.
    let Ok(mut copied) = HeaderValue::from_bytes(value.as_bytes()) else { return value.clone() };
    copied.set_sensitive(value.is_sensitive());
    copied
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use axum::body::{Body, Bytes};

    use super::*;

    #[test]
    fn the_copied_head_reads_the_same_and_shares_no_buffer() {
        // A request head parsed the way hyper does: slices of one buffer.
        let buffer = Bytes::from_static(b"/socket.io/?EIO=4&transport=websocket|websocket|secret");
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = Uri::from_maybe_shared(buffer.slice(0..37)).unwrap();
        request
            .headers_mut()
            .insert("upgrade", HeaderValue::from_maybe_shared(buffer.slice(38..47)).unwrap());
        let mut secret = HeaderValue::from_maybe_shared(buffer.slice(48..)).unwrap();
        secret.set_sensitive(true);
        request.headers_mut().append("x-token", secret);
        request.headers_mut().append("x-token", HeaderValue::from_static("second"));

        let request = own_head(request);

        assert_eq!(request.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(request.headers()["upgrade"], "websocket");
        let tokens: Vec<_> = request.headers().get_all("x-token").iter().collect();
        assert_eq!(tokens, ["secret", "second"]);
        assert!(tokens[0].is_sensitive(), "sensitivity is kept");
        let within = |bytes: &[u8]| buffer.as_ptr_range().contains(&bytes.as_ptr());
        assert!(!within(request.uri().path().as_bytes()), "the URI is a copy");
        assert!(!within(request.headers()["upgrade"].as_bytes()), "header values are copies");
    }
}
