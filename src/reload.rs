//! The [`AutoReload`] handle: configuration, instance id, reload broadcast and
//! shutdown signal, shared by the router, the layer and the server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::sync::broadcast;

use crate::inject::InjectLayer;
use crate::overlay::Overlay;
use crate::{client, sse, watch, InstanceId, ShutdownSignal};

/// Path of the reload stream (server-sent events); the client script is served
/// below it, at `/auto_refresh/client.js`.
pub const STREAM_PATH: &str = "/auto_refresh";

/// Path of the status document: JSON `{"instance": "<id>", "open_streams": <n>}`.
pub const STATUS_PATH: &str = "/auto_refresh/status";

/// Environment variable that turns reload on (`1`, `true`, `on`) or off (`0`,
/// `false`, `off`) whatever the build profile.
pub const ENABLE_ENV: &str = "AXUM_AUTORELOAD";

/// Path that takes `POST` requests to reload the tabs, from build tools: with
/// `?path=/static/app.css` a stylesheet is swapped in place (see
/// [`AutoReload::changed`]), without it every tab reloads.
pub const TRIGGER_PATH: &str = "/auto_refresh/reload";

/// What the reload stream broadcasts to every open stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Broadcast {
    /// Reload every tab (SIGUSR1, [`AutoReload::reload`]).
    Reload,
    /// Swap the stylesheet served at this URL path in every tab that uses it.
    Css(Arc<str>),
    /// Refresh the image served at this URL path wherever it is shown.
    Image(Arc<str>),
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
        } else if IMAGE_EXTENSIONS.contains(&extension.as_str()) {
            Self::Image(url_path.into())
        } else {
            Self::Reload
        }
    }
}

/// The handle that ties the pieces together. Cheap to clone.
///
/// Build one per process with [`AutoReload::new`] or [`AutoReload::builder`], then
/// merge [`AutoReload::router`] into the app, add [`AutoReload::layer`] around it and
/// run it with [`crate::serve()`].
#[derive(Clone, Debug)]
pub struct AutoReload {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) instance: InstanceId,
    pub(crate) enabled: bool,
    /// Encoded events, each sent once to every open stream.
    pub(crate) events: broadcast::Sender<Bytes>,
    pub(crate) frames: sse::Frames,
    pub(crate) shutdown: ShutdownSignal,
    pub(crate) keep_alive: Duration,
    pub(crate) script_tag: Bytes,
    pub(crate) open_streams: AtomicUsize,
    pub(crate) watchers: watch::Watchers,
}

impl Default for AutoReload {
    fn default() -> Self {
        Self::new()
    }
}

impl AutoReload {
    /// A handle with the defaults of [`Builder`].
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Start configuring a handle.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Whether reload is on: the stream is served and the script injected.
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled
    }

    /// This process's instance id.
    pub fn instance_id(&self) -> &InstanceId {
        &self.shared.instance
    }

    /// The routes under [`STREAM_PATH`]: the reload stream at `/auto_refresh`, the
    /// client script at `/auto_refresh/client.js` and the status document at
    /// [`STATUS_PATH`]. Empty when reload is off, so those
    /// paths fall through to the app (a 404 by default).
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        if !self.is_enabled() {
            return Router::new();
        }
        let stream = self.clone();
        let status = self.clone();
        Router::new()
            .route(
                STREAM_PATH,
                get(move || std::future::ready(sse::response(&stream))),
            )
            .route(client::SCRIPT_PATH, get(client::script))
            .route(
                STATUS_PATH,
                get(move || std::future::ready(status.status())),
            )
            .route(TRIGGER_PATH, post(trigger).with_state(self.clone()))
    }

    /// The layer that injects the client script into HTML responses; it passes
    /// everything through unchanged when reload is off.
    pub fn layer(&self) -> InjectLayer {
        InjectLayer::new(self.clone())
    }

    /// Tell every open tab to reload now (what SIGUSR1 does). Returns how many
    /// reload streams were open to hear it.
    pub fn reload(&self) -> usize {
        self.send(Broadcast::Reload)
    }

    /// Tell every open tab that the file served at `url_path` (such as
    /// `/static/app.css`) changed: a stylesheet (`.css`) is swapped in place without
    /// a navigation, an image (`.png`, `.jpg`, `.svg`, …) is refreshed where it is
    /// shown, anything else reloads the tabs. Returns how many reload streams were
    /// open to hear it.
    pub fn changed(&self, url_path: &str) -> usize {
        self.send(Broadcast::for_change(url_path))
    }

    fn send(&self, event: Broadcast) -> usize {
        tracing::debug!(?event, "broadcast");
        let frame = match &event {
            Broadcast::Reload => self.shared.frames.reload.clone(),
            Broadcast::Css(path) => sse::encode("css", path, None),
            Broadcast::Image(path) => sse::encode("image", path, None),
        };
        self.shared.events.send(frame).unwrap_or(0)
    }

    /// The signal that fires when the graceful shutdown begins; give it to
    /// long-lived handlers so they end in time.
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.shared.shutdown.clone()
    }

    /// How many reload streams are open now.
    pub fn open_streams(&self) -> usize {
        self.shared.open_streams.load(Ordering::Relaxed)
    }

    fn status(&self) -> impl axum::response::IntoResponse {
        (
            [(http::header::CONTENT_TYPE, "application/json")],
            format!(
                "{{\"instance\":\"{}\",\"open_streams\":{}}}",
                self.instance_id(),
                self.open_streams()
            ),
        )
    }

    /// The `<script>` tag the layer injects: it loads the client script and carries
    /// this process's instance id in `data-instance`.
    pub fn script_tag(&self) -> &[u8] {
        &self.shared.script_tag
    }
}

