//! The browser side: the client script, its shared worker, and the tag that loads
//! it.
//!
//! Three files in `src/client/`, served as two scripts:
//!
//! - `page.js`, served at `/auto_refresh/client.js`, runs in the page: it reads the
//!   page's instance id and the stream's path from its own tag and joins a
//!   `SharedWorker`, so all tabs of an origin share one reload stream (browsers
//!   allow six HTTP/1.1 connections per host; one stream per tab would starve the
//!   seventh). Where there is no `SharedWorker`, or it fails to start, the tab opens
//!   its own stream.
//! - `worker.js`, served at `/auto_refresh/worker.js`, is that worker: it holds the
//!   one `EventSource` and relays its events to every tab.
//! - `stream.js` opens the stream, for both.
//! - `vendor/idiomorph.min.js`, served at `/auto_refresh/idiomorph.js`, morphs a
//!   newer page into the current one (see `vendor/README.md` for its version,
//!   checksum and licence).
//!
//! Each script is served as one function: the stream's event names from
//! [`crate::protocol::EVENTS`] as `EVENT` and the paths of [`crate::protocol`] as
//! `PATH` (so both are written once, in Rust), `stream.js`, then `page.js` or
//! `worker.js`. The tag carries the stream's path in `data-stream`; the page's
//! script takes the worker's, idiomorph's and the timing paths from `PATH`.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;

use crate::instance::InstanceId;
use crate::protocol::{EVENTS, IDIOMORPH_PATH, SCRIPT_PATH, STREAM_PATH, TIMING_PATH, WORKER_PATH};

/// idiomorph as served: the vendored file unchanged, in a function of its own so
/// that it sets no global of the page's (which may load its own copy), handing its
/// one export to the page's script.
static IDIOMORPH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(function () {{\n{}\n;window.__axumAutoreloadIdiomorph = Idiomorph;\n}})();\n",
        include_str!("client/vendor/idiomorph.min.js")
    )
});

/// The page's script, as served.
static PAGE: LazyLock<String> = LazyLock::new(|| bundle(include_str!("client/page.js")));

/// The worker's script, as served.
static WORKER: LazyLock<String> = LazyLock::new(|| bundle(include_str!("client/worker.js")));

/// `part` (`page.js` or `worker.js`) after the event names (`EVENT`), the paths
/// (`PATH`) and `stream.js`, in a function of its own.
fn bundle(part: &str) -> String {
    format!(
        "(function () {{\n\"use strict\";\nvar EVENT = {events};\nvar PATH = {paths};\n{stream}\n{part}}})();\n",
        events = object(&EVENTS),
        paths = object(&PATHS),
        stream = include_str!("client/stream.js"),
    )
}

/// The paths of [`crate::protocol`] that the client script reads, by the name it
/// knows them by (`PATH.worker`).
const PATHS: [(&str, &str); 4] = [
    ("stream", STREAM_PATH),
    ("worker", WORKER_PATH),
    ("idiomorph", IDIOMORPH_PATH),
    ("timing", TIMING_PATH),
];

/// `entries` as a JavaScript object literal: `{ key: "value", … }`.
fn object(entries: &[(&str, &str)]) -> String {
    let entries: Vec<String> = entries
        .iter()
        .map(|(key, value)| format!("{key}: \"{value}\""))
        .collect();
    format!("{{ {} }}", entries.join(", "))
}

/// The tag the layer injects. The version query makes browsers fetch (and start a
/// new shared worker for) a new script when the library changes. A failure report's
/// pages say so with `data-overlay`: they show the report themselves. Without
/// `morph`, `data-morph="false"` tells the script to reload pages rather than
/// morph them.
pub(crate) fn script_tag(instance: &InstanceId, report: bool, morph: bool) -> String {
    format!(
        "<script async src=\"{SCRIPT_PATH}?v={version}\" data-instance=\"{instance}\" data-stream=\"{STREAM_PATH}\"{report}{morph}></script>",
        version = env!("CARGO_PKG_VERSION"),
        report = if report { " data-overlay" } else { "" },
        morph = if morph { "" } else { " data-morph=\"false\"" },
    )
}

/// `GET` [`SCRIPT_PATH`].
pub(crate) async fn script() -> impl IntoResponse {
    javascript(&PAGE)
}

/// `GET` [`crate::protocol::WORKER_PATH`].
pub(crate) async fn worker() -> impl IntoResponse {
    javascript(&WORKER)
}

/// `GET` [`crate::protocol::IDIOMORPH_PATH`].
pub(crate) async fn idiomorph() -> impl IntoResponse {
    javascript(&IDIOMORPH)
}

fn javascript(text: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
}
