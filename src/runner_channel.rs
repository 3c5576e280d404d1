//! The private channel between the runner (`axum-autoreload run`) and the app it
//! started: two inherited pipes named in [`CHANNEL_ENV`], as `LISTEN_FDS` names the
//! socket (sd_listen_fds(3)). No HTTP endpoint: no page, local or not, can reach it.
//!
//! - The runner writes [`ToApp`] messages, one JSON object a line: a build started
//!   ([`ToApp::Building`]), it failed ([`ToApp::Report`]), it changed nothing
//!   ([`ToApp::Clear`]), and what this start cost ([`ToApp::Timing`]). The
//!   [`crate::AutoReload`] that takes the channel turns the first three into
//!   reload-stream events ([`crate::AutoReload::building`],
//!   [`crate::AutoReload::report`], [`crate::AutoReload::clear`]) and puts the last
//!   in the timing line.
//! - End of file on that pipe means the runner is gone (it exited, or was killed
//!   with SIGKILL): the app raises SIGINT in itself, which starts the graceful
//!   shutdown of [`crate::serve()`] (or of an app that handles Ctrl-C itself), and
//!   exits (status 1) if it still runs 10 seconds later, so nothing outlives the
//!   runner.
//! - The app writes [`ToRunner`] messages back: where a panic happened (from the
//!   library's panic hook), and what its graceful shutdown took.
//!
//! An app started without the runner has no [`CHANNEL_ENV`] and never sees any of
//! this. The first [`crate::AutoReload`] built in a process with a Tokio runtime
//! takes the channel and removes the variable, so the app's own children do not
//! see it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::pipe;

use crate::ShutdownSignal;

/// How long an app whose runner is gone gets for its graceful shutdown before it
/// exits anyway (status 1).
const ORPHAN_EXIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Environment variable the runner sets: `<read fd>,<write fd>`, the app's ends
/// of the two pipes (decimal file descriptor numbers, inherited).
pub const CHANNEL_ENV: &str = "AXUM_AUTORELOAD_CHANNEL";

/// What the runner tells the app, one JSON object a line (`{"type":"building"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToApp {
    /// A build of the next version started; this app keeps serving.
    Building,
    /// The build failed: `html` is the report (an HTML fragment, escaped).
    Report {
        /// The report, as the runner's error page shows it.
        html: String,
    },
    /// The build succeeded and the binary is the one running: nothing to show.
    Clear,
    /// What this app's start cost, for the timing line.
    Timing {
        /// When the runner received the change that led to this start (its own
        /// start for the first one), milliseconds since the Unix epoch.
        change_at_ms: u64,
        /// `cargo build`'s wall time, milliseconds.
        build_ms: u64,
        /// How long the previous app's graceful shutdown took, milliseconds, when
        /// this start replaced one.
        shutdown_ms: Option<u64>,
        /// What held that shutdown when it took long (`GET /ws (upgraded)`).
        held_by: Option<String>,
    },
}

/// What the app tells the runner, one JSON object a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToRunner {
    /// A thread panicked (from the library's panic hook; the default hook still
    /// prints it to stderr).
    Panic {
        /// The thread's name, `<unnamed>` when it has none.
        thread: String,
        /// The file as rustc was given it.
        file: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        col: u32,
        /// The panic's message.
        message: String,
    },
    /// The graceful shutdown is over.
    Shutdown {
        /// From its start to now, milliseconds.
        ms: u64,
        /// What held it, when it took long: `GET /events (2), GET /ws (upgraded)`.
        held_by: Option<String>,
    },
}

impl ToApp {
    /// The message as one line of JSON, with its newline.
    pub fn to_line(&self) -> String {
        line(self)
    }

    /// The message on `line`; `None` for a line that is not one (from a newer
    /// runner, say).
    pub fn from_line(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

impl ToRunner {
    /// The message as one line of JSON, with its newline.
    pub fn to_line(&self) -> String {
        line(self)
    }

    /// The message on `line`; `None` for a line that is not one.
    pub fn from_line(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

fn line(message: &impl Serialize) -> String {
    let mut line = serde_json::to_string(message).unwrap_or_default();
    line.push('\n');
    line
}

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
    fn messages_are_one_json_line_each_way() {
        let report = ToApp::Report {
            html: "<p>a</p>\n<p>b</p>".to_owned(),
        };
        let line = report.to_line();
        assert_eq!(
            line,
            "{\"type\":\"report\",\"html\":\"<p>a</p>\\n<p>b</p>\"}\n"
        );
        assert_eq!(ToApp::from_line(line.trim_end()), Some(report));
        assert_eq!(ToApp::Building.to_line(), "{\"type\":\"building\"}\n");
        assert_eq!(ToApp::from_line("{\"type\":\"later\"}"), None);
        let shutdown = ToRunner::Shutdown {
            ms: 12,
            held_by: None,
        };
        assert_eq!(ToRunner::from_line(&shutdown.to_line()), Some(shutdown));
    }

    #[test]
    fn a_bad_variable_is_an_error_not_a_panic() {
        for value in ["", "3", "a,b", "3;4"] {
            let err = open(value).expect_err("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{value:?}");
        }
    }
}