/// Configures an [`AutoReload`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    enabled: Option<bool>,
    keep_alive: Duration,
    retry: Duration,
    /// Set by [`Builder::overlay`] (`overlay.rs`).
    pub(crate) overlay: Option<Overlay>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            enabled: None,
            keep_alive: Duration::from_secs(15),
            retry: Duration::from_millis(100),
            overlay: None,
        }
    }
}

impl Builder {
    /// Turn reload on or off, overriding the default: on with debug assertions
    /// (`cargo run`), off in release builds, either way overridden by the
    /// `AXUM_AUTORELOAD` environment variable ([`ENABLE_ENV`]).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// How often an idle reload stream gets a keep-alive comment, so that proxies
    /// and browsers keep it open. Default 15 seconds.
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// The `retry` field sent on every stream: how long the browser's `EventSource`
    /// waits before it reconnects after the stream ends (WHATWG HTML, server-sent
    /// events). Default 100 milliseconds: the reconnection then waits in the
    /// socket's backlog for the next process.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// Build the handle, with a new instance id.
    pub fn build(self) -> AutoReload {
        let enabled = self
            .enabled
            .or_else(enabled_from_env)
            .unwrap_or(cfg!(debug_assertions));
        let instance = InstanceId::generate();
        let script_tag = client::script_tag(&instance, self.overlay.is_some());
        let (events, _) = broadcast::channel(16);
        AutoReload {
            shared: Arc::new(Shared {
                frames: sse::Frames::new(&instance, self.retry, self.overlay.as_ref()),
                instance,
                enabled,
                events,
                shutdown: ShutdownSignal::new(),
                keep_alive: self.keep_alive,
                script_tag,
                open_streams: AtomicUsize::new(0),
                watchers: watch::Watchers::default(),
            }),
        }
    }
}

/// The query of a `POST` to [`TRIGGER_PATH`].
#[derive(Debug, serde::Deserialize)]
struct TriggerQuery {
    /// The URL path of the file that changed; none reloads every tab.
    path: Option<String>,
}

async fn trigger(
    State(reload): State<AutoReload>,
    Query(query): Query<TriggerQuery>,
) -> impl axum::response::IntoResponse {
    let streams = match query.path.as_deref() {
        Some(path) if !path.is_empty() => reload.changed(path),
        _ => reload.reload(),
    };
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        format!("{{\"streams\":{streams}}}"),
    )
}

fn enabled_from_env() -> Option<bool> {
    let value = std::env::var(ENABLE_ENV).ok()?;
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some(true),
        "0" | "false" | "off" | "no" => Some(false),
        other => {
            tracing::warn!("ignoring {ENABLE_ENV}={other:?}: expected 1/on or 0/off");
            None
        }
    }
}
