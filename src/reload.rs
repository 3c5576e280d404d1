//! The [`AutoReload`] handle: configuration, instance id, reload broadcast and
//! shutdown signal, shared by the router, the layer and the server.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::Router;

use crate::overlay::Overlay;
use crate::runner_channel::ToApp;
use crate::sse::{Broadcast, Broadcaster, STREAM_PATH};
use crate::timing::{Timing, TIMING_PATH};
use crate::{client, watch, AutoReloadLayer, GuardLayer, InstanceId, ShutdownSignal};

/// Path of the status document: JSON `{"instance": "<id>", "open_streams": <n>}`.
pub const STATUS_PATH: &str = "/auto_refresh/status";

/// Environment variable that turns reload on (`1`, `true`, `on`) or off (`0`,
/// `false`, `off`) whatever the build profile.
pub const ENABLE_ENV: &str = "AXUM_AUTORELOAD";

/// Environment variable with more host names to answer, comma-separated
/// (`a.test,b.test`), read by [`AutoReloadBuilder::build`] as if each were given
/// to [`AutoReloadBuilder::allow_host`]. The runner's error pages read it too, so
/// one setting serves both.
pub const ALLOWED_HOSTS_ENV: &str = "AXUM_AUTORELOAD_ALLOWED_HOSTS";

/// Path that takes `POST` requests to reload the tabs, from build tools: with
/// `?path=/static/app.css` a stylesheet is swapped in place (see
/// [`AutoReload::changed`]), without it every tab reloads.
pub const TRIGGER_PATH: &str = "/auto_refresh/reload";

/// The handle that ties the pieces together. Cheap to clone.
///
/// Build one per process with [`AutoReload::new`] or [`AutoReload::builder`], then
/// merge [`AutoReload::router`] into the app, add [`AutoReload::layer`] around it and
/// run it with [`crate::serve()`].
#[derive(Clone, Debug)]
pub struct AutoReload {
    pub(crate) shared: Arc<Shared>,
}

/// What every clone of one [`AutoReload`] shares; only this module reads it.
#[derive(Debug)]
pub(crate) struct Shared {
    instance: InstanceId,
    enabled: bool,
    broadcaster: Broadcaster,
    shutdown: ShutdownSignal,
    script_tag: String,
    guard: GuardLayer,
    watchers: watch::Watchers,
    timing: Timing,
}

impl Default for AutoReload {
    fn default() -> Self {
        Self::new()
    }
}

