//! The wire protocol between the library, the runner (`axum-autoreload run`) and
//! the client script: every path, event name, environment variable and channel
//! message they share is named here once, and each side reads it from here.
//!
//! - **HTTP paths**, all under [`STREAM_PATH`], answered by the layer of
//!   [`crate::AutoReload::layer`] ahead of the app.
//! - **The reload stream**: server-sent events (WHATWG HTML, "Server-sent
//!   events", `text/event-stream`) at [`STREAM_PATH`]. Every stream starts with
//!   [`HELLO_EVENT`], whose data is the instance id, with its `retry` field set
//!   (milliseconds, [`crate::AutoReloadBuilder::retry`]); a failure report's stream
//!   sends [`OVERLAY_EVENT`] right before it. Then:
//!
//! | event     | data        | when |
//! |-----------|-------------|------|
//! | `overlay` | HTML fragment, one `data:` line per line | first event of every stream of a failure report ([`crate::AutoReloadBuilder::overlay`]), right before `hello`: tabs show it above their page and do not reload onto this instance |
//! | `hello`   | instance id | first event of every stream (after the `overlay` of a report) |
//! | `reload`  | instance id | SIGUSR1, [`crate::AutoReload::reload`], a changed file that is neither a page, a stylesheet nor an image (a script, say); also when a stream fell behind the broadcast: tabs reload |
//! | `morph`   | instance id | a page changed (an `.html` or `.htm` file, a template): tabs fetch theirs again and morph it in, or reload where a morph could leave it wrong |
//! | `css`     | URL path of the stylesheet, e.g. `/static/style.css` | a stylesheet changed: tabs swap it in place |
//! | `image`   | URL path of the image | an image changed: tabs refresh it where shown |
//! | `restart` | instance id | the server is shutting down; the stream ends right after |
//! | `building`| empty       | the runner started a build while this app keeps serving ([`crate::AutoReload::building`]); sent after `hello` to every stream opened while it lasts: tabs show a small "building…" badge and stay live |
//! | `report`  | HTML fragment, one `data:` line per line | the runner's build failed while this app keeps serving ([`crate::AutoReload::report`]); sent after `hello` to every stream opened while it lasts: tabs show it above their live page and do not reload |
//! | `clear`   | empty       | the build ended with nothing to show ([`crate::AutoReload::clear`]): tabs drop the badge and the report |
//!
//!   Idle streams get a keep-alive comment (a `:` line) every
//!   [`crate::AutoReloadBuilder::keep_alive`]. The client script gets the event
//!   names and paths from this module: the server writes [`EVENTS`] into the script
//!   it serves, and the injected `<script>` tag carries the stream's path in
//!   `data-stream` and the instance id in `data-instance`.
//! - **Environment variables**: [`ENABLE_ENV`] and [`ALLOWED_HOSTS_ENV`], read by the
//!   app (and the runner's error pages), and [`CHANNEL_ENV`], which the runner sets.
//! - **The runner's channel**: two inherited pipes named in [`CHANNEL_ENV`], as
//!   `LISTEN_FDS` names the socket (sd_listen_fds(3)). No HTTP endpoint: no page,
//!   local or not, can reach it. The runner writes [`ToApp`] messages, one JSON
//!   object a line: a build started ([`ToApp::Building`]), it failed
//!   ([`ToApp::Report`]), it changed nothing ([`ToApp::Clear`]), and what this start
//!   cost ([`ToApp::Timing`]). The first [`crate::AutoReload`] built in a process
//!   with a Tokio runtime takes the channel (and removes the variable, so the app's
//!   own children do not see it) and turns the first three into reload-stream
//!   events. End of file on that pipe means the runner is gone: the app raises
//!   SIGINT in itself, which starts its graceful shutdown, and exits (status 1) if
//!   it still runs 10 seconds later. The app writes [`ToRunner`] messages back:
//!   where a panic happened, and what its graceful shutdown took.

use serde::{Deserialize, Serialize};

