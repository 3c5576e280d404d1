//! Test support: a scratch axum app that depends on the library by path, a socket
//! passed the way watchexec passes it, the runner started on both, and a plain
//! HTTP/1.1 client over real TCP.
#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[path = "../../../demo/tests/common/passed_socket.rs"]
mod passed_socket;
pub use passed_socket::PassedSocket;

/// The runner under test.
pub const RUNNER: &str = env!("CARGO_BIN_EXE_axum-autoreload");

/// How long the first request may wait in the backlog: the first test to run
/// builds the scratch app's dependencies (shared by every test after it).
pub const FIRST_BUILD: Duration = Duration::from_secs(900);

/// The scratch app's `main.rs`; `// BODY` is where a test puts its edit.
const MAIN: &str = r#"use axum::{routing::get, Router};
use axum_autoreload::{listener, AutoReload};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // BODY
    let reload = AutoReload::new();
    let page = format!(
        "<!DOCTYPE html><html><body><h1>scratch ok</h1><p id=pid>{}</p><p id=build-ms>{}</p><p id=spawned-at>{}</p></body></html>",
        std::process::id(),
        std::env::var("AXUM_AUTORELOAD_BUILD_MS").unwrap_or_default(),
        std::env::var("AXUM_AUTORELOAD_SPAWNED_AT_MS").unwrap_or_default(),
    );
    let app = Router::new()
        .route("/", get(move || std::future::ready(axum::response::Html(page.clone()))))
        .merge(reload.router())
        .layer(reload.layer());
    let listener = listener::take_or_bind("127.0.0.1:0".parse()?)?;
    axum_autoreload::serve(listener.into_tokio()?, app, reload).await?;
    Ok(())
}
"#;

/// One cargo target directory for every scratch app of every test run: their
/// dependencies are built once.
fn shared_target_dir() -> PathBuf {
    std::env::temp_dir().join("axum-autoreload-cli-tests-target")
}

/// A scratch crate in a temporary directory: a tiny axum app on the library.
pub struct Scratch {
    dir: tempfile::TempDir,
    pub main_rs: String,
}

impl Scratch {
    /// A scratch app named `name` (unique per test: the binaries share a target
    /// directory) with `body` at the top of `main`.
    pub fn new(name: &str, body: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("axum-autoreload-cli-")
            .tempdir()
            .expect("a temporary directory");
        let library = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the repository root");
        let manifest = format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
axum-autoreload = {{ path = {library:?} }}
axum = "0.8"
tokio = {{ version = "1", features = ["macros", "rt-multi-thread"] }}
"#,
        );
        fs::write(dir.path().join("Cargo.toml"), manifest).expect("Cargo.toml");
        // The repository's lock: the same versions, and no registry look-up.
        fs::copy(library.join("Cargo.lock"), dir.path().join("Cargo.lock")).expect("Cargo.lock");
        fs::create_dir(dir.path().join("src")).expect("src/");
        let main_rs = MAIN.replace("    // BODY\n", body);
        fs::write(dir.path().join("src/main.rs"), &main_rs).expect("main.rs");
        Self { dir, main_rs }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The 1-based line of `main.rs` that contains `needle`.
    pub fn line_of(&self, needle: &str) -> usize {
        self.main_rs
            .lines()
            .position(|line| line.contains(needle))
            .map(|at| at + 1)
            .unwrap_or_else(|| panic!("{needle:?} is not in main.rs"))
    }

