//! The listening socket: the one watchexec passed, or one bound here; kept
//! inheritable so the app gets it the same way.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use axum_autoreload::listener::{self, Listener, ListenerError, Source};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};

/// Why the runner has no socket to hand on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocketError {
    /// Taking the passed socket or binding one failed.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// Clearing close-on-exec (`fcntl(2)`, `F_SETFD`) failed.
    #[error("cannot make the listening socket inheritable: {0}")]
    Inherit(#[source] nix::Error),
}

/// Take the socket passed by socket activation (`LISTEN_FDS`, its backlog raised
/// to [`listener::BACKLOG`]), or bind `addr` when none was passed; then clear its
/// close-on-exec flag, so that the app started from here inherits it.
///
/// # Errors
///
/// See [`SocketError`].
pub(crate) fn take_or_bind(addr: SocketAddr) -> Result<Listener, SocketError> {
    let listener = listener::take_or_bind(addr)?;
    if listener.source() == Source::Bound {
        tracing::warn!(
            "no socket was passed (watchexec --socket 8080): listening on {addr} myself, so requests made \
             while the app restarts are refused"
        );
    }
    fcntl(
        listener.as_fd().as_raw_fd(),
        FcntlArg::F_SETFD(FdFlag::empty()),
    )
    .map_err(SocketError::Inherit)?;
    Ok(listener)
}

/// The descriptor number the app finds the socket at (`LISTEN_FDS_FIRST_FD`).
pub(crate) fn fd(listener: &Listener) -> RawFd {
    listener.as_fd().as_raw_fd()
}
