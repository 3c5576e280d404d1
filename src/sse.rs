//! The reload stream: server-sent events at [`STREAM_PATH`] (WHATWG HTML,
//! server-sent events), and the broadcast that feeds every open stream. The events
//! and what they mean are listed in [`crate::protocol`].
//!
//! [`Broadcaster`] is the one owner of the broadcast: the channel, the events
//! encoded once (the same bytes go to every stream) and the count of open
//! streams. The rest of the crate calls it; nothing else touches those.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderValue};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::instance::InstanceId;
use crate::protocol::{
    BUILDING_EVENT, CLEAR_EVENT, CSS_EVENT, EVENT_STREAM_CONTENT_TYPE as CONTENT_TYPE, HELLO_EVENT,
    IMAGE_EVENT, MORPH_EVENT, OVERLAY_EVENT, RELOAD_EVENT, REPORT_EVENT, RESTART_EVENT,
};
use crate::shutdown::{KeepStreamOpen, ShutdownSignal};

/// The `retry` field that [`crate::inject::InjectLayer`] puts first in the app's own
/// event streams when reload is on: after a restart, their `EventSource`s
/// reconnect after this long rather than the browser's default (3 seconds in
/// Chromium; measured 3.06 s on axum's `sse` example).
pub(crate) const APP_STREAM_RETRY: Duration = Duration::from_millis(250);

/// `retry: 250` and the blank line that ends the field's block: a block with no
/// `data` dispatches no event (WHATWG HTML, server-sent events, "dispatch the
/// event").
pub(crate) fn app_stream_retry() -> Bytes {
    format!("retry: {}\n\n", APP_STREAM_RETRY.as_millis()).into()
}

/// The keep-alive comment.
const KEEP_ALIVE: &[u8] = b":\n\n";

/// How many events the broadcast keeps for a stream that has not read them yet; a
/// stream that falls further behind gets a `reload`.
const CAPACITY: usize = 16;

/// What the reload stream broadcasts to every open stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Broadcast {
    /// Reload every tab (SIGUSR1, [`crate::AutoReload::reload`]).
    Reload,
    /// The pages changed: every tab fetches its own again and morphs it in.
    Morph,
    /// Swap the stylesheet served at this URL path in every tab that uses it.
    Css(Arc<str>),
    /// Refresh the image served at this URL path wherever it is shown.
    Image(Arc<str>),
    /// A build started; this instance keeps serving. Kept for streams opened later.
    Building,
    /// A build failed; this instance keeps serving. The HTML fragment is kept for
    /// streams opened later (it replaces a `Building`).
    Report(Arc<str>),
    /// Nothing to show any more: forget `Building` and `Report`.
    Clear,
}

/// The file name endings that are refreshed in place as images.
const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp",
];

impl Broadcast {
    /// What a change to the file served at `url_path` needs in the browser.
    pub(crate) fn for_change(url_path: &str) -> Self {
        let extension = url_path
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .unwrap_or_default();
        if extension == "css" {
            Self::Css(url_path.into())
        } else if extension == "html" || extension == "htm" {
            Self::Morph
        } else if IMAGE_EXTENSIONS.contains(&extension.as_str()) {
            Self::Image(url_path.into())
        } else {
            Self::Reload
        }
    }
}

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

/// The reload broadcast of one [`crate::AutoReload`]. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Broadcaster(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Encoded events, each sent once to every open stream.
    sender: broadcast::Sender<Bytes>,
    /// The events whose bytes are the same for every stream of this instance.
    hello: Bytes,
    reload: Bytes,
    morph: Bytes,
    restart: Bytes,
    /// The `building` or `report` event every stream opened now gets after its
    /// `hello`, if any.
    state: Mutex<Option<Bytes>>,
    open: AtomicUsize,
    keep_alive: Duration,
    shutdown: ShutdownSignal,
}

impl Broadcaster {
    /// The broadcast of `instance`: streams send `retry` in their `hello`, a
    /// keep-alive comment after `keep_alive` of silence, and `restart` when
    /// `shutdown` fires. A report's streams open with its `overlay` event (`overlay`:
    /// the report's HTML), sent with the `hello`.
    pub(crate) fn new(
        instance: &InstanceId,
        retry: Duration,
        keep_alive: Duration,
        shutdown: ShutdownSignal,
        overlay: Option<&str>,
    ) -> Self {
        let id = instance.as_str();
        let hello = encode(HELLO_EVENT, id, Some(retry));
        Self(Arc::new(Inner {
            sender: broadcast::channel(CAPACITY).0,
            hello: match overlay {
                Some(html) => [encode(OVERLAY_EVENT, html, None).as_ref(), &hello]
                    .concat()
                    .into(),
                None => hello,
            },
            reload: encode(RELOAD_EVENT, id, None),
            morph: encode(MORPH_EVENT, id, None),
            restart: encode(RESTART_EVENT, id, None),
            state: Mutex::new(None),
            open: AtomicUsize::new(0),
            keep_alive,
            shutdown,
        }))
    }

