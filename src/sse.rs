//! The reload stream: server-sent events at `/auto_refresh` (WHATWG HTML,
//! server-sent events).
//!
//! Every stream starts with a `hello` event whose data is the instance id, with the
//! `retry` field set (see [`crate::Builder::retry`]); a failure report's stream
//! sends its `overlay` right before it. Then:
//!
//! | event     | data        | when |
//! |-----------|-------------|------|
//! | `overlay` | HTML fragment, one `data:` line per line | first event of every stream of a failure report ([`crate::Builder::overlay`]), right before `hello`: tabs show it above their page and do not reload onto this instance |
//! | `hello`   | instance id | first event of every stream (after the `overlay` of a report) |
//! | `reload`  | instance id | SIGUSR1, [`crate::AutoReload::reload`], a changed file that is neither a stylesheet nor an image; also when a stream fell behind the broadcast |
//! | `css`     | URL path of the stylesheet, e.g. `/static/style.css` | a stylesheet changed: tabs swap it in place |
//! | `image`   | URL path of the image | an image changed: tabs refresh it where shown |
//! | `restart` | instance id | the server is shutting down; the stream ends right after |
//!
//! Idle streams get a keep-alive comment (`:` line) every
//! [`crate::Builder::keep_alive`].
//!
//! Each event is encoded once, when it is broadcast, and the same bytes go to
//! every stream. A stream is served two ways: through the app's router (a
//! [`response`] body, on any connection), or by [`crate::serve()`] directly on a
//! connection whose first request is the stream, without hyper's per-connection
//! buffers (see `serve/event_stream.rs`). Both read their events from a
//! [`Subscription`].

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderValue};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::overlay::Overlay;
use crate::reload::Shared;
use crate::{AutoReload, InstanceId};

/// `Content-Type` of the stream (WHATWG HTML, server-sent events).
pub(crate) const CONTENT_TYPE: &str = "text/event-stream";

/// The keep-alive comment.
const KEEP_ALIVE: &[u8] = b":\n\n";

/// Encode one event: `event:` line, one `data:` line per line of `data`, an
/// optional `retry:` line (milliseconds), and the blank line that dispatches it.
pub(crate) fn encode(name: &str, data: &str, retry: Option<Duration>) -> Bytes {
    let mut frame = BytesMut::with_capacity(16 + name.len() + data.len());
    frame.put_slice(b"event: ");
    frame.put_slice(name.as_bytes());
    frame.put_u8(b'\n');
    // CR, LF and CRLF all end a line in the stream: each line gets its own field.
    for line in data.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        frame.put_slice(b"data: ");
        frame.put_slice(line.as_bytes());
        frame.put_u8(b'\n');
    }
    if let Some(retry) = retry {
        frame.put_slice(format!("retry: {}\n", retry.as_millis()).as_bytes());
    }
    frame.put_u8(b'\n');
    frame.freeze()
}

/// The events whose bytes are the same for every stream of one instance, encoded
/// once.
#[derive(Debug)]
pub(crate) struct Frames {
    pub(crate) hello: Bytes,
    pub(crate) reload: Bytes,
    pub(crate) restart: Bytes,
}

impl Frames {
    /// A report's streams open with its `overlay` event, sent with the `hello`.
    pub(crate) fn new(instance: &InstanceId, retry: Duration, overlay: Option<&Overlay>) -> Self {
        let id = instance.as_str();
        let hello = encode("hello", id, Some(retry));
        Self {
            hello: match overlay {
                Some(overlay) => [overlay.frame().as_ref(), &hello].concat().into(),
                None => hello,
            },
            reload: encode("reload", id, None),
            restart: encode("restart", id, None),
        }
    }
}

/// Counts the stream as open for as long as it lives.
#[derive(Debug)]
struct OpenStream(Arc<Shared>);

