//! The runner's end of the private channel to the app it started
//! ([`axum_autoreload::protocol`]): two pipes, whose app ends the app
//! inherits and finds in [`CHANNEL_ENV`]. The runner's ends are close-on-exec,
//! so when the runner is gone (even after SIGKILL) the app reads end of file and
//! shuts down.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum_autoreload::protocol::{ToApp, ToRunner};
use nix::fcntl::OFlag;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

use crate::panic::Panic;
use crate::socket::Inheritable;

pub(crate) use axum_autoreload::protocol::CHANNEL_ENV;

/// How long the runner waits for room in the pipe to the app.
const TELL_LIMIT: Duration = Duration::from_secs(1);

/// What the app told the runner so far.
#[derive(Debug, Default, Clone)]
pub(crate) struct News {
    /// The last panic, from the library's panic hook.
    pub(crate) panic: Option<Panic>,
    /// The graceful shutdown's length, milliseconds, and what held it.
    pub(crate) shutdown: Option<(u64, Option<String>)>,
}

/// The app's ends, until it is started with them.
#[derive(Debug)]
pub(crate) struct AppEnds {
    from_runner: OwnedFd,
    to_runner: OwnedFd,
}

impl AppEnds {
    /// The value of [`CHANNEL_ENV`]: `<read fd>,<write fd>`.
    pub(crate) fn env_value(&self) -> String {
        format!(
            "{},{}",
            self.from_runner.as_raw_fd(),
            self.to_runner.as_raw_fd()
        )
    }

    /// Both ends, inheritable until the guard is dropped.
    ///
    /// # Errors
    ///
    /// When close-on-exec cannot be cleared.
    pub(crate) fn inheritable(&self) -> io::Result<(Inheritable<'_>, Inheritable<'_>)> {
        Ok((
            Inheritable::new(&self.from_runner)?,
            Inheritable::new(&self.to_runner)?,
        ))
    }
}

/// The runner's ends.
#[derive(Debug)]
pub(crate) struct Channel {
    to_app: pipe::Sender,
    news: Arc<Mutex<News>>,
}

impl Channel {
    /// Make both pipes (close-on-exec) and start reading what the app says.
    ///
    /// # Errors
    ///
    /// When a pipe cannot be made.
    pub(crate) fn open() -> io::Result<(Self, AppEnds)> {
        let (from_runner, to_app) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let (from_app, to_runner) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let news = Arc::new(Mutex::new(News::default()));
        tokio::spawn(read(
            pipe::Receiver::from_owned_fd(from_app)?,
            Arc::clone(&news),
        ));
        let channel = Self {
            to_app: pipe::Sender::from_owned_fd(to_app)?,
            news,
        };
        Ok((
            channel,
            AppEnds {
                from_runner,
                to_runner,
            },
        ))
    }

    /// Tell the app `message`. The runner waits at most [`TELL_LIMIT`] for an
    /// app that stopped reading.
    pub(crate) async fn tell(&mut self, message: &ToApp) {
        let line = message.to_line();
        match tokio::time::timeout(TELL_LIMIT, self.to_app.write_all(line.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::debug!("cannot tell the app {message:?}: {err}"),
            Err(_) => tracing::warn!(
                "the app has not read its channel for {} ms",
                TELL_LIMIT.as_millis()
            ),
        }
    }

    /// What the app said so far.
    pub(crate) fn news(&self) -> News {
        self.news
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn read(from_app: pipe::Receiver, news: Arc<Mutex<News>>) {
    let mut lines = BufReader::new(from_app).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Some(message) = ToRunner::from_line(&line) else {
            tracing::debug!("the app's channel: ignoring {line:?}");
            continue;
        };
        let mut news = news.lock().unwrap_or_else(PoisonError::into_inner);
        match message {
            ToRunner::Panic {
                thread,
                file,
                line,
                col,
                message,
            } => {
                news.panic = Some(Panic {
                    thread,
                    file,
                    line: line as usize,
                    col: col as usize,
                    message,
                });
            }
            ToRunner::Shutdown { ms, held_by } => news.shutdown = Some((ms, held_by)),
            _ => tracing::debug!("the app's channel: {line:?}"),
        }
    }
}