impl AutoReload {
    /// A handle with the defaults of [`AutoReloadBuilder`].
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Start configuring a handle.
    pub fn builder() -> AutoReloadBuilder {
        AutoReloadBuilder::default()
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
    /// client script at `/auto_refresh/client.js` (with its shared worker at
    /// `/auto_refresh/worker.js` and idiomorph at `/auto_refresh/idiomorph.js`), the status document at
    /// [`STATUS_PATH`] and the trigger at [`TRIGGER_PATH`]. Empty when reload is
    /// off, so those paths fall through to the app (a 404 by default).
    ///
    /// The routes carry [`AutoReload::guard`] themselves, checking `Origin` on
    /// every request: whatever server runs them (this crate's [`crate::serve()`] or
    /// `axum::serve`), a request whose `Host` or `Origin` names another site gets
    /// 403.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        if !self.is_enabled() {
            return Router::new();
        }
        let stream = self.shared.broadcaster.clone();
        let status = self.clone();
        let timing = self.clone();
        Router::new()
            .route(
                STREAM_PATH,
                get(move || std::future::ready(stream.response())),
            )
            .route(client::SCRIPT_PATH, get(client::script))
            .route(client::WORKER_PATH, get(client::worker))
            .route(client::IDIOMORPH_PATH, get(client::idiomorph))
            .route(
                STATUS_PATH,
                get(move || std::future::ready(status.status())),
            )
            .route(TRIGGER_PATH, post(trigger).with_state(self.clone()))
            .route(
                TIMING_PATH,
                post(move |Query(query)| std::future::ready(timing.timing().response(query))),
            )
            .layer(self.guard().every_request())
    }

    /// The layer around the whole app: it adds the client script to HTML pages,
    /// ends the app's own event streams when the shutdown begins, and hands
    /// handlers the [`ShutdownSignal`]. See [`AutoReloadLayer`] for when it does
    /// each.
    pub fn layer(&self) -> AutoReloadLayer {
        let script_tag = self.is_enabled().then(|| self.script_tag());
        AutoReloadLayer::new(script_tag, self.shutdown_signal())
    }

    /// The Host and Origin checks, as a layer, with the names allowed by
    /// [`AutoReloadBuilder::allow_host`]. [`AutoReload::router`] carries it and
    /// [`crate::serve()`] applies it to the whole app; with `axum::serve`, add it
    /// to the app yourself (`.layer(reload.guard())`, outermost).
    pub fn guard(&self) -> GuardLayer {
        self.shared.guard.clone()
    }

    /// Tell every open tab to reload now (what SIGUSR1 does). Returns how many
    /// reload streams were open to hear it.
    pub fn reload(&self) -> usize {
        self.shared.broadcaster.send(&Broadcast::Reload)
    }

    /// Tell every open tab that the file served at `url_path` (such as
    /// `/static/app.css`) changed: a stylesheet (`.css`) is swapped in place without
    /// a navigation, an image (`.png`, `.jpg`, `.svg`, …) is refreshed where it is
    /// shown, a page (`.html`, `.htm`) is fetched again and morphed into each tab,
    /// anything else (a script, say) reloads the tabs. Returns how many reload
    /// streams were open to hear it.
    pub fn changed(&self, url_path: &str) -> usize {
        self.shared
            .broadcaster
            .send(&Broadcast::for_change(url_path))
    }

    /// Tell every open tab to fetch its page again and morph it in (a template
    /// changed). Returns how many reload streams were open to hear it.
    pub(crate) fn morph(&self) -> usize {
        self.shared.broadcaster.send(&Broadcast::Morph)
    }

    /// Tell every open tab that a build of the next version started while this
    /// app keeps serving (the runner calls it through its channel): tabs show a
    /// small "building…" badge and stay live. Tabs opened until [`AutoReload::report`]
    /// or [`AutoReload::clear`] get it too. Returns how many reload streams were
    /// open to hear it.
    pub fn building(&self) -> usize {
        self.shared.broadcaster.send(&Broadcast::Building)
    }

    /// Show `html` (a failed build's report, an HTML fragment: escape what it
    /// quotes) above the live page of every open tab, and of every tab opened
    /// until [`AutoReload::clear`] or [`AutoReload::building`]; the page stays live
    /// underneath and no tab reloads. Returns how many reload streams were open to
    /// hear it.
    pub fn report(&self, html: &str) -> usize {
        self.shared
            .broadcaster
            .send(&Broadcast::Report(html.into()))
    }

    /// Take back [`AutoReload::building`] and [`AutoReload::report`]: tabs drop the
    /// badge and the report (a build that changed nothing). Returns how many reload
    /// streams were open to hear it.
    pub fn clear(&self) -> usize {
        self.shared.broadcaster.send(&Broadcast::Clear)
    }

    /// The signal that fires when the graceful shutdown begins. Handlers behind
    /// [`AutoReload::layer`] can also take it as an extractor.
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.shared.shutdown.clone()
    }

    /// How many reload streams are open now.
    pub fn open_streams(&self) -> usize {
        self.shared.broadcaster.open_streams()
    }

    /// The `<script>` tag the layer injects: it loads the client script and carries
    /// this process's instance id in `data-instance`.
    pub fn script_tag(&self) -> &str {
        &self.shared.script_tag
    }

    /// What this process's start cost; [`crate::serve()`] marks when it serves.
    pub(crate) fn timing(&self) -> &Timing {
        &self.shared.timing
    }

    /// The file watchers that [`crate::serve()`] stops when its shutdown begins.
    pub(crate) fn watchers(&self) -> &watch::Watchers {
        &self.shared.watchers
    }

    /// Act on a message from the runner ([`crate::runner_channel`]).
    fn apply(&self, message: ToApp) {
        match message {
            ToApp::Building => {
                self.building();
            }
            ToApp::Report { html } => {
                self.report(&html);
            }
            ToApp::Clear => {
                self.clear();
            }
            ToApp::Timing {
                change_at_ms,
                build_ms,
                shutdown_ms,
                held_by,
            } => self
                .timing()
                .set_by_runner(change_at_ms, build_ms, shutdown_ms, held_by),
        }
    }

    /// The encoded events as they are broadcast, for tests that watch them.
    #[cfg(test)]
    pub(crate) fn frames(&self) -> tokio::sync::broadcast::Receiver<bytes::Bytes> {
        self.shared.broadcaster.frames()
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
}

