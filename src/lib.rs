//! Reload every open browser tab when an axum app restarts, with no dropped request,
//! no stale tab and no error page in between.
//!
//! A development tool for the edit → rebuild → restart loop driven by
//! [watchexec](https://github.com/watchexec/watchexec) (`watchexec --socket 8080
//! --restart --stop-signal SIGINT -- cargo run`), `systemfd` or systemd socket
//! activation. The pieces:
//!
//! - [`listener`]: take the socket passed through socket activation (`LISTEN_FDS`,
//!   sd_listen_fds(3)), raise its listen backlog, or bind one.
//! - [`AutoReload`]: the reload stream (server-sent events at `/auto_refresh`), the
//!   client script, the instance id of this process and the [`ShutdownSignal`].
//! - [`AutoReloadLayer`]: a tower layer around the app that adds the client script
//!   to HTML pages, ends the app's own event streams when the shutdown begins, and
//!   gives handlers the [`ShutdownSignal`] as an extractor.
//! - [`GuardLayer`]: the Host and Origin checks that keep other sites out, as a
//!   tower layer; the reload routes carry it.
//! - [`AutoReloadBuilder::overlay`]: an instance that is a failure report (a build
//!   that failed, an app that exited): each open tab shows it above its page.
//! - [`serve()`]: an HTTP/1.1 server (hyper) with a graceful shutdown that ends
//!   every event stream, serves connections already accepted, drains in-flight
//!   requests, closes the upgraded connections (WebSockets) that the app does not
//!   close within a short grace, and exits fast, so the next build can take the
//!   socket.
//!
//! # Examples
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use axum_autoreload::{listener, AutoReload};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let reload = AutoReload::new();
//! let app = Router::new()
//!     .route("/", get(|| async { axum::response::Html("<h1>Hello</h1>") }))
//!     .merge(reload.router())
//!     .layer(reload.layer());
//! let listener = listener::take_or_bind("127.0.0.1:8080".parse()?)?;
//! axum_autoreload::serve(listener.into_tokio()?, app, reload).await?;
//! # Ok(()) }
//! ```
//!
//! With `axum::serve` instead of [`serve()`], fire the signal yourself and add the
//! layers that [`serve()`] applies (the panic page and the guard):
//!
//! ```no_run
//! # use axum::{routing::get, Router};
//! # use axum_autoreload::AutoReload;
//! # async fn run(listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! let reload = AutoReload::new();
//! let app = Router::new()
//!     .route("/", get(|| async { axum::response::Html("<h1>Hello</h1>") }))
//!     .merge(reload.router())
//!     .layer(reload.layer())
//!     .layer(axum_autoreload::catch_panic(&reload))
//!     .layer(reload.guard());
//! let shutdown = reload.shutdown_signal();
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         shutdown.trigger();
//!     })
//!     .await
//! # }
//! ```
//!
//! # Release builds
//!
//! Reload is on in builds with debug assertions (`cargo run`) and off in release
//! builds, where nothing is injected and `/auto_refresh` answers 404. The
//! `AXUM_AUTORELOAD` environment variable (`1`/`on` or `0`/`off`) or
//! [`AutoReloadBuilder::enabled`] overrides that. Listener handoff and graceful
//! shutdown work in both.
//!
//! # Platforms
//!
//! The server is Unix-only today: [`serve()`] handles SIGINT, SIGTERM and SIGUSR1
//! through `tokio::signal::unix`, and [`listener`] takes passed sockets as Unix
//! file descriptors (`std::os::fd`). Elsewhere it would need: Ctrl-C
//! (`tokio::signal::ctrl_c`, or `tokio::signal::windows::ctrl_break`) in place of
//! the signals and another way to ask for a reload (the `POST` trigger at
//! [`TRIGGER_PATH`] already works everywhere); taking the socket from systemfd's
//! Windows protocol (listenfd implements it) and a [`listener::Source`] that does
//! not name a file descriptor. The layers, the router and the client script do
//! not depend on the platform.

mod client;
mod guard;
mod instance;
pub mod listener;
mod live_server;
mod middleware;
mod overlay;
mod panic_page;
mod reload;
pub mod runner_channel;
mod serve;
mod shutdown;
mod sse;
mod static_files;
mod timing;
mod watch;

pub use guard::{Guard, GuardFuture, GuardLayer};
pub use instance::InstanceId;
pub use live_server::live_server;
pub use middleware::{
    AutoReloadBody, AutoReloadLayer, AutoReloadService, HtmlPages, Predicate, ResponseFuture,
};
pub use overlay::OVERLAY_EVENT;
pub use panic_page::{catch_panic, PanicPage};
pub use reload::{
    AutoReload, AutoReloadBuilder, ALLOWED_HOSTS_ENV, ENABLE_ENV, STATUS_PATH, TRIGGER_PATH,
};
pub use serve::{serve, Serve};
pub use shutdown::{KeepStreamOpen, ShutdownSignal};
pub use sse::STREAM_PATH;
pub use static_files::{static_files, StaticFiles};
pub use timing::TIMING_PATH;
pub use watch::{watch_static, watch_templates, WatchError, DEBOUNCE};
