//! What the demo's tests start: the demo binary on a passed socket, or an app
//! served in this process.
#![allow(dead_code, unreachable_pub)]

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::process::Command;
use std::time::Duration;

use dev_support::process::Proc;
use dev_support::socket::PassedSocket;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The demo binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_axum-autoreload-demo");
/// How long a demo binary may take to answer its first request.
pub const READY: Duration = Duration::from_secs(20);

/// A running demo binary, killed at once when dropped, with a database of its own
/// (tests do not share the developer's `data/`) unless its `--db` names one.
pub struct Demo {
    proc: Proc,
    _db: tempfile::TempDir,
}

impl Deref for Demo {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl DerefMut for Demo {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

/// The demo binary with `args`, logging warnings (`TEST_RUST_LOG` for more).
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    let log = std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into());
    command.args(args).env("RUST_LOG", log);
    command
}

/// Spawns `command` (from [`command`]).
pub fn spawn(mut command: Command) -> Demo {
    let db = dev_support::scratch::temp_dir("axum-autoreload-demo-db-");
    command.env("DATABASE_PATH", db.path().join("posts.sqlite3"));
    let proc = Proc::spawn("demo", command).stop_with(Signal::SIGKILL, Duration::ZERO);
    Demo { proc, _db: db }
}

/// The demo with `args` on `socket`, not waited for.
pub fn spawn_on(socket: &PassedSocket, args: &[&str]) -> Demo {
    let mut command = command(args);
    socket.pass_to(&mut command);
    spawn(command)
}

/// The demo with `args` on `socket`, once `GET /` answers 200.
pub async fn start(socket: &PassedSocket, args: &[&str]) -> Demo {
    let demo = spawn_on(socket, args);
    dev_support::http::wait_ready(socket.addr, READY).await;
    demo
}

/// Serves `app` with `reload` in this process on a fresh loopback port (no signal
/// handling); its address.
pub async fn serve_here(app: axum::Router, reload: axum_autoreload::AutoReload) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = axum_autoreload::serve(listener, app, reload).handle_signals(false);
    tokio::spawn(server.into_future());
    addr
}

/// A static directory for `--static-dir` with `big.bin`, 64 MiB: far more than
/// the socket buffers hold, so a client that stops reading it keeps the server
/// writing.
pub fn big_file_dir() -> (tempfile::TempDir, String) {
    let dir = dev_support::scratch::temp_dir("axum-autoreload-big-");
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
    stream
        .read_exact(&mut head)
        .await
        .expect("the answer begins");
    assert_eq!(&head, b"HTTP/1.1 200");
    stream
}

/// Asserts that `text` contains every one of `needles`; a failure names the
/// missing one.
pub fn assert_contains(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} is not in {text}");
    }
}
