//! The HTTP/1.1 server with a graceful shutdown built for restarts.
//!
//! axum's own `serve(..).with_graceful_shutdown(..)` waits for every open response,
//! so an open server-sent events stream holds the process until it is killed, and it
//! closes connections that were accepted but whose request was not read yet, which
//! resets them. This server, on SIGINT, SIGTERM or [`crate::ShutdownSignal::trigger`]:
//!
//! 1. fires the [`crate::ShutdownSignal`]: every reload stream sends `restart` and
//!    ends, and the app's own long-lived handlers end on it too;
//! 2. stops the reload handle's file watchers ([`crate::watch_static`]) and keeps
//!    accepting and serving until they are closed: closing an inotify instance can
//!    take the kernel 15 ms, which would otherwise delay the exit while requests
//!    wait in the backlog;
//! 3. stops accepting: connections not yet accepted stay in the socket's backlog for
//!    the next process (with socket activation the socket outlives this process);
//! 4. lets in-flight requests finish, then closes their connections; closes idle
//!    keep-alive connections at once; gives a connection accepted but still silent
//!    a short grace ([`Serve::first_request_grace`]) to send its request, which is
//!    then served rather than reset;
//! 5. returns when every connection is done, when the drain deadline passes
//!    ([`Serve::drain_deadline`]), or at once on a second SIGINT or SIGTERM.
//!
//! SIGUSR1 broadcasts a `reload` to every tab ([`crate::AutoReload::reload`]).
//!
//! A connection whose first request is the reload stream is served without hyper
//! (`event_stream`): it then costs its socket, a task and a broadcast receiver, not
//! hyper's read and write buffers. Every other connection is hyper's (HTTP/1.1,
//! with upgrades), built once its first bytes have arrived.

mod connection;
mod event_stream;

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinSet;

use crate::guard::Guard;
use crate::AutoReload;
use connection::Connect;

/// The largest request head (request line and headers) accepted, in bytes; a larger
/// one gets 431 Request Header Fields Too Large.
const MAX_HEADER_SIZE: usize = 64 * 1024;

/// How long the shutdown keeps accepting while the file watchers close; past it,
/// the server stops accepting anyway.
const WATCHERS_CLOSE_LIMIT: Duration = Duration::from_millis(250);

/// Serve `app` on `listener` until SIGINT or SIGTERM, then shut down gracefully as
/// the module docs describe.
///
/// `app` should include [`AutoReload::router`] and [`AutoReload::layer`] of the same
/// `reload` handle; its shutdown signal is the one this server fires. Requests carry
/// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) of the peer.
///
/// When reload is on, a connection whose first request is the reload stream (`GET
/// /auto_refresh`, allowed by the Host and Origin checks) is answered by the server
/// itself, without hyper's buffers (about 2 KiB per stream instead of 12 KiB): the
/// app's own layers (a request logger, say) do not see that request. A stream asked
/// for on a connection that served other requests first goes through `app`.
///
/// # Examples
///
/// ```no_run
/// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
/// let reload = axum_autoreload::AutoReload::new();
/// axum_autoreload::serve(listener, app, reload)
///     .drain_deadline(std::time::Duration::from_secs(5))
///     .await
/// # }
/// ```
///
/// # Errors
///
/// The returned future fails only when the signal handlers cannot be installed.
/// Accept errors (such as running out of file descriptors) are logged and retried.
pub fn serve(listener: TcpListener, app: Router, reload: AutoReload) -> Serve {
    Serve {
        listener,
        app,
        reload,
        drain_deadline: Duration::from_secs(2),
        first_request_grace: Duration::from_millis(100),
        handle_signals: true,
        guard: Guard::default(),
        header_read_timeout: Duration::from_secs(10),
    }
}

/// A server that is set up and not started yet: `.await` it to run. Made by
/// [`serve()`].
#[derive(Debug)]
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: TcpListener,
    app: Router,
    reload: AutoReload,
    drain_deadline: Duration,
    first_request_grace: Duration,
    handle_signals: bool,
    guard: Guard,
    header_read_timeout: Duration,
}

impl Serve {
    /// Answer requests whose `Host` is `host` (a name, without port), besides
    /// `localhost`, names under `.localhost` and IP addresses; other hosts get 403,
    /// which blocks DNS rebinding. Repeat for more names.
    ///
    /// Requests that change state (any method but GET, HEAD and OPTIONS), the reload
    /// stream and WebSocket upgrades are also refused with 403 when their `Origin`
    /// names a host that is not allowed: other sites' pages cannot use the server
    /// through the developer's browser.
    pub fn allow_host(mut self, host: &str) -> Self {
        self.guard.allow(host);
        self
    }

