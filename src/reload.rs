//! The [`AutoReload`] handle: configuration, instance id, reload broadcast and
//! shutdown signal, shared by the layer and the server; and the watchers that
//! tell it of changed files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::allowed_hosts::AllowedHostsLayer;
use crate::client;
use crate::inject::InjectLayer;
use crate::instance::InstanceId;
use crate::panic_page::PanicPageLayer;
use crate::protocol::{ToApp, ALLOWED_HOSTS_ENV, ENABLE_ENV};
use crate::routes;
use crate::runner_channel;
use crate::shutdown::ShutdownSignal;
use crate::sse::{Broadcast, Broadcaster};
use crate::timing::Timing;
use crate::watch::{self, WatchError, Watchers};

/// The handle that ties the pieces together: one per process, cheap to clone
/// (every clone is the same handle).
///
/// Build one with [`AutoReload::new`] or [`AutoReload::builder`] when the app needs
/// it (to watch files with [`watch_static`], to tell the tabs to reload, to serve
/// with `axum::serve`), then run the app with [`AutoReload::serve`], or add
/// [`AutoReload::layer`] around it yourself. [`crate::serve()`] makes one of its own.
#[derive(Clone, Debug)]
pub struct AutoReload {
    shared: Arc<Shared>,
}

/// What every clone of one [`AutoReload`] shares.
#[derive(Debug)]
struct Shared {
    instance: InstanceId,
    enabled: bool,
    broadcaster: Broadcaster,
    shutdown: ShutdownSignal,
    script_tag: String,
    allowed_hosts: AllowedHostsLayer,
    /// The reload paths, answered by every [`AutoReload::layer`]; none when reload
    /// is off.
    routes: Option<Router>,
    watchers: Watchers,
    timing: Arc<Timing>,
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

    /// The layer around the whole app (a [`crate::inject::InjectLayer`]). When
    /// reload is on it answers the reload paths itself (the stream at
    /// [`crate::protocol::STREAM_PATH`] and everything below it, ahead of the app,
    /// each checking [`AutoReload::allowed_hosts`] with `Origin` on every request),
    /// and adds the client script to HTML pages. Always, it ends the app's own
    /// event streams when the shutdown begins and hands handlers the
    /// [`ShutdownSignal`]. See [`crate::inject`] for when it does each.
    ///
    /// [`AutoReload::serve`] adds it; a second one, inside, does no harm (a page
    /// gets the script once).
    pub fn layer(&self) -> InjectLayer {
        let script_tag = self.is_enabled().then(|| self.script_tag());
        InjectLayer::new(
            script_tag,
            self.shared.routes.clone(),
            self.shutdown_signal(),
        )
    }

    /// The Host and Origin checks, as a layer, with the names allowed by
    /// [`AutoReloadBuilder::allow_host`] and [`crate::protocol::ALLOWED_HOSTS_ENV`].
    /// [`AutoReload::serve`] applies it to the whole app; with `axum::serve`, add it
    /// to the app yourself, outermost (`.layer(reload.allowed_hosts())`). The reload
    /// paths check it whatever the server.
    pub fn allowed_hosts(&self) -> AllowedHostsLayer {
        self.shared.allowed_hosts.clone()
    }

    /// The layer that turns a handler's panic into a 500 page, with the client
    /// script when reload is on (see [`PanicPageLayer`]). [`AutoReload::serve`]
    /// applies it; with `axum::serve`, add it outside [`AutoReload::layer`].
    pub fn panic_page(&self) -> PanicPageLayer {
        PanicPageLayer::new(self.is_enabled().then(|| self.script_tag()))
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
    pub(crate) fn watchers(&self) -> &Watchers {
        &self.shared.watchers
    }

    /// Act on a message from the runner ([`crate::protocol::ToApp`]).
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
}

/// Configures an [`AutoReload`]. Made by [`AutoReload::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct AutoReloadBuilder {
    enabled: Option<bool>,
    keep_alive: Duration,
    retry: Duration,
    allowed_hosts: AllowedHostsLayer,
    morph: bool,
    /// The failure report's HTML ([`AutoReloadBuilder::overlay`]).
    overlay: Option<String>,
}

