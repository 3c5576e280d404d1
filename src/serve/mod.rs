//! The HTTP/1.1 server with a graceful shutdown built for restarts: [`Serve`].

mod connection;
mod connections;
mod upgrade;

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::{error::Elapsed, Sleep};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};

use crate::protocol::ToRunner;
use crate::reload::AutoReload;
use crate::runner_channel::tell_runner;
use crate::shutdown::ShutdownSignal;
use crate::timing::LONG_SHUTDOWN;
use connection::{App, Connect};
use connections::Connections;

/// The largest request head (request line and headers) accepted, in bytes; a larger
/// one gets 431 Request Header Fields Too Large.
const MAX_HEADER_SIZE: usize = 64 * 1024;

/// How long the shutdown keeps accepting while the file watchers close; past it,
/// the server stops accepting anyway.
const WATCHERS_CLOSE_LIMIT: Duration = Duration::from_millis(250);

/// A future that completes when the app wants the shutdown to begin.
type Trigger = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serve `app` on `listener` with reload, until SIGINT or SIGTERM, then shut down
/// gracefully as the [`Serve`] docs describe: what `axum::serve(listener,
/// app)` does, plus reload. The same as `AutoReload::new().serve(listener, app)`
/// ([`AutoReload::serve`], which says what each request goes through); use that
/// form when the app needs the handle (to watch files, to tell the tabs to
/// reload), and serve an app that has a handle of its own with that handle: the
/// runner's messages go to the first handle built.
///
/// `app` is what `axum::serve` takes: a `Router` (its state given with
/// `with_state`), a `NormalizePath<Router>`, any
/// `tower::Service<axum::extract::Request, Response = axum::response::Response,
/// Error = Infallible>` that is `Clone + Send + Sync + 'static` and whose future is
/// `Send`.
///
/// # Examples
///
/// An axum hello world, with its two lines changed:
///
/// ```no_run
/// use axum::{response::Html, routing::get, Router};
///
/// # async fn run() {
/// let app = Router::new().route("/", get(|| async { Html("<h1>Hello, World!</h1>") }));
/// let listener = axum_autoreload::bind("127.0.0.1:3000").await.unwrap();
/// axum_autoreload::serve(listener, app).await.unwrap();
/// # }
/// ```
///
/// # Errors
///
/// The returned future fails only when the signal handlers cannot be installed.
/// Accept errors (such as running out of file descriptors) are logged and retried.
pub fn serve<S>(listener: TcpListener, app: S) -> Serve
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    AutoReload::new().serve(listener, app)
}

impl AutoReload {
    /// Serve `app` on `listener` with this handle's reload, until SIGINT or SIGTERM,
    /// then shut down gracefully as the [`Serve`] docs describe; `.await`
    /// the returned [`Serve`] to run it, after its settings if any.
    ///
    /// Every request goes through, in order: [`AutoReload::allowed_hosts`] (the Host
    /// and Origin checks: 403 for another site), [`AutoReload::panic_page`] (a
    /// handler's panic becomes a 500 page), [`AutoReload::layer`] (the reload paths,
    /// answered ahead of the app; the script injected into pages) and then `app`,
    /// with [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) of the peer. An
    /// app that has [`AutoReload::layer`] already gets no second script, and an app
    /// with routes of its own under [`crate::protocol::STREAM_PATH`] does not clash
    /// (the layer answers first). A panic that escapes the app (in a response body
    /// as it streams) ends its connection and is logged with its message.
    ///
    /// `app` is what `axum::serve` takes; see [`serve()`] for the bound.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use axum::{response::Html, routing::get, Router};
    /// use axum_autoreload::{watch_static, AutoReload};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = Router::new().route("/", get(|| async { Html("<h1>Hello</h1>") }));
    /// let listener = axum_autoreload::bind("127.0.0.1:3000").await?;
    /// let reload = AutoReload::new();
    /// watch_static("static", "/static", &reload)?;
    /// reload
    ///     .serve(listener, app)
    ///     .drain_deadline(std::time::Duration::from_secs(5))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`serve()`].
    pub fn serve<S>(&self, listener: TcpListener, app: S) -> Serve
    where
        S: Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let app = self
            .allowed_hosts()
            .layer(self.panic_page().layer(self.layer().layer(app)));
        Serve {
            listener,
            app: BoxCloneSyncService::new(app),
            reload: self.clone(),
            drain_deadline: Duration::from_secs(2),
            first_request_grace: Duration::from_millis(100),
            upgrade_grace: Duration::from_millis(80),
            handle_signals: true,
            header_read_timeout: Duration::from_secs(10),
            trigger: Box::pin(std::future::pending()),
        }
    }
}

