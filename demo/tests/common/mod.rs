//! Test support: a socket passed the way watchexec and systemfd pass it, the demo
//! binary spawned on it, and a plain HTTP/1.1 client over real TCP.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod passed_socket;
pub use passed_socket::PassedSocket;

/// The demo binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_axum-autoreload-demo");

impl PassedSocket {
    /// Spawn the demo binary with this socket passed through `LISTEN_FDS`.
    pub fn spawn(&self, args: &[&str]) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDS_FIRST_FD", self.std_fd().to_string())
            .env_remove("LISTEN_PID");
        Server::spawn(command)
    }
}

/// A running demo binary, killed when dropped.
pub struct Server {
    pub child: Child,
    /// The demo's database, unless the test named one: tests do not share the
    /// developer's `data/`.
    _db: Option<tempfile::TempDir>,
}

impl Server {
    pub fn spawn(mut command: Command) -> Self {
        let names_db = command.get_envs().any(|(key, _)| key == "DATABASE_PATH")
            || command.get_args().any(|arg| arg == "--db");
        let db = (!names_db).then(|| tempfile::tempdir().expect("a temporary directory"));
        if let Some(dir) = &db {
            command.env("DATABASE_PATH", dir.path().join("posts.sqlite3"));
        }
        command
            .env(
                "RUST_LOG",
                std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = command.spawn().expect("spawn the demo binary");
        Self { child, _db: db }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits"))
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("send a signal");
    }

    /// Wait for the process to exit, at most `limit`; `None` when it did not.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod wire;
use wire::parse;
pub use wire::Response;

/// `GET path` on a fresh connection with `Connection: close`, reading to the end.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Send raw request bytes on a fresh connection and read the whole response (the
/// server closes the connection after it).
pub async fn request(addr: SocketAddr, raw: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(raw.as_bytes()).await?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await?;
    parse(&bytes, raw.starts_with("HEAD "))
}

/// Poll `GET /` until it answers 200, at most `limit`.
pub async fn wait_ready(addr: SocketAddr, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(2), get(addr, "/")).await
        {
            if response.status == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server at {addr} did not answer within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An open reload stream: the request sent, the response head read.
pub struct EventStream {
    reader: BufReader<TcpStream>,
    /// The response's status line and header fields, lower-cased.
    pub head: String,
}

const STREAM_REQUEST: &[u8] =
    b"GET /auto_refresh HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n";

impl EventStream {
    /// A stream on a new connection, the connection's first request.
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        Self::open_path(addr, "/auto_refresh").await
    }

    /// The event stream at `path` (or any response to `GET path`: read its head),
    /// on a new connection.
    pub async fn open_path(addr: SocketAddr, path: &str) -> std::io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        Self::read_head(BufReader::new(stream)).await
    }

    /// A stream asked for on a keep-alive connection after a `GET` of `path`, whose
    /// answer must have a `Content-Length`.
    pub async fn open_after(addr: SocketAddr, path: &str) -> std::io::Result<Self> {
        let mut reader = BufReader::new(TcpStream::connect(addr).await?);
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        reader.get_mut().write_all(request.as_bytes()).await?;
        let first = Self::read_head(reader).await?;
        let length: usize = first
            .head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .and_then(|value| value.trim().parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no content-length: {}", first.head)))?;
        let mut reader = first.reader;
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        reader.get_mut().write_all(STREAM_REQUEST).await?;
        Self::read_head(reader).await
    }

    async fn read_head(mut reader: BufReader<TcpStream>) -> std::io::Result<Self> {
        let mut head = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                return Ok(Self { reader, head });
            }
            head.push_str(&line.to_ascii_lowercase());
        }
    }

    /// The next event's name and data, skipping comments and chunk framing; `None`
    /// at the end of the stream.
    pub async fn next_event(&mut self) -> std::io::Result<Option<(String, String)>> {
        let mut name = String::new();
        let mut data = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            let text = line.trim_end_matches(['\r', '\n']);
            if let Some(value) = text.strip_prefix("event: ") {
                name = value.to_owned();
            } else if let Some(value) = text.strip_prefix("data: ") {
                data = value.to_owned();
            } else if text.is_empty() && !name.is_empty() {
                return Ok(Some((name, data)));
            }
        }
    }

    /// Read until the server closes the connection; whether it did within `limit`.
    pub async fn ends_within(&mut self, limit: Duration) -> bool {
        let mut sink = Vec::new();
        matches!(
            tokio::time::timeout(limit, self.reader.read_to_end(&mut sink)).await,
            Ok(Ok(_))
        )
    }
}

/// Serve `app` with `reload` in this process on a fresh loopback port (no signal
/// handling), as a test's server; returns its address.
pub async fn serve_here(app: axum::Router, reload: axum_autoreload::AutoReload) -> SocketAddr {
    use std::future::IntoFuture;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(
        axum_autoreload::serve(listener, app, reload)
            .handle_signals(false)
            .into_future(),
    );
    addr
}
