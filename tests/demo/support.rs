//! What the tests start: the demo binary on a passed socket, or an app served in
//! this process. Shared by the library's tests (`tests/`) and the demo's
//! (`demo/tests/`), which include it by path.
#![allow(dead_code, unreachable_pub)]

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub use dev_support::assert_contains;
use dev_support::process::Proc;
use dev_support::socket::PassedSocket;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a demo binary may take to answer its first request.
pub const READY: Duration = Duration::from_secs(20);

/// The demo binary with `args`, logging warnings (`TEST_RUST_LOG` for more), with
/// a database in memory (tests do not share the developer's `data/`) unless its
/// `--db` names one.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(demo_binary());
    let log = std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into());
    command.args(args).env("RUST_LOG", log);
    command.env("DATABASE_PATH", ":memory:");
    command
}

/// Spawns `command` (from [`command`]), killed at once when dropped.
pub fn spawn(command: Command) -> Proc {
    Proc::spawn("demo", command).stop_with(Signal::SIGKILL, Duration::ZERO)
}

/// The demo with `args` on `socket`, not waited for.
pub fn spawn_on(socket: &PassedSocket, args: &[&str]) -> Proc {
    let mut command = command(args);
    socket.pass_to(&mut command);
    spawn(command)
}

/// The demo with `args` on `socket`, once `GET /` answers 200.
pub async fn start(socket: &PassedSocket, args: &[&str]) -> Proc {
    let demo = spawn_on(socket, args);
    dev_support::http::wait_ready(socket.addr, READY).await;
    demo
}

/// The demo with `args` on a passed socket of its own, once `GET /` answers 200;
/// its address.
pub async fn serving(args: &[&str]) -> (SocketAddr, Proc) {
    let socket = PassedSocket::new();
    (socket.addr, start(&socket, args).await)
}

/// The demo binary: cargo's own in the demo's tests; in the library's, built by
/// cargo (once per test process) into this test's target directory and profile.
pub fn demo_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_axum-autoreload-demo") {
        return PathBuf::from(path);
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| build(&["--bin", "axum-autoreload-demo"]).join("axum-autoreload-demo"))
        .clone()
}

/// The example `name` (`demo/examples/NAME.rs`), built by cargo into this test's
/// target directory and profile (`cargo test --test X` builds no example); its
/// path.
pub fn example(name: &str) -> PathBuf {
    build(&["--example", name]).join("examples").join(name)
}

/// Runs `cargo build -p axum-autoreload-demo` with `target` (`--bin NAME` or
/// `--example NAME`) into this test's target directory and profile; the profile's
/// directory.
fn build(target: &[&str]) -> PathBuf {
    // This test is `<target>/<profile>/deps/<test>`.
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>");
    let target_dir = profile.parent().expect("<target>");
    let release = match profile.file_name().and_then(|n| n.to_str()) {
        Some("debug") => None,
        Some("release") => Some("--release"),
        other => panic!("a test built in profile {other:?}"),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "axum-autoreload-demo"])
        .args(target)
        .args(release)
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo build");
    assert!(status.success(), "cargo build {target:?}: {status}");
    profile.to_path_buf()
}

/// Runs the demo with `args` and `env` to its end, logging nothing.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command(args);
    command.env("RUST_LOG", "off").envs(env.iter().copied());
    command.output().expect("run")
}

/// Asserts that the run ended with `code` and its standard error holds `needles`;
/// the standard error.
pub fn assert_fails(output: &Output, code: i32, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_contains(&stderr, needles);
    stderr
}

/// Serves `app` with `reload` in this process on a fresh loopback port (no signal
/// handling); its address.
pub async fn serve_here(app: axum::Router, reload: axum_autoreload::AutoReload) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = reload.serve(listener, app).handle_signals(false);
    tokio::spawn(server.into_future());
    addr
}

