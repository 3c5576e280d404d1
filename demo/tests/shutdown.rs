//! Graceful shutdown with many open reload streams: every stream hears `restart`
//! and ends, and the process exits long before the drain deadline.

mod common;

use std::time::{Duration, Instant};

use common::{get, wait_ready, EventStream, PassedSocket};
use nix::sys::signal::Signal;

const STREAMS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_hears_restart_and_ends_then_the_process_exits() {
    let socket = PassedSocket::new();
    let mut server = socket.spawn(&["--drain-deadline", "5000"]);
    wait_ready(socket.addr, Duration::from_secs(20)).await;

    let mut streams = Vec::with_capacity(STREAMS);
    let mut instance = None;
    for _ in 0..STREAMS {
        let mut stream = EventStream::open(socket.addr)
            .await
            .expect("open a reload stream");
        let (name, id) = stream.next_event().await.expect("read").expect("an event");
        assert_eq!(name, "hello");
        assert_eq!(
            instance.get_or_insert_with(|| id.clone()),
            &id,
            "one instance id per process"
        );
        streams.push(stream);
    }

    let started = Instant::now();
    server.signal(Signal::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(4))
        .expect("the process exits before the drain deadline (5 s): open streams do not hold it");
    let exit_time = started.elapsed();
    assert!(status.success(), "exit status {status:?}");
    eprintln!(
        "exit {} ms after SIGINT with {STREAMS} open streams",
        exit_time.as_millis()
    );

    for (i, stream) in streams.iter_mut().enumerate() {
        let event = stream.next_event().await.expect("read");
        assert_eq!(
            event,
            Some(("restart".to_owned(), instance.clone().expect("an id"))),
            "stream {i}"
        );
        assert!(
            stream.ends_within(Duration::from_secs(1)).await,
            "stream {i} ends"
        );
    }
}

/// A stream is served the same way, through hyper and the app's router, whether
/// it is a connection's first request or follows another: one response head, one
/// chunked body, the same events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_a_used_connection_hears_reload_and_restart_too() {
    let socket = PassedSocket::new();
    let mut server = socket.spawn(&[]);
    wait_ready(socket.addr, Duration::from_secs(20)).await;
    let mut own = EventStream::open(socket.addr).await.expect("open");
    let mut routed = EventStream::open_after(socket.addr, "/auto_refresh/status")
        .await
        .expect("open after a request");
    let head_fields = |head: &str| {
        let mut fields: Vec<String> = head
            .lines()
            .filter(|line| !line.starts_with("date:"))
            .map(str::to_owned)
            .collect();
        fields.sort();
        fields
    };
    assert_eq!(head_fields(&own.head), head_fields(&routed.head));
    assert!(
        own.head.contains("transfer-encoding: chunked"),
        "{}",
        own.head
    );
    for stream in [&mut own, &mut routed] {
        assert!(stream.head.starts_with("http/1.1 200"), "{}", stream.head);
        assert!(stream.head.contains("content-type: text/event-stream"));
        let (name, _) = stream.next_event().await.expect("read").expect("hello");
        assert_eq!(name, "hello");
    }
    server.signal(Signal::SIGUSR1);
    for stream in [&mut own, &mut routed] {
        let (name, _) = stream.next_event().await.expect("read").expect("an event");
        assert_eq!(name, "reload");
    }
    server.signal(Signal::SIGINT);
    for stream in [&mut own, &mut routed] {
        let (name, _) = stream.next_event().await.expect("read").expect("an event");
        assert_eq!(name, "restart");
        assert!(stream.ends_within(Duration::from_secs(2)).await);
    }
    assert!(server
        .wait_exit(Duration::from_secs(2))
        .expect("exits")
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reloads_every_stream() {
    let socket = PassedSocket::new();
    let server = socket.spawn(&[]);
    wait_ready(socket.addr, Duration::from_secs(20)).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = EventStream::open(socket.addr).await.expect("open");
        assert_eq!(
            stream.next_event().await.expect("read").expect("hello").0,
            "hello"
        );
        streams.push(stream);
    }
    server.signal(Signal::SIGUSR1);
    for stream in &mut streams {
        let (name, _) = stream.next_event().await.expect("read").expect("an event");
        assert_eq!(name, "reload");
    }
}

/// A client that pipelines requests and never reads the answers: the server's writes
/// block, so its connection stays in flight.
async fn stalled_reader(addr: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let handle = tokio::spawn(async move {
        let requests = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(1000);
        while tokio::io::AsyncWriteExt::write_all(&mut stream, requests.as_bytes())
            .await
            .is_ok()
        {}
    });
    // Long enough for the buffers on both sides to fill.
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_exits_at_once_and_the_deadline_bounds_the_drain() {
    let socket = PassedSocket::new();
    let mut server = socket.spawn(&["--drain-deadline", "60000"]);
    wait_ready(socket.addr, Duration::from_secs(20)).await;
    let stalled = stalled_reader(socket.addr).await;
    server.signal(Signal::SIGINT);
    assert!(
        server.wait_exit(Duration::from_millis(500)).is_none(),
        "the drain waits for the response in flight"
    );
    server.signal(Signal::SIGINT);
    assert!(
        server.wait_exit(Duration::from_secs(2)).is_some(),
        "a second SIGINT exits at once"
    );
    stalled.abort();

    let mut server = socket.spawn(&["--drain-deadline", "300"]);
    wait_ready(socket.addr, Duration::from_secs(20)).await;
    let stalled = stalled_reader(socket.addr).await;
    let started = Instant::now();
    server.signal(Signal::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(3))
        .expect("the drain deadline (300 ms) ends the drain");
    assert!(status.success());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the drain waited for the stalled reader"
    );
    stalled.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_do_not_hold_the_shutdown() {
    let socket = PassedSocket::new();
    let mut server = socket.spawn(&["--drain-deadline", "10000"]);
    wait_ready(socket.addr, Duration::from_secs(20)).await;
    // One keep-alive connection that served a request and idles, and one that was
    // opened and never used (as a browser's preconnect).
    let mut keep_alive = tokio::net::TcpStream::connect(socket.addr)
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(
        &mut keep_alive,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await
    .expect("send");
    let mut buf = [0u8; 4096];
    let n = tokio::io::AsyncReadExt::read(&mut keep_alive, &mut buf)
        .await
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let _preconnect = tokio::net::TcpStream::connect(socket.addr)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    server.signal(Signal::SIGINT);
    server
        .wait_exit(Duration::from_secs(2))
        .expect("idle connections are closed, not waited for until the deadline");
    eprintln!(
        "exit {} ms after SIGINT with idle connections",
        started.elapsed().as_millis()
    );

    // And an old page still gets its answer from the next process on the same socket.
    let _next = socket.spawn(&[]);
    let page = tokio::time::timeout(Duration::from_secs(20), get(socket.addr, "/"))
        .await
        .expect("answered")
        .expect("GET /");
    assert_eq!(page.status, 200);
}