impl OpenStream {
    fn new(shared: Arc<Shared>) -> Self {
        shared.open_streams.fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hello,
    Live,
    Done,
}

/// One open reload stream: the encoded events it is to send, in order. Counted in
/// [`AutoReload::open_streams`] while it lives.
#[derive(Debug)]
pub(crate) struct Subscription {
    open: OpenStream,
    receiver: broadcast::Receiver<Bytes>,
    keep_alive: Interval,
    /// Made once: polling it again costs nothing, making it anew takes a lock
    /// shared by every stream.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    state: State,
}

impl Subscription {
    /// Subscribe to `reload`'s broadcast. Must be called within a Tokio runtime
    /// (the keep-alive timer).
    pub(crate) fn new(reload: &AutoReload) -> Self {
        let shared = Arc::clone(&reload.shared);
        let period = shared.keep_alive;
        let mut keep_alive = tokio::time::interval_at(Instant::now() + period, period);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Subscribed before the hello goes out: no broadcast falls between the two.
        let receiver = shared.events.subscribe();
        let shutdown = Box::pin(shared.shutdown.triggered_future());
        Self {
            open: OpenStream::new(shared),
            receiver,
            keep_alive,
            shutdown,
            state: State::Hello,
        }
    }

    /// The next bytes to send, or `None` once the stream has ended (after
    /// `restart`). Cancel safe: a call dropped before it completes loses nothing.
    pub(crate) async fn next(&mut self) -> Option<Bytes> {
        let shared = &self.open.0;
        match self.state {
            State::Done => return None,
            State::Hello => {
                self.state = State::Live;
                return Some(shared.frames.hello.clone());
            }
            State::Live => {}
        }
        let (frame, last) = tokio::select! {
            biased;
            () = self.shutdown.as_mut() => (shared.frames.restart.clone(), true),
            received = self.receiver.recv() => match received {
                Ok(frame) => (frame, false),
                // A stream that fell behind may have missed anything: reload.
                Err(RecvError::Lagged(_)) => (shared.frames.reload.clone(), false),
                Err(RecvError::Closed) => (shared.frames.restart.clone(), true),
            },
            _ = self.keep_alive.tick() => (Bytes::from_static(KEEP_ALIVE), false),
        };
        if last {
            self.state = State::Done;
        }
        Some(frame)
    }
}

/// The reload stream as a response, for the router.
pub(crate) fn response(reload: &AutoReload) -> Response {
    let events = futures_util::stream::unfold(Subscription::new(reload), |mut events| async {
        let frame = events.next().await?;
        Some((Ok::<_, Infallible>(frame), events))
    });
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_encoded_one_field_per_line() {
        assert_eq!(
            &encode("hello", "1a-2b", Some(Duration::from_millis(100)))[..],
            b"event: hello\ndata: 1a-2b\nretry: 100\n\n"
        );
        assert_eq!(
            &encode("css", "/a.css\r\nevent: x\rb\nc", None)[..],
            b"event: css\ndata: /a.css\ndata: event: x\ndata: b\ndata: c\n\n"
        );
        assert_eq!(
            &encode("reload", "", None)[..],
            b"event: reload\ndata: \n\n"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hello_then_broadcasts_keep_alives_and_restart() {
        let reload = AutoReload::builder()
            .enabled(true)
            .keep_alive(Duration::from_secs(15))
            .build();
        let mut stream = Subscription::new(&reload);
        assert_eq!(reload.open_streams(), 1);
        let hello = stream.next().await.expect("hello");
        assert!(hello.starts_with(b"event: hello\n"), "{hello:?}");
        reload.changed("/static/app.css");
        assert_eq!(
            stream.next().await.as_deref(),
            Some(&b"event: css\ndata: /static/app.css\n\n"[..])
        );
        // Nothing broadcast for 15 s: a keep-alive comment.
        assert_eq!(stream.next().await.as_deref(), Some(KEEP_ALIVE));
        reload.shutdown_signal().trigger();
        let restart = stream.next().await.expect("restart");
        assert!(restart.starts_with(b"event: restart\n"), "{restart:?}");
        assert_eq!(stream.next().await, None);
        drop(stream);
        assert_eq!(reload.open_streams(), 0);
    }
}
