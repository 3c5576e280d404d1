//! Test support: a scratch axum app that depends on the library by path, and the
//! runner started in it on a socket passed the way watchexec passes it.
#![allow(unreachable_pub)]

use std::fs;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use dev_support::http::{self, Response};
use dev_support::process::Proc;
use dev_support::socket::PassedSocket;
use nix::sys::signal::Signal;

/// How long the first request may wait in the backlog: the first test to run
/// builds the scratch app's dependencies (shared by every test after it).
pub const FIRST_BUILD: Duration = Duration::from_secs(900);

/// The headers a browser's page load sends.
pub const PAGE_LOAD: &str =
    "Host: localhost\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\n";

/// The scratch app's `main.rs`; `// BODY` is where a test puts its edit.
const MAIN: &str = r#"use std::sync::{Arc, Mutex};

use axum::{routing::get, Router};
use axum_autoreload::AutoReload;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // BODY
    // Logs to stderr, a pipe to the runner: it must not keep the app alive once
    // the runner is gone.
    tracing_subscriber::fmt().init();
    let reload = AutoReload::new();
    let page = format!(
        "<!DOCTYPE html><html><body><h1>scratch ok</h1><p id=pid>{}</p></body></html>",
        std::process::id(),
    );
    let notes = Arc::new(Mutex::new(Vec::<String>::new()));
    let (read, write) = (Arc::clone(&notes), notes);
    let app = Router::new()
        .route("/", get(move || std::future::ready(axum::response::Html(page.clone()))))
        .route(
            "/notes",
            get(move || std::future::ready(read.lock().unwrap().join("\n")))
                .post(move |body: String| {
                    write.lock().unwrap().push(body);
                    std::future::ready("stored\n")
                }),
        );
    let listener = axum_autoreload::bind("127.0.0.1:0").await?;
    reload.serve(listener, app).await?;
    Ok(())
}
"#;

/// A scratch crate in a temporary directory: a tiny axum app on the library.
pub struct Scratch {
    dir: tempfile::TempDir,
    main_rs: String,
}

impl Scratch {
    /// A scratch app named `name` (unique per test: the binaries share a target
    /// directory) with `body` at the top of `main`.
    pub fn new(name: &str, body: &str) -> Self {
        let dir = dev_support::temp::temp_dir("axum-autoreload-cli-");
        let library = dev_support::scratch::workspace();
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
tracing-subscriber = "0.3"
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

    /// Replaces the one `old` in `src/main.rs` with `new`, as an editor saves.
    pub fn edit(&self, old: &str, new: &str) {
        dev_support::scratch::edit(&self.dir.path().join("src/main.rs"), old, new);
    }

    /// Asserts that `html` shows `src/main.rs:LINE:col`, LINE the line that holds
    /// `needle`, as a link that opens VS Code (the default editor) at the absolute
    /// path.
    pub fn assert_links_to_main_rs(&self, html: &str, needle: &str, col: usize) {
        let line = self.main_rs.lines().position(|line| line.contains(needle));
        let line = line.unwrap_or_else(|| panic!("{needle:?} is not in main.rs")) + 1;
        let root = self.dir.path().canonicalize().expect("the scratch dir");
        let main_rs = root.join("src/main.rs");
        let link = format!(r#"href="vscode://file/{}:{line}:{col}""#, main_rs.display());
        assert!(html.contains(&link), "{link} in {html}");
        let label = format!(">src/main.rs:{line}:{col}</a>");
        assert!(html.contains(&label), "{label} in {html}");
    }

    /// The README's run line in this app: `watchexec --socket ADDR --signal SIGHUP
    /// --stop-signal SIGINT -- axum-autoreload run`, watching `src/`. Dropped, it
    /// is stopped with SIGINT, as Ctrl-C stops it.
    pub fn watch(&self, watchexec: &std::path::Path, addr: SocketAddr) -> Proc {
        let mut command = Command::new(watchexec);
        command
            .args([
                "--socket",
                &addr.to_string(),
                "--signal",
                "SIGHUP",
                "--stop-signal",
                "SIGINT",
            ])
            .args([
                "-w",
                "src",
                "--",
                env!("CARGO_BIN_EXE_axum-autoreload"),
                "run",
            ]);
        self.runner_env(&mut command);
        Proc::spawn("watchexec", command).stop_with(Signal::SIGINT, Duration::from_secs(10))
    }

    /// `axum-autoreload run` in this app, on `socket`. Dropped, it is stopped as
    /// watchexec stops it, with SIGINT: the runner passes it on to the app, which
    /// runs in a process group of its own.
    pub fn run(&self, socket: &PassedSocket) -> Proc {
        let mut command = Command::new(env!("CARGO_BIN_EXE_axum-autoreload"));
        socket.pass_to(&mut command).arg("run");
        self.runner_env(&mut command);
        Proc::spawn("runner", command).stop_with(Signal::SIGINT, Duration::from_secs(10))
    }

    /// The runner's directory and environment.
    fn runner_env(&self, command: &mut Command) {
        // One target directory for every scratch app of every test run: their
        // dependencies are built once.
        let target = std::env::temp_dir().join("axum-autoreload-cli-tests-target");
        command
            .current_dir(self.dir.path())
            .env_remove("AXUM_AUTORELOAD_EDITOR")
            // Read by the library, in the failure server and in the app alike.
            .env(axum_autoreload::protocol::ALLOWED_HOSTS_ENV, ALLOWED_HOST)
            .env("CARGO_TARGET_DIR", target)
            .env("RUST_LOG", "info");
    }
}

/// A scratch app named `name` with `body` at the top of `main`, the runner started
/// on a passed socket in it, and the answer to the first page load (which waits in
/// the backlog while the runner builds).
pub async fn start(name: &str, body: &str) -> (Scratch, PassedSocket, Proc, Response) {
    let scratch = Scratch::new(name, body);
    let socket = PassedSocket::new();
    let mut runner = scratch.run(&socket);
    // The socket stays open in the test: a runner that died would leave the
    // request in the backlog until FIRST_BUILD, so it is checked every second.
    let first_page = get(socket.addr, "/", PAGE_LOAD, FIRST_BUILD);
    tokio::pin!(first_page);
    let page = loop {
        tokio::select! {
            page = &mut first_page => break page,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                let exited = runner.exited();
                assert!(exited.is_none(), "the runner exited ({exited:?}) before answering");
            }
        }
    };
    (scratch, socket, runner, page)
}

/// The process id the scratch app's page shows.
pub fn pid_of(page: &Response) -> u32 {
    let text = page.text();
    let (_, rest) = text
        .split_once("<p id=pid>")
        .unwrap_or_else(|| panic!("a pid in {text}"));
    let pid = rest.split_once('<').map(|(pid, _)| pid).unwrap_or_default();
    pid.parse().unwrap_or_else(|_| panic!("a pid in {text}"))
}

/// The host name the runner and its app are told to answer, besides localhost.
pub const ALLOWED_HOST: &str = "dev.test";

/// `GET path` with these header lines (each ending in `\r\n`), waiting up to
/// `limit` for the answer (a request waits in the backlog while cargo builds).
pub async fn get(addr: SocketAddr, path: &str, headers: &str, limit: Duration) -> Response {
    let answer = tokio::time::timeout(limit, http::get_with(addr, path, headers)).await;
    let answer = answer.unwrap_or_else(|_| panic!("no answer to GET {path} within {limit:?}"));
    answer.unwrap_or_else(|err| panic!("GET {path}: {err}"))
}
