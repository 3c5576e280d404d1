//! The reload stream served on its own connection, without hyper.
//!
//! When a connection's first request is `GET /auto_refresh` (HTTP/1.1, no body,
//! allowed by the guard), the server answers it here: it writes the response head
//! and then each event's bytes as they are broadcast, and closes the connection
//! when the stream ends (the body is delimited by the close, RFC 9112 §6.3). The
//! stream then holds its socket, one task and one broadcast receiver; through
//! hyper it would also hold hyper's read and write buffers (8 KiB each) for its
//! whole life. Anything else, including a stream request on a connection that has
//! served other requests, goes through hyper and the app's router.
//!
//! The request is only peeked at (`MSG_PEEK`) until it is known to be a stream
//! request, so a connection handed to hyper loses nothing.

use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::{BufMut, BytesMut};
use http::{header, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::guard::Guard;
use crate::sse::{self, Subscription};
use crate::{AutoReload, STREAM_PATH};

/// The longest request head looked at; a longer one (many cookies) goes to hyper.
const PEEK_LIMIT: usize = 8 * 1024;

/// The most header fields looked at; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;

/// How much of a connection's first bytes tells a stream request (`GET
/// /auto_refresh` and a space or `?`) from any other.
pub(super) const PREFIX_LEN: usize = "GET ".len() + STREAM_PATH.len() + 1;

/// The length of the connection's first request head when that request is for the
/// reload stream and may be answered here; `None` for anything else. Consumes
/// nothing.
pub(super) async fn peek_request(stream: &TcpStream, guard: &Guard) -> Option<usize> {
    let mut head = vec![0; PEEK_LIMIT];
    let peeked = stream.peek(&mut head).await.ok()?;
    stream_request_len(&head[..peeked], guard)
}

/// Whether `bytes`, the first bytes of a connection, start a stream request.
pub(super) fn is_stream_prefix(bytes: &[u8]) -> bool {
    let Some((end, path)) = bytes
        .strip_prefix(b"GET ")
        .and_then(|target| target.split_last())
    else {
        return false;
    };
    bytes.len() == PREFIX_LEN && path == STREAM_PATH.as_bytes() && matches!(end, b' ' | b'?')
}

/// The length of `head` when it holds a whole request for the stream that the
/// guard allows, without a body or an upgrade.
fn stream_request_len(head: &[u8], guard: &Guard) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = parsed.parse(head).ok()? else {
        return None;
    };
    let target = parsed.path?;
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    if parsed.method != Some("GET") || parsed.version != Some(1) || path != STREAM_PATH {
        return None;
    }
    // The request as the app would see it, for the guard's Host and Origin checks.
    let mut request = http::Request::builder().method(Method::GET).uri(target);
    for field in parsed.headers.iter() {
        request = request.header(field.name, field.value);
    }
    let request = request.body(()).ok()?;
    let headers = request.headers();
    let has_body = headers.contains_key(header::CONTENT_LENGTH)
        || headers.contains_key(header::TRANSFER_ENCODING);
    if has_body || headers.contains_key(header::UPGRADE) || guard.check(&request).is_some() {
        // hyper answers it: with the guard's 403, or as the app decides.
        return None;
    }
    Some(len)
}

/// Serve the stream whose request head (`head_len` bytes) was peeked.
pub(super) async fn serve(
    mut stream: TcpStream,
    head_len: usize,
    reload: &AutoReload,
    remote: SocketAddr,
) {
    let mut head = vec![0; head_len];
    if stream.read_exact(&mut head).await.is_err() {
        return;
    }
    drop(head);
    let mut events = Subscription::new(reload);
    let mut first = response_head();
    if let Some(hello) = events.next().await {
        first.put(hello);
    }
    let (reader, mut writer) = stream.split();
    if let Err(err) = writer.write_all(&first).await {
        tracing::debug!("reload stream to {remote}: {err}");
        return;
    }
    drop(first);
    // The browser sends nothing more on a stream: readable means closed. Made once,
    // not per event.
    let closed = async {
        let mut sink = [0; 64];
        loop {
            if reader.readable().await.is_err() {
                return;
            }
            match reader.try_read(&mut sink) {
                Ok(0) => return,
                Err(err) if err.kind() != std::io::ErrorKind::WouldBlock => return,
                Ok(_) | Err(_) => {}
            }
        }
    };
    tokio::pin!(closed);
    loop {
        let frame = tokio::select! {
            biased;
            frame = events.next() => frame,
            () = &mut closed => return,
        };
        let Some(frame) = frame else { break };
        if let Err(err) = writer.write_all(&frame).await {
            tracing::debug!("reload stream to {remote}: {err}");
            return;
        }
    }
    // The stream ended (`restart` sent): close, with a FIN after the last event.
    let _ = writer.shutdown().await;
}

/// The status line and headers of a stream response; the body is delimited by the
/// connection's close.
fn response_head() -> BytesMut {
    let date = httpdate::fmt_http_date(SystemTime::now());
    let mut head = BytesMut::with_capacity(256);
    head.put_slice(b"HTTP/1.1 200 OK\r\ncontent-type: ");
    head.put_slice(sse::CONTENT_TYPE.as_bytes());
    head.put_slice(b"\r\ncache-control: no-cache\r\nconnection: close\r\ndate: ");
    head.put_slice(date.as_bytes());
    head.put_slice(b"\r\n\r\n");
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(head: &str) -> Option<usize> {
        stream_request_len(head.as_bytes(), &Guard::default())
    }

    #[test]
    fn only_whole_allowed_stream_requests_are_taken() {
        let plain = "GET /auto_refresh HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
        assert_eq!(len(plain), Some(plain.len()));
        let query = "GET /auto_refresh?t=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert_eq!(len(query), Some(query.len()));
        // Pipelined bytes after the head are not part of it.
        assert_eq!(
            len(&format!("{plain}GET / HTTP/1.1\r\n")),
            Some(plain.len())
        );
        for other in [
            "GET /auto_refresh HTTP/1.1\r\nHost: localhost\r\n",
            "GET /auto_refresh/client.js HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "GET /auto_refreshed HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "HEAD /auto_refresh HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "GET /auto_refresh HTTP/1.0\r\nHost: localhost\r\n\r\n",
            "GET /auto_refresh HTTP/1.1\r\nHost: evil.example\r\n\r\n",
            "GET /auto_refresh HTTP/1.1\r\nHost: localhost\r\nOrigin: https://evil.example\r\n\r\n",
            "GET /auto_refresh HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc",
            "GET /auto_refresh HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n",
            "GET /auto_refresh HTTP/1.1\r\nHost: local\x01host\r\n\r\n",
        ] {
            assert_eq!(len(other), None, "{other:?}");
        }
        assert!(is_stream_prefix(b"GET /auto_refresh "));
        assert!(is_stream_prefix(b"GET /auto_refresh?"));
        assert!(!is_stream_prefix(b"GET /auto_refresh/"));
        assert!(!is_stream_prefix(b"GET /auto_refresh"));
        assert!(!is_stream_prefix(b"GET /index.html?xxx"));
    }
}