/// An app served by `axum_autoreload::serve` in this process on a copy of a
/// socket the test holds (as watchexec holds one), until [`SwappedApp::swap`]
/// stops it and serves the next one on the same socket, as the runner swaps apps.
pub struct SwappedApp {
    pub reload: axum_autoreload::AutoReload,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

impl SwappedApp {
    /// Serves `app(&reload)` with a new `AutoReload` (reload on), behind its
    /// router and layer.
    pub fn start(
        socket: &std::net::TcpListener,
        app: impl FnOnce(&axum_autoreload::AutoReload) -> axum::Router,
    ) -> Self {
        let reload = axum_autoreload::AutoReload::builder().enabled(true).build();
        let app = app(&reload).layer(reload.layer());
        let listener = socket.try_clone().expect("a copy of the socket");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let listener = TcpListener::from_std(listener).expect("a tokio listener");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = reload
            .serve(listener, app)
            .handle_signals(false)
            .drain_deadline(Duration::from_millis(500))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
        let served = tokio::spawn(async move {
            server.into_future().await.expect("serving");
        });
        Self {
            reload,
            stop,
            served,
        }
    }

    /// Stops this app (streams get `restart`, as when the runner stops it) and
    /// waits, at most 10 s, for it to be done.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.served)
            .await
            .expect("the old app stops within 10 s")
            .expect("the old app's task");
    }

    /// [`Self::stop`], then serves `app` on the same socket with a new `AutoReload`.
    pub async fn swap(
        self,
        socket: &std::net::TcpListener,
        app: impl FnOnce(&axum_autoreload::AutoReload) -> axum::Router,
    ) -> Self {
        self.stop().await;
        Self::start(socket, app)
    }
}

/// Chromium (see [`dev_support::chromium::Browser::launch`]) with
/// background tabs unthrottled, and `first` served on a new socket
/// ([`app_socket`], [`SwappedApp`]); then `scenario` with the page's URL.
pub async fn with_swapped_app(
    first: impl FnOnce(&axum_autoreload::AutoReload) -> axum::Router,
    scenario: impl AsyncFnOnce(
        &mut dev_support::chromium::Browser,
        &str,
        &std::net::TcpListener,
        SwappedApp,
    ),
) {
    let options = dev_support::chromium::Options {
        unthrottled_background_tabs: true,
        ..dev_support::chromium::Options::default()
    };
    let browser = dev_support::chromium::Browser::launch(options).await;
    let (socket, url) = app_socket();
    let app = SwappedApp::start(&socket, first);
    browser
        .run(async |browser| scenario(browser, &url, &socket, app).await)
        .await;
}

/// A listening socket on a free loopback port, and the URL of `/` on it.
pub fn app_socket() -> (std::net::TcpListener, String) {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a socket");
    let url = format!("http://{}/", socket.local_addr().expect("its address"));
    (socket, url)
}

/// A static directory for `--static-dir` with `big.bin`, 64 MiB: far more than
/// the socket buffers hold, so a client that stops reading it keeps the server
/// writing.
pub fn big_file_dir() -> (tempfile::TempDir, String) {
    let dir = dev_support::temp::temp_dir("axum-autoreload-big-");
    let file = std::fs::File::create(dir.path().join("big.bin")).expect("big.bin");
    file.set_len(64 << 20).expect("64 MiB");
    let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
    (dir, path)
}

/// A client that asks for `/static/big.bin` (see [`big_file_dir`]), reads the
/// start of the answer and no more: the server's writes to it block, so its
/// response stays in flight until the connection is dropped.
pub async fn stalled_reader(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = b"GET /static/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n";
    stream.write_all(request).await.expect("send");
    let mut head = [0; 12];
    stream.read_exact(&mut head).await.expect("the answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    stream
}

/// Asserts that `server` exits within `limit` with success; `what` says why it
/// should.
pub fn assert_exits_cleanly(server: &mut Proc, limit: Duration, what: &str) {
    let status = server.wait_exit(limit);
    let status = status.unwrap_or_else(|| panic!("no exit within {limit:?}: {what}"));
    assert!(status.success(), "exit status {status}: {what}");
}
