//! Graceful shutdown with many open reload streams: every stream hears `restart`
//! and ends, and the process exits long before the drain deadline.

#[path = "demo/support.rs"]
mod demo;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dev_support::http::get;
use dev_support::socket::PassedSocket;
use dev_support::sse::EventStream;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const STREAMS: usize = 1000;
const EVENT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_hears_restart_and_ends_then_the_process_exits() {
    let (addr, mut server) = demo::serving(&["--drain-deadline", "5000"]).await;
    let mut streams = Vec::with_capacity(STREAMS);
    let mut instance = None;
    for _ in 0..STREAMS {
        let (stream, id) = EventStream::opened(addr, "/auto_refresh", "hello").await;
        let first = instance.get_or_insert_with(|| id.clone());
        assert_eq!(first, &id, "one instance id per process");
        streams.push(stream);
    }

    let started = Instant::now();
    server.signal(Signal::SIGINT);
    let why = "before the drain deadline (5 s): open streams do not hold it";
    demo::assert_exits_cleanly(&mut server, Duration::from_secs(4), why);
    let exit = started.elapsed().as_millis();
    eprintln!("exit {exit} ms after SIGINT with {STREAMS} open streams");

    let restart = ("restart".to_owned(), instance.expect("an id"));
    for (i, stream) in streams.iter_mut().enumerate() {
        assert_eq!(stream.event(EVENT).await, restart, "stream {i}");
        let ended = stream.ends_within(Duration::from_secs(1)).await;
        assert!(ended, "stream {i} ends");
    }
}

/// A stream is served the same way, through hyper and the app's router, whether
/// it is a connection's first request or follows another: one response head, one
/// chunked body, the same events. SIGUSR1 reaches every stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reloads_every_stream_on_a_used_connection_too() {
    let (addr, mut server) = demo::serving(&[]).await;
    let mut own = EventStream::open(addr).await.expect("open");
    let routed = EventStream::open_after(addr, "/auto_refresh/status").await;
    let mut routed = routed.expect("open after a request");
    // The heads as hyper's client read them, lower-cased; hyper keeps the framing
    // field, so `transfer-encoding: chunked` is still pinned.
    fn head_fields(head: &str) -> Vec<&str> {
        let mut fields: Vec<_> = head.lines().filter(|l| !l.starts_with("date:")).collect();
        fields.sort_unstable();
        fields
    }
    assert_eq!(head_fields(&own.head), head_fields(&routed.head));
    for stream in [&mut own, &mut routed] {
        stream.assert_head();
        assert_eq!(stream.event(EVENT).await.0, "hello");
    }
    server.signal(Signal::SIGUSR1);
    for stream in [&mut own, &mut routed] {
        assert_eq!(stream.event(EVENT).await.0, "reload");
    }
    server.signal(Signal::SIGINT);
    for stream in [&mut own, &mut routed] {
        assert_eq!(stream.event(EVENT).await.0, "restart");
        assert!(stream.ends_within(Duration::from_secs(2)).await);
    }
    demo::assert_exits_cleanly(&mut server, Duration::from_secs(2), "after SIGINT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_exits_at_once_and_the_deadline_bounds_the_drain() {
    let socket = PassedSocket::new();
    let (_big, static_dir) = demo::big_file_dir();
    let args = |drain| ["--drain-deadline", drain, "--static-dir", &static_dir];
    let mut server = demo::start(&socket, &args("60000")).await;
    let stalled = demo::stalled_reader(socket.addr).await;
    server.signal(Signal::SIGINT);
    let exited = server.wait_exit(Duration::from_millis(500));
    assert!(exited.is_none(), "the drain waits for the response");
    server.signal(Signal::SIGINT);
    let exited = server.wait_exit(Duration::from_secs(2));
    assert!(exited.is_some(), "a second SIGINT exits at once");
    drop(stalled);

    let mut server = demo::start(&socket, &args("300")).await;
    let stalled = demo::stalled_reader(socket.addr).await;
    let started = Instant::now();
    server.signal(Signal::SIGINT);
    let why = "the drain deadline (300 ms) ends the drain";
    demo::assert_exits_cleanly(&mut server, Duration::from_secs(3), why);
    let drained = started.elapsed() >= Duration::from_millis(300);
    assert!(drained, "the drain waited for the stalled reader");
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_do_not_hold_the_shutdown() {
    let socket = PassedSocket::new();
    let mut server = demo::start(&socket, &["--drain-deadline", "10000"]).await;
    // One keep-alive connection that served a request and idles, and one that was
    // opened and never used (as a browser's preconnect).
    let mut keep_alive = TcpStream::connect(socket.addr).await.expect("connect");
    let raw = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    keep_alive.write_all(raw).await.expect("send");
    let mut buf = [0u8; 4096];
    let n = keep_alive.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let preconnect = TcpStream::connect(socket.addr).await.expect("connect");
    let client = preconnect.local_addr().expect("local address");
    let what = "the server to accept the preconnect";
    dev_support::wait::until(what, EVENT, || async {
        accepted(socket.addr, client).then_some(())
    })
    .await;

    let started = Instant::now();
    server.signal(Signal::SIGINT);
    let exited = server.wait_exit(Duration::from_secs(2));
    exited.expect("idle connections are closed, not waited for until the deadline");
    let ms = started.elapsed().as_millis();
    eprintln!("exit {ms} ms after SIGINT with idle connections");

    // And an old page still gets its answer from the next process on the same socket.
    let _next = demo::spawn_on(&socket, &[]);
    let page = tokio::time::timeout(demo::READY, get(socket.addr, "/")).await;
    assert_eq!(page.expect("answered").expect("GET /").status, 200);
}

/// Whether the server on `server` has accepted the connection from `client`: in
/// `/proc/net/tcp` a connection still in the listen backlog has no inode, one
/// accepted has the inode of the server's socket.
fn accepted(server: SocketAddr, client: SocketAddr) -> bool {
    let hex = |addr: SocketAddr| match addr.ip() {
        std::net::IpAddr::V4(ip) => {
            format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(ip.octets()),
                addr.port()
            )
        }
        std::net::IpAddr::V6(_) => panic!("an IPv4 address: {addr}"),
    };
    let (local, remote) = (hex(server), hex(client));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).any(|line| {
        // "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ..."
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 9 && fields[1] == local && fields[2] == remote && fields[9] != "0"
    })
}
