//! The layer around the app: [`InjectLayer`], made by [`crate::AutoReload::layer`],
//! with its service [`InjectService`], [`ResponseFuture`] and [`InjectBody`], and
//! the [`Predicate`] that picks the pages ([`HtmlPages`] by default).
//!
//! For every request it:
//!
//! 1. answers the reload paths itself when reload is on: the stream at
//!    [`crate::protocol::STREAM_PATH`] and everything below it (the client script,
//!    its worker, idiomorph, the status document, the trigger and the timing line),
//!    ahead of the app, so an app's own route there is never reached. These
//!    answers check [`crate::allowed_hosts`] with `Origin` on every request: a
//!    request whose `Host` or `Origin` names another site gets 403;
//! 2. puts the [`crate::ShutdownSignal`] in the request's extensions, so a handler
//!    can take it as an extractor;
//! 3. ends a `text/event-stream` response of the app when the graceful shutdown
//!    begins, and gives it a short `retry` when reload is on (see
//!    [Event streams](#event-streams));
//! 4. adds the client script to HTML pages (see [Heuristics](#heuristics)).
//!
//! A response that an inner `InjectLayer` handled already (the app has
//! `reload.layer()` and is served by [`crate::serve()`], which adds one too) is
//! left alone by the outer one: the script goes in once, an event stream gets one
//! `retry` field, and ends when either layer's shutdown signal fires. Handlers get
//! the outer layer's signal (the server's).
//!
//! # Event streams
//!
//! A response whose `Content-Type` is `text/event-stream` (any parameters) and
//! whose length is not known in advance ends cleanly when the shutdown begins:
//! after the event being sent, the body ends as HTTP/1.1 ends a chunked body, and
//! the browser's `EventSource` reconnects by itself, to the next process (after the
//! stream's `retry`, WHATWG HTML, server-sent events). Without this, such a stream
//! holds the server until the drain deadline on every restart. It happens in the
//! layer, so it works under any server that fires the signal
//! ([`crate::serve()`] does, or call [`crate::ShutdownSignal::trigger`]). A response
//! that carries [`crate::KeepStreamOpen`] is left alone; the reload stream carries it, as
//! it sends `restart` and ends by itself.
//!
//! When reload is on (by default in debug builds), such a stream also starts with
//! a `retry: 250` field (milliseconds, WHATWG HTML, server-sent events), before
//! the app's first byte: its `EventSource` then reconnects to the next process
//! within about 250 ms of the restart, instead of the browser's default of about
//! 3 seconds (Chromium: 3 s; measured 3.06 s on axum's `sse` example). The field
//! dispatches no event. A stream that sets its own `retry` overrides it from the
//! event that carries it on; the reload stream is left alone.
//!
//! # Heuristics
//!
//! The layer adds the script tag ([`crate::AutoReload::script_tag`]) to a response
//! when all of these hold:
//!
//! - reload is on ([`crate::AutoReload::is_enabled`]);
//! - the [`Predicate`] says yes, for the request and for the response. The default,
//!   [`HtmlPages`], asks for a `text/html` response (any parameters) to a request
//!   without an `HX-Request` header: htmx asks for fragments, which are swapped
//!   into a page that has the script already. Choose another with
//!   [`InjectLayer::inject_when`];
//! - the response has no `Content-Encoding` other than `identity`: the layer cannot
//!   rewrite compressed bytes. Put a compression layer *outside* (added after) this
//!   one, so it compresses the page after the script is in;
//! - the status is not 1xx, 204, 206 or 304 (no body, or a part of one);
//! - no inner `InjectLayer` has handled it already (the script goes in once).
//!
//! The last three hold whatever the predicate says.
//!
//! The tag goes right before the first `</body` (ASCII case-insensitive), or at the
//! end of the body when there is none. The body is rewritten as it streams: chunks
//! pass through as they come, holding back at most the five bytes that could begin
//! a `</body` split across two chunks. A `Content-Length` header is raised by the
//! length of the tag (for `HEAD` too, whose empty body is left alone). `ETag` and
//! `Last-Modified` are removed: the page now names this server process, so the
//! browser must not revalidate it into a copy that names an older one.

mod body;
mod layer;
mod predicate;
mod service;
mod splice;

pub use body::InjectBody;
pub use layer::InjectLayer;
pub use predicate::{HtmlPages, Predicate};
pub use service::{InjectService, ResponseFuture};
