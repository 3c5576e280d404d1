//! Plumbing for the end-to-end browser test: finding tools, copying the crate,
//! free ports, child processes that are killed with everything they started, and a
//! tiny HTTP client.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgrp, Pid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tools the test drives, and how to install each.
const TOOLS: [(&str, &str); 3] = [
    ("chromium", "apt-get install -y chromium chromium-driver"),
    (
        "chromedriver",
        "apt-get install -y chromium chromium-driver",
    ),
    ("watchexec", "cargo install --locked watchexec-cli"),
];

/// Absolute paths of the tools the test needs.
#[derive(Debug)]
pub(crate) struct Tools {
    pub(crate) chromium: PathBuf,
    pub(crate) chromedriver: PathBuf,
    pub(crate) watchexec: PathBuf,
}

impl Tools {
    /// Finds every tool on PATH. When one is missing: panics under CI (`CI=true`),
    /// otherwise prints why the test is skipped and returns `None`.
    pub(crate) fn find_or_skip() -> Option<Self> {
        let found: Vec<Option<PathBuf>> = TOOLS.iter().map(|(name, _)| which(name)).collect();
        let missing: Vec<String> = TOOLS
            .iter()
            .zip(&found)
            .filter(|(_, path)| path.is_none())
            .map(|((name, install), _)| format!("{name} (install: `{install}`)"))
            .collect();
        if !missing.is_empty() {
            let missing = missing.join(", ");
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true and tools for the browser test are missing on PATH: {missing}");
            }
            eprintln!("skipping: {missing} missing on PATH");
            return None;
        }
        let mut found = found.into_iter().flatten();
        let mut next = || found.next().expect("every tool was found");
        Some(Self {
            chromium: next(),
            chromedriver: next(),
            watchexec: next(),
        })
    }
}

/// The first executable file called `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Copies what `cargo run` needs (Cargo.toml, Cargo.lock, src/, static/) from
/// `from` into `to`.
pub(crate) fn copy_crate(from: &Path, to: &Path) {
    for file in ["Cargo.toml", "Cargo.lock"] {
        fs::copy(from.join(file), to.join(file))
            .unwrap_or_else(|err| panic!("copying {file} to {}: {err}", to.display()));
    }
    for dir in ["src", "static"] {
        copy_dir(&from.join(dir), &to.join(dir));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|err| panic!("creating {}: {err}", to.display()));
    let entries =
        fs::read_dir(from).unwrap_or_else(|err| panic!("reading {}: {err}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|err| panic!("reading {}: {err}", from.display()));
        let kind = entry
            .file_type()
            .unwrap_or_else(|err| panic!("stat {}: {err}", entry.path().display()));
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap_or_else(|err| {
                panic!(
                    "copying {} to {}: {err}",
                    entry.path().display(),
                    target.display()
                )
            });
        }
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding 127.0.0.1:0 to find a free port")
        .port()
}

/// The last `lines` lines of a log file.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}

/// A child process in its own process group, with its output in a log file. On
/// drop it is stopped (SIGTERM, then after `grace` SIGKILL) together with every
/// process it started, whatever process group they moved to; if the thread is
/// panicking, the log's tail is printed first.
#[derive(Debug)]
pub(crate) struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
    grace: Duration,
}