    /// How long a client may take to send a request's head (request line and
    /// headers) before the connection is closed: slow clients cannot hold
    /// connections open. Default 10 seconds.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long the graceful shutdown waits for connections to finish before it
    /// closes them. Default 2 seconds.
    pub fn drain_deadline(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// How long a connection that was accepted but has not sent a request yet gets,
    /// once the shutdown has begun, to send one. Its request is served; a connection
    /// still silent after this (a browser's preconnect) is closed. Default 100
    /// milliseconds.
    pub fn first_request_grace(mut self, grace: Duration) -> Self {
        self.first_request_grace = grace;
        self
    }

    /// Whether the server handles SIGINT, SIGTERM and SIGUSR1 itself. Default `true`.
    /// Without it, only [`crate::ShutdownSignal::trigger`] starts the shutdown.
    pub fn handle_signals(mut self, handle: bool) -> Self {
        self.handle_signals = handle;
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
enum Request {
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

    async fn recv(&mut self) -> Request {
        let Some((interrupt, terminate, user1)) = &mut self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            Some(()) = interrupt.recv() => Request::Stop("SIGINT"),
            Some(()) = terminate.recv() => Request::Stop("SIGTERM"),
            Some(()) = user1.recv() => Request::Reload,
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
            handle_signals,
            guard,
            header_read_timeout,
        } = self;
        let mut signals = Signals::install(handle_signals)?;
        let shutdown = reload.shutdown_signal();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .max_header_size(MAX_HEADER_SIZE);
        let connect = Arc::new(Connect {
            http,
            guard,
            app,
            reload: reload.clone(),
            first_request_grace,
            header_read_timeout,
        });
        let mut connections = JoinSet::new();

        tracing::debug!(instance = %reload.instance_id(), "serving");
        loop {
            tokio::select! {
                biased;
                () = shutdown.triggered() => break,
                request = signals.recv() => match request {
                    Request::Stop(name) => {
                        tracing::info!("{name}: shutting down");
                        shutdown.trigger();
                        break;
                    }
                    Request::Reload => {
                        let streams = reload.reload();
                        tracing::info!("SIGUSR1: told {streams} reload streams to reload");
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => accept(&mut connections, &connect, accepted).await,
            }
        }

        // The streams are ending. Keep serving while the file watchers close.
        let started = Instant::now();
        let watchers_closed =
            tokio::time::timeout(WATCHERS_CLOSE_LIMIT, reload.shared.watchers.stop_all());
        tokio::pin!(watchers_closed);
        loop {
            tokio::select! {
                biased;
                request = signals.recv() => if let Request::Stop(name) = request {
                    exit_now(name, &connections);
                    return Ok(());
                },
                closed = &mut watchers_closed => {
                    if closed.is_err() {
                        tracing::warn!(
                            "file watchers still open after {} ms: stopping anyway",
                            WATCHERS_CLOSE_LIMIT.as_millis(),
                        );
                    }
                    break;
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => accept(&mut connections, &connect, accepted).await,
            }
        }

        // Stop accepting: what waits in the backlog is the next process's.
        drop(listener);
        tracing::info!(
            "graceful shutdown: stopped accepting after {} ms; draining {} connections ({} reload streams)",
            started.elapsed().as_millis(),
            connections.len(),
            reload.open_streams(),
        );
        let deadline = tokio::time::sleep(drain_deadline);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                biased;
                request = signals.recv() => if let Request::Stop(name) = request {
                    exit_now(name, &connections);
                    return Ok(());
                },
                () = &mut deadline => {
                    tracing::warn!(
                        "drain deadline of {} ms passed: closing {} connections still open",
                        drain_deadline.as_millis(),
                        connections.len(),
                    );
                    break;
                }
                next = connections.join_next() => if next.is_none() { break },
            }
        }
        connections.abort_all();
        tracing::info!("shut down in {} ms", started.elapsed().as_millis());
        Ok(())
    }
}

/// A second SIGINT or SIGTERM during the shutdown.
fn exit_now(name: &str, connections: &JoinSet<()>) {
    tracing::warn!(
        "{name} again: exiting without waiting for {} connections",
        connections.len()
    );
}

/// Serve an accepted connection on its own task.
async fn accept(
    connections: &mut JoinSet<()>,
    connect: &Arc<Connect>,
    accepted: io::Result<(TcpStream, SocketAddr)>,
) {
    match accepted {
        Ok((stream, remote)) => {
            connections.spawn(connection::serve(Arc::clone(connect), stream, remote));
        }
        Err(err) => accept_failed(&err).await,
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
