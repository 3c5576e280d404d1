//! The runner's signals: SIGHUP says a file changed (watchexec's `--signal
//! SIGHUP`), SIGINT (watchexec's `--stop-signal SIGINT`, Ctrl-C) and SIGTERM
//! (watchexec's default stop signal, systemd, `kill`) stop it.

use std::io;

use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};

/// What a signal asks the runner for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// SIGHUP: build again; the app keeps serving meanwhile.
    Change,
    /// SIGINT or SIGTERM: stop the app (passing the signal on) and exit.
    Stop(Signal),
}

/// SIGHUP, SIGINT and SIGTERM, caught from the start so that none is lost between
/// the build and what follows it.
#[derive(Debug)]
pub(crate) struct Signals {
    hangup: tokio::signal::unix::Signal,
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
            hangup: signal(SignalKind::hangup())?,
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next event. Cancel safe. A stop comes before a change that arrived
    /// with it.
    pub(crate) async fn recv(&mut self) -> Event {
        tokio::select! {
            biased;
            Some(()) = self.interrupt.recv() => Event::Stop(Signal::SIGINT),
            Some(()) = self.terminate.recv() => Event::Stop(Signal::SIGTERM),
            Some(()) = self.hangup.recv() => Event::Change,
        }
    }
}
