//! The listening socket: taken from socket activation, or bound. [`bind`] (also at
//! the crate root) does both in one call and returns a `tokio::net::TcpListener`;
//! the other items are the pieces, for a tool that needs to know where the socket
//! came from or to pass it on (the runner).
//!
//! watchexec (`--socket`), systemfd and systemd create the listening socket once and
//! pass it to every process they start, following the systemd socket-passing
//! protocol: `LISTEN_FDS` says how many descriptors were passed, starting at fd 3
//! (or at `LISTEN_FDS_FIRST_FD`, which watchexec sets); see sd_listen_fds(3). The
//! socket outlives each restart, so a browser's request waits in the kernel's accept
//! queue (the backlog) while one process exits and the next starts, instead of being
//! refused.
//!
//! watchexec 2.8 and systemfd 0.4 create that socket with a backlog of 1: while no
//! process accepts, further connection attempts are dropped and wait for the
//! kernel's SYN retransmit (1 s, then 3 s). [`bind`] and [`take_or_bind`] call `listen(2)` again
//! on the passed socket with [`BACKLOG`], which raises it for this process and every
//! later one.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{lookup_host, TcpListener, ToSocketAddrs};

/// The listen backlog set on passed and bound sockets: how many connections the
/// kernel queues while no process accepts (capped by `net.core.somaxconn`).
pub const BACKLOG: i32 = 1024;

/// Where the listening socket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Passed by socket activation (`LISTEN_FDS`); `fd` is its descriptor number.
    SocketActivation {
        /// The descriptor number, 3 unless `LISTEN_FDS_FIRST_FD` said otherwise.
        fd: i32,
    },
    /// Bound by this process because no socket was passed.
    Bound,
}

/// A listening TCP socket with its backlog raised, not yet registered with Tokio
/// ([`Listener::into_tokio`] gives the `tokio::net::TcpListener` that
/// [`crate::serve()`] takes). Dropping it closes the socket.
#[derive(Debug)]
#[must_use = "dropping a listener closes its socket"]
pub struct Listener {
    inner: std::net::TcpListener,
    source: Source,
    local_addr: SocketAddr,
}

impl Listener {
    /// Where the socket came from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The address the socket listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL a person opens in a browser: `localhost` for loopback and unspecified
    /// addresses (`0.0.0.0`, `::`), the address itself otherwise.
    pub fn url(&self) -> String {
        let ip = self.local_addr.ip();
        if ip.is_loopback() || ip.is_unspecified() {
            format!("http://localhost:{}", self.local_addr.port())
        } else {
            format!("http://{}", self.local_addr)
        }
    }

    /// Register the socket with the Tokio runtime.
    ///
    /// # Errors
    ///
    /// Returns `Err` when called outside a Tokio runtime with I/O enabled, or when the
    /// runtime cannot register the socket.
    pub fn into_tokio(self) -> io::Result<TcpListener> {
        TcpListener::from_std(self.inner)
    }
}

/// The socket's descriptor, for a supervisor that passes it on to a process it
/// starts (clear its close-on-exec flag first, and set `LISTEN_FDS`).
impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

/// Why no listening socket could be had.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The socket passed through `LISTEN_FDS` is not a listening TCP socket (a UDP or
    /// Unix socket, or a plain file).
    #[error(
        "the socket passed by socket activation (LISTEN_FDS) is not a TCP listener: {source}; \
         pass a TCP port, e.g. `watchexec --socket 8080` or `systemfd -s http::8080`"
    )]
    NotTcpListener {
        /// What listenfd reported.
        #[source]
        source: io::Error,
    },
    /// Binding the fallback address failed, most often because the port is in use.
    #[error(
        "cannot listen on {addr}: {source}; {hint}",
        hint = bind_hint(source)
    )]
    Bind {
        /// The address that was tried.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The address given to [`bind`] could not be resolved to a socket address.
    #[error("cannot resolve the address to listen on: {source}")]
    Resolve {
        /// What the resolver (getaddrinfo(3)) reported.
        #[source]
        source: io::Error,
    },
    /// Setting up the socket (backlog, non-blocking mode, registration with the
    /// Tokio runtime) failed.
    #[error("cannot set up the listening socket ({what}): {source}")]
    Setup {
        /// The step that failed.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

fn bind_hint(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::AddrInUse => {
            "another process uses that port: stop it, or listen on another port"
        }
        io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: listen on a port above 1024"
        }
        io::ErrorKind::AddrNotAvailable => {
            "that address is not on this machine: listen on 127.0.0.1"
        }
        _ => "check the address to listen on",
    }
}