/// Configures an [`AutoReload`]. Made by [`AutoReload::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct AutoReloadBuilder {
    enabled: Option<bool>,
    keep_alive: Duration,
    retry: Duration,
    guard: GuardLayer,
    morph: bool,
    /// Set by [`AutoReloadBuilder::overlay`] (`overlay.rs`).
    pub(crate) overlay: Option<Overlay>,
}

impl Default for AutoReloadBuilder {
    fn default() -> Self {
        Self {
            enabled: None,
            keep_alive: Duration::from_secs(15),
            retry: Duration::from_millis(100),
            guard: GuardLayer::new(),
            morph: true,
            overlay: None,
        }
    }
}

impl AutoReloadBuilder {
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

    /// Whether a tab that must show a newer page morphs it into the one it shows
    /// (keeping what the person typed, the focus and the scroll positions), or
    /// always reloads. Default `true`: the client script morphs, and reloads
    /// wherever a morph could leave the page wrong (see the README's "Morph, or
    /// reload"). One page opts out with `<meta name="axum-autoreload"
    /// content="reload">`.
    pub fn morph(mut self, morph: bool) -> Self {
        self.morph = morph;
        self
    }

    /// Answer requests whose `Host` is `host` (a name, without port), besides
    /// `localhost`, names under `.localhost` and IP addresses, in
    /// [`AutoReload::guard`], the reload routes and [`crate::serve()`]. Repeat
    /// for more names. See [`GuardLayer::allow_host`].
    pub fn allow_host(mut self, host: &str) -> Self {
        self.guard = self.guard.allow_host(host);
        self
    }

    /// Build the handle, with a new instance id. Reads [`ENABLE_ENV`] (unless
    /// [`AutoReloadBuilder::enabled`] was called) and [`ALLOWED_HOSTS_ENV`]. The
    /// first handle built within a Tokio runtime in an app the runner started takes
    /// the runner's channel ([`crate::runner_channel`]).
    pub fn build(mut self) -> AutoReload {
        if let Ok(hosts) = std::env::var(ALLOWED_HOSTS_ENV) {
            for host in hosts.split(',') {
                self = self.allow_host(host);
            }
        }
        let enabled = self
            .enabled
            .or_else(enabled_from_env)
            .unwrap_or(cfg!(debug_assertions));
        let instance = InstanceId::generate();
        let shutdown = ShutdownSignal::new();
        let reload = AutoReload {
            shared: Arc::new(Shared {
                broadcaster: Broadcaster::new(
                    &instance,
                    self.retry,
                    self.keep_alive,
                    shutdown.clone(),
                    self.overlay.as_ref(),
                ),
                script_tag: client::script_tag(&instance, self.overlay.is_some(), self.morph),
                instance,
                enabled,
                shutdown,
                guard: self.guard,
                watchers: watch::Watchers::default(),
                timing: Timing::default(),
            }),
        };
        let taker = reload.clone();
        crate::runner_channel::take(
            move |message| taker.apply(message),
            reload.shutdown_signal(),
        );
        reload
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
