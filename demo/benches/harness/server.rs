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
    pub(crate) fn build(self, target_dir: &Path) -> (&'static str, PathBuf) {
        let (args, binary) = match self {
            Self::Debug => ("--bin axum-autoreload-demo", "debug/axum-autoreload-demo"),
            Self::Release => (
                "--release --bin axum-autoreload-demo",
                "release/axum-autoreload-demo",
            ),
            Self::Baseline => ("--example baseline", "debug/examples/baseline"),
            Self::BaselineRelease => ("--release --example baseline", "release/examples/baseline"),
        };
        (args, target_dir.join(binary))
    }
}

/// The size of `page.html`, 20 KiB of HTML.
pub(crate) const PAGE_SIZE: usize = 20 * 1024;

/// A running server: SIGINT and up to [`EXIT_CAP`] when dropped, then SIGKILL.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) proc: Proc,
    pub(crate) spawned: Instant,
}

impl Server {
    /// Spawns `target` from `dir/bin` on `socket`, with `args` and `env`, in
    /// `dir/work` (the demo keeps its database there) with its static files in
    /// `dir/work/static` (and for the baseline `page.html` held in memory).
    pub(crate) fn spawn(
        target: Target,
        socket: &PassedSocket,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(dir.join("bin").join(target.name()));
        let work = dir.join("work");
        command.arg("--static-dir").arg(work.join("static"));
        if target.is_baseline() {
            command.arg("--page").arg(work.join("static/page.html"));
        }
        if target == Target::Release {
            // Release builds have reload off unless told.
            command.env("AXUM_AUTORELOAD", "1");
        }
        command.args(args).current_dir(work).env("RUST_LOG", "info");
        socket.pass_to(command.envs(env.iter().copied()));
        let spawned = Instant::now();
        let proc = Proc::spawn(target.name(), command).stop_with(Signal::SIGINT, EXIT_CAP);
        Self { proc, spawned }
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
        let exited = matches!(tokio::time::timeout(limit, exit).await, Ok(Ok(Ok(_))));
        exited.then(|| since.elapsed())
    }

    /// Resident memory (`VmRSS` of /proc/PID/status), in KiB.
    pub(crate) fn rss_kib(&self) -> io::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.proc.pid()))?;
        let rss = status.lines().find_map(|line| line.strip_prefix("VmRSS:"));
        let kib = rss.and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        kib.ok_or_else(|| io::Error::other("no VmRSS"))
    }
}

/// Asks `GET /auto_refresh/status` every 2 ms (to time a start closely), each
/// time within 5 s, until a server whose instance is not `previous` answers;
/// returns its instance. Fails after `limit`.
pub(crate) async fn new_instance(
    addr: SocketAddr,
    previous: Option<&str>,
    limit: Duration,
) -> io::Result<String> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let asked = http::get(addr, "/auto_refresh/status");
        let answer = tokio::time::timeout(Duration::from_secs(5), asked).await;
        let answer = answer.ok().and_then(Result::ok).filter(|r| r.status == 200);
        let instance = answer.and_then(|r| Some(json(&r.text(), "instance")?.as_str()?.to_owned()));
        if let Some(instance) = instance.filter(|id| previous != Some(id)) {
            return Ok(instance);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let late = format!("no new server answered on {addr} within {limit:?}");
    Err(io::Error::new(io::ErrorKind::TimedOut, late))
}

/// The value of `key` in a JSON object.
pub(crate) fn json(text: &str, key: &str) -> Option<serde_json::Value> {
    let mut object: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(object.get_mut(key)?.take())
}