/// Path of the reload stream (server-sent events, `GET`). Every other path of the
/// protocol is below it.
pub const STREAM_PATH: &str = "/auto_refresh";

/// Path of the client script that runs in the page (`GET`, JavaScript).
pub const SCRIPT_PATH: &str = "/auto_refresh/client.js";

/// Path of the shared worker's script (`GET`, JavaScript): the page's script finds
/// it beside itself.
pub const WORKER_PATH: &str = "/auto_refresh/worker.js";

/// Path of idiomorph, which morphs a newer page into the current one (`GET`,
/// JavaScript): the page's script loads it from beside itself.
pub const IDIOMORPH_PATH: &str = "/auto_refresh/idiomorph.js";

/// Path of the status document (`GET`): JSON `{"instance": "<id>",
/// "open_streams": <n>}`.
pub const STATUS_PATH: &str = "/auto_refresh/status";

/// Path that takes `POST` requests to reload the tabs, from build tools: with
/// `?path=/static/app.css` (percent-encoded) a stylesheet is swapped in place (see
/// [`crate::AutoReload::changed`]), without it every tab reloads. Answers JSON
/// `{"streams": <n>}`: how many streams were open to hear it.
pub const TRIGGER_PATH: &str = "/auto_refresh/reload";

/// Path that takes the tab's `POST ?reload_ms=<milliseconds>` after a reload and
/// answers the timing line as `text/plain` (`rebuilt 0.62 s · swap 12 ms · reload
/// 85 ms`).
pub const TIMING_PATH: &str = "/auto_refresh/timing";

/// First event of every stream; data: the instance id.
pub const HELLO_EVENT: &str = "hello";
/// Reload every tab; data: the instance id.
pub const RELOAD_EVENT: &str = "reload";
/// The pages changed: tabs fetch theirs again and morph it in; data: the instance id.
pub const MORPH_EVENT: &str = "morph";
/// A stylesheet changed; data: its URL path.
pub const CSS_EVENT: &str = "css";
/// An image changed; data: its URL path.
pub const IMAGE_EVENT: &str = "image";
/// Last event of a stream: the server is shutting down; data: the instance id.
pub const RESTART_EVENT: &str = "restart";
/// A build of the next version started while this app keeps serving; no data.
pub const BUILDING_EVENT: &str = "building";
/// A failed build's report for a live page; data: an HTML fragment.
pub const REPORT_EVENT: &str = "report";
/// Take `building` and `report` back; no data.
pub const CLEAR_EVENT: &str = "clear";
/// A failure report shown above the page, sent before `hello` by an instance built
/// with [`crate::AutoReloadBuilder::overlay`]; data: an HTML fragment.
pub const OVERLAY_EVENT: &str = "overlay";

/// Every event of the stream as `(key, name)`: the key is what the client script
/// calls it (`EVENT.hello` in `src/client/*.js`, a table the server writes into the
/// script it serves), the name is what goes on the wire.
pub const EVENTS: [(&str, &str); 10] = [
    ("overlay", OVERLAY_EVENT),
    ("hello", HELLO_EVENT),
    ("reload", RELOAD_EVENT),
    ("morph", MORPH_EVENT),
    ("css", CSS_EVENT),
    ("image", IMAGE_EVENT),
    ("restart", RESTART_EVENT),
    ("building", BUILDING_EVENT),
    ("report", REPORT_EVENT),
    ("clear", CLEAR_EVENT),
];

/// `Content-Type` of the reload stream (WHATWG HTML, server-sent events).
pub const EVENT_STREAM_CONTENT_TYPE: &str = "text/event-stream";

/// Environment variable that turns reload on (`1`, `true`, `on`, `yes`) or off
/// (`0`, `false`, `off`, `no`) whatever the build profile.
pub const ENABLE_ENV: &str = "AXUM_AUTORELOAD";

