//! Hardening: requests from other sites, path traversal, misbehaving clients and
//! malformed requests. Each test fails without the protection it names.

mod common;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum_autoreload::AutoReload;
use common::{get, request, wait_ready, EventStream, PassedSocket};
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const READY: Duration = Duration::from_secs(20);

async fn send(addr: SocketAddr, head: &str) -> common::Response {
    request(addr, &format!("{head}\r\nConnection: close\r\n\r\n"))
        .await
        .expect("a response")
}

#[tokio::test]
async fn other_hosts_and_cross_site_requests_get_403() {
    let socket = PassedSocket::new();
    let _server = socket.spawn(&["--allowed-host", "dev.example"]);
    wait_ready(socket.addr, READY).await;
    let addr = socket.addr;
    let port = addr.port();

    // DNS rebinding: another site's name pointed at 127.0.0.1.
    let rebound = send(addr, "GET / HTTP/1.1\r\nHost: evil.example").await;
    assert_eq!(rebound.status, 403);
    assert!(
        rebound.text().contains("allow_host(\"evil.example\")"),
        "{}",
        rebound.text()
    );
    let rebound_stream = send(
        addr,
        &format!("GET /auto_refresh HTTP/1.1\r\nHost: evil.example:{port}"),
    )
    .await;
    assert_eq!(rebound_stream.status, 403);
    for host in [
        "dev.example",
        "localhost",
        "app.localhost",
        "127.0.0.1",
        "[::1]",
    ] {
        let page = send(addr, &format!("GET / HTTP/1.1\r\nHost: {host}:{port}")).await;
        assert_eq!(page.status, 200, "Host {host}");
    }

    // Cross-site requests from a page on another site.
    let foreign = "Origin: https://evil.example";
    for head in [
        format!("POST / HTTP/1.1\r\nHost: localhost:{port}\r\n{foreign}\r\nContent-Length: 0"),
        format!("DELETE /static/style.css HTTP/1.1\r\nHost: localhost:{port}\r\n{foreign}"),
        format!("POST / HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: null\r\nContent-Length: 0"),
        format!("GET /auto_refresh HTTP/1.1\r\nHost: localhost:{port}\r\n{foreign}"),
        format!("GET /auto_refresh/status HTTP/1.1\r\nHost: localhost:{port}\r\n{foreign}"),
        format!(
            "GET /ws HTTP/1.1\r\nHost: localhost:{port}\r\n{foreign}\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
        ),
    ] {
        assert_eq!(send(addr, &head).await.status, 403, "{head}");
    }
    // The same requests from the app's own pages pass the check.
    let own = format!("Origin: http://localhost:{port}");
    let post = send(
        addr,
        &format!("POST / HTTP/1.1\r\nHost: localhost:{port}\r\n{own}\r\nContent-Length: 0"),
    )
    .await;
    assert_eq!(post.status, 405, "past the check, to the router");
    let status = send(
        addr,
        &format!("GET /auto_refresh/status HTTP/1.1\r\nHost: localhost:{port}\r\n{own}"),
    )
    .await;
    assert_eq!(status.status, 200);
}

/// Serves `root` at `/static` with the library's `static_files`, in this process.
async fn serve_static(root: &std::path::Path) -> (SocketAddr, AutoReload) {
    let reload = AutoReload::builder().enabled(false).build();
    let app = Router::new().nest_service("/static", axum_autoreload::static_files(root));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(
        axum_autoreload::serve(listener, app, reload.clone())
            .handle_signals(false)
            .into_future(),
    );
    (addr, reload)
}

