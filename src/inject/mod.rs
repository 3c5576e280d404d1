//! Injection of the client script into HTML responses.
//!
//! # Heuristics
//!
//! [`InjectLayer`] adds the script tag ([`crate::AutoReload::script_tag`]) to a
//! response when all of these hold:
//!
//! - reload is on ([`crate::AutoReload::is_enabled`]);
//! - the request has no `HX-Request` header: htmx asks for fragments, which are
//!   swapped into a page that has the script already;
//! - the response's `Content-Type` is `text/html` (any parameters);
//! - the response has no `Content-Encoding` other than `identity`: the layer cannot
//!   rewrite compressed bytes. Put a compression layer *outside* (added after) this
//!   one, so it compresses the page after the script is in;
//! - the status is not 1xx, 204, 206 or 304 (no body, or a part of one);
//! - no inner `InjectLayer` has injected into it already (the script goes in once).
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
mod service;
mod splice;

pub use body::InjectBody;
pub use layer::InjectLayer;
pub use service::{InjectResponseFuture, InjectService};
pub(crate) use splice::Splicer;