/// A server that is set up and not started yet: `.await` it to run; it resolves
/// to `std::io::Result<()>` once the graceful shutdown is over. Made by [`serve()`]
/// and [`AutoReload::serve`].
///
/// # Graceful shutdown
///
/// axum's own `serve(..).with_graceful_shutdown(..)` waits for every open response,
/// so an open server-sent events stream holds the process until it is killed, and it
/// closes connections that were accepted but whose request was not read yet, which
/// resets them. This server, on SIGINT, SIGTERM, the future given to
/// [`Serve::with_graceful_shutdown`] or [`crate::ShutdownSignal::trigger`]:
///
/// 1. fires the [`crate::ShutdownSignal`]: every reload stream sends `restart` and
///    ends, the app's own event streams end (the layer of
///    [`crate::AutoReload::layer`] ends them),
///    and its other long-lived handlers end on it too;
/// 2. stops the reload handle's file watchers ([`crate::watch_static`]) and keeps
///    accepting and serving until they are closed: closing an inotify instance can
///    take the kernel 15 ms, which would otherwise delay the exit while requests
///    wait in the backlog;
/// 3. stops accepting: connections not yet accepted stay in the socket's backlog for
///    the next process (with socket activation the socket outlives this process);
/// 4. lets in-flight requests finish, then closes their connections; closes idle
///    keep-alive connections at once; gives a connection accepted but still silent
///    a short grace ([`Serve::first_request_grace`]) to send its request, which is
///    then served rather than reset; gives an upgraded connection (a WebSocket)
///    that the app still holds a short grace ([`Serve::upgrade_grace`]), then
///    closes it, with a Close frame 1012 (service restart) when it can; waits for
///    one the app answered with [`crate::KeepStreamOpen`] until the app drops it;
/// 5. returns when every connection is done, when the drain deadline passes
///    ([`Serve::drain_deadline`]; the warning then names the requests that held
///    it), or at once on a second SIGINT or SIGTERM.
///
/// SIGUSR1 broadcasts a `reload` to every tab ([`crate::AutoReload::reload`]).
///
/// Every connection is hyper's (HTTP/1.1, with upgrades), and every request goes
/// through [`crate::AutoReload::allowed_hosts`], [`crate::AutoReload::panic_page`],
/// [`crate::AutoReload::layer`] and then the app.
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: TcpListener,
    app: App,
    reload: AutoReload,
    drain_deadline: Duration,
    first_request_grace: Duration,
    upgrade_grace: Duration,
    handle_signals: bool,
    header_read_timeout: Duration,
    trigger: Trigger,
}

impl fmt::Debug for Serve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("reload", &self.reload)
            .field("drain_deadline", &self.drain_deadline)
            .field("first_request_grace", &self.first_request_grace)
            .field("upgrade_grace", &self.upgrade_grace)
            .field("handle_signals", &self.handle_signals)
            .field("header_read_timeout", &self.header_read_timeout)
            .finish_non_exhaustive()
    }
}

impl Serve {
    /// How long a client may take to send a request's head (request line and
    /// headers), counted from when the connection is accepted for its first request
    /// and from the end of the previous response for the next ones; past it the
    /// connection is closed, so slow clients cannot hold connections open. Default
    /// 10 seconds.
    pub fn header_read_timeout(self, timeout: Duration) -> Self {
        self.set(|serve| serve.header_read_timeout = timeout)
    }

    /// How long the graceful shutdown waits for connections to finish before it
    /// closes them, upgraded ones kept open with [`crate::KeepStreamOpen`]
    /// included. Default 2 seconds.
    pub fn drain_deadline(self, deadline: Duration) -> Self {
        self.set(|serve| serve.drain_deadline = deadline)
    }

    /// How long a connection that was accepted but has not sent a request yet gets,
    /// once the shutdown has begun, to send one. Its request is served; a connection
    /// still silent after this (a browser's preconnect) is closed. Default 100
    /// milliseconds.
    pub fn first_request_grace(self, grace: Duration) -> Self {
        self.set(|serve| serve.first_request_grace = grace)
    }

