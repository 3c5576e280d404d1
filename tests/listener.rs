//! The binary's listener: socket activation (LISTEN_FDS), the raised backlog, the
//! fallback bind and its errors.

#[path = "demo/support.rs"]
mod demo;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use dev_support::http::{get, wait_ready};
use dev_support::process::Proc;
use dev_support::socket::{free_port, PassedSocket};
use dev_support::tools::under_ci;
use dev_support::wait;
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
    assert_eq!(backlog.unwrap_or(1), 1, "the test socket's backlog");
    let server = demo::start(&socket, &[]).await;
    match backlog_reported_by_ss(socket.port()) {
        Some(backlog) => assert_eq!(backlog, 1024, "backlog after the server took the socket"),
        None if under_ci() => panic!("`ss` is missing: apt-get install -y iproute2"),
        None => eprintln!("skipping the ss read-back: `ss` is missing (iproute2)"),
    }

    // With the server stopped, the kernel must still complete 64 handshakes at once:
    // with a backlog of 1 all but two would wait for a SYN retransmit (1 s).
    server.signal(Signal::SIGSTOP);
    let connect = |_| {
        let connect = tokio::net::TcpStream::connect(socket.addr);
        tokio::spawn(tokio::time::timeout(Duration::from_millis(500), connect))
    };
    let connects: Vec<_> = (0..64).map(connect).collect();
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
async fn bound(port: u16, args: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
    let mut command = demo::command(args);
    command.envs(env.iter().copied());
    let server = demo::spawn(command);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_ready(addr, demo::READY).await;
    (server, get(addr, "/").await.expect("GET /").text())
}

#[tokio::test]
async fn binds_addr_or_port_when_no_socket_is_passed() {
    let port = free_port();
    let (_server, page) = bound(port, &["--addr", &format!("127.0.0.1:{port}")], &[]).await;
    demo::assert_contains(&page, &["data-instance="]); // the client script
    let port = free_port();
    bound(port, &[], &[("PORT", &port.to_string())]).await;
}

#[tokio::test]
async fn binding_a_non_loopback_address_warns() {
    let port = free_port();
    let (server, _) = bound(port, &["--addr", &format!("0.0.0.0:{port}")], &[]).await;
    wait::until("the warning", Duration::from_secs(5), || async {
        let log = server.log_text();
        (log.contains("WARN") && log.contains("other machines can reach")).then_some(())
    })
    .await;
}

/// A port in use, a passed socket that is no TCP listener, a missing `--root`:
/// exit status 1 and one line that says what to do, no panic.
#[test]
fn startup_errors_are_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let udp = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None);
    let udp = udp.expect("socket");
    udp.set_cloexec(false).expect("clear close-on-exec");
    let fd = udp.as_raw_fd().to_string();
    let udp_passed = [("LISTEN_FDS", "1"), ("LISTEN_FDS_FIRST_FD", fd.as_str())];
    let missing_root = ["--root", "/definitely/not/here", "--addr", "127.0.0.1:0"];
    let busy = ["--addr", &addr];
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&[&str], Env<'_>, &str, &[&str]); 3] = [
        (&busy, &[], "cannot listen on ", &[&addr, "--addr or PORT"]),
        (&[], &udp_passed, "", &["not a TCP listener"]),
        (&missing_root, &[], "cannot watch /definitely/not/here", &[]),
    ];
    for (args, env, start, needles) in cases {
        let stderr = demo::assert_fails(&demo::run(args, env), 1, needles);
        assert!(stderr.starts_with(&format!("error: {start}")), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn switched_off_there_is_no_script_and_no_stream() {
    let port = free_port();
    let env = [("PORT", &*port.to_string()), ("AXUM_AUTORELOAD", "0")];
    let (_server, page) = bound(port, &[], &env).await;
    assert!(!page.contains("<script"), "{page}");
    for path in ["/auto_refresh", "/auto_refresh/client.js"] {
        let response = get(([127, 0, 0, 1], port).into(), path).await;
        assert_eq!(response.expect("GET").status, 404, "{path}");
    }
}
