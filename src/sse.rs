//! The reload stream: server-sent events at `/auto_refresh` (WHATWG HTML,
//! server-sent events).
//!
//! Every stream starts with a `hello` event whose data is the instance id, with the
//! `retry` field set (see [`crate::Builder::retry`]). Then:
//!
//! | event     | data        | when |
//! |-----------|-------------|------|
//! | `hello`   | instance id | first event of every stream |
//! | `reload`  | instance id | SIGUSR1, [`crate::AutoReload::reload`], a changed file that is neither a stylesheet nor an image; also when a stream fell behind the broadcast |
//! | `css`     | URL path of the stylesheet, e.g. `/static/style.css` | a stylesheet changed: tabs swap it in place |
//! | `image`   | URL path of the image | an image changed: tabs refresh it where shown |
//! | `restart` | instance id | the server is shutting down; the stream ends right after |
//!
//! Idle streams get a keep-alive comment (`:` line) every
//! [`crate::Builder::keep_alive`].

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::reload::{Broadcast, Shared};
use crate::AutoReload;

/// Counts the stream as open for as long as it lives.
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

enum State {
    Hello(OpenStream, broadcast::Receiver<Broadcast>),
    Live(OpenStream, broadcast::Receiver<Broadcast>),
    Done,
}

pub(crate) fn stream(
    reload: &AutoReload,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    let shared = Arc::clone(&reload.shared);
    let keep_alive = KeepAlive::new().interval(shared.keep_alive);
    // Subscribe before the hello goes out, so no broadcast falls between the two.
    let receiver = shared.events.subscribe();
    let state = State::Hello(OpenStream::new(shared), receiver);
    let events = stream::unfold(state, |state| async move {
        match state {
            State::Hello(open, receiver) => {
                let hello = Event::default()
                    .event("hello")
                    .data(open.0.instance.as_str())
                    .retry(open.0.retry);
                Some((Ok(hello), State::Live(open, receiver)))
            }
            State::Live(open, mut receiver) => {
                let shared = Arc::clone(&open.0);
                let instance = shared.instance.as_str();
                let named =
                    |name: &'static str, data: &str| Event::default().event(name).data(data);
                let (event, last) = tokio::select! {
                    biased;
                    () = shared.shutdown.triggered() => (named("restart", instance), true),
                    received = receiver.recv() => match received {
                        // A stream that fell behind may have missed anything: reload.
                        Ok(Broadcast::Reload) | Err(RecvError::Lagged(_)) => (named("reload", instance), false),
                        Ok(Broadcast::Css(path)) => (named("css", &path), false),
                        Ok(Broadcast::Image(path)) => (named("image", &path), false),
                        Err(RecvError::Closed) => (named("restart", instance), true),
                    },
                };
                let next = if last {
                    State::Done
                } else {
                    State::Live(open, receiver)
                };
                Some((Ok(event), next))
            }
            State::Done => None,
        }
    });
    Sse::new(events).keep_alive(keep_alive)
}
