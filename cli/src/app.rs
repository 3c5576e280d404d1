//! The app: started on the listening socket with the runner's channel, watched
//! until it exits.
//!
//! The app runs in a process group of its own, so the signal watchexec sends to
//! the runner's group reaches the runner only, and the runner passes exactly one
//! on: the library's server exits at once, without its graceful shutdown, on a
//! second SIGINT. The app inherits the socket as it would from watchexec
//! (`LISTEN_FDS=1`, `LISTEN_FDS_FIRST_FD`; sd_listen_fds(3)) and the channel
//! ([`crate::channel`]). Its stderr passes through the runner to the terminal as
//! it comes, and the last [`STDERR_TAIL`] bytes are kept to tell why it exited.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum_autoreload::protocol::ToApp;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, Command};
use tokio::task::JoinHandle;

use crate::channel::{Channel, News, CHANNEL_ENV};
use crate::socket::Inheritable;

/// How much of the app's stderr is kept, in bytes: enough for a panic message
/// and the log lines before it.
pub(crate) const STDERR_TAIL: usize = 64 * 1024;

/// How long to wait, once the app has exited, for the rest of its stderr (a
/// process it started may hold the pipe open).
const STDERR_DRAIN: Duration = Duration::from_millis(200);

/// How long a stopped app gets for its graceful shutdown before SIGKILL: beyond
/// the library's drain deadline (2 s by default), within watchexec's stop timeout
/// (10 s).
const STOP_LIMIT: Duration = Duration::from_secs(8);

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// What the app is started with.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    /// The binary to run (the runner's link to cargo's output).
    pub(crate) path: &'a Path,
    /// Its package's directory (`CARGO_MANIFEST_DIR`).
    pub(crate) manifest_dir: &'a Path,
    pub(crate) args: &'a [String],
    /// The listening socket.
    pub(crate) listener: &'a axum_autoreload::listener::Listener,
    /// The figures for the app's timing line.
    pub(crate) timing: ToApp,
}

/// A running app.
#[derive(Debug)]
pub(crate) struct App {
    child: Child,
    group: Option<Pid>,
    path: PathBuf,
    channel: Channel,
    tail: Arc<Mutex<VecDeque<u8>>>,
    tee: Option<JoinHandle<()>>,
}

/// How the app ended: its status, the end of its stderr (lossy UTF-8) and what it
/// said through the channel.
#[derive(Debug)]
pub(crate) struct Ended {
    pub(crate) status: ExitStatus,
    pub(crate) stderr: String,
    pub(crate) news: News,
}

impl App {
    /// Start the app.
    ///
    /// # Errors
    ///
    /// When the channel cannot be made or the executable cannot be started.
    pub(crate) async fn start(launch: Launch<'_>) -> io::Result<Self> {
        let (mut channel, app_ends) = Channel::open()?;
        let fd = crate::socket::fd(launch.listener);
        let mut child = {
            let _socket = Inheritable::new(launch.listener)?;
            let _ends = app_ends.inheritable()?;
            Command::new(launch.path)
                .args(launch.args)
                .env("LISTEN_FDS", "1")
                .env("LISTEN_FDS_FIRST_FD", fd.to_string())
                // It would name the runner, and the app would not take the socket.
                .env_remove("LISTEN_PID")
                .env_remove("LISTEN_FDNAMES")
                .env("CARGO_MANIFEST_DIR", launch.manifest_dir)
                .env(CHANNEL_ENV, app_ends.env_value())
                .process_group(0)
                // Not the terminal: in a background process group, reading it would
                // stop the app (SIGTTIN).
                .stdin(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!("cannot start {}: {err}", launch.path.display()),
                    )
                })?
        };
        // The app holds its ends now; ours close here.
        drop(app_ends);
        channel.tell(&launch.timing).await;
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let tee = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(tee(stderr, Arc::clone(&tail))));
        Ok(Self {
            child,
            group,
            path: launch.path.to_owned(),
            channel,
            tail,
            tee,
        })
    }

    /// The binary this app runs.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Tell the app `message` through the channel.
    pub(crate) async fn tell(&mut self, message: &ToApp) {
        self.channel.tell(message).await;
    }

    /// Completes when the app has exited. Cancel safe.
    ///
    /// # Errors
    ///
    /// When it cannot be waited for.
    pub(crate) async fn exited(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Pass `signal` on to the app, once, and wait until it exits; SIGKILL to its
    /// group after [`STOP_LIMIT`].
    ///
    /// # Errors
    ///
    /// When it cannot be waited for.
    pub(crate) async fn stop(mut self, signal: Signal) -> io::Result<Ended> {
        if let Some(group) = self.group {
            tracing::debug!("{signal}: passing it on to the app");
            if let Err(err) = killpg(group, signal) {
                tracing::warn!("cannot pass {signal} on to the app: {err}");
            }
        }
        let status = match tokio::time::timeout(STOP_LIMIT, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                tracing::warn!(
                    "the app still runs {} s after {signal}: killing it",
                    STOP_LIMIT.as_secs()
                );
                if let Some(group) = self.group {
                    let _ = killpg(group, Signal::SIGKILL);
                }
                self.child.wait().await?
            }
        };
        Ok(self.ended(status).await)
    }

    /// What is left to know once the app has exited with `status`.
    pub(crate) async fn ended(mut self, status: ExitStatus) -> Ended {
        if let Some(tee) = self.tee.take() {
            // A process the app started may hold its stderr open: the tail so far
            // is kept either way.
            let abort = tee.abort_handle();
            if tokio::time::timeout(STDERR_DRAIN, tee).await.is_err() {
                abort.abort();
            }
        }
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        let stderr =
            String::from_utf8_lossy(&tail.iter().copied().collect::<Vec<_>>()).into_owned();
        Ended {
            status,
            stderr,
            news: self.channel.news(),
        }
    }
}

/// Copy the app's stderr to ours as it comes, keeping its last [`STDERR_TAIL`]
/// bytes in `tail`.
async fn tee(mut stderr: ChildStderr, tail: Arc<Mutex<VecDeque<u8>>>) {
    let mut out = tokio::io::stderr();
    let mut buffer = vec![0; 8 * 1024];
    loop {
        let read = match stderr.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        keep_tail(
            &mut tail.lock().unwrap_or_else(PoisonError::into_inner),
            chunk,
        );
        // The terminal may be gone; the tail is still kept.
        let _ = out.write_all(chunk).await;
    }
    let _ = out.flush().await;
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
