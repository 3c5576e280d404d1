//! The servers under test: which binaries, the socket passed to them the way
//! watchexec passes it, spawning, signalling and measuring them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::process::{Child, Command};

use crate::client;

/// Which app a target runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum App {
    /// The demo binary: this crate's listener, `serve` and reload stream.
    Demo,
    /// `examples/baseline.rs`: listenfd, `axum::serve` with graceful shutdown and a
    /// naive reload stream.
    Baseline,
}

/// A binary to measure.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// Short name, a column of the tables: debug, release, baseline, baseline-release.
    pub(crate) name: &'static str,
    pub(crate) app: App,
    /// A private copy of the built binary, so that a build by someone else in the
    /// same checkout cannot swap it in the middle of a run.
    pub(crate) binary: PathBuf,
    /// Environment variables set for every run.
    pub(crate) env: Vec<(&'static str, &'static str)>,
}

/// Every target, in table order.
pub(crate) const TARGET_NAMES: [&str; 4] = ["debug", "release", "baseline", "baseline-release"];

impl Target {
    /// The target called `name`, with its binary in `bin_dir`.
    pub(crate) fn new(name: &'static str, bin_dir: &Path) -> Self {
        let (app, env) = match name {
            "debug" => (App::Demo, vec![]),
            // Release builds have reload off unless told.
            "release" => (App::Demo, vec![("AXUM_AUTORELOAD", "1")]),
            _ => (App::Baseline, vec![]),
        };
        Self {
            name,
            app,
            binary: bin_dir.join(name),
            env,
        }
    }
}

/// A listening socket made the way watchexec 2.8 and systemfd 0.4 make it: bound
/// to a loopback port, listening with a backlog of 1 (unless told otherwise),
/// inheritable (no close-on-exec). It outlives every server spawned on it.
pub(crate) struct PassedSocket {
    socket: Socket,
    pub(crate) addr: SocketAddr,
}

impl PassedSocket {
    pub(crate) fn new(backlog: i32) -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        let any_port: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        socket.bind(&any_port.into())?;
        socket.listen(backlog)?;
        socket.set_cloexec(false)?;
        let addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))?;
        Ok(Self { socket, addr })
    }
}

/// Where servers run and log.
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    /// The servers' working directory (the demo keeps its database there).
    pub(crate) dir: PathBuf,
    /// A directory of static files with `page.html` (20 KiB of HTML).
    pub(crate) static_dir: PathBuf,
    /// Server logs, one file per scenario and target.
    pub(crate) logs: PathBuf,
}

/// A running server, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) pid: Pid,
    pub(crate) spawned: Instant,
}

impl Server {
    /// Spawn `target` on `socket`, with `args` after the target's own, stderr
    /// appended to `log`.
    pub(crate) fn spawn(
        target: &Target,
        socket: &PassedSocket,
        args: &[&str],
        env: &[(&str, &str)],
        work: &Workspace,
        log: &str,
    ) -> io::Result<Self> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(work.logs.join(format!("{log}.log")))?;
        let mut command = Command::new(&target.binary);
        command
            .args(args)
            .current_dir(&work.dir)
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDS_FIRST_FD", socket.socket.as_raw_fd().to_string())
            .env_remove("LISTEN_PID")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(target.env.iter().copied())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let spawned = Instant::now();
        let child = command.spawn()?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
            .ok_or_else(|| io::Error::other("the child has no pid"))?;
        Ok(Self {
            child,
            pid,
            spawned,
        })
    }

    pub(crate) fn signal(&self, signal: Signal) {
        let _ = kill(self.pid, signal);
    }

    /// Wait for the process to exit, at most `limit`: how long it took from
    /// `since`, or `None` if it did not exit (it is then killed).
    pub(crate) async fn exit_within(
        &mut self,
        since: Instant,
        limit: Duration,
    ) -> Option<Duration> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(_)) => Some(since.elapsed()),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        }
    }

    /// SIGINT, then SIGKILL if it has not exited after `limit`.
    pub(crate) async fn stop(mut self, limit: Duration) {
        self.signal(Signal::SIGINT);
        let _ = self.exit_within(Instant::now(), limit).await;
    }

    /// Resident memory (`VmRSS` of /proc/PID/status), in KiB.
    pub(crate) fn rss_kib(&self) -> io::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| io::Error::other("no VmRSS"))
    }
}

/// Poll `GET /auto_refresh/status` until a server whose instance is not `previous`
/// answers; returns its instance id. Fails after `limit`.
pub(crate) async fn wait_ready(
    addr: SocketAddr,
    previous: Option<&str>,
    limit: Duration,
) -> io::Result<String> {
    let deadline = Instant::now() + limit;
    let mut last_error = None;
    while Instant::now() < deadline {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            client::get(addr, "/auto_refresh/status"),
        )
        .await;
        match attempt {
            Ok(Ok(response)) if response.status == 200 => {
                if let Some(instance) = json_string(&response.text(), "instance") {
                    if previous != Some(instance.as_str()) {
                        return Ok(instance);
                    }
                }
            }
            Ok(Ok(response)) => last_error = Some(format!("status {}", response.status)),
            Ok(Err(err)) => last_error = Some(err.to_string()),
            Err(_) => last_error = Some("no answer in 5 s".into()),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "no new server answered on {addr} within {limit:?} (last: {})",
            last_error.unwrap_or_else(|| "the old instance".into())
        ),
    ))
}

/// Poll `GET path` until it answers 200. Fails after `limit`.
pub(crate) async fn wait_answer(addr: SocketAddr, path: &str, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let attempt = tokio::time::timeout(Duration::from_secs(5), client::get(addr, path)).await;
        if let Ok(Ok(response)) = attempt {
            if response.status == 200 {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("GET {path} on {addr} did not answer 200 within {limit:?}"),
    ))
}

/// The string value of `"key":"…"` in a flat JSON object.
pub(crate) fn json_string(json: &str, key: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value.get(key)?.as_str().map(str::to_owned)
}

/// The number value of `"key":…` in a flat JSON object.
pub(crate) fn json_number(json: &str, key: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value.get(key)?.as_u64()
}

/// Write 20 KiB of HTML (a page of paragraphs and closing tags, `</body>` near
/// the end) to `dir/page.html`; returns its size.
pub(crate) fn write_page(dir: &Path) -> io::Result<usize> {
    fs::create_dir_all(dir)?;
    let page = crate::page::html_page(20 * 1024);
    fs::write(dir.join("page.html"), &page)?;
    File::open(dir.join("page.html"))?.sync_all()?;
    Ok(page.len())
}