impl Default for AutoReloadBuilder {
    fn default() -> Self {
        Self {
            enabled: None,
            keep_alive: Duration::from_secs(15),
            retry: Duration::from_millis(100),
            allowed_hosts: AllowedHostsLayer::new(),
            morph: true,
            overlay: None,
        }
    }
}

impl AutoReloadBuilder {
    /// Turn reload on or off, overriding the default: on with debug assertions
    /// (`cargo run`), off in release builds, either way overridden by the
    /// `AXUM_AUTORELOAD` environment variable ([`ENABLE_ENV`](crate::protocol::ENABLE_ENV)).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// How often an idle reload stream gets a keep-alive comment (a `:` line), so
    /// that proxies and browsers keep it open. Default 15 seconds;
    /// [`Duration::ZERO`] sends none.
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
    /// [`AutoReload::allowed_hosts`], the reload paths and [`AutoReload::serve`].
    /// Repeat for more names. See [`AllowedHostsLayer::allow_host`].
    pub fn allow_host(mut self, host: &str) -> Self {
        self.allowed_hosts = self.allowed_hosts.allow_host(host);
        self
    }

    /// Make this instance a failure report, for a tool that serves the socket in
    /// place of an app that could not run (the runner, whose `cargo build` failed or
    /// whose app exited). Every reload stream then opens with an `overlay` event
    /// whose data is `html`, sent before the stream's `hello` (one `data:` line per
    /// line of `html`, as WHATWG HTML's server-sent events carry multi-line data).
    ///
    /// Each open tab shows `html` in a full-viewport overlay above its current page
    /// (styles isolated in a shadow root; scrollable; with a dismiss button), marks
    /// `<html data-autoreload="failed">`, and stays on its page: it does not reload
    /// onto this instance. A page served by this instance itself (the script tag
    /// then carries `data-overlay`) is taken to show the report already, and gets no
    /// overlay. The next instance built without an overlay reloads every tab, which
    /// clears it.
    ///
    /// `html` is inserted as markup: escape whatever it quotes (compiler output, a
    /// panic message). It may carry its own `<style>`; inside the overlay it applies
    /// to the fragment only.
    ///
    /// # Examples
    ///
    /// ```
    /// let report = axum_autoreload::AutoReload::builder()
    ///     .enabled(true)
    ///     .overlay("<h1>Build failed</h1><pre>error[E0425]: cannot find value `x`</pre>")
    ///     .build();
    /// assert!(report.script_tag().contains(" data-overlay"));
    /// ```
    pub fn overlay(mut self, html: impl Into<String>) -> Self {
        self.overlay = Some(html.into());
        self
    }

    /// Build the handle, with a new instance id. Reads
    /// [`ENABLE_ENV`](crate::protocol::ENABLE_ENV) (unless
    /// [`AutoReloadBuilder::enabled`] was called) and
    /// [`ALLOWED_HOSTS_ENV`](crate::protocol::ALLOWED_HOSTS_ENV). The first handle
    /// built within a Tokio runtime in an app the runner started takes the runner's
    /// channel ([`crate::protocol`]).
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
        let broadcaster = Broadcaster::new(
            &instance,
            self.retry,
            self.keep_alive,
            shutdown.clone(),
            self.overlay.as_deref(),
        );
        let timing = Arc::new(Timing::default());
        let routes =
            enabled.then(|| routes::router(&broadcaster, &instance, &timing, &self.allowed_hosts));
        let reload = AutoReload {
            shared: Arc::new(Shared {
                broadcaster,
                script_tag: client::script_tag(&instance, self.overlay.is_some(), self.morph),
                instance,
                enabled,
                shutdown,
                allowed_hosts: self.allowed_hosts,
                routes,
                watchers: Watchers::default(),
                timing,
            }),
        };
        let taker = reload.clone();
        runner_channel::take(
            move |message| taker.apply(message),
            reload.shutdown_signal(),
        );
        reload
    }
}

