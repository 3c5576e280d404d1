//! Reload every open browser tab when an axum app restarts, with no dropped request,
//! no stale tab and no error page in between.
//!
//! A development tool for the edit → rebuild → restart loop driven by
//! [watchexec](https://github.com/watchexec/watchexec) (`watchexec --socket 3000
//! --restart --stop-signal SIGINT -- cargo run`), `systemfd` or systemd socket
//! activation.
//!
//! # Examples
//!
//! An axum hello world reloads with its two lines changed: [`bind`] in place of
//! `tokio::net::TcpListener::bind`, [`serve()`] in place of `axum::serve`:
//!
//! ```no_run
//! use axum::{response::Html, routing::get, Router};
//!
//! #[tokio::main]
//! async fn main() {
//!     let app = Router::new().route("/", get(|| async { Html("<h1>Hello, World!</h1>") }));
//!     let listener = axum_autoreload::bind("127.0.0.1:3000").await.unwrap();
//!     axum_autoreload::serve(listener, app).await.unwrap();
//! }
//! ```
//!
//! [`bind`] takes the socket that watchexec passes (and says so when it is not at
//! the address given); [`serve()`] answers the reload paths, adds the client script
//! to HTML pages, checks Host and Origin, turns a handler's panic into a page, and
//! shuts down so the next build takes the socket at once.
//!
//! With a handle, to watch static files or tell the tabs to reload from the app:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use axum_autoreload::{watch_static, AutoReload};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Router::new()
//!     .route("/", get(|| async { axum::response::Html("<h1>Hello</h1>") }))
//!     .nest_service("/static", axum_autoreload::static_files("static"));
//! let listener = axum_autoreload::bind("127.0.0.1:3000").await?;
//! let reload = AutoReload::new();
//! watch_static("static", "/static", &reload)?;
//! reload.serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! With `axum::serve`, add the layers that [`AutoReload::serve`] applies (the
//! layer, the panic page, the allowed hosts, outermost last) and fire the shutdown
//! signal yourself:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use axum_autoreload::AutoReload;
//!
//! # async fn run(listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! let reload = AutoReload::new();
//! let app = Router::new()
//!     .route("/", get(|| async { axum::response::Html("<h1>Hello</h1>") }))
//!     .layer(reload.layer())
//!     .layer(reload.panic_page())
//!     .layer(reload.allowed_hosts());
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
//! # The pieces
//!
//! - [`bind`] and [`listener`]: take the socket passed through socket activation
//!   (`LISTEN_FDS`, sd_listen_fds(3)), raise its listen backlog, or bind one.
//! - [`AutoReload`]: the handle: the reload stream, the client script, the
//!   instance id of this process and the [`ShutdownSignal`].
//! - [`inject`]: the layer around the app ([`AutoReload::layer`]): it answers the
//!   reload paths, adds the client script to HTML pages, ends the app's own event
//!   streams when the shutdown begins, and gives handlers the [`ShutdownSignal`] as
//!   an extractor.
//! - [`allowed_hosts`]: the Host and Origin checks that keep other sites out.
//! - [`panic_page`]: a handler's panic as a 500 page that reloads once fixed.
//! - [`protocol`]: the wire protocol between this library, the runner
//!   (`axum-autoreload run`) and the client script: paths, event names,
//!   environment variables, channel messages.
//! - [`AutoReloadBuilder::overlay`]: an instance that is a failure report (a build
//!   that failed, an app that exited): each open tab shows it above its page.
//! - [`serve()`] and [`AutoReload::serve`]: an HTTP/1.1 server (hyper) with a
//!   graceful shutdown that ends every event stream, serves connections already
//!   accepted, drains in-flight requests, closes the upgraded connections
//!   (WebSockets) that the app does not close within a short grace, and exits
//!   fast, so the next build can take the socket (see [`Serve`]).
//!
//! # Release builds
//!
//! Reload is on in builds with debug assertions (`cargo run`) and off in release
//! builds, where nothing is injected and `/auto_refresh` answers 404. The
//! `AXUM_AUTORELOAD` environment variable ([`protocol::ENABLE_ENV`], `1`/`on` or
//! `0`/`off`) or
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
//! [`protocol::TRIGGER_PATH`] already works everywhere); taking the socket from
//! systemfd's Windows protocol (listenfd implements it) and a [`listener::Source`]
//! that does not name a file descriptor. The layers and the client script do not
//! depend on the platform.

pub mod allowed_hosts;
mod client;
pub mod inject;
mod instance;
pub mod listener;
mod live_server;
mod log;
pub mod panic_page;
pub mod protocol;
mod reload;
mod routes;
mod runner_channel;
mod serve;
mod shutdown;
mod sse;
mod static_files;
mod timing;
mod watch;

pub use instance::InstanceId;
pub use listener::bind;
pub use live_server::live_server;
pub use reload::{watch_static, watch_templates, AutoReload, AutoReloadBuilder};
pub use serve::{serve, Serve};
pub use shutdown::{KeepStreamOpen, ShutdownSignal};
pub use static_files::{static_files, StaticFiles};
pub use watch::WatchError;

/// The README's Rust examples, compiled as doctests (`cargo test --doc`), so the
/// two-line integration it shows keeps building.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