#[tokio::test]
async fn static_files_never_leave_their_root() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.txt"), "SECRET").expect("write");
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(root.path().join("a.txt"), "public").expect("write");
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        root.path().join("leak.txt"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(outside.path(), root.path().join("dir")).expect("symlink");
    std::fs::create_dir(root.path().join("sub")).expect("mkdir");
    std::os::unix::fs::symlink(
        root.path().join("a.txt"),
        root.path().join("sub/inside.txt"),
    )
    .expect("symlink");
    let (addr, _reload) = serve_static(root.path()).await;

    let public = get(addr, "/static/a.txt").await.expect("GET");
    assert_eq!((public.status, public.text().as_str()), (200, "public"));
    assert_eq!(public.header("cache-control"), Some("no-cache"));
    let inside = get(addr, "/static/sub/inside.txt").await.expect("GET");
    assert_eq!(
        (inside.status, inside.text().as_str()),
        (200, "public"),
        "a link inside the root is fine"
    );

    let secret_name = outside
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    for path in [
        "/static/../secret.txt".to_owned(),
        "/static/%2e%2e/secret.txt".to_owned(),
        "/static/..%2fsecret.txt".to_owned(),
        "/static/%2e%2e%2fsecret.txt".to_owned(),
        "/static/%2E%2E%5csecret.txt".to_owned(),
        format!("/static/..%2f..%2f{secret_name}/secret.txt"),
        format!("/static/{}", outside.path().join("secret.txt").display()),
        format!(
            "/static/%2f{}",
            outside
                .path()
                .join("secret.txt")
                .display()
                .to_string()
                .trim_start_matches('/')
        ),
        "/static/leak.txt".to_owned(),
        "/static/dir/secret.txt".to_owned(),
    ] {
        let response = get(addr, &path).await.expect("GET");
        assert_eq!(response.status, 404, "{path}");
        assert!(!response.text().contains("SECRET"), "{path}");
    }
}

