//! The app's end of the runner's channel ([`crate::protocol`] describes it): take
//! the pipes named in [`CHANNEL_ENV`], hand the runner's messages to the handle that
//! took them, tell the runner of panics and of the graceful shutdown.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, OnceLock, PoisonError};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::pipe;

use crate::protocol::{ToApp, ToRunner, CHANNEL_ENV};
use crate::shutdown::ShutdownSignal;

/// How long an app whose runner is gone gets for its graceful shutdown before it
/// exits anyway (status 1).
const ORPHAN_EXIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The app's end of the pipe to the runner, once taken.
static TO_RUNNER: OnceLock<Mutex<File>> = OnceLock::new();

/// Send `message` to the runner; nothing without one.
pub(crate) fn tell_runner(message: &ToRunner) {
    let Some(file) = TO_RUNNER.get() else {
        return;
    };
    let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
    // A line up to PIPE_BUF (4 KiB) is written whole; the runner is gone if this
    // fails, and then nobody is listening.
    let _ = file.write_all(message.to_line().as_bytes());
}

/// Take the channel, if the runner passed one and nothing took it yet: read it on
/// the current Tokio runtime, handing each message to `apply`; at its end, start
/// the graceful shutdown (see [`read`]).
pub(crate) fn take(apply: impl Fn(ToApp) + Send + 'static, shutdown: ShutdownSignal) {
    static TAKEN: OnceLock<()> = OnceLock::new();
    let Ok(value) = std::env::var(CHANNEL_ENV) else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("{CHANNEL_ENV} is set but there is no Tokio runtime: not taking it");
        return;
    };
    if TAKEN.set(()).is_err() {
        return;
    }
    // Not for the app's own children.
    std::env::remove_var(CHANNEL_ENV);
    let (from_runner, to_runner) = match open(&value) {
        Ok(ends) => ends,
        Err(err) => {
            tracing::warn!("{CHANNEL_ENV}={value:?}: {err}; running without the runner's channel");
            return;
        }
    };
    let _ = TO_RUNNER.set(Mutex::new(to_runner));
    install_panic_hook();
    runtime.spawn(read(from_runner, apply, shutdown));
}

/// Tell the runner where each panic happened and what it said, then run the hook
/// that was there before (the default one prints the panic to stderr as usual).
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(at) = info.location() {
            tell_runner(&ToRunner::Panic {
                thread: std::thread::current()
                    .name()
                    .unwrap_or("<unnamed>")
                    .to_owned(),
                file: at.file().to_owned(),
                line: at.line(),
                col: at.column(),
                message: crate::panic_page::panic_text(info.payload()).to_owned(),
            });
        }
        previous(info);
    }));
}

/// Open both ends named in `value` (`<read fd>,<write fd>`) through `/dev/fd`,
/// then close the inherited descriptors. Opening `/dev/fd/N` gives a pipe anew
/// without `unsafe` (on Linux, a new open file description of the same pipe).
fn open(value: &str) -> io::Result<(pipe::Receiver, File)> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "expected `<read fd>,<write fd>`",
        )
    };
    let (read, write) = value.split_once(',').ok_or_else(invalid)?;
    let read: RawFd = read.trim().parse().map_err(|_| invalid())?;
    let write: RawFd = write.trim().parse().map_err(|_| invalid())?;
    // Non-blocking: opening a pipe's read end waits for a writer otherwise, and a
    // panic hook must not wait for a runner that stopped reading.
    let nonblocking = nix::fcntl::OFlag::O_NONBLOCK.bits();
    let from_runner = OpenOptions::new()
        .read(true)
        .custom_flags(nonblocking)
        .open(format!("/dev/fd/{read}"))?;
    let to_runner = OpenOptions::new()
        .write(true)
        .custom_flags(nonblocking)
        .open(format!("/dev/fd/{write}"))?;
    for fd in [read, write] {
        let _ = nix::unistd::close(fd);
    }
    Ok((pipe::Receiver::from_file(from_runner)?, to_runner))
}

/// Hand each message from the runner to `apply`; at end of file (the runner is
/// gone) raise SIGINT, which starts the graceful shutdown of [`crate::serve()`]
/// or of an app that handles Ctrl-C itself.
async fn read(from_runner: pipe::Receiver, apply: impl Fn(ToApp), shutdown: ShutdownSignal) {
    let mut lines = BufReader::new(from_runner).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match ToApp::from_line(&line) {
            Some(message) => apply(message),
            None => tracing::debug!("runner channel: ignoring {line:?}"),
        }
    }
    if shutdown.is_triggered() {
        return;
    }
    // Before anything is logged: stderr is a pipe to the runner that is gone, and
    // a subscriber that cannot write there may panic.
    let raised = nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT);
    shutdown.trigger();
    // An app stuck in its shutdown has nobody left to stop it.
    std::thread::spawn(|| {
        std::thread::sleep(ORPHAN_EXIT);
        std::process::exit(1);
    });
    match raised {
        Ok(()) => tracing::info!("the runner is gone: shutting down"),
        Err(err) => tracing::warn!("the runner is gone, and SIGINT cannot be raised: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_variable_is_an_error_not_a_panic() {
        for value in ["", "3", "a,b", "3;4"] {
            let err = open(value).expect_err("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{value:?}");
        }
    }
}