/// Watch `dir` (recursively) and tell every open tab when a file in it changes, as
/// [`AutoReload::changed`] does: stylesheets are swapped in place, images refreshed,
/// pages (`.html`) morphed in, anything else reloads the tabs. `url_prefix` is where
/// `dir` is served, such as `/static` (so `dir/app.css` is `/static/app.css`).
///
/// The watcher belongs to `reload`: it runs until the graceful shutdown of
/// [`AutoReload::serve`] begins, or until the last clone of `reload` is dropped.
///
/// A file is changed when it is written, created, renamed into place (an editor's
/// atomic save) or has its metadata changed (`touch`), whatever its modification
/// time says; opening or reading it is no change. Changes are debounced: the files
/// written during a burst with no pause longer than 40 milliseconds are announced
/// once, together, when it ends. A file that is empty then (caught half-written, as
/// tailwind's watcher leaves its output for about 175 ms) is not announced; the
/// write that fills it is. Hidden files (`.name`), editor backups (`name~`,
/// `.swp`), directories and removed files are not announced. When several files
/// change at once and one of them needs a reload, the tabs reload once.
///
/// # Examples
///
/// ```no_run
/// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
/// let reload = axum_autoreload::AutoReload::new();
/// axum_autoreload::watch_static("static", "/static", &reload)?;
/// reload.serve(listener, app).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`WatchError`] when `dir` cannot be watched: it does not exist, or the system's
/// limit on watches is reached (its source is the `std::io::Error`).
pub fn watch_static(
    dir: impl Into<PathBuf>,
    url_prefix: &str,
    reload: &AutoReload,
) -> Result<(), WatchError> {
    let prefix = url_prefix.trim_end_matches('/').to_owned();
    watch::watch(
        dir.into(),
        Some(prefix),
        &reload.shared.broadcaster,
        &reload.shared.watchers,
    )
}

/// Watch a folder of templates (recursively) and morph every open tab when a file
/// in it changes: each tab fetches its page again, rendered from the changed
/// templates, and morphs it in (or reloads where a morph could leave it wrong),
/// with no rebuild and no restart. Pair it with a template engine that reloads its
/// templates by itself: minijinja with `minijinja-autoreload`, tera with
/// `Tera::full_reload`. Run the app with the folder ignored by whatever restarts
/// it (`watchexec --ignore 'templates/**'`).
///
/// Files count as changed as for [`watch_static`], and a burst of changes is one
/// morph. The watcher belongs to `reload`, as for [`watch_static`].
///
/// # Errors
///
/// [`WatchError`] when `dir` cannot be watched: it does not exist, or the system's
/// limit on watches is reached.
pub fn watch_templates(dir: impl Into<PathBuf>, reload: &AutoReload) -> Result<(), WatchError> {
    watch::watch(
        dir.into(),
        None,
        &reload.shared.broadcaster,
        &reload.shared.watchers,
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

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tower::{Layer, ServiceExt};

    use super::AutoReload;

    #[tokio::test]
    async fn a_report_stream_opens_with_the_overlay_then_hello() {
        let reload = AutoReload::builder()
            .enabled(true)
            .overlay("<p>one</p>\n<p>two</p>")
            .build();
        let request = http::Request::get(crate::protocol::STREAM_PATH)
            .body(axum::body::Body::empty())
            .expect("request");
        let app = reload.layer().layer(tower::service_fn(|_| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::empty()))
        }));
        let response = app.oneshot(request).await;
        let mut stream =
            axum::body::Body::new(response.expect("infallible").into_body()).into_data_stream();
        let first = stream.next().await.expect("first frame").expect("bytes");
        let text = std::str::from_utf8(&first).expect("utf-8");
        let hello = format!("event: hello\ndata: {}\n", reload.instance_id());
        assert!(
            text.starts_with("event: overlay\ndata: <p>one</p>\ndata: <p>two</p>\n\n"),
            "{text}"
        );
        assert!(text.contains(&hello), "{text}");
        assert!(
            reload.script_tag().contains(" data-overlay"),
            "the pages of a report say so"
        );
    }
}
