//! The listening socket: the one watchexec passed, or one bound here. It is
//! inherited by the app only: close-on-exec, except while the app is started, so
//! cargo and rustc never hold it.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use axum_autoreload::listener::{self, Listener, ListenerError, Source};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};

/// Why the runner has no socket to hand on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocketError {
    /// Taking the passed socket or binding one failed.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// Setting close-on-exec (`fcntl(2)`, `F_SETFD`) failed.
    #[error("cannot keep the listening socket from cargo: {0}")]
    CloseOnExec(#[source] nix::Error),
}

/// Take the socket passed by socket activation (`LISTEN_FDS`, its backlog raised
/// to [`listener::BACKLOG`]), or bind `addr` when none was passed; close-on-exec.
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
        FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC),
    )
    .map_err(SocketError::CloseOnExec)?;
    Ok(listener)
}

/// The descriptor number the app finds the socket at (`LISTEN_FDS_FIRST_FD`).
pub(crate) fn fd(listener: &Listener) -> RawFd {
    listener.as_fd().as_raw_fd()
}

/// A descriptor that a process started now inherits: close-on-exec is cleared
/// (`fcntl(2)`, `F_SETFD`) until this is dropped.
#[derive(Debug)]
pub(crate) struct Inheritable<'a>(BorrowedFd<'a>);

impl<'a> Inheritable<'a> {
    /// Clear close-on-exec on `fd`.
    ///
    /// # Errors
    ///
    /// When `fcntl(2)` fails.
    pub(crate) fn new(fd: &'a impl AsFd) -> std::io::Result<Self> {
        let fd = fd.as_fd();
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))?;
        Ok(Self(fd))
    }
}

impl Drop for Inheritable<'_> {
    fn drop(&mut self) {
        let _ = fcntl(self.0.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    }
}
