//! The binary's listener: socket activation (LISTEN_FDS), the raised backlog, the
//! fallback bind and its errors.

#[path = "demo/support.rs"]
mod demo;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::time::Duration;

use dev_support::http::{get, wait_ready};
use dev_support::socket::{free_port, PassedSocket};
use nix::sys::signal::Signal;

/// The listen backlog of the socket on `port`, as `ss` reports it (the Send-Q
/// column of a listening socket), or `None` when `ss` is not installed.
fn backlog_reported_by_ss(port: u16) -> Option<u32> {
    let output = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().next()?.split_whitespace().nth(2)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_a_passed_socket_and_raises_its_backlog() {
    let socket = PassedSocket::new();
    let backlog = backlog_reported_by_ss(socket.port());
    assert_eq!(
        backlog.unwrap_or(1),
        1,
        "the test socket starts with a backlog of 1"
    );
    let server = demo::start(&socket, &[]).await;
    match backlog_reported_by_ss(socket.port()) {
        Some(backlog) => assert_eq!(backlog, 1024, "backlog after the server took the socket"),
        None if dev_support::tools::under_ci() => {
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
            let connect = tokio::net::TcpStream::connect(socket.addr);
            tokio::spawn(tokio::time::timeout(Duration::from_millis(500), connect))
        })
        .collect();
    let mut streams = Vec::new();
    for connect in connects {
        let stream = connect.await.expect("task");
        let stream = stream.expect("handshake completed in the backlog within 500 ms");
        streams.push(stream.expect("connected"));
    }
    server.signal(Signal::SIGCONT);

    // Every queued connection is then served.
    for mut stream in streams {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let raw = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(raw).await.expect("send");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    }
}

/// The demo started with `args` and `env` and no socket, once it answers on
/// 127.0.0.1:`port`: the first page.
async fn bound(port: u16, args: &[&str], env: &[(&str, &str)]) -> (demo::Demo, String) {
    let mut command = demo::command(args);
    command.envs(env.iter().copied());
    let server = demo::spawn(command);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_ready(addr, demo::READY).await;
    (server, get(addr, "/").await.expect("GET /").text())
}

#[tokio::test]
async fn binds_addr_when_no_socket_is_passed() {
    let port = free_port();
    let (_server, page) = bound(port, &["--addr", &format!("127.0.0.1:{port}")], &[]).await;
    assert!(
        page.contains("data-instance="),
        "the page carries the client script"
    );
}

#[tokio::test]
async fn port_env_sets_the_port() {
    let port = free_port();
    bound(port, &[], &[("PORT", &port.to_string())]).await;
}

/// Runs the demo with `args` and `env` to its end, logging nothing.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = demo::command(args);
    command.env("RUST_LOG", "off").envs(env.iter().copied());
    command.output().expect("run")
}

/// Asserts that the run ended with `code` and its standard error holds `needles`.
fn assert_fails(output: &Output, code: i32, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    demo::assert_contains(&stderr, needles);
    stderr
}

#[test]
fn a_busy_port_gives_one_clear_error_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    // It names the address and says what to do.
    let stderr = assert_fails(&run(&["--addr", &addr], &[]), 1, &[&addr, "--addr or PORT"]);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: cannot listen on "), "{stderr}");
}

#[test]
fn a_passed_udp_socket_is_refused_clearly() {
    let udp = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None);
    let udp = udp.expect("socket");
    udp.set_cloexec(false).expect("clear close-on-exec");
    let fd = udp.as_raw_fd().to_string();
    let output = run(&[], &[("LISTEN_FDS", "1"), ("LISTEN_FDS_FIRST_FD", &fd)]);
    let stderr = assert_fails(&output, 1, &["not a TCP listener"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_flag_is_a_usage_error() {
    let output = run(&["--addr", "localhost"], &[]);
    assert_fails(&output, 2, &["invalid value 'localhost' for '--addr"]);
}

#[test]
fn version_and_help() {
    let version = run(&["--version"], &[]);
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("axum-autoreload-demo {}", env!("CARGO_PKG_VERSION"))
    );
    let help = String::from_utf8_lossy(&run(&["--help"], &[]).stdout).into_owned();
    let flags = [
        "--addr",
        "--port",
        "[env: PORT",
        "--static-dir",
        "--drain-deadline",
    ];
    demo::assert_contains(&help, &flags);
}

#[tokio::test]
async fn switched_off_there_is_no_script_and_no_stream() {
    let socket = PassedSocket::new();
    let mut command = demo::command(&[]);
    socket.pass_to(&mut command).env("AXUM_AUTORELOAD", "0");
    let _server = demo::spawn(command);
    wait_ready(socket.addr, demo::READY).await;
    let page = get(socket.addr, "/").await.expect("GET /").text();
    assert!(!page.contains("<script"), "{page}");
    for path in ["/auto_refresh", "/auto_refresh/client.js"] {
        assert_eq!(
            get(socket.addr, path).await.expect("GET").status,
            404,
            "{path}"
        );
    }
}
