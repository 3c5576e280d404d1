//! The browser side: the client script and the tag that loads it.
//!
//! The script (`src/client/autoreload.js`) runs in two roles. In a page it reads the
//! page's instance id from its own tag and joins a `SharedWorker` running the same
//! file, so all tabs of an origin share one reload stream (browsers allow six
//! HTTP/1.1 connections per host; one stream per tab would starve the seventh). In
//! the worker it holds the one `EventSource` and relays its events to every tab.
//! Where there is no `SharedWorker`, each tab opens its own stream.

use axum::http::header;
use axum::response::IntoResponse;

use crate::sse::STREAM_PATH;
use crate::InstanceId;

/// Where the client script is served.
pub(crate) const SCRIPT_PATH: &str = "/auto_refresh/client.js";

const SCRIPT: &str = include_str!("client/autoreload.js");

/// The tag the layer injects. The version query makes browsers fetch (and start a
/// new shared worker for) a new script when the library changes. A failure report's
/// pages say so with `data-overlay`: they show the report themselves.
pub(crate) fn script_tag(instance: &InstanceId, report: bool) -> String {
    format!(
        "<script async src=\"{SCRIPT_PATH}?v={version}\" data-instance=\"{instance}\" data-stream=\"{STREAM_PATH}\"{report}></script>",
        version = env!("CARGO_PKG_VERSION"),
        report = if report { " data-overlay" } else { "" },
    )
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}