/// The listening socket for [`crate::serve()`], as `tokio::net::TcpListener::bind`
/// gives it: the first socket passed by socket activation (`LISTEN_FDS`,
/// sd_listen_fds(3)) when there is one, else `addr` bound (each address it resolves
/// to is tried in turn). Either way the socket listens with a backlog of
/// [`BACKLOG`].
///
/// When a socket was passed, `addr` is not used: the server listens where the
/// socket does (the port given to `watchexec --socket`), and this says so through
/// `tracing` at `info`, or on stderr in an app that set no subscriber.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), axum_autoreload::listener::ListenerError> {
/// let listener = axum_autoreload::bind("127.0.0.1:3000").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// - [`ListenerError::NotTcpListener`] when the passed socket is not a TCP listener.
/// - [`ListenerError::Resolve`] when no socket was passed and `addr` does not resolve.
/// - [`ListenerError::Bind`] when no socket was passed and `addr` cannot be bound
///   (a busy port, a foreign address); the last address tried is named.
/// - [`ListenerError::Setup`] when the backlog or non-blocking mode cannot be set,
///   or the socket cannot be registered with the Tokio runtime (called outside
///   one).
pub async fn bind<A: ToSocketAddrs>(addr: A) -> Result<TcpListener, ListenerError> {
    if let Some(passed) = take_passed()? {
        let asked = lookup_host(addr)
            .await
            .ok()
            .and_then(|mut addrs| addrs.next());
        let serving = passed.local_addr();
        let asked = match asked {
            Some(asked) if asked == serving => String::new(),
            Some(asked) => format!(", not on {asked} (the address given to bind)"),
            None => ", not on the address given to bind".to_owned(),
        };
        crate::log::even_without_subscriber(
            false,
            &format!(
                "listening on {serving}, the socket passed by socket activation (LISTEN_FDS){asked}"
            ),
        );
        return into_tokio(passed);
    }
    let mut failed = None;
    for addr in lookup_host(addr)
        .await
        .map_err(|source| ListenerError::Resolve { source })?
    {
        match bind_addr(addr) {
            Ok(listener) => return into_tokio(listener),
            Err(err) => failed = Some(err),
        }
    }
    Err(failed.unwrap_or_else(|| ListenerError::Resolve {
        source: io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on"),
    }))
}

fn into_tokio(listener: Listener) -> Result<TcpListener, ListenerError> {
    listener
        .into_tokio()
        .map_err(|source| ListenerError::Setup {
            what: "register the socket with the Tokio runtime",
            source,
        })
}

/// Take the first socket passed by socket activation, or bind `addr` when none was
/// passed, without Tokio: [`bind`] for a tool that needs the [`Listener`] (its
/// [`Source`], its descriptor). Either way the socket listens with a backlog of
/// [`BACKLOG`] and is non-blocking.
///
/// The passed socket is the one at fd 3 (or `LISTEN_FDS_FIRST_FD`) when `LISTEN_FDS`
/// is at least 1, as sd_listen_fds(3) describes. `LISTEN_PID` is honoured when set
/// (watchexec does not set it).
///
/// # Errors
///
/// - [`ListenerError::NotTcpListener`] when the passed fd is not a TCP listener.
/// - [`ListenerError::Bind`] when no socket was passed and `addr` cannot be bound
///   (a busy port, a foreign address).
/// - [`ListenerError::Setup`] when the backlog or non-blocking mode cannot be set.
pub fn take_or_bind(addr: SocketAddr) -> Result<Listener, ListenerError> {
    match take_passed()? {
        Some(listener) => Ok(listener),
        None => bind_addr(addr),
    }
}

/// Take the first socket passed by socket activation, if any.
///
/// # Errors
///
/// As [`take_or_bind`], less the bind errors. Returns `Ok(None)` when no socket was
/// passed, or when it was taken already.
pub fn take_passed() -> Result<Option<Listener>, ListenerError> {
    let mut fds = listenfd::ListenFd::from_env();
    let passed = fds
        .take_tcp_listener(0)
        .map_err(|source| ListenerError::NotTcpListener { source })?;
    let Some(inner) = passed else {
        return Ok(None);
    };
    let fd = inner.as_raw_fd();
    let listener = prepare(inner, Source::SocketActivation { fd })?;
    Ok(Some(listener))
}

/// Bind `addr` with `SO_REUSEADDR` and a backlog of [`BACKLOG`].
///
/// # Errors
///
/// [`ListenerError::Bind`] when the address cannot be bound, [`ListenerError::Setup`]
/// when the socket cannot be created or set up.
fn bind_addr(addr: SocketAddr) -> Result<Listener, ListenerError> {
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "binding {addr}, which other machines can reach: a development server belongs on 127.0.0.1"
        );
    }
    let setup = |what| move |source| ListenerError::Setup { what, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(setup("create socket"))?;
    socket
        .set_reuse_address(true)
        .map_err(setup("set SO_REUSEADDR"))?;
    socket
        .bind(&addr.into())
        .map_err(|source| ListenerError::Bind { addr, source })?;
    prepare(socket.into(), Source::Bound)
}

/// Listen with [`BACKLOG`] (again: a passed socket keeps its queue and takes the new
/// backlog) and switch to non-blocking mode, which Tokio requires.
fn prepare(inner: std::net::TcpListener, source: Source) -> Result<Listener, ListenerError> {
    let setup = |what| move |source| ListenerError::Setup { what, source };
    SockRef::from(&inner)
        .listen(BACKLOG)
        .map_err(setup("listen with a larger backlog"))?;
    inner
        .set_nonblocking(true)
        .map_err(setup("set non-blocking mode"))?;
    let local_addr = inner
        .local_addr()
        .map_err(setup("read the local address"))?;
    Ok(Listener {
        inner,
        source,
        local_addr,
    })
}