/// Environment variable with more host names to answer, comma-separated
/// (`a.test,b.test`), read by [`crate::AutoReloadBuilder::build`] as if each were
/// given to [`crate::AutoReloadBuilder::allow_host`]. The runner's error pages read
/// it too, so one setting serves both.
pub const ALLOWED_HOSTS_ENV: &str = "AXUM_AUTORELOAD_ALLOWED_HOSTS";

/// Environment variable the runner sets for the app it starts: `<read fd>,<write
/// fd>`, the app's ends of the two pipes of the channel (decimal file descriptor
/// numbers, inherited).
pub const CHANNEL_ENV: &str = "AXUM_AUTORELOAD_CHANNEL";

/// What the runner tells the app, one JSON object a line (`{"type":"building"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToApp {
    /// A build of the next version started; this app keeps serving.
    Building,
    /// The build failed: `html` is the report (an HTML fragment, escaped).
    Report {
        /// The report, as the runner's error page shows it.
        html: String,
    },
    /// The build succeeded and the binary is the one running: nothing to show.
    Clear,
    /// What this app's start cost, for the timing line.
    Timing {
        /// When the runner received the change that led to this start (its own
        /// start for the first one), milliseconds since the Unix epoch.
        change_at_ms: u64,
        /// `cargo build`'s wall time, milliseconds.
        build_ms: u64,
        /// How long the previous app's graceful shutdown took, milliseconds, when
        /// this start replaced one.
        shutdown_ms: Option<u64>,
        /// What held that shutdown when it took long (`GET /ws (upgraded)`).
        held_by: Option<String>,
    },
}

/// What the app tells the runner, one JSON object a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToRunner {
    /// A thread panicked (from the library's panic hook; the default hook still
    /// prints it to stderr).
    Panic {
        /// The thread's name, `<unnamed>` when it has none.
        thread: String,
        /// The file as rustc was given it.
        file: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        col: u32,
        /// The panic's message.
        message: String,
    },
    /// The graceful shutdown is over.
    Shutdown {
        /// From its start to now, milliseconds.
        ms: u64,
        /// What held it, when it took long: `GET /events (2), GET /ws (upgraded)`.
        held_by: Option<String>,
    },
}

impl ToApp {
    /// The message as one line of JSON, with its newline.
    pub fn to_line(&self) -> String {
        line(self)
    }

    /// The message on `line`; `None` for a line that is not one (from a newer
    /// runner, say).
    pub fn from_line(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

impl ToRunner {
    /// The message as one line of JSON, with its newline.
    pub fn to_line(&self) -> String {
        line(self)
    }

    /// The message on `line`; `None` for a line that is not one.
    pub fn from_line(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

fn line(message: &impl Serialize) -> String {
    let mut line = serde_json::to_string(message).unwrap_or_default();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_below_the_stream() {
        for path in [
            SCRIPT_PATH,
            WORKER_PATH,
            IDIOMORPH_PATH,
            STATUS_PATH,
            TRIGGER_PATH,
            TIMING_PATH,
        ] {
            let below = path.strip_prefix(STREAM_PATH);
            assert!(below.is_some_and(|rest| rest.starts_with('/')), "{path}");
        }
    }

    #[test]
    fn messages_are_one_json_line_each_way() {
        let report = ToApp::Report {
            html: "<p>a</p>\n<p>b</p>".to_owned(),
        };
        let line = report.to_line();
        assert_eq!(
            line,
            "{\"type\":\"report\",\"html\":\"<p>a</p>\\n<p>b</p>\"}\n"
        );
        assert_eq!(ToApp::from_line(line.trim_end()), Some(report));
        assert_eq!(ToApp::Building.to_line(), "{\"type\":\"building\"}\n");
        assert_eq!(ToApp::from_line("{\"type\":\"later\"}"), None);
        let shutdown = ToRunner::Shutdown {
            ms: 12,
            held_by: None,
        };
        assert_eq!(ToRunner::from_line(&shutdown.to_line()), Some(shutdown));
    }
}