    /// Send `event` to every open stream; returns how many were open to hear it.
    pub(crate) fn send(&self, event: &Broadcast) -> usize {
        tracing::debug!(?event, "broadcast");
        let frame = match event {
            Broadcast::Reload => self.0.reload.clone(),
            Broadcast::Morph => self.0.morph.clone(),
            Broadcast::Css(path) => encode(CSS_EVENT, path, None),
            Broadcast::Image(path) => encode(IMAGE_EVENT, path, None),
            Broadcast::Building => self.keep(Some(encode(BUILDING_EVENT, "", None))),
            Broadcast::Report(html) => self.keep(Some(encode(REPORT_EVENT, html, None))),
            Broadcast::Clear => {
                self.keep(None);
                encode(CLEAR_EVENT, "", None)
            }
        };
        self.0.sender.send(frame).unwrap_or(0)
    }

    /// Keep `frame` for the streams opened from now on and return it for the
    /// broadcast. A stream opened between the two gets the frame twice, which the
    /// client shows as once.
    fn keep(&self, frame: Option<Bytes>) -> Bytes {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.clone_from(&frame);
        frame.unwrap_or_default()
    }

    /// How many streams are open now.
    pub(crate) fn open_streams(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }

    /// The encoded events as they are broadcast, for tests that watch them.
    #[cfg(test)]
    pub(crate) fn frames(&self) -> broadcast::Receiver<Bytes> {
        self.0.sender.subscribe()
    }

    /// A new stream as a response: `200`, `text/event-stream`, a body that ends
    /// after `restart`. It ends itself at shutdown, so it carries
    /// [`KeepStreamOpen`]: the layer must not cut it before its `restart`. Must be
    /// called within a Tokio runtime (the keep-alive timer).
    pub(crate) fn response(&self) -> Response {
        let events = futures_util::stream::unfold(self.subscribe(), |mut events| async {
            let frame = events.next().await?;
            Some((Ok::<_, Infallible>(frame), events))
        });
        let mut response = Response::new(Body::from_stream(events));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response.extensions_mut().insert(KeepStreamOpen);
        response
    }

