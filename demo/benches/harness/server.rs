//! The servers under test: which binaries, spawning them on a socket passed the
//! way watchexec passes it, signalling and measuring them.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use dev_support::http;
use dev_support::process::Proc;
use dev_support::socket::PassedSocket;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, Id, WaitPidFlag};

/// How long a server may take to exit after SIGINT before it counts as hung and is
/// killed: half of watchexec's stop timeout.
pub(crate) const EXIT_CAP: Duration = Duration::from_secs(5);

/// A binary to measure, a column of the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Target {
    /// The demo, `cargo build`.
    Debug,
    /// The demo, `cargo build --release`, with `AXUM_AUTORELOAD=1`.
    Release,
    /// `examples/baseline.rs`: listenfd, `axum::serve` with graceful shutdown and a
    /// naive reload stream.
    Baseline,
    /// The baseline, `cargo build --release`.
    BaselineRelease,
}

impl Target {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Release => "release",
            Self::Baseline => "baseline",
            Self::BaselineRelease => "baseline-release",
        }
    }

    pub(crate) fn is_baseline(self) -> bool {
        matches!(self, Self::Baseline | Self::BaselineRelease)
    }

    /// The `cargo build` arguments and the binary they make, under `target_dir`.
    pub(crate) fn build(self, target_dir: &Path) -> (String, PathBuf) {
        let release = matches!(self, Self::Release | Self::BaselineRelease);
        let (profile, dir) = if release {
            ("--release ", "release")
        } else {
            ("", "debug")
        };
        let dir = target_dir.join(dir);
        match self.is_baseline() {
            false => (
                format!("{profile}--bin axum-autoreload-demo"),
                dir.join("axum-autoreload-demo"),
            ),
            true => (
                format!("{profile}--example baseline"),
                dir.join("examples/baseline"),
            ),
        }
    }
}

/// Where servers run: their working directory (the demo keeps its database there),
/// the binaries, and the static files with `page.html` (20 KiB of HTML).
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    pub(crate) dir: PathBuf,
    /// Private copies of the built binaries, named after their targets, so that a
    /// build by someone else in the same checkout cannot swap one mid-run.
    pub(crate) bin_dir: PathBuf,
    pub(crate) static_dir: PathBuf,
    pub(crate) page: PathBuf,
    /// The size of `page`.
    pub(crate) page_len: usize,
}

/// A running server: SIGINT and up to [`EXIT_CAP`] when dropped, then SIGKILL.
#[derive(Debug)]
pub(crate) struct Server {
    proc: Proc,
    pub(crate) spawned: Instant,
}

impl Server {
    /// Spawns `target` on `socket` with the static files (and for the baseline the
    /// page it holds in memory), `args` and `env`.
    pub(crate) fn spawn(
        target: Target,
        socket: &PassedSocket,
        work: &Workspace,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(work.bin_dir.join(target.name()));
        command.arg("--static-dir").arg(&work.static_dir);
        if target.is_baseline() {
            command.arg("--page").arg(&work.page);
        }
        if target == Target::Release {
            // Release builds have reload off unless told.
            command.env("AXUM_AUTORELOAD", "1");
        }
        let log = std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "info".into());
        command
            .args(args)
            .current_dir(&work.dir)
            .env("RUST_LOG", log);
        socket.pass_to(command.envs(env.iter().copied()));
        let spawned = Instant::now();
        let proc = Proc::spawn(target.name(), command).stop_with(Signal::SIGINT, EXIT_CAP);
        Self { proc, spawned }
    }

    pub(crate) fn signal(&self, signal: Signal) {
        self.proc.signal(signal);
    }

    /// Waits at most `limit` for the process to exit: how long it took from
    /// `since`. waitid(WEXITED | WNOWAIT) on a blocking thread sees the exit at
    /// once (where polling would add up to its interval) and leaves the reaping to
    /// the [`Proc`].
    pub(crate) async fn exit_within(&self, since: Instant, limit: Duration) -> Option<Duration> {
        let pid = self.proc.pid();
        let exit = tokio::task::spawn_blocking(move || {
            waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        });
        match tokio::time::timeout(limit, exit).await {
            Ok(Ok(Ok(_))) => Some(since.elapsed()),
            _ => None,
        }
    }

    /// Resident memory (`VmRSS` of /proc/PID/status), in KiB.
    pub(crate) fn rss_kib(&self) -> io::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.proc.pid()))?;
        let rss = status.lines().find_map(|line| line.strip_prefix("VmRSS:"));
        let kib = rss.and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        kib.ok_or_else(|| io::Error::other("no VmRSS"))
    }
}

/// Polls `GET /auto_refresh/status` until a server whose instance is not
/// `previous` answers; returns its instance. Fails after `limit`.
pub(crate) async fn new_instance(
    addr: SocketAddr,
    previous: Option<&str>,
    limit: Duration,
) -> io::Result<String> {
    let instance = || async {
        let response = http::get(addr, "/auto_refresh/status").await.ok()?;
        let instance = json(&response.text(), "instance")?.as_str()?.to_owned();
        (response.status == 200 && previous != Some(&instance)).then_some(instance)
    };
    let poll = async {
        loop {
            let answer = tokio::time::timeout(Duration::from_secs(5), instance());
            if let Ok(Some(instance)) = answer.await {
                return instance;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let late = format!("no new server answered on {addr} within {limit:?}");
    let late = |_| io::Error::new(io::ErrorKind::TimedOut, late);
    tokio::time::timeout(limit, poll).await.map_err(late)
}

/// The value of `key` in a JSON object.
pub(crate) fn json(text: &str, key: &str) -> Option<serde_json::Value> {
    let mut object: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(object.get_mut(key)?.take())
}

/// Writes 20 KiB of HTML (a page of paragraphs and closing tags, `</body>` near
/// the end) to `path`; returns its size.
pub(crate) fn write_page(path: &Path) -> io::Result<usize> {
    fs::create_dir_all(path.parent().unwrap_or(path))?;
    let page = crate::page::html_page(20 * 1024);
    fs::write(path, &page)?;
    fs::File::open(path)?.sync_all()?;
    Ok(page.len())
}