    /// How long an upgraded connection (a WebSocket) that the app still holds gets,
    /// once the shutdown has begun, before the server closes it. Default 80
    /// milliseconds: enough for an app that closes its sockets on the signal to
    /// finish its closing handshake with a local browser, and short enough that
    /// the exit stays under 100 ms.
    ///
    /// An app that ends its sockets on the [`crate::ShutdownSignal`] is done within
    /// it; one that does not (a socket split between two tasks that never hear of
    /// the shutdown) would otherwise hold every restart until the drain deadline.
    /// The server shuts the socket down both ways: the client sees the connection
    /// end, the app's reads end and its writes fail (`BrokenPipe`). The close code
    /// the client sees:
    ///
    /// - 1012 (service restart, RFC 6455 §7.4.1): a WebSocket (its request had
    ///   `Upgrade: websocket`) between two of the app's frames, whose send buffer
    ///   has room: the server sends a Close frame first;
    /// - the app's own code: the app had sent its Close frame already;
    /// - none, which a browser reports as 1006: the app was in the middle of a
    ///   frame, the send buffer was full, or the upgrade was not a WebSocket.
    ///
    /// An upgrade answered with [`crate::KeepStreamOpen`] beside its response is
    /// left open until the app drops it or the drain deadline passes.
    pub fn upgrade_grace(self, grace: Duration) -> Self {
        self.set(|serve| serve.upgrade_grace = grace)
    }

    /// Whether the server handles SIGINT, SIGTERM and SIGUSR1 itself. Default `true`.
    /// Without it, only [`crate::ShutdownSignal::trigger`] and the future given to
    /// [`Serve::with_graceful_shutdown`] start the shutdown.
    pub fn handle_signals(self, handle: bool) -> Self {
        self.set(|serve| serve.handle_signals = handle)
    }

    /// Also begin the graceful shutdown when `signal` completes, as axum's
    /// `serve(..).with_graceful_shutdown(..)` does; for an app that watches its own
    /// signals or events. The server's own signal handling stays on unless
    /// [`Serve::handle_signals`] turns it off.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// # drop(stop);
    /// axum_autoreload::serve(listener, app)
    ///     .handle_signals(false)
    ///     .with_graceful_shutdown(async move {
    ///         let _ = stopped.await;
    ///     })
    ///     .await
    /// # }
    /// ```
    pub fn with_graceful_shutdown<F>(self, signal: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.set(|serve| serve.trigger = Box::pin(signal))
    }

    /// `self` with one setting changed.
    fn set(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// What a signal asks for.
enum SignalRequest {
    Stop(&'static str),
    Reload,
}

/// The signals the server handles, or none.
struct Signals(Option<(Signal, Signal, Signal)>);

impl Signals {
    fn install(handle: bool) -> io::Result<Self> {
        if !handle {
            return Ok(Self(None));
        }
        Ok(Self(Some((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::user_defined1())?,
        ))))
    }

    async fn recv(&mut self) -> SignalRequest {
        let Some((interrupt, terminate, user1)) = &mut self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            Some(()) = interrupt.recv() => SignalRequest::Stop("SIGINT"),
            Some(()) = terminate.recv() => SignalRequest::Stop("SIGTERM"),
            Some(()) = user1.recv() => SignalRequest::Reload,
        }
    }
}

/// Where the server is in its life; each phase ends with a [`Step`].
enum Phase {
    /// Accepting and serving until the shutdown begins.
    Serving(Trigger),
    /// The shutdown has begun: still accepting while the file watchers close.
    ClosingWatchers(Pin<Box<dyn Future<Output = Result<(), Elapsed>> + Send>>),
    /// Not accepting: waiting for the open connections until the deadline.
    Draining(Pin<Box<Sleep>>),
}

/// How a phase ended.
enum Step {
    ShutdownBegan,
    WatchersClosed { in_time: bool },
    DeadlinePassed,
}

impl Phase {
    /// Completes when this phase is over.
    async fn end(&mut self, shutdown: &ShutdownSignal) -> Step {
        match self {
            Self::Serving(trigger) => {
                tokio::select! {
                    () = shutdown.triggered() => {}
                    () = trigger.as_mut() => {}
                }
                Step::ShutdownBegan
            }
            Self::ClosingWatchers(closed) => Step::WatchersClosed {
                in_time: closed.as_mut().await.is_ok(),
            },
            Self::Draining(deadline) => {
                deadline.as_mut().await;
                Step::DeadlinePassed
            }
        }
    }
}

impl Serve {
    async fn run(self) -> io::Result<()> {
        let Self {
            listener,
            app,
            reload,
            drain_deadline,
            first_request_grace,
            upgrade_grace,
            handle_signals,
            header_read_timeout,
            trigger,
        } = self;
        let mut signals = Signals::install(handle_signals)?;
        let shutdown = reload.shutdown_signal();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .max_header_size(MAX_HEADER_SIZE);
        let connect = Arc::new(Connect {
            http,
            app,
            shutdown: shutdown.clone(),
            first_request_grace,
            upgrade_grace,
        });
        let mut listener = Some(listener);
        let mut connections = Connections::default();
        let mut phase = Phase::Serving(trigger);
        let mut began = Instant::now();
        // When the shutdown has run [`LONG_SHUTDOWN`], what held it then.
        let mut long: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep(Duration::MAX));
        let mut held_by = None;