impl Proc {
    /// Spawns `command` in a new process group with stdin closed and stdout and
    /// stderr appended to `log`.
    pub(crate) fn spawn(
        name: &'static str,
        mut command: Command,
        log: PathBuf,
        grace: Duration,
    ) -> Self {
        let out = File::create(&log)
            .unwrap_or_else(|err| panic!("creating log {}: {err}", log.display()));
        let err = out.try_clone().expect("cloning a log file handle");
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {name} ({command:?}): {err}"));
        Self {
            name,
            child,
            log,
            grace,
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether and how the process ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waiting on a child process")
    }

    /// The log file.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// The log's last `lines` lines, under a heading.
    pub(crate) fn tail(&self, lines: usize) -> String {
        format!(
            "---- last {lines} lines of the {} log ({}) ----\n{}\n---- end of the {} log ----",
            self.name,
            self.log.display(),
            log_tail(&self.log, lines),
            self.name,
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.tail(60));
        }
        let root = pid(self.child.id());
        // Taken before anything is signalled: once the root exits its children are
        // reparented and can no longer be found from it.
        let descendants = descendants(root);
        if self.exited().is_none() {
            let _ = kill(root, Signal::SIGTERM);
            let deadline = Instant::now() + self.grace;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let own_group = getpgrp();
        let mut groups = BTreeSet::from([root]);
        groups.extend(descendants.iter().filter_map(|&(_, group)| group));
        for group in groups {
            if group != own_group && group.as_raw() > 1 {
                let _ = killpg(group, Signal::SIGKILL);
            }
        }
        for (process, _) in descendants {
            let _ = kill(process, Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pid(id: u32) -> Pid {
    Pid::from_raw(i32::try_from(id).expect("a pid fits in i32"))
}

/// Every living descendant of `root`, with its process group, read from /proc.
pub(crate) fn descendants(root: Pid) -> Vec<(Pid, Option<Pid>)> {
    let mut children: HashMap<i32, Vec<(i32, i32)>> = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(process) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let Some(after_comm) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        if let (Some(Ok(parent)), Some(Ok(group))) = (
            fields.get(1).map(|s| s.parse::<i32>()),
            fields.get(2).map(|s| s.parse::<i32>()),
        ) {
            children.entry(parent).or_default().push((process, group));
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![root.as_raw()];
    while let Some(parent) = stack.pop() {
        for &(process, group) in children.get(&parent).into_iter().flatten() {
            found.push((Pid::from_raw(process), Some(Pid::from_raw(group))));
            stack.push(process);
        }
    }
    found
}

/// The executable name (`comm`) of a process.
pub(crate) fn process_name(process: Pid) -> Option<String> {
    fs::read_to_string(format!("/proc/{process}/comm"))
        .ok()
        .map(|name| name.trim().to_owned())
}

/// `GET http://127.0.0.1:{port}{path}` with `Connection: close`: the status code
/// and the whole response (head and body) as text.
pub(crate) async fn http_get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    // Read to the end of the body: to EOF, or to Content-Length where given, since
    // some servers (chromedriver) keep the connection open despite `close`.
    let mut response = Vec::new();
    let mut chunk = [0_u8; 8192];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
        if let Some(expected) = expected_len(&response) {
            if response.len() >= expected {
                break;
            }
        }
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            io::Error::other(format!(
                "not an HTTP response: {:?}",
                response.chars().take(200).collect::<String>()
            ))
        })?;
    Ok((status, response))
}

/// The length of a whole response (head and body) whose head is complete and says
/// its Content-Length.
fn expected_len(response: &[u8]) -> Option<usize> {
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&response[..head_end]);
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
            .map(|len| head_end + len)
    })
}

/// Absolute paths of Chromium and chromedriver, for the browser tests that need no
/// watchexec. When one is missing: panics under CI (`CI=true`), otherwise prints
/// why the test is skipped and returns `None`.
#[allow(dead_code)] // Used by tests/browser_restart.rs, not by tests/browser.rs.
pub(crate) fn find_browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    let wanted: Vec<(&str, &str)> = TOOLS
        .into_iter()
        .filter(|(name, _)| ["chromium", "chromedriver"].contains(name))
        .collect();
    let found: Vec<Option<PathBuf>> = wanted.iter().map(|(name, _)| which(name)).collect();
    let missing: Vec<String> = wanted
        .iter()
        .zip(&found)
        .filter(|(_, path)| path.is_none())
        .map(|((name, install), _)| format!("{name} (install: `{install}`)"))
        .collect();
    if !missing.is_empty() {
        let missing = missing.join(", ");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true and tools for the browser test are missing on PATH: {missing}");
        }
        eprintln!("skipping: {missing} missing on PATH");
        return None;
    }
    let mut found = found.into_iter().flatten();
    let mut next = || found.next().expect("every tool was found");
    Some((next(), next()))
}
