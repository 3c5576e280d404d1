//! The app: started on the listening socket, watched until it exits.
//!
//! The app runs in a process group of its own, so the signal watchexec sends to
//! the runner's group reaches the runner only, and the runner passes exactly one
//! on: the library's server exits at once, without its graceful shutdown, on a
//! second SIGINT. The app inherits the socket as it would from watchexec
//! (`LISTEN_FDS=1`, `LISTEN_FDS_FIRST_FD`; sd_listen_fds(3)). Its stderr passes
//! through the runner to the terminal as it comes, and the last
//! [`STDERR_TAIL`] bytes are kept to tell why it exited.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::killpg;
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStderr, Command};
use tokio::task::JoinHandle;

use crate::build::Executable;
use crate::signals::Signals;

/// How much of the app's stderr is kept, in bytes: enough for a panic message
/// and the log lines before it.
pub(crate) const STDERR_TAIL: usize = 64 * 1024;

/// How long to wait, once the app has exited, for the rest of its stderr (a
/// process it started may hold the pipe open).
const STDERR_DRAIN: Duration = Duration::from_millis(200);

/// How long `cargo build` took, and when the runner started: the app's library
/// reads them for its timing line.
pub(crate) use axum_autoreload::{BUILD_MS_ENV, STARTED_AT_MS_ENV};

/// Environment variable: when the runner started the app, in milliseconds since
/// the Unix epoch.
pub(crate) const SPAWNED_AT_MS_ENV: &str = "AXUM_AUTORELOAD_SPAWNED_AT_MS";

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
}

/// How the app ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The runner was told to stop and passed the signal on; the app then exited.
    Stopped(ExitStatus),
    /// The app exited without being asked to; `stderr` is the end of what it
    /// wrote there (lossy UTF-8).
    OnItsOwn { status: ExitStatus, stderr: String },
}

/// What the app is started with.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    pub(crate) executable: &'a Executable,
    pub(crate) args: &'a [String],
    /// The listening socket's descriptor, inheritable.
    pub(crate) fd: RawFd,
    /// `cargo build`'s wall time.
    pub(crate) build_time: Duration,
    /// When the runner started ([`unix_ms`]).
    pub(crate) started_at_ms: u128,
}

/// Start the app and wait until it exits, passing on the first SIGINT or SIGTERM
/// the runner gets (once: a second one would cut the app's graceful shutdown).
///
/// # Errors
///
/// When the executable cannot be started or waited for.
pub(crate) async fn run(launch: Launch<'_>, signals: &mut Signals) -> io::Result<Ended> {
    let spawned_at = unix_ms();
    let mut child = Command::new(&launch.executable.path)
        .args(launch.args)
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDS_FIRST_FD", launch.fd.to_string())
        // It would name the runner, and the app would not take the socket.
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .env("CARGO_MANIFEST_DIR", &launch.executable.manifest_dir)
        .env(BUILD_MS_ENV, launch.build_time.as_millis().to_string())
        .env(SPAWNED_AT_MS_ENV, spawned_at.to_string())
        .env(STARTED_AT_MS_ENV, launch.started_at_ms.to_string())
        .process_group(0)
        // Not the terminal: in a background process group, reading it would stop
        // the app (SIGTTIN).
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot start {}: {err}", launch.executable.path.display()),
            )
        })?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let tee = child.stderr.take().map(|stderr| tokio::spawn(tee(stderr)));
    tokio::select! {
        status = child.wait() => {
            let status = status?;
            let stderr = drain(tee).await;
            Ok(Ended::OnItsOwn { status, stderr })
        }
        signal = signals.recv() => {
            if let Some(pid) = pid {
                tracing::debug!("{signal}: passing it on to the app");
                if let Err(err) = killpg(pid, signal) {
                    tracing::warn!("cannot pass {signal} on to the app: {err}");
                }
            }
            let status = child.wait().await?;
            drain(tee).await;
            Ok(Ended::Stopped(status))
        }
    }
}

/// The rest of the app's stderr, once it has exited.
async fn drain(tee: Option<JoinHandle<VecDeque<u8>>>) -> String {
    let Some(tee) = tee else {
        return String::new();
    };
    let abort = tee.abort_handle();
    match tokio::time::timeout(STDERR_DRAIN, tee).await {
        Ok(Ok(tail)) => String::from_utf8_lossy(&Vec::from(tail)).into_owned(),
        Ok(Err(_)) => String::new(),
        Err(_) => {
            abort.abort();
            String::new()
        }
    }
}

/// Copy the app's stderr to ours as it comes; return its last [`STDERR_TAIL`]
/// bytes at the end.
async fn tee(mut stderr: ChildStderr) -> VecDeque<u8> {
    let mut tail = VecDeque::with_capacity(STDERR_TAIL);
    let mut out = tokio::io::stderr();
    let mut buffer = vec![0; 8 * 1024];
    loop {
        let read = match stderr.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        // The terminal may be gone; the tail is still kept.
        let _ = out.write_all(chunk).await;
        keep_tail(&mut tail, chunk);
    }
    let _ = out.flush().await;
    tail
}

/// Append `chunk` to `tail`, dropping its oldest bytes past [`STDERR_TAIL`].
fn keep_tail(tail: &mut VecDeque<u8>, chunk: &[u8]) {
    let chunk = &chunk[chunk.len().saturating_sub(STDERR_TAIL)..];
    let overflow = (tail.len() + chunk.len()).saturating_sub(STDERR_TAIL);
    tail.drain(..overflow);
    tail.extend(chunk);
}

/// The runner's exit code for the app's `status`: its code, or 128 plus the
/// signal that ended it, as shells report it.
pub(crate) fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let mut tail = VecDeque::new();
        keep_tail(&mut tail, &vec![b'a'; STDERR_TAIL - 2]);
        keep_tail(&mut tail, b"bcd");
        assert_eq!(tail.len(), STDERR_TAIL);
        assert_eq!(
            tail.iter().rev().take(4).copied().collect::<Vec<_>>(),
            b"dcba"
        );
        keep_tail(&mut tail, &vec![b'z'; STDERR_TAIL + 10]);
        assert!(tail.iter().all(|&b| b == b'z'));
    }

    #[test]
    fn exit_codes_as_shells_report_them() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(101 << 8)), 101);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