        tracing::debug!(instance = %reload.instance_id(), "serving");
        reload.timing().serving();
        loop {
            if matches!(phase, Phase::Draining(_)) && connections.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                request = signals.recv() => match request {
                    SignalRequest::Reload => {
                        let streams = reload.reload();
                        tracing::info!("SIGUSR1: told {streams} reload streams to reload");
                    }
                    SignalRequest::Stop(name) if matches!(phase, Phase::Serving(_)) => {
                        tracing::info!("{name}: shutting down");
                        shutdown.trigger();
                    }
                    SignalRequest::Stop(name) => {
                        tracing::warn!(
                            "{name} again: exiting without waiting for {} connections",
                            connections.len()
                        );
                        return Ok(());
                    }
                },
                step = phase.end(&shutdown) => match step {
                    Step::ShutdownBegan => {
                        // The streams end now; keep serving while the watchers close.
                        shutdown.trigger();
                        began = Instant::now();
                        long.as_mut().reset((began + LONG_SHUTDOWN).into());
                        let closed = reload.watchers().stop_all();
                        phase = Phase::ClosingWatchers(Box::pin(
                            tokio::time::timeout(WATCHERS_CLOSE_LIMIT, closed),
                        ));
                    }
                    Step::WatchersClosed { in_time } => {
                        if !in_time {
                            tracing::warn!(
                                "file watchers still open after {} ms: stopping anyway",
                                WATCHERS_CLOSE_LIMIT.as_millis(),
                            );
                        }
                        // Stop accepting: what waits in the backlog is the next process's.
                        drop(listener.take());
                        tracing::info!(
                            "graceful shutdown: stopped accepting after {} ms; draining {} connections ({} reload streams)",
                            began.elapsed().as_millis(),
                            connections.len(),
                            reload.open_streams(),
                        );
                        phase = Phase::Draining(Box::pin(tokio::time::sleep(drain_deadline)));
                    }
                    Step::DeadlinePassed => {
                        let holders = connections.holders();
                        let warning = format!(
                            "drain deadline of {} ms passed: closing {} connections still open, held by: {holders}; \
                             end such handlers on the ShutdownSignal",
                            drain_deadline.as_millis(),
                            connections.len(),
                        );
                        held_by.get_or_insert(holders);
                        crate::log::even_without_subscriber(true, &warning);
                        break;
                    }
                },
                () = long.as_mut(), if held_by.is_none() && !connections.is_empty() => {
                    held_by = Some(connections.holders());
                }
                () = connections.join_next(), if !connections.is_empty() => {}
                accepted = accept(listener.as_ref()) => match accepted {
                    Ok((stream, remote)) => connections.spawn(&connect, stream, remote),
                    Err(err) => accept_failed(&err).await,
                },
            }
        }
        connections.abort_all();
        let ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!("shut down in {ms} ms");
        tell_runner(&ToRunner::Shutdown { ms, held_by });
        Ok(())
    }
}

/// The next connection; never, once the listener is closed.
async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Per-connection errors (the peer went away) need nothing; others, such as
/// running out of file descriptors, get a pause so the loop does not spin.
async fn accept_failed(err: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tracing::debug!("accept: {err}");
        return;
    }
    tracing::error!("accept failed: {err}; retrying in 50 ms");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
