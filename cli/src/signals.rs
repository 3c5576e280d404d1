//! The runner's stop signals: SIGINT (watchexec's `--stop-signal SIGINT`, Ctrl-C)
//! and SIGTERM (systemd, `kill`).

use std::io;

use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};

/// SIGINT and SIGTERM, caught from the start so that none is lost between the
/// build and what follows it.
#[derive(Debug)]
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Install the handlers. Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When the handlers cannot be installed.
    pub(crate) fn install() -> io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next stop signal. Cancel safe.
    pub(crate) async fn recv(&mut self) -> Signal {
        tokio::select! {
            Some(()) = self.interrupt.recv() => Signal::SIGINT,
            Some(()) = self.terminate.recv() => Signal::SIGTERM,
        }
    }
}