    fn subscribe(&self) -> Subscription {
        // A zero period means no keep-alive: `interval` would panic on it.
        let period = self.0.keep_alive;
        let keep_alive = (!period.is_zero()).then(|| {
            let mut keep_alive = tokio::time::interval_at(Instant::now() + period, period);
            keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
            keep_alive
        });
        // Subscribed before the hello goes out: no broadcast falls between the two.
        let receiver = self.0.sender.subscribe();
        let shutdown = Box::pin(self.0.shutdown.triggered_future());
        self.0.open.fetch_add(1, Ordering::Relaxed);
        Subscription {
            broadcaster: self.clone(),
            receiver,
            keep_alive,
            shutdown,
            state: State::Hello,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hello,
    Live,
    Done,
}

/// One open reload stream: the encoded events it is to send, in order. Counted in
/// [`Broadcaster::open_streams`] while it lives.
#[derive(Debug)]
struct Subscription {
    broadcaster: Broadcaster,
    receiver: broadcast::Receiver<Bytes>,
    /// `None`: no keep-alive comments (a keep-alive of zero).
    keep_alive: Option<Interval>,
    /// Made once: making it anew clones the token and registers a new waiter.
    /// Polling it takes the token's lock, once per event of a stream, which is
    /// rare next to requests.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    state: State,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.broadcaster.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Subscription {
    /// The next bytes to send, or `None` once the stream has ended (after
    /// `restart`). Cancel safe: a call dropped before it completes loses nothing.
    async fn next(&mut self) -> Option<Bytes> {
        let inner = &self.broadcaster.0;
        match self.state {
            State::Done => return None,
            State::Hello => {
                self.state = State::Live;
                let kept = inner
                    .state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                return Some(match kept {
                    Some(kept) => [inner.hello.as_ref(), &kept].concat().into(),
                    None => inner.hello.clone(),
                });
            }
            State::Live => {}
        }
        let (frame, last) = tokio::select! {
            biased;
            () = self.shutdown.as_mut() => (inner.restart.clone(), true),
            received = self.receiver.recv() => match received {
                Ok(frame) => (frame, false),
                // A stream that fell behind may have missed anything: reload.
                Err(RecvError::Lagged(_)) => (inner.reload.clone(), false),
                Err(RecvError::Closed) => (inner.restart.clone(), true),
            },
            () = tick(self.keep_alive.as_mut()) => (Bytes::from_static(KEEP_ALIVE), false),
        };
        if last {
            self.state = State::Done;
        }
        // Any frame keeps the connection alive: the comment is for silence only.
        if let Some(keep_alive) = &mut self.keep_alive {
            keep_alive.reset();
        }
        Some(frame)
    }
}

/// The next tick of `interval`; never without one.
async fn tick(interval: Option<&mut Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    #[test]
    fn what_each_change_needs() {
        assert_eq!(
            Broadcast::for_change("/a/b.CSS"),
            Broadcast::Css("/a/b.CSS".into())
        );
        assert_eq!(
            Broadcast::for_change("/logo.svg"),
            Broadcast::Image("/logo.svg".into())
        );
        assert_eq!(Broadcast::for_change("/index.html"), Broadcast::Morph);
        assert_eq!(Broadcast::for_change("/a/b.HTM"), Broadcast::Morph);
        assert_eq!(Broadcast::for_change("/app.js"), Broadcast::Reload);
        assert_eq!(Broadcast::for_change("/Makefile"), Broadcast::Reload);
    }

    /// A broadcast with `retry` 100 ms and no overlay.
    pub(crate) fn test_broadcaster(keep_alive: Duration, shutdown: ShutdownSignal) -> Broadcaster {
        let retry = Duration::from_millis(100);
        Broadcaster::new(&InstanceId::generate(), retry, keep_alive, shutdown, None)
    }

    #[tokio::test(start_paused = true)]
    async fn hello_then_broadcasts_keep_alives_and_restart() {
        let shutdown = ShutdownSignal::new();
        let broadcaster = test_broadcaster(Duration::from_secs(15), shutdown.clone());
        let mut stream = broadcaster.subscribe();
        assert_eq!(broadcaster.open_streams(), 1);
        let hello = stream.next().await.expect("hello");
        assert!(hello.starts_with(b"event: hello\n"), "{hello:?}");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            broadcaster.send(&Broadcast::for_change("/static/app.css")),
            1
        );
        assert_eq!(
            stream.next().await.as_deref(),
            Some(&b"event: css\ndata: /static/app.css\n\n"[..])
        );
        // Nothing broadcast for 15 s after the last event: a keep-alive comment.
        let sent = Instant::now();
        assert_eq!(stream.next().await.as_deref(), Some(KEEP_ALIVE));
        assert_eq!(sent.elapsed(), Duration::from_secs(15));
        shutdown.trigger();
        let restart = stream.next().await.expect("restart");
        assert!(restart.starts_with(b"event: restart\n"), "{restart:?}");
        assert_eq!(stream.next().await, None);
        drop(stream);
        assert_eq!(broadcaster.open_streams(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_keep_alive_sends_no_comments() {
        let shutdown = ShutdownSignal::new();
        let broadcaster = test_broadcaster(Duration::ZERO, shutdown.clone());
        let mut stream = broadcaster.subscribe();
        stream.next().await.expect("hello");
        tokio::time::advance(Duration::from_secs(3600)).await;
        shutdown.trigger();
        let restart = stream.next().await.expect("restart");
        assert!(restart.starts_with(b"event: restart\n"), "{restart:?}");
    }

    #[tokio::test]
    async fn building_and_report_reach_open_streams_and_streams_opened_later() {
        let broadcaster = test_broadcaster(Duration::from_secs(15), ShutdownSignal::new());
        let mut open = broadcaster.subscribe();
        open.next().await.expect("hello");
        broadcaster.send(&Broadcast::Building);
        assert_eq!(
            open.next().await.as_deref(),
            Some(&b"event: building\ndata: \n\n"[..])
        );
        let later = broadcaster.subscribe().next().await.expect("hello");
        assert!(
            later.ends_with(b"\n\nevent: building\ndata: \n\n"),
            "{later:?}"
        );
        broadcaster.send(&Broadcast::Report("<p>a</p>\n<p>b</p>".into()));
        assert_eq!(
            open.next().await.as_deref(),
            Some(&b"event: report\ndata: <p>a</p>\ndata: <p>b</p>\n\n"[..])
        );
        let later = broadcaster.subscribe().next().await.expect("hello");
        assert!(later.starts_with(b"event: hello\n"), "{later:?}");
        assert!(
            later.ends_with(b"\n\nevent: report\ndata: <p>a</p>\ndata: <p>b</p>\n\n"),
            "the report replaces the building state: {later:?}"
        );
        broadcaster.send(&Broadcast::Clear);
        assert_eq!(
            open.next().await.as_deref(),
            Some(&b"event: clear\ndata: \n\n"[..])
        );
        let later = broadcaster.subscribe().next().await.expect("hello");
        assert_eq!(later, broadcaster.0.hello, "nothing kept after clear");
    }
}
