//! The clients' side: requests classified as the load figures count them, and
//! many reload streams opened at once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dev_support::http;
use dev_support::sse::EventStream;
use futures_util::stream::{self, StreamExt};

/// How long opening N connections may take in all (the baseline's backlog of 1
/// drops connection attempts, which then wait for SYN retransmits).
const OPEN_LIMIT: Duration = Duration::from_secs(120);

/// `GET path` on a fresh connection within `limit`: how long it took, and why it
/// failed if it did.
pub(crate) async fn timed_get(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> (Duration, Result<(), String>) {
    let started = Instant::now();
    let failure = match tokio::time::timeout(limit, http::get(addr, path)).await {
        Ok(Ok(response)) if response.status == 200 => return (started.elapsed(), Ok(())),
        Ok(Ok(response)) => format!("status {}", response.status),
        Ok(Err(err)) => match err.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused",
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => "connection reset",
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => "incomplete response",
            _ => "other error",
        }
        .to_owned(),
        Err(_) => "timeout".to_owned(),
    };
    (started.elapsed(), Err(failure))
}

/// Reads `stream` until an event called `name`: when it arrived.
pub(crate) async fn next_named(stream: &mut EventStream, name: &str) -> io::Result<Instant> {
    loop {
        match stream.next_event().await? {
            Some((event, _)) if event == name => return Ok(Instant::now()),
            Some(_) => {}
            None => return Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Opens `n` reload streams, each with its `hello` read; fails unless all opened.
pub(crate) async fn open_streams(
    addr: SocketAddr,
    n: usize,
    at_once: usize,
) -> io::Result<Vec<EventStream>> {
    let opened = open_all(n, at_once, || async move {
        let mut stream = EventStream::open(addr).await?;
        next_named(&mut stream, "hello").await?;
        Ok(stream)
    })
    .await;
    let (streams, failed): (Vec<_>, Vec<_>) = opened.into_iter().partition(Result::is_ok);
    if let Some(Err(first)) = failed.first() {
        let failed = failed.len();
        return Err(io::Error::other(format!(
            "{failed} of {n} streams did not open: {first}"
        )));
    }
    Ok(streams.into_iter().flatten().collect())
}

/// Makes `n` connections with `connect`, at most `at_once` at a time, each
/// within 20 s and all within [`OPEN_LIMIT`].
pub(crate) async fn open_all<T, F>(
    n: usize,
    at_once: usize,
    connect: impl Fn() -> F,
) -> Vec<io::Result<T>>
where
    F: Future<Output = io::Result<T>>,
{
    let deadline = Instant::now() + OPEN_LIMIT;
    stream::iter(0..n)
        .map(|_| {
            let connect = connect();
            async move {
                if Instant::now() > deadline {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                tokio::time::timeout(Duration::from_secs(20), connect)
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
            }
        })
        .buffer_unordered(at_once)
        .collect()
        .await
}