fn rss_kib(pid: nix::unistd::Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

async fn open_streams(addr: SocketAddr) -> u64 {
    let status = get(addr, "/auto_refresh/status")
        .await
        .expect("status")
        .text();
    let count = status
        .split("\"open_streams\":")
        .nth(1)
        .expect("open_streams");
    count.trim_end_matches('}').parse().expect("a number")
}

async fn stream_cycles(addr: SocketAddr, cycles: usize) {
    let workers: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..cycles / 8 {
                    let mut stream = EventStream::open(addr).await.expect("open");
                    let (name, _) = stream.next_event().await.expect("read").expect("hello");
                    assert_eq!(name, "hello");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_stream_cycles_leave_nothing_behind() {
    let socket = PassedSocket::new();
    let server = socket.spawn(&[]);
    wait_ready(socket.addr, READY).await;
    stream_cycles(socket.addr, 1_000).await; // warm up the allocator and buffers
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_streams(socket.addr).await != 0 {
        assert!(
            Instant::now() < deadline,
            "streams still counted open after the warm-up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = rss_kib(server.pid());

    stream_cycles(socket.addr, 10_000).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open = open_streams(socket.addr).await;
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} streams still counted open 5 s after the clients left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = rss_kib(server.pid());
    eprintln!("RSS before {before} KiB, after 10,000 stream cycles {after} KiB");
    assert!(
        after <= before + 4096,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_delays_no_other_stream() {
    let socket = PassedSocket::new();
    let server = socket.spawn(&[]);
    wait_ready(socket.addr, READY).await;
    // One client opens a stream and never reads it; another pipelines requests and
    // never reads the answers, so the server's writes to it block.
    let _silent = EventStream::open(socket.addr).await.expect("open");
    let mut pipelined = TcpStream::connect(socket.addr).await.expect("connect");
    let stall = tokio::spawn(async move {
        let requests = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(1000);
        while pipelined.write_all(requests.as_bytes()).await.is_ok() {}
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut healthy = EventStream::open(socket.addr).await.expect("open");
    assert_eq!(
        healthy.next_event().await.expect("read").expect("hello").0,
        "hello"
    );
    server.signal(Signal::SIGUSR1);
    let event = tokio::time::timeout(Duration::from_secs(1), healthy.next_event())
        .await
        .expect("the reload arrives at once")
        .expect("read");
    assert_eq!(event.map(|e| e.0).as_deref(), Some("reload"));
    stall.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_hold_nobody() {
    let socket = PassedSocket::new();
    let _server = socket.spawn(&["--header-read-timeout", "500"]);
    wait_ready(socket.addr, READY).await;
    let mut loris = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(socket.addr).await.expect("connect");
        stream.write_all(b"GET / HTTP/1.1\r\n").await.expect("send");
        loris.push(tokio::spawn(async move {
            let started = Instant::now();
            // One header byte every 100 ms, forever: only the timeout ends it.
            for byte in b"X-Slow: ".iter().cycle() {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 1024];
                let read =
                    tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await;
                if let Ok(Ok(0) | Err(_)) = read {
                    break;
                }
                if started.elapsed() > Duration::from_secs(5) {
                    break;
                }
            }
            started.elapsed()
        }));
    }
    // Meanwhile everyone else is served.
    let page = tokio::time::timeout(Duration::from_secs(1), get(socket.addr, "/"))
        .await
        .expect("served while 50 slow clients trickle")
        .expect("GET");
    assert_eq!(page.status, 200);
    for client in loris {
        let held = client.await.expect("client");
        assert!(
            held < Duration::from_secs(3),
            "a slow client held its connection for {held:?}"
        );
    }
}

/// The header read timeout counts once, from the accept: a client that waits
/// before its first byte has that much less time for the rest of the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_read_timeout_counts_from_the_accept() {
    let socket = PassedSocket::new();
    let _server = socket.spawn(&["--header-read-timeout", "600"]);
    wait_ready(socket.addr, READY).await;
    let connected = Instant::now();
    let mut stream = TcpStream::connect(socket.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stream.write_all(b"GET / HTTP/1.1\r\n").await;
    // Then one header byte every 20 ms: only the timeout ends it.
    for byte in b"X-Slow: ".iter().cycle() {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_millis(20), stream.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            break;
        }
        assert!(connected.elapsed() < Duration::from_secs(5), "never closed");
    }
    let held = connected.elapsed();
    assert!(
        held >= Duration::from_millis(550) && held < Duration::from_millis(1000),
        "closed {} ms after connecting, for a 600 ms timeout (twice would be 1,100 ms)",
        held.as_millis()
    );
}

#[tokio::test]
async fn malformed_requests_get_400_or_431_and_the_server_goes_on() {
    let socket = PassedSocket::new();
    let _server = socket.spawn(&[]);
    wait_ready(socket.addr, READY).await;
    let garbage = request(socket.addr, "THIS IS NOT HTTP\r\n\r\n")
        .await
        .expect("an answer");
    assert_eq!(garbage.status, 400);
    let bad_version = request(socket.addr, "GET / HTTP/9.9\r\nHost: localhost\r\n\r\n")
        .await
        .expect("an answer");
    assert!(
        matches!(bad_version.status, 400 | 505),
        "{}",
        bad_version.status
    );
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let huge = request(socket.addr, &huge).await.expect("an answer");
    assert_eq!(huge.status, 431);
    assert_eq!(
        get(socket.addr, "/").await.expect("GET").status,
        200,
        "still serving"
    );
}

#[tokio::test]
async fn binding_a_non_loopback_address_warns() {
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = Command::new(common::BIN)
        .args(["--addr", &format!("0.0.0.0:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    // Read to the end (the kill closes the pipe): a pipe closed early would make the
    // server's next log line fail.
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    wait_ready(format!("127.0.0.1:{port}").parse().expect("addr"), READY).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = reader.join().expect("reader");
    assert!(
        text.contains("WARN") && text.contains("other machines can reach"),
        "{text}"
    );
}

#[tokio::test]
async fn a_stream_that_falls_behind_gets_a_reload() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let reload = AutoReload::builder().enabled(true).build();
    let app: Router = reload.router();
    let request = axum::http::Request::get("/auto_refresh")
        .body(axum::body::Body::empty())
        .expect("request");
    let mut body = app.oneshot(request).await.expect("infallible").into_body();
    async fn next(body: &mut axum::body::Body) -> String {
        let frame = body.frame().await.expect("a frame").expect("ok");
        String::from_utf8(frame.into_data().expect("data").to_vec()).expect("utf-8")
    }
    assert!(next(&mut body).await.starts_with("event: hello\n"));
    // 100 stylesheet changes while the stream is not read: more than the broadcast
    // keeps (16), so the stream lags.
    for i in 0..100 {
        reload.changed(&format!("/static/{i}.css"));
    }
    let first = next(&mut body).await;
    assert_eq!(
        first,
        format!("event: reload\ndata: {}\n\n", reload.instance_id())
    );
    // It goes on with the changes still kept, and is still open.
    assert!(next(&mut body)
        .await
        .starts_with("event: css\ndata: /static/"));
    assert_eq!(reload.open_streams(), 1);
}
