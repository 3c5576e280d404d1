//! The binary's listener: socket activation (LISTEN_FDS), the raised backlog, the
//! fallback bind and its errors.

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use common::{get, wait_ready, PassedSocket, Server, BIN};
use nix::sys::signal::Signal;

const READY: Duration = Duration::from_secs(20);

/// The listen backlog of the socket on `port`, as `ss` reports it (the Send-Q
/// column of a listening socket), or `None` when `ss` is not installed.
fn backlog_reported_by_ss(port: u16) -> Option<u32> {
    let output = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().next()?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_a_passed_socket_and_raises_its_backlog() {
    let socket = PassedSocket::new();
    assert_eq!(
        backlog_reported_by_ss(socket.port()).unwrap_or(1),
        1,
        "the test socket starts with a backlog of 1"
    );
    let server = socket.spawn(&[]);
    wait_ready(socket.addr, READY).await;

    match backlog_reported_by_ss(socket.port()) {
        Some(backlog) => assert_eq!(backlog, 1024, "backlog after the server took the socket"),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("`ss` is missing: apt-get install -y iproute2")
        }
        None => {
            eprintln!("skipping the ss read-back: `ss` is missing (apt-get install -y iproute2)")
        }
    }

    // With the server stopped, the kernel must still complete 64 handshakes at once:
    // with a backlog of 1 all but two would wait for a SYN retransmit (1 s).
    server.signal(Signal::SIGSTOP);
    let connects: Vec<_> = (0..64)
        .map(|_| {
            tokio::spawn(tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(socket.addr),
            ))
        })
        .collect();
    let mut streams = Vec::new();
    for connect in connects {
        let stream = connect
            .await
            .expect("task")
            .expect("handshake completed in the backlog within 500 ms")
            .expect("connected");
        streams.push(stream);
    }
    server.signal(Signal::SIGCONT);

    // Every queued connection is then served.
    for mut stream in streams {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        assert!(
            response.starts_with(b"HTTP/1.1 200 OK"),
            "{}",
            String::from_utf8_lossy(&response)
        );
    }
}

#[tokio::test]
async fn binds_addr_when_no_socket_is_passed() {
    let port = free_port();
    let mut command = Command::new(BIN);
    command.args(["--addr", &format!("127.0.0.1:{port}")]);
    let _server = Server::spawn(command);
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    wait_ready(addr, READY).await;
    let page = get(addr, "/").await.expect("GET /");
    assert!(
        page.text().contains("data-instance="),
        "the page carries the client script"
    );
}

#[tokio::test]
async fn port_env_sets_the_port() {
    let port = free_port();
    let mut command = Command::new(BIN);
    command.env("PORT", port.to_string());
    let _server = Server::spawn(command);
    wait_ready(format!("127.0.0.1:{port}").parse().expect("address"), READY).await;
}

#[test]
fn a_busy_port_gives_one_clear_error_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address");
    let output = Command::new(BIN)
        .args(["--addr", &addr.to_string()])
        .env("RUST_LOG", "off")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: cannot listen on "), "{stderr}");
    assert!(
        stderr.contains(&addr.to_string()),
        "names the address: {stderr}"
    );
    assert!(
        stderr.contains("--addr or PORT"),
        "says what to do: {stderr}"
    );
}

#[test]
fn a_passed_udp_socket_is_refused_clearly() {
    let udp =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    udp.set_cloexec(false).expect("clear close-on-exec");
    let output = Command::new(BIN)
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDS_FIRST_FD", udp.as_raw_fd().to_string())
        .env("RUST_LOG", "off")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("not a TCP listener"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_flag_is_a_usage_error() {
    let output = Command::new(BIN)
        .args(["--addr", "localhost"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid value 'localhost' for '--addr"),
        "{stderr}"
    );
}

#[test]
fn version_and_help() {
    let version = Command::new(BIN).arg("--version").output().expect("run");
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("axum-autoreload-demo {}", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(BIN).arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--addr",
        "--port",
        "[env: PORT",
        "--static-dir",
        "--drain-deadline",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}: {text}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

#[tokio::test]
async fn switched_off_there_is_no_script_and_no_stream() {
    let socket = PassedSocket::new();
    let mut command = Command::new(BIN);
    command
        .env("AXUM_AUTORELOAD", "0")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDS_FIRST_FD", socket.std_fd().to_string());
    let _server = Server::spawn(command);
    wait_ready(socket.addr, READY).await;
    let page = get(socket.addr, "/").await.expect("GET /");
    assert!(!page.text().contains("<script"), "{}", page.text());
    assert_eq!(
        get(socket.addr, "/auto_refresh").await.expect("GET").status,
        404
    );
    assert_eq!(
        get(socket.addr, "/auto_refresh/client.js")
            .await
            .expect("GET")
            .status,
        404
    );
}