    /// Assert that `html` shows `src/main.rs:line:col` as a link that opens
    /// VS Code (the default editor) at the absolute path.
    pub fn assert_links_to_main_rs(&self, html: &str, line: usize, col: usize) {
        let root = self.path().canonicalize().expect("the scratch directory");
        let main_rs = root.join("src/main.rs");
        let link = format!(r#"href="vscode://file/{}:{line}:{col}""#, main_rs.display());
        assert!(html.contains(&link), "{link} in {html}");
        let label = format!(">src/main.rs:{line}:{col}</a>");
        assert!(html.contains(&label), "{label} in {html}");
    }
}

/// How the runner is started on a passed socket.
impl PassedSocket {
    /// Start `axum-autoreload run` in `scratch` with this socket passed through
    /// `LISTEN_FDS`.
    pub fn run(&self, scratch: &Scratch, args: &[&str]) -> Runner {
        let log = scratch.path().join("runner.log");
        let mut command = Command::new(RUNNER);
        command
            .arg("run")
            .args(args)
            .current_dir(scratch.path())
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDS_FIRST_FD", self.std_fd().to_string())
            .env_remove("LISTEN_PID")
            .env_remove("AXUM_AUTORELOAD_EDITOR")
            .env("CARGO_TARGET_DIR", shared_target_dir())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(fs::File::create(&log).expect("runner.log"));
        let child = command.spawn().expect("start the runner");
        Runner { child, log }
    }
}

/// A scratch app named `name` with `body` at the top of `main`, the runner started
/// on a passed socket in it, and the answer to the first page load (which waits in
/// the backlog while the runner builds).
pub async fn start(name: &str, body: &str) -> (Scratch, PassedSocket, Runner, Response) {
    let scratch = Scratch::new(name, body);
    let socket = PassedSocket::new();
    let runner = socket.run(&scratch, &[]);
    let page = get(socket.addr, "/", PAGE_LOAD, FIRST_BUILD).await;
    (scratch, socket, runner, page)
}

/// A running runner, killed when dropped; its log is printed when a test fails.
pub struct Runner {
    pub child: Child,
    log: PathBuf,
}

impl Runner {
    pub fn interrupt(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    }

    /// Wait up to `limit` for the runner to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // SIGINT first, as watchexec stops it: the runner passes it on to the app,
        // which runs in a process group of its own and would outlive a SIGKILL.
        if self.child.try_wait().ok().flatten().is_none() {
            self.interrupt();
            let _ = self.wait_exit(Duration::from_secs(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- runner's stderr ----\n{}", self.log());
        }
    }
}

/// A response read to its end (`Connection: close`).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Send `GET path` with these extra header lines (each ending in `\r\n`), waiting
/// up to `limit` for the answer (a request waits in the backlog while cargo builds).
pub async fn get(addr: SocketAddr, path: &str, headers: &str, limit: Duration) -> Response {
    tokio::time::timeout(limit, try_get(addr, path, headers))
        .await
        .unwrap_or_else(|_| panic!("no answer to GET {path} within {limit:?}"))
        .unwrap_or_else(|err| panic!("GET {path}: {err}"))
}

/// [`get`] without a time limit, with what went wrong as an error.
pub async fn try_get(addr: SocketAddr, path: &str, headers: &str) -> std::io::Result<Response> {
    let raw = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n{headers}\r\n");
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(raw.as_bytes()).await?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let malformed = || std::io::Error::other(format!("not an HTTP response: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(malformed)?;
    Ok(Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// The headers a browser's page load sends.
pub const PAGE_LOAD: &str =
    "Host: localhost\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\n";

/// A reload stream: its events, as (name, data) with data lines joined by `\n`.
pub struct EventStream {
    reader: BufReader<TcpStream>,
}

impl EventStream {
    pub async fn open(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /auto_refresh HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
            .await
            .expect("send");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).await.expect("response head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        Self { reader }
    }

    /// The next event, or `None` when the stream ended.
    pub async fn next_event(&mut self) -> Option<(String, String)> {
        let (mut name, mut data) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            // Chunked framing (a stream served through hyper) shows as lines of hex.
            let text = line.trim_end_matches(['\r', '\n']);
            if let Some(value) = text.strip_prefix("event: ") {
                name = value.to_owned();
            } else if let Some(value) = text.strip_prefix("data: ") {
                data.push(value.to_owned());
            } else if text.is_empty() && !name.is_empty() {
                return Some((name, data.join("\n")));
            }
        }
    }
}
